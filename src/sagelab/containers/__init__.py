"""What SageMaker's containers do, emulated without Docker.

`contract` holds the paths and environment variables of the training and processing
containers in one place; `sandbox` runs a command with `/opt/ml` private to one job;
`images` says which prebuilt image a URI is and what it runs; `frameworks` adds what a
framework image sets for its scripts, with `shims` standing in for its helper packages;
`environments` builds the cached environments of each image's packages and requirements.txt; `drivers` finds the
requirements of the SDK's own job drivers (`@step`, v3 ModelTrainer); `xgboost` is the
built-in XGBoost algorithm and `monitor` the Model Monitor and Clarify analyses (see
docs/containers.md).
"""
