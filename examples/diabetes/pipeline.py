"""The diabetes example: preprocess → train → evaluate → gate on the test MSE.

    sagelab run examples/diabetes/pipeline.py:pipeline -p MseThreshold=2500
    sagelab definition examples/diabetes/pipeline.py:pipeline   # the JSON SageMaker receives

When the model is good enough it is registered in the "diabetes" model package group,
pending approval: `sagelab models approve diabetes/1`, then `sagelab deploy diabetes`.

The step scripts in code/ are plain SageMaker scripts: they read and write /opt/ml/... paths.
"""

from sagelab.pipeline import Join, Parameter, Pipeline, condition, fail, processing, register, training

SKLEARN = "sklearn:1.2-1"

n_estimators = Parameter.integer("NEstimators", 150)
threshold = Parameter.float("MseThreshold", 3500.0)
instance = Parameter.string("InstanceType", "ml.m5.large")

preprocess = processing(
    "Preprocess",
    description="Split the raw table into train and test sets.",
    code="code/preprocess.py",
    framework=SKLEARN,
    arguments=["--test-size", "0.2"],
    inputs={"raw": "data/diabetes.csv"},  # a local file: uploaded, by content, when the pipeline runs
    outputs=["train", "test"],
    instance=instance,
)

train = training(
    "Train",
    description="Fit a gradient-boosting regressor in scikit-learn script mode.",
    entry_point="code/train.py",
    framework=SKLEARN,
    channels={"train": preprocess.outputs["train"]},
    content_type="text/csv",
    hyperparameters={"n_estimators": n_estimators, "learning_rate": 0.05},
    metrics={"train:mse": r"train_mse=([0-9\.]+)"},
    instance=instance,
)

evaluate = processing(
    "Evaluate",
    description="Score the model on the test set; writes evaluation.json.",
    code="code/evaluate.py",
    framework=SKLEARN,
    inputs={"model": train.model_data, "test": preprocess.outputs["test"]},
    outputs=["evaluation"],
    reports={"evaluation": "evaluation.json"},
    instance=instance,
)

register_model = register(
    "Register",
    train,
    description="Register the model for approval and deployment.",
    group="diabetes",
    framework=SKLEARN,
    entry_point="code/inference.py",
    content_types=["text/csv", "application/json"],
    response_types=["text/csv", "application/json"],
    metrics=evaluate.report_uri("evaluation"),
)

mse = evaluate.report("evaluation", "regression_metrics.mse.value")
gate = condition(
    "CheckMse",
    mse <= threshold,
    description="Register the model when the test MSE is at most MseThreshold.",
    then=[register_model],
    otherwise=[fail("MseTooHigh", Join(" ", ["Test MSE", mse, "is above the threshold", threshold]))],
)

pipeline = Pipeline("diabetes", [preprocess, train, evaluate, gate], parameters=[n_estimators, threshold, instance])
