"""SageMaker's built-in XGBoost algorithm (the sagemaker-xgboost images), run in a job's /opt/ml.

`python3 -m sagelab.containers.xgboost` does what the image's `train` does in algorithm mode:
it validates `hyperparameters.json` and the channels, reads `train` and `validation`
(text/csv, text/libsvm, application/x-parquet), trains with the installed xgboost, prints
the per-round metric lines SageMaker's metric regexes read, and writes
`/opt/ml/model/xgboost-model` in the format of the image's version. See docs/containers.md.

Importing this package imports neither xgboost nor numpy; `train.main` does.
"""
