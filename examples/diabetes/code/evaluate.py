"""Score the trained model on the test set and write evaluation.json (a SageMaker processing script)."""

import json
import os
import tarfile

import joblib
import pandas as pd
from sklearn.metrics import mean_squared_error, r2_score

# Python's tar "data" filter refuses members that would escape the folder; Pythons before 3.10.12/3.11.4 lack it.
SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

BASE = "/opt/ml/processing"

if __name__ == "__main__":
    with tarfile.open(f"{BASE}/input/model/model.tar.gz") as archive:
        archive.extractall(f"{BASE}/input/model", **SAFE)
    model = joblib.load(f"{BASE}/input/model/model.joblib")

    test = pd.read_csv(f"{BASE}/input/test/test.csv", header=None)
    y, X = test.iloc[:, 0], test.iloc[:, 1:]
    predictions = model.predict(X)
    mse = mean_squared_error(y, predictions)
    report = {
        "regression_metrics": {
            "mse": {"value": mse, "standard_deviation": float((y - predictions).std())},
            "r2": {"value": r2_score(y, predictions)},
        }
    }
    os.makedirs(f"{BASE}/output/evaluation", exist_ok=True)
    with open(f"{BASE}/output/evaluation/evaluation.json", "w") as f:
        json.dump(report, f)
    print(f"test mse={mse:.2f} r2={report['regression_metrics']['r2']['value']:.3f}")
