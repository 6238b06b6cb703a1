"""Split the raw diabetes table into train and test sets (a SageMaker processing script)."""

import argparse
import os

import pandas as pd
from sklearn.model_selection import train_test_split

BASE = "/opt/ml/processing"

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--test-size", type=float, default=0.2)
    args = parser.parse_args()

    frame = pd.read_csv(f"{BASE}/input/raw/diabetes.csv")
    print(f"read {len(frame)} rows, {frame.shape[1] - 1} features")
    # Label first, no header: the layout SageMaker's built-in algorithms expect too.
    frame = frame[["target"] + [c for c in frame.columns if c != "target"]]
    train, test = train_test_split(frame, test_size=args.test_size, random_state=42)
    for name, part in (("train", train), ("test", test)):
        os.makedirs(f"{BASE}/output/{name}", exist_ok=True)
        part.to_csv(f"{BASE}/output/{name}/{name}.csv", header=False, index=False)
        print(f"wrote {len(part)} rows to {BASE}/output/{name}/{name}.csv")
