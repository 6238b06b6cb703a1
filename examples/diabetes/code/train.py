"""Train a gradient-boosting regressor (a SageMaker scikit-learn script-mode entry point)."""

import argparse
import os

import joblib
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_squared_error

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_estimators", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args = parser.parse_args()

    frame = pd.read_csv(os.path.join(args.train, "train.csv"), header=None)
    y, X = frame.iloc[:, 0], frame.iloc[:, 1:]
    model = GradientBoostingRegressor(
        n_estimators=args.n_estimators, learning_rate=args.learning_rate, max_depth=args.max_depth, random_state=0
    )
    model.fit(X, y)
    print(f"train_mse={mean_squared_error(y, model.predict(X)):.4f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
