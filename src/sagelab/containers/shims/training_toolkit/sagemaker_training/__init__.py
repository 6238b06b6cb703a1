"""sagelab's stand-in for `sagemaker_training`, the training toolkit of the current framework images.

Public scripts use `sagemaker_training.environment` (`Environment()`, the /opt/ml paths); that
is here. The real package (on PyPI as sagemaker-training) wins where it is installed.
"""

from sagelab.containers.shims.installed import prefer_installed

prefer_installed(__name__, __file__)
