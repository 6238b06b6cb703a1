"""sagelab's stand-in for `sagemaker_containers`, the training toolkit of the older framework images.

Public scripts use `sagemaker_containers.training_env()`, `entry_point` and
`sagemaker_containers.beta.framework` (env, encoders, content_types, worker, ...); those are
here. The real package wins where it is installed and imports.
"""

from __future__ import annotations

from sagelab.containers.shims.environment import Environment
from sagelab.containers.shims.installed import prefer_installed

prefer_installed(__name__, __file__)


def training_env() -> Environment:
    """The training job's environment, read from /opt/ml/input/config."""
    return Environment()
