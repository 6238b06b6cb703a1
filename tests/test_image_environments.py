"""Image environments (the default): each step runs on the packages its SageMaker image ships, isolated, built with uv.

The environments are built from uv's cache, offline (UV_OFFLINE, set for the whole suite by
conftest.py): `scripts/test` prepares them first with `sagelab envs prepare
tests/fixtures/images/pipeline.json`, the only step that reaches the package index. Each case
is a pipeline that ends differently on sagelab's own packages than on SageMaker; here it ends
as it does there.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conftest import SAGELAB, definition, processing_step, python_code, wheel, write
from sagelab.config import load_settings
from sagelab.containers import environments, images
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:{}-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:{}"


def engine(project: Path) -> LocalEngine:
    return LocalEngine(load_settings(project))


def on_image(step: dict[str, Any], image: str) -> dict[str, Any]:
    step["Arguments"]["AppSpecification"]["ImageUri"] = image
    return step


def run(lab: LocalEngine, *steps: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    execution = lab.start(parse(definition(*steps)), "test", {})
    logs = {name: Path(state.log_path).read_text() for name, state in execution.steps.items() if state.log_path}
    return execution, logs


SCRIPT_0_23 = """
import boto3, requests  # the image ships both; sagelab's own environment has neither
import pandas as pd
frame = pd.DataFrame({"age": [1.0, None, 3.0]})
frame["age"].fillna(0, inplace=True)  # pandas 1.x fills the frame; under pandas 3 (copy-on-write) this is a no-op
assert frame["age"].isna().sum() == 0, "fillna did not fill"
print("pandas", pd.__version__, "requests", requests.__version__, "boto3", boto3.__version__)
"""


def test_a_script_written_for_sklearn_0_23_runs_on_that_images_packages(project: Path) -> None:
    execution, logs = run(engine(project), on_image(processing_step("Prep", SCRIPT_0_23), SKLEARN.format("0.23-1")))
    state = execution.steps["Prep"]
    assert execution.status == "Succeeded", (state.failure_reason, logs["Prep"][-3000:])
    assert "pandas 1.5.3 requests 2.28.0 boto3 1.24.17" in logs["Prep"]  # pandas 1.1.3 has no wheel for this Python: the closest
    record = state.properties[environments.PROPERTY]
    assert record["Environment"] == "image" and record["Packages"]["pandas"] == {"Image": "1.1.3", "Step": "1.5.3"}
    assert "pandas" in record["Drift"] and "boto3" not in record["Drift"]


def test_the_same_script_fails_on_sagelabs_own_packages_and_says_why(project: Path) -> None:
    with open(project / "pyproject.toml", "a") as pyproject:
        pyproject.write('environment = "host"\n')
    execution, logs = run(engine(project), on_image(processing_step("Prep", SCRIPT_0_23), SKLEARN.format("0.23-1")))
    state = execution.steps["Prep"]
    assert state.status == "Failed"
    record = state.properties[environments.PROPERTY]  # a failed step reports its drift too
    assert record["Environment"] == "sagelab" and "pandas" in record["Drift"] and "scikit-learn" in record["Drift"]


def test_a_script_using_sklearn_1_0_apis_trains_on_the_1_0_1_image(project: Path) -> None:
    code = ("from sklearn.linear_model import SGDClassifier\nimport numpy as np\n"
            "model = SGDClassifier(loss='log', max_iter=5).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])\n"
            "print('trained', type(model).__name__)\n")  # fmt: skip
    execution, logs = run(engine(project), on_image(processing_step("Train", code), SKLEARN.format("1.0-1")))
    assert execution.status == "Succeeded", (execution.steps["Train"].failure_reason, logs["Train"][-3000:])
    assert "trained SGDClassifier" in logs["Train"]  # scikit-learn 1.3 removed loss='log'


def test_requirements_of_the_images_era_install_over_its_packages(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FrameworkProcessor's requirements.txt pins an add-on release made for the image's scikit-learn."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "sagelab-addon", "0.9", "sagelab_addon", requires=("scikit-learn>=1.0,<1.2",))
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    lab = engine(project)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        text = b"sagelab-addon==0.9\n"
        info = tarfile.TarInfo("requirements.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    lab.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", archive.getvalue())
    code = "import sagelab_addon, sklearn\nprint('addon', sagelab_addon.__version__, 'sklearn', sklearn.__version__)\n"
    step = on_image(processing_step("Prep", code, inputs={"code": "s3://test-bucket/code/sourcedir.tar.gz"}), SKLEARN.format("1.0-1"))
    execution, logs = run(lab, step)
    assert execution.status == "Succeeded", (execution.steps["Prep"].failure_reason, logs["Prep"][-3000:])
    assert "addon 0.9 sklearn 1.1.3" in logs["Prep"]


def test_a_scripts_own_pip_install_goes_into_its_job_only(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "sagelab-extra", "1.0", "sagelab_extra")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    installs = ("import subprocess, sys\n"
                "subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', 'sagelab-extra'], check=True)\n"
                "import sagelab_extra, pandas\nprint('extra at', sagelab_extra.__file__, 'pandas', pandas.__version__)\n")  # fmt: skip
    looks = "import importlib.util\nprint('extra visible:', importlib.util.find_spec('sagelab_extra') is not None)\n"
    first = on_image(processing_step("Install", installs), SKLEARN.format("1.2-1"))
    second = on_image(processing_step("Look", looks, DependsOn=["Install"]), SKLEARN.format("1.2-1"))
    execution, logs = run(engine(project), first, second)
    assert execution.status == "Succeeded", ([s.failure_reason for s in execution.steps.values()], logs)
    job = execution.steps["Install"].job_name
    assert f"jobs/{job}.python/lib/" in logs["Install"] and "pandas 1.5.3" in logs["Install"]
    assert "extra visible: False" in logs["Look"]  # neither the shared environment nor sagelab's own got it
    assert not [path for env in environments.cached() for path in env.path.joinpath("lib").rglob("sagelab_extra")]


PICKLED = ("0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2")  # the versions whose xgboost-model is a pickled Booster
READ = """
import pickle, tarfile, sys, numpy, xgboost
tarfile.open('/opt/ml/processing/input/model/model.tar.gz').extractall('.')
if sys.argv[1] == 'pickle':
    booster = pickle.load(open('xgboost-model', 'rb'))
else:
    booster = xgboost.Booster()
    booster.load_model('xgboost-model')
print('xgboost', xgboost.__version__, 'read', sys.argv[1], 'predicts', len(booster.predict(xgboost.DMatrix(numpy.array([[1.0, 2.0]])))))
"""


@pytest.mark.parametrize("version", ["0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5"])
def test_every_builtin_xgboost_version_trains_with_its_images_xgboost_and_its_scripts_read_the_model(project: Path, version: str) -> None:
    lab = engine(project)
    rows = "\n".join(f"{i % 7 + 0.5},{i % 3},{(i * 7) % 5}" for i in range(60))
    lab.store.put_bytes("s3://test-bucket/data/train/train.csv", rows.encode())
    lab.store.put_bytes("s3://test-bucket/data/validation/validation.csv", rows.encode())
    train = builtin_training(version, {"train": "s3://test-bucket/data/train", "validation": "s3://test-bucket/data/validation"},
                             {"objective": "reg:squarederror", "num_round": "3", "early_stopping_rounds": "2", "eval_metric": "rmse"})  # fmt: skip
    read = processing_step("Read", "", inputs={"model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}})
    how = "pickle" if version in PICKLED else "load_model"
    read["Arguments"]["AppSpecification"] = {"ImageUri": {"Get": "Steps.Train.AlgorithmSpecification.TrainingImage"},
                                             "ContainerEntrypoint": [*python_code(READ), how]}  # fmt: skip
    execution, logs = run(lab, train, read)
    assert execution.status == "Succeeded", ([s.failure_reason for s in execution.steps.values()], logs)
    shipped = environments.manifest.shipped(images.identify(XGBOOST.format(version)))["xgboost"]
    ran = execution.steps["Train"].properties[environments.PROPERTY]["Packages"]["xgboost"]["Step"]
    assert ran == shipped and f"xgboost {ran} read {how} predicts 1" in logs["Read"]  # the image's own release on Linux x86_64


def builtin_training(version: str, channels: dict[str, str], hyperparameters: dict[str, str]) -> dict[str, Any]:
    """A Training step running the built-in XGBoost algorithm of `version` on text/csv channels."""
    return {
        "Name": "Train", "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": XGBOOST.format(version), "TrainingInputMode": "File"},
            "HyperParameters": hyperparameters,
            "InputDataConfig": [{"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}} for name, uri in channels.items()],
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "RoleArn": "arn:aws:iam::000000000000:role/R", "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }  # fmt: skip


def test_builtin_xgboost_1_0_1_writes_a_model_its_images_scripts_read(project: Path) -> None:
    """The abalone template: the built-in algorithm trains with the image's xgboost 1.0, and the evaluation
    (a ScriptProcessor on the training image) unpickles the Booster with it, as on SageMaker."""
    lab = engine(project)
    rows = "\n".join(f"{i % 7 + 0.5},{i % 3},{(i * 7) % 5}" for i in range(60))
    lab.store.put_bytes("s3://test-bucket/data/train/train.csv", rows.encode())
    train = {
        "Name": "Train", "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": XGBOOST.format("1.0-1-cpu-py3"), "TrainingInputMode": "File"},
            "HyperParameters": {"objective": "reg:linear", "num_round": "5"},
            "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://test-bucket/data/train", "S3DataDistributionType": "FullyReplicated"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "RoleArn": "arn:aws:iam::000000000000:role/R", "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }  # fmt: skip
    evaluate = processing_step(
        "Evaluate",
        "import pickle, tarfile, xgboost\n"
        "tarfile.open('/opt/ml/processing/input/model/model.tar.gz').extractall('.')\n"
        "booster = pickle.load(open('xgboost-model', 'rb'))\n"
        "print('xgboost', xgboost.__version__, 'loaded', type(booster).__name__)\n",
        inputs={"model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}},
    )
    evaluate["Arguments"]["AppSpecification"]["ImageUri"] = {"Get": "Steps.Train.AlgorithmSpecification.TrainingImage"}
    execution, logs = run(lab, train, evaluate)
    assert execution.status == "Succeeded", ([s.failure_reason for s in execution.steps.values()], logs)
    assert "xgboost 1.0.0 loaded Booster" in logs["Evaluate"]
    assert execution.steps["Train"].properties[environments.PROPERTY]["Packages"]["xgboost"] == {"Image": "1.0.0", "Step": "1.0.0"}


def test_an_image_sagelab_has_no_list_for_runs_on_sagelabs_packages_with_a_warning(project: Path) -> None:
    write(project / "pipe.json", definition(processing_step("Prep", "print('ran')")))
    result = subprocess.run([SAGELAB, "run", "pipe.json"], cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Prep: sagelab's environment — runs on sagelab's own packages: the image is not one sagelab knows" in result.stdout


def test_without_the_network_an_environment_not_built_fails_in_one_line(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    execution, _ = run(engine(project), on_image(processing_step("Prep", "print('never')"), SKLEARN.format("1.2-1")))
    reason = execution.steps["Prep"].failure_reason
    assert execution.status == "Failed" and "\n" not in reason, reason
    assert reason.startswith("the environment of sagemaker-scikit-learn:1.2-1: not built yet, and the package index cannot be reached")
    assert "sagelab envs prepare PIPELINE" in reason and 'environment = "host"' in reason
    assert not list((tmp_path / "cache" / "sagelab" / "envs").glob("*-*"))  # no half-built environment left


def test_envs_prepare_builds_each_image_of_a_pipeline_once(project: Path) -> None:
    steps = [on_image(processing_step(name, "print(1)"), SKLEARN.format("1.2-1")) for name in ("A", "B")]
    steps.append(processing_step("C", "print(1)"))
    write(project / "pipe.json", definition(*steps))
    result = subprocess.run([SAGELAB, "envs", "prepare", "pipe.json"], cwd=project, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{SKLEARN.format('1.2-1')} (A, B): the image's environment " in result.stdout
    assert "local/python:3 (C): runs on sagelab's own packages: the image is not one sagelab knows" in result.stdout
    listing = subprocess.run([SAGELAB, "envs"], cwd=project, capture_output=True, text=True, timeout=60, check=False,
                             env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert "sagemaker-scikit-learn:1.2-1" in listing.stdout


def test_the_manifest_names_its_sources_and_covers_every_supported_python() -> None:
    document = json.loads((Path(environments.__file__).parent / "images.json").read_text())
    for family, versions in document["images"].items():
        for version, entry in versions.items():
            assert entry["source"].startswith("aws/"), (family, version)
            assert set(entry["installable"]) == {"3.10", "3.11", "3.12", "3.13"}, (family, version, entry["notes"])
            for python, by_platform in entry["installable"].items():  # Linux x86_64 at least; aarch64 and macOS where wheels exist
                assert by_platform.get("linux-x86_64", {}).get(entry["framework"]), (family, version, python, entry["notes"])


def test_env_host_on_the_command_line_runs_on_sagelabs_packages(project: Path) -> None:
    write(project / "pipe.json", definition(on_image(processing_step("Prep", "print('ran')"), SKLEARN.format("1.2-1"))))
    host = subprocess.run([SAGELAB, "run", "pipe.json", "--env", "host"], cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert host.returncode == 0, host.stdout + host.stderr
    assert "  Prep: sagelab's environment: scikit-learn" in host.stdout
    wrong = subprocess.run([SAGELAB, "run", "pipe.json", "--env", "docker"], cwd=project, capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 1 and "--env must be image" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_long_download_reports_progress_in_the_step_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uv says nothing while it fetches when not on a terminal; sagelab adds a line every few seconds."""
    from sagelab.containers.environments import uv

    class Log:
        log_path = tmp_path / "step.log"

        def log(self, message: str) -> None:
            with open(self.log_path, "a") as log:
                log.write(f"[sagelab] {message}\n")

    monkeypatch.setattr(uv._Progress, "EVERY", 0.1)
    fake_uv = "import time; print('Resolved 29 packages in 1s', flush=True); time.sleep(0.5); print('Prepared 29 packages in 0.5s')"
    code, _ = uv._run(Log(), [sys.executable, "-c", fake_uv], tmp_path)
    lines = Log.log_path.read_text().splitlines()
    ticks = [line for line in lines if "uv is fetching what its cache lacks of 29 packages" in line]
    assert code == 0 and len(ticks) >= 2, lines
    assert lines.index(ticks[-1]) < lines.index("Prepared 29 packages in 0.5s")
    # Read from /proc while uv runs; a tick racing uv's exit (under load) may miss it, so any tick will do.
    assert any("MB received" in tick for tick in ticks) or sys.platform != "linux"
