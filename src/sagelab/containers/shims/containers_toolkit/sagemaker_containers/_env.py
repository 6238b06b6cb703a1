"""`sagemaker_containers._env` (`beta.framework.env`): paths, config readers and TrainingEnv."""

from sagelab.containers.shims.environment import *  # noqa: F403
from sagelab.containers.shims.environment import Environment as TrainingEnv
from sagelab.containers.shims.environment import __all__ as _names

__all__ = ["TrainingEnv", *_names]
