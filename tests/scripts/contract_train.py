"""A training script that checks every path and variable SageMaker's training toolkit promises."""

import argparse
import json
import os
import sys

BASE = "/opt/ml"

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--learning-rate", type=float)
parser.add_argument("--name")
parser.add_argument("--flag")
args = parser.parse_args()
assert args.epochs == 3 and args.learning_rate == 0.1 and args.name == "run one" and args.flag == "True", args
# --key value pairs sorted by key, reserved sagemaker_* hyperparameters left out
assert sys.argv[1:] == ["--epochs", "3", "--flag", "True", "--learning-rate", "0.1", "--name", "run one"], sys.argv

assert os.getcwd() == f"{BASE}/code", os.getcwd()
assert os.path.isfile(f"{BASE}/code/train.py") and os.path.isfile(f"{BASE}/code/helper/util.py")
config = f"{BASE}/input/config"
hyperparameters = json.load(open(f"{config}/hyperparameters.json"))
assert hyperparameters["epochs"] == "3" and hyperparameters["sagemaker_program"] == '"train.py"', hyperparameters
inputdataconfig = json.load(open(f"{config}/inputdataconfig.json"))
assert inputdataconfig["train"]["TrainingInputMode"] == "File" and inputdataconfig["train"]["ContentType"] == "text/csv"
assert set(inputdataconfig) == {"train", "validation"}
resources = json.load(open(f"{config}/resourceconfig.json"))
assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"] and resources["network_interface_name"] == "eth0"
assert resources["current_instance_type"] == "ml.m5.xlarge"
assert open(f"{BASE}/input/data/train/part-1.csv").read() == "1,2\n"
assert open(f"{BASE}/input/data/validation/v.csv").read() == "3,4\n"
for folder in ("model", "output/data", "output/intermediate"):
    assert os.path.isdir(f"{BASE}/{folder}"), folder

env = os.environ
expected = {
    "SM_MODEL_DIR": "/opt/ml/model",
    "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
    "SM_CHANNEL_VALIDATION": "/opt/ml/input/data/validation",
    "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
    "SM_OUTPUT_DIR": "/opt/ml/output",
    "SM_OUTPUT_INTERMEDIATE_DIR": "/opt/ml/output/intermediate",
    "SM_INPUT_DIR": "/opt/ml/input",
    "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
    "SM_CURRENT_HOST": "algo-1",
    "SM_CURRENT_INSTANCE_TYPE": "ml.m5.xlarge",
    "SM_HOSTS": '["algo-1"]',
    "SM_NUM_GPUS": "0",
    "SM_MODULE_NAME": "train",
    "SM_USER_ENTRY_POINT": "train.py",
    "SM_HP_EPOCHS": "3",
    "SM_HP_LEARNING-RATE": "0.1",
    "SM_HP_NAME": "run one",
    "SM_NETWORK_INTERFACE_NAME": "eth0",
    "SM_CHANNELS": '["train","validation"]',
    "SM_LOG_LEVEL": "20",
}
for name, value in expected.items():
    assert env.get(name) == value, (name, env.get(name), value)
assert int(env["SM_NUM_CPUS"]) >= 1
assert env["SM_MODULE_DIR"].startswith("s3://") and env["SM_MODULE_DIR"].endswith("sourcedir.tar.gz")
assert json.loads(env["SM_HPS"]) == {"epochs": 3, "learning-rate": 0.1, "name": "run one", "flag": True}
assert json.loads(env["SM_USER_ARGS"]) == sys.argv[1:]
training_env = json.loads(env["SM_TRAINING_ENV"])
assert training_env["channel_input_dirs"]["train"] == "/opt/ml/input/data/train"
assert training_env["hyperparameters"]["epochs"] == 3
assert training_env["job_name"] == env["TRAINING_JOB_NAME"]
assert env["TRAINING_JOB_NAME"].startswith("pipelines-")
assert json.loads(env["SM_RESOURCE_CONFIG"]) == resources
assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == inputdataconfig
assert env["MY_VARIABLE"] == "from-environment"
assert "AWS_SESSION_TOKEN" not in env  # the user's own credentials never reach a step

sys.path.insert(0, f"{BASE}/code")
from helper.util import VALUE  # noqa: E402  (the source dir is importable)

with open(f"{BASE}/model/model.txt", "w") as f:
    f.write(f"trained {VALUE}")
os.makedirs(f"{BASE}/model/sub", exist_ok=True)
open(f"{BASE}/model/sub/extra.bin", "wb").write(b"\x00\x01")
open(f"{BASE}/output/data/metrics.txt", "w").write("ok")
print("epoch 1 loss=0.50")
print("epoch 2 loss=0.25 val-acc: 0.9")
print("contract ok")
