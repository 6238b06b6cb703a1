"""Framework images in script mode: their helper packages and variables, for unmodified public scripts.

End to end through the LocalEngine (real step subprocesses): an XGBoost framework-mode entry
point in the style of AWS's abalone example (`get_dmatrix`, `rabit_run`, `checkpointing`), a
ScriptProcessor evaluating on the XGBoost image, a legacy `sagemaker_containers.beta.framework`
script and a `sagemaker_training` one on the scikit-learn image, PyTorch and TensorFlow script
mode, and steps on other images, which must not see any of those packages.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import definition
from sagelab.config import load_settings
from sagelab.containers import contract, frameworks, images
from sagelab.containers.shims import TRAINING_TOOLKIT, codecs
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine

ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
XGBOOST = f"{ECR}/sagemaker-xgboost:1.7-1"
SKLEARN = f"{ECR}/sagemaker-scikit-learn:1.2-1-cpu-py3"
PYTORCH = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
TENSORFLOW = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.13.0-cpu-py310"
CUSTOM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1"
HELPERS = ("sagemaker_xgboost_container", "sagemaker_containers", "sagemaker_training")

ABALONE = '''
"""AWS's abalone framework example, as its copies write it (with checks of what the image gives it)."""
import argparse, json, logging, os, pickle as pkl

import xgboost as xgb
from sagemaker_containers import entry_point
from sagemaker_xgboost_container import distributed
from sagemaker_xgboost_container.data_utils import get_content_type, get_dmatrix
import sagemaker_xgboost_container.encoder as xgb_encoders


def _xgb_train(params, dtrain, evals, num_boost_round, model_dir, is_master):
    booster = xgb.train(params=params, dtrain=dtrain, evals=evals, num_boost_round=num_boost_round)
    if is_master:
        pkl.dump(booster, open(model_dir + "/xgboost-model", "wb"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name, kind in (("max_depth", int), ("eta", float), ("gamma", int), ("min_child_weight", int),
                       ("subsample", float), ("verbosity", int), ("objective", str), ("num_round", int)):
        parser.add_argument(f"--{name}", type=kind)
    parser.add_argument("--output_data_dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    parser.add_argument("--model_dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--validation", type=str, default=os.environ["SM_CHANNEL_VALIDATION"])
    parser.add_argument("--sm_hosts", type=str, default=os.environ["SM_HOSTS"])
    parser.add_argument("--sm_current_host", type=str, default=os.environ["SM_CURRENT_HOST"])
    args, _ = parser.parse_known_args()

    assert os.environ["SM_FRAMEWORK_MODULE"] == "sagemaker_xgboost_container.training:main"
    assert os.environ["SAGEMAKER_TRAINING_MODULE"] == "sagemaker_xgboost_container.training:main"
    config = json.load(open(os.environ["SM_INPUT_DATA_CONFIG_FILE"]))
    content_type = get_content_type(config["train"]["ContentType"])
    assert content_type == "csv" and xgb_encoders.csv_to_dmatrix("0.1,0.2").num_col() == 2

    sm_hosts = json.loads(args.sm_hosts)
    entry_point._wait_hostname_resolution()
    dtrain = get_dmatrix(args.train, content_type)
    dval = get_dmatrix(args.validation, content_type)
    assert get_dmatrix("/opt/ml/input/data/none", content_type) is None
    watchlist = [(dtrain, "train"), (dval, "validation")] if dval is not None else [(dtrain, "train")]
    train_hp = {"max_depth": args.max_depth, "eta": args.eta, "gamma": args.gamma, "objective": args.objective,
                "min_child_weight": args.min_child_weight, "subsample": args.subsample, "verbosity": args.verbosity}
    xgb_train_args = dict(params=train_hp, dtrain=dtrain, evals=watchlist, num_boost_round=args.num_round,
                          model_dir=args.model_dir)
    distributed.rabit_run(exec_fun=_xgb_train, args=xgb_train_args, include_in_training=(dtrain is not None),
                          hosts=sm_hosts, current_host=args.sm_current_host, update_rabit_args=True)
'''

SPOT = '''
"""The managed-spot example: checkpointing.train resumes from /opt/ml/checkpoints and writes one per round."""
import argparse, os, pickle

import xgboost as xgb
from sagemaker_xgboost_container import checkpointing
from sagemaker_xgboost_container.data_utils import get_dmatrix

parser = argparse.ArgumentParser()
parser.add_argument("--num_round", type=int)
args, _ = parser.parse_known_args()
dtrain = get_dmatrix(os.environ["SM_CHANNEL_TRAIN"], "csv")
first = dict(params={"max_depth": 2}, dtrain=dtrain, num_boost_round=3)
checkpointing.train(first, "/opt/ml/checkpoints")  # an interrupted job: 3 rounds done
assert checkpointing.load_checkpoint("/opt/ml/checkpoints")[1] == 3
booster = checkpointing.train(dict(first, num_boost_round=args.num_round), "/opt/ml/checkpoints")  # the restarted job
assert booster.num_boosted_rounds() == args.num_round, booster.num_boosted_rounds()
kept = sorted(os.listdir("/opt/ml/checkpoints"))
assert kept == [f"xgboost-checkpoint.{i}" for i in range(args.num_round - 5, args.num_round)], kept
pickle.dump(booster, open("/opt/ml/model/xgboost-model", "wb"))
'''

EVALUATE = '''
"""A ScriptProcessor on the training image reads the test set with the image's own get_dmatrix."""
import json, pickle, tarfile

import numpy as np
from sagemaker_xgboost_container.data_utils import get_dmatrix

with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
    tar.extractall(path=".", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # Python < 3.11.4 lacks it
booster = pickle.load(open("xgboost-model", "rb"))
test = get_dmatrix("/opt/ml/processing/test", "csv")
errors = test.get_label() - booster.predict(test)
json.dump({"mse": float(np.mean(errors ** 2)), "variance": float(np.var(test.get_label()))},
          open("/opt/ml/processing/evaluation/evaluation.json", "w"))
'''

LEGACY = '''
"""A scikit-learn-image script of the sagemaker_containers era, and the sagemaker_training way of asking the same."""
import json, os

import numpy as np
import sagemaker_containers
from sagemaker_containers.beta.framework import content_types, encoders, env, modules, transformer, worker
from sagemaker_training import environment

training = sagemaker_containers.training_env()
assert training.channel_input_dirs == {"train": "/opt/ml/input/data/train"}, training.channel_input_dirs
assert training.hyperparameters == {"alpha": 0.5, "kind": "ridge"} and training.model_dir == "/opt/ml/model"
assert training.hosts == ["algo-1"] and training.current_host == "algo-1" and training.is_master
assert training.num_gpus == 0 and training.user_entry_point == "legacy.py" and training.module_name == "legacy"
assert training.to_cmd_args() == ["--alpha", "0.5", "--kind", "ridge"]
assert training.to_env_vars()["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
assert dict(training) == json.loads(os.environ["SM_TRAINING_ENV"])
assert isinstance(env.TrainingEnv(), env.TrainingEnv) and env.read_hyperparameters()["alpha"] == 0.5

current = environment.Environment()
assert dict(current) == dict(training) and current.framework_module == "sagemaker_sklearn_container.training:main"
assert current.instance_groups == ["homogeneousCluster"] and current.current_instance_group_hosts == ["algo-1"]
assert not current.is_hetero and current.num_neurons == 0 and environment.model_dir == "/opt/ml/model"
for name, value in {"SM_NUM_NEURONS": "0", "SM_IS_HETERO": "false", "SM_DISTRIBUTION_INSTANCE_GROUPS": "[]",
                    "SM_INSTANCE_GROUPS": '["homogeneousCluster"]', "SM_MODEL_DIR": "/opt/ml/model",
                    "SM_INPUT_TRAINING_CONFIG_FILE": "/opt/ml/input/config/hyperparameters.json"}.items():
    assert os.environ[name] == value, (name, os.environ[name])

# What its inference handlers (in the same file) use: encoders, content types and the worker's Response.
assert encoders.encode(np.array([[1, 2], [3, 4]]), content_types.CSV) == "1,2\\n3,4\\n"
assert encoders.decode("[[1, 2]]", content_types.JSON).tolist() == [[1, 2]]
response = worker.Response(encoders.encode([0.5], content_types.JSON), mimetype=content_types.JSON)
assert response.get_data() == b"[0.5]" and response.status_code == 200
rows = np.loadtxt(os.path.join(training.channel_input_dirs["train"], "train.csv"), delimiter=",")
np.save(os.path.join(training.model_dir, "coefficients.npy"), np.linalg.lstsq(rows[:, 1:], rows[:, 0], rcond=None)[0])
'''

TENSORFLOW_SCRIPT = '''
"""The TensorFlow toolkit's argument contract, checked without TensorFlow."""
import argparse, json, os, sys

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--model_dir", type=str)
parser.add_argument("--sm-model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAINING"])
parser.add_argument("--hosts", type=list, default=json.loads(os.environ["SM_HOSTS"]))
parser.add_argument("--current-host", type=str, default=os.environ["SM_CURRENT_HOST"])
args, _ = parser.parse_known_args()
job = os.environ["TRAINING_JOB_NAME"]
# The toolkit reads _tuning_objective_metric from hyperparameters.json and keeps it from the script.
tuned = "_tuning_objective_metric" in json.load(open("/opt/ml/input/config/hyperparameters.json"))
assert "_tuning_objective_metric" not in json.loads(os.environ["SM_HPS"]) and "SM_HP__TUNING_OBJECTIVE_METRIC" not in os.environ
assert not any("_tuning_objective_metric" in arg for arg in sys.argv), sys.argv
expected = f"s3://test-bucket/tf/model/{job}/model" if tuned else "s3://test-bucket/tf/model"
assert args.model_dir == expected and os.environ["SM_HP_MODEL_DIR"] == expected, (args.model_dir, expected)
assert args.epochs == 2 and args.sm_model_dir == "/opt/ml/model" and args.train == "/opt/ml/input/data/training"
assert args.hosts == ["algo-1"] and args.current_host == "algo-1" and os.environ["SM_NUM_GPUS"] == "0"
assert os.environ["SM_FRAMEWORK_MODULE"] == "sagemaker_tensorflow_container.training:main"
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1" and os.environ["S3_REGION"] == os.environ["SAGEMAKER_REGION"]
open(os.path.join(args.sm_model_dir, "saved.txt"), "w").write(args.model_dir)
'''

PYTORCH_SCRIPT = '''
"""A typical PyTorch entry point: argparse hyperparameters, SM_CHANNEL_TRAINING in, model.pth out."""
import argparse, json, os

import numpy as np
import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--backend", type=str, default=None)
parser.add_argument("--hosts", type=list, default=json.loads(os.environ["SM_HOSTS"]))
parser.add_argument("--current-host", type=str, default=os.environ["SM_CURRENT_HOST"])
parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--data-dir", type=str, default=os.environ["SM_CHANNEL_TRAINING"])
parser.add_argument("--num-gpus", type=int, default=os.environ["SM_NUM_GPUS"])
args = parser.parse_args()
assert args.epochs == 30 and args.lr == 0.05 and args.num_gpus == 0 and len(args.hosts) == 1
assert os.environ["MASTER_ADDR"] == "127.0.0.1" and os.environ["MASTER_PORT"] == "7777"
assert os.environ["SM_FRAMEWORK_MODULE"] == "sagemaker_pytorch_container.training:main"
from sagemaker_training import environment
assert environment.Environment().channel_input_dirs["training"] == args.data_dir

torch.manual_seed(0)
rows = np.loadtxt(os.path.join(args.data_dir, "train.csv"), delimiter=",", dtype=np.float32)
features, label = torch.from_numpy(rows[:, 1:]), torch.from_numpy(rows[:, :1])
model = nn.Linear(features.shape[1], 1)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
for epoch in range(args.epochs):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(features), label)
    loss.backward()
    optimizer.step()
    print(f"epoch={epoch} loss={loss.item():.4f}")
with open(os.path.join(args.model_dir, "model.pth"), "wb") as f:
    torch.save(model.state_dict(), f)
'''

NO_HELPERS = '''
"""On an image without the framework toolkits none of their packages is importable."""
import importlib, importlib.util, os, sys

visible = [name for name in sys.argv[1].split(",") if name and importlib.util.find_spec(name) is not None]
hidden = [name for name in sys.argv[2].split(",") if name and importlib.util.find_spec(name) is not None]
assert not hidden, f"visible here: {hidden}"
for name in visible:
    importlib.import_module(name)
print("helpers checked", sys.argv[1:], os.environ.get("SM_FRAMEWORK_MODULE"))
'''


def rows(count: int, seed: int = 3) -> np.ndarray:
    """A label first, then four features it depends on."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (count, 4))
    return np.column_stack([3 + 10 * features[:, 0] + 4 * features[:, 1] + rng.normal(0, 0.3, count), features])


def csv(data: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, data, delimiter=",", fmt="%.5f")
    return buffer.getvalue().encode()


def sourcedir(**scripts: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in scripts.items():
            content = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def training(name: str, image: str, program: str, hyperparameters: dict[str, str], channels: dict[str, str],
             code: str = "s3://test-bucket/code/sourcedir.tar.gz") -> dict[str, Any]:  # fmt: skip
    """A framework estimator's Training step, with the hyperparameters the SDK adds (JSON-encoded strings)."""
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "HyperParameters": {**hyperparameters, "sagemaker_program": json.dumps(program),
                                "sagemaker_submit_directory": json.dumps(code), "sagemaker_container_log_level": "20",
                                "sagemaker_region": '"us-east-1"'},  # fmt: skip
            "InputDataConfig": [
                {"ChannelName": channel, "ContentType": "text/csv",
                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
                for channel, uri in channels.items()
            ],  # fmt: skip
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def processing(name: str, image: str, code: str, args: list[str], inputs: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    """A ScriptProcessor step: `python3 <code>` on `image`, inputs and outputs under /opt/ml/processing."""

    def s3_input(input_name: str, uri: Any, local: str) -> dict[str, Any]:
        return {"InputName": input_name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                                     "S3InputMode": "File"}}  # fmt: skip

    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": image, **({"ContainerArguments": args} if args else {}),
                                 "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{code.rsplit('/', 1)[-1]}"]},  # fmt: skip
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "ProcessingInputs": [s3_input("code", code, "/opt/ml/processing/input/code"),
                                 *(s3_input(key, uri, f"/opt/ml/processing/{key}") for key, uri in inputs.items())],  # fmt: skip
            "ProcessingOutputConfig": {"Outputs": [
                {"OutputName": key, "S3Output": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/{key}", "S3UploadMode": "EndOfJob"}}
                for key, uri in outputs.items()]},  # fmt: skip
        },
    }


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    engine = LocalEngine(load_settings(project))
    data = rows(400)
    for name, part in (("train", data[:250]), ("validation", data[250:330]), ("test", data[330:])):
        engine.store.put_bytes(f"s3://test-bucket/data/{name}/{name}.csv", csv(part))
    return engine


def run(engine: LocalEngine, *steps: dict[str, Any]) -> Any:
    execution = engine.start(parse(definition(*steps)), "framework-containers")
    failures = {s.name: f"{s.failure_reason}\n{Path(s.log_path).read_text()[-3000:] if s.log_path else ''}"
                for s in execution.steps.values() if s.status != "Succeeded"}  # fmt: skip
    assert execution.status == "Succeeded", failures
    return execution


def model_member(engine: LocalEngine, step: Any, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(engine.store.get_bytes(step.properties["ModelArtifacts"]["S3ModelArtifacts"]))) as tar:
        return tar.extractfile(member).read()  # type: ignore[union-attr]


def rounds_in_image(model: bytes, image: str) -> int:
    """The boosted rounds of a pickled Booster, unpickled by the xgboost of the image's environment."""
    from sagelab.containers import environments

    env = [env for env in environments.cached() if env.built_for == image and env.python == sys.executable][-1]  # the newest
    code = "import pickle, sys; print(pickle.load(sys.stdin.buffer).num_boosted_rounds())"
    result = subprocess.run([str(env.path / "bin" / "python"), "-c", code], input=model, capture_output=True, check=True)
    return int(result.stdout)


def test_xgboost_framework_mode_runs_the_abalone_entry_point_with_the_images_helpers(engine: LocalEngine) -> None:
    engine.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", sourcedir(**{"abalone.py": ABALONE, "spot.py": SPOT}))
    engine.store.put_bytes("s3://test-bucket/code/evaluate.py", EVALUATE.encode())
    hyperparameters = {"max_depth": "4", "eta": "0.3", "gamma": "0", "min_child_weight": "1", "subsample": "0.9",
                       "verbosity": "1", "objective": "reg:squarederror", "num_round": "30"}  # fmt: skip
    channels = {"train": "s3://test-bucket/data/train", "validation": "s3://test-bucket/data/validation"}
    train = training("Train", XGBOOST, "abalone.py", hyperparameters, channels)
    spot = training("Spot", XGBOOST, "spot.py", {"num_round": "8"}, {"train": "s3://test-bucket/data/train"})
    evaluate = processing("Evaluate", XGBOOST, "s3://test-bucket/code/evaluate.py", [],
                          {"model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "test": "s3://test-bucket/data/test"},
                          {"evaluation": "s3://test-bucket/evaluation"})  # fmt: skip
    execution = run(engine, train, spot, evaluate)

    log = Path(execution.steps["Train"].log_path).read_text()
    assert "[29]\ttrain-rmse:" in log and "validation-rmse:" in log, log[-2000:]
    # The models are pickles of the image's xgboost (1.7.4): loaded there, as the image's own scripts load them.
    assert rounds_in_image(model_member(engine, execution.steps["Train"], "xgboost-model"), "sagemaker-xgboost:1.7-1") == 30
    assert rounds_in_image(model_member(engine, execution.steps["Spot"], "xgboost-model"), "sagemaker-xgboost:1.7-1") == 8
    report = json.loads(engine.store.get_bytes("s3://test-bucket/evaluation/evaluation.json"))
    assert report["mse"] < report["variance"] / 4, report


def test_legacy_and_current_toolkits_on_the_scikit_learn_image(engine: LocalEngine) -> None:
    engine.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", sourcedir(**{"legacy.py": LEGACY}))
    step = training("Legacy", SKLEARN, "legacy.py", {"alpha": "0.5", "kind": '"ridge"'}, {"train": "s3://test-bucket/data/train"})
    execution = run(engine, step)
    coefficients = np.load(io.BytesIO(model_member(engine, execution.steps["Legacy"], "coefficients.npy")))
    assert coefficients.shape == (4,) and coefficients[0] > 5


def test_pytorch_script_mode(engine: LocalEngine) -> None:
    torch = pytest.importorskip("torch")
    engine.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", sourcedir(**{"train.py": PYTORCH_SCRIPT}))
    step = training("Torch", PYTORCH, "train.py", {"epochs": "30", "lr": "0.05"}, {"training": "s3://test-bucket/data/train"})
    execution = run(engine, step)
    assert "epoch=29 loss=" in Path(execution.steps["Torch"].log_path).read_text()
    state = torch.load(io.BytesIO(model_member(engine, execution.steps["Torch"], "model.pth")))
    assert set(state) == {"weight", "bias"} and tuple(state["weight"].shape) == (1, 4)


def test_tensorflow_script_mode_gets_model_dir_and_a_tuning_trial_its_own(engine: LocalEngine) -> None:
    engine.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", sourcedir(**{"train.py": TENSORFLOW_SCRIPT}))
    hyperparameters = {"epochs": "2", "model_dir": '"s3://test-bucket/tf/model"'}
    channels = {"training": "s3://test-bucket/data/train"}
    plain = training("Plain", TENSORFLOW, "train.py", hyperparameters, channels)
    trial = training("Trial", TENSORFLOW, "train.py", {**hyperparameters, "_tuning_objective_metric": '"loss"'}, channels)
    execution = run(engine, plain, trial)
    assert model_member(engine, execution.steps["Plain"], "saved.txt") == b"s3://test-bucket/tf/model"
    assert model_member(engine, execution.steps["Trial"], "saved.txt").endswith(b"/model")


def test_the_toolkits_own_hyperparameters_are_kept_from_the_script() -> None:
    """As sagemaker-training's Environment splits them (params.SAGEMAKER_HYPERPARAMETERS and the sagemaker_ prefix)."""
    hyperparameters = {"lr": 0.1, "model_dir": "s3://b/m", "_tuning_objective_metric": "loss", "default_user_module_name": "train",
                       "sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://b/code.tar.gz",
                       "sagemaker_container_log_level": 10, "sagemaker_region": "us-east-1", "sagemaker_job_name": "j",
                       "sagemaker_enable_cloudwatch_metrics": False, "sagemaker_s3_output": "s3://b/out",
                       "sagemaker_estimator_class_name": "TensorFlow", "sagemaker_mpi_enabled": True}  # fmt: skip
    resources = contract.resource_config("ml.m5.large")
    env, args = contract.training_environment(job_name="j", hyperparameters=hyperparameters, input_data_config={}, resources=resources,
                                              num_cpus=2, region="us-east-1")  # fmt: skip
    assert args == ["--lr", "0.1", "--model_dir", "s3://b/m"]
    assert json.loads(env["SM_HPS"]) == {"lr": 0.1, "model_dir": "s3://b/m"} == json.loads(env["SM_TRAINING_ENV"])["hyperparameters"]
    assert sorted(k for k in env if k.startswith("SM_HP_")) == ["SM_HP_LR", "SM_HP_MODEL_DIR"]
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_estimator_class_name": "TensorFlow", "sagemaker_mpi_enabled": True}
    assert (env["SM_USER_ENTRY_POINT"], env["SM_MODULE_NAME"], env["SM_LOG_LEVEL"]) == ("train.py", "train", "10")
    assert env["SM_MODULE_DIR"] == "s3://b/code.tar.gz" and env["SM_DISTRIBUTION_INSTANCE_GROUPS"] == '["homogeneousCluster"]'
    # A TensorFlow tuning trial's model_dir outside /opt/ml gets the job's own folder (_model_dir_with_training_job).
    tensorflow = images.identify(TENSORFLOW)
    assert frameworks.hyperparameters(tensorflow, hyperparameters, "j-001")["model_dir"] == "s3://b/m/j-001/model"
    assert frameworks.hyperparameters(tensorflow, {**hyperparameters, "model_dir": "/opt/ml/model"}, "j-001")["model_dir"] == "/opt/ml/model"
    untuned = {k: v for k, v in hyperparameters.items() if k != "_tuning_objective_metric"}
    assert frameworks.hyperparameters(tensorflow, untuned, "j-001")["model_dir"] == "s3://b/m"
    assert frameworks.hyperparameters(images.identify(SKLEARN), hyperparameters, "j-001")["model_dir"] == "s3://b/m"


def test_helpers_are_visible_only_on_their_images(engine: LocalEngine) -> None:
    engine.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", sourcedir(**{"check.py": NO_HELPERS}))
    engine.store.put_bytes("s3://test-bucket/code/check.py", NO_HELPERS.encode())
    channels = {"train": "s3://test-bucket/data/train"}
    custom = training("Custom", CUSTOM, "check.py", {}, channels)
    sklearn = training("Sklearn", SKLEARN, "check.py", {}, channels)
    for step, visible, hidden in ((custom, "", HELPERS), (sklearn, "sagemaker_containers,sagemaker_training", HELPERS[:1])):
        step["Arguments"]["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "check.py", visible, ",".join(hidden)]
    plain = processing("Plain", "local/python:3", "s3://test-bucket/code/check.py", ["", ",".join(HELPERS)], {}, {})
    on_xgboost = processing("OnXGBoost", XGBOOST, "s3://test-bucket/code/check.py",
                            ["sagemaker_xgboost_container,sagemaker_containers", "sagemaker_training"], {}, {})  # fmt: skip
    execution = run(engine, custom, sklearn, plain, on_xgboost)
    assert "helpers checked" in Path(execution.steps["Custom"].log_path).read_text()


def test_an_installed_helper_package_wins_over_the_stand_in(tmp_path: Path) -> None:
    """The stand-ins come first on sys.path (PYTHONPATH precedes site-packages); a real package still wins, a broken one does not."""
    site = tmp_path / "site-packages"
    (site / "sagemaker_training").mkdir(parents=True)
    (site / "sagemaker_training" / "__init__.py").write_text("REAL = True\n")
    code = "import sagemaker_training; print(getattr(sagemaker_training, 'REAL', False))"
    path = os.pathsep.join([str(TRAINING_TOOLKIT), str(site)])
    assert subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": path}, capture_output=True, text=True,
                          check=True).stdout.strip() == "True"  # fmt: skip
    (site / "sagemaker_training" / "__init__.py").write_text("import distutils_gone_in_3_12\n")
    code = "from sagemaker_training import environment; print(environment.model_dir)"
    assert subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": path}, capture_output=True, text=True,
                          check=True).stdout.strip() == "/opt/ml/model"  # fmt: skip


def test_the_toolkits_codecs() -> None:
    assert codecs.encode([[1.5, 2]], codecs.JSON) == "[[1.5, 2]]"
    assert codecs.decode(codecs.encode(np.arange(3), codecs.NPY), codecs.NPY).tolist() == [0, 1, 2]
    assert codecs.decode("1,2\n3,4\n", codecs.CSV).astype(float).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(codecs.UnsupportedFormatError, match="text/plain is not supported"):
        codecs.encode([1], "text/plain")
