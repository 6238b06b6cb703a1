"""What SageMaker's containers do, emulated without Docker.

`contract` holds the paths and environment variables of the training and processing
containers in one place; `sandbox` runs a command with `/opt/ml` private to one job;
`images` says which prebuilt image a URI is and what it runs; `xgboost` is the built-in
XGBoost algorithm (see docs/containers.md).
"""
