"""Serving the diabetes model: SageMaker's scikit-learn container calls model_fn to load it;
its default input_fn/predict_fn/output_fn turn CSV or JSON rows into predictions."""

import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
