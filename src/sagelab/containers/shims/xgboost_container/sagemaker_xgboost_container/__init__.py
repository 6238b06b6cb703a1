"""sagelab's stand-in for `sagemaker_xgboost_container`, the package inside the sagemaker-xgboost images.

Framework-mode entry points (AWS's abalone example and its many copies) import
`data_utils.get_dmatrix`, `distributed.rabit_run`, `checkpointing` and `encoder`; those are
here, reading data as sagelab's built-in XGBoost emulation reads it. The package is not on
PyPI; were it installed, it would win.
"""

from sagelab.containers.shims.installed import prefer_installed

prefer_installed(__name__, __file__)
