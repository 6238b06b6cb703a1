"""Stand-ins for the helper packages inside SageMaker's framework images, seen only by steps on those images.

Entry points written for the framework images import packages the images install and PyPI
does not have, or has only in abandoned releases: `sagemaker_xgboost_container`, the legacy
`sagemaker_containers` and `sagemaker_training`. Each folder below is a PYTHONPATH root holding
one of them, so they never become top-level packages of the user's environment:
`sagelab.containers.frameworks` appends the roots an image has to its steps' PYTHONPATH. They
implement what public scripts use, on top of `sagelab.containers.contract` and the built-in
XGBoost emulation; `installed.prefer_installed` lets a really installed package win.
"""

from pathlib import Path

_HERE = Path(__file__).parent
XGBOOST_CONTAINER = _HERE / "xgboost_container"  # sagemaker_xgboost_container
CONTAINERS_TOOLKIT = _HERE / "containers_toolkit"  # sagemaker_containers, the toolkit before sagemaker_training
TRAINING_TOOLKIT = _HERE / "training_toolkit"  # sagemaker_training
