"""`sagemaker_xgboost_container.constants`: content types and variable names."""
