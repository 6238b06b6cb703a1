"""`sagemaker_training.environment`: the /opt/ml paths, the config readers and `Environment`."""

from sagelab.containers.shims.environment import *  # noqa: F403
from sagelab.containers.shims.environment import __all__ as __all__
