"""PYTHONPATH root of the `sagemaker_xgboost_container` stand-in (the sagemaker-xgboost images' own package)."""
