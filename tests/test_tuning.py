"""Tuning steps (CreateHyperParameterTuningJob) run locally: real training subprocesses, real store.

The script-mode jobs run tests/fixtures/sdk/scripts/tune.py, whose loss is a known function of
its hyperparameters, so every reported objective value and the ranking can be checked. Requests
are shaped as the v2 SDK's TuningStep writes them (JSON-encoded framework hyperparameters,
HyperParameterTuningResourceConfig, `get_top_model_s3_uri`'s Std:Join).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import definition, surviving_processes, write
from sagelab.config import load_settings
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine
from sagelab.engines.local.training import TrainingRunner
from sagelab.engines.local.tuning_search import Range
from sagelab.errors import ExecutionError

SCRIPT = Path(__file__).parent / "fixtures" / "sdk" / "scripts" / "tune.py"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TENSORFLOW = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.13.0-cpu-py310"
ROLE = "arn:aws:iam::000000000000:role/R"
CODE = "s3://test-bucket/code/tune.tar.gz"
LOSS = {"Name": "loss", "Regex": "loss=([0-9.]+)"}
OPTIMIZERS = {"adam": 0.0, "rmsprop": 0.25, "sgd": 0.5, "quiet": 0.0}


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    engine = LocalEngine(load_settings(project))
    engine.store.put_bytes(CODE, code_tarball())
    return engine


def code_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(SCRIPT, arcname="tune.py")
    return buffer.getvalue()


def loss(tuned: dict[str, str], static: dict[str, str] | None = None) -> float:
    """What tune.py prints for these hyperparameters (values JSON-decoded as the training toolkit does)."""
    values = {k: json.loads(v) if v.startswith('"') else v for k, v in {**(static or {}), **tuned}.items()}
    lr, depth, optimizer = float(values.get("lr", 0.01)), int(values.get("depth", 4)), values.get("optimizer", "adam")
    return (math.log10(lr) + 2) ** 2 + (depth - 4) ** 2 / 10 + OPTIMIZERS[optimizer]


def continuous(name: str, low: float, high: float, scaling: str = "Auto") -> dict[str, str]:
    return {"Name": name, "MinValue": str(low), "MaxValue": str(high), "ScalingType": scaling}


def integer(name: str, low: int, high: int, scaling: str = "Auto") -> dict[str, str]:
    return {"Name": name, "MinValue": str(low), "MaxValue": str(high), "ScalingType": scaling}


def categorical(name: str, *values: str) -> dict[str, Any]:
    return {"Name": name, "Values": list(values)}


def tuning_step(strategy: str, ranges: dict[str, Any], *, jobs: int | None = None, parallel: int = 1, seed: int | None = None,
                static: dict[str, str] | None = None, metric: str = "loss") -> dict[str, Any]:  # fmt: skip
    limits = {"MaxParallelTrainingJobs": parallel, **({"MaxNumberOfTrainingJobs": jobs} if jobs else {})}
    config = {"Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": metric},
              "ResourceLimits": limits, "ParameterRanges": ranges, "TrainingJobEarlyStoppingType": "Off",
              **({"RandomSeed": seed} if seed is not None else {})}  # fmt: skip
    return {
        "Name": "Tune",
        "Type": "Tuning",
        "Arguments": {
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"TrainingImage": SKLEARN, "TrainingInputMode": "File", "MetricDefinitions": [LOSS]},
                # The v2 SDK JSON-encodes a framework estimator's hyperparameters.
                "StaticHyperParameters": {"sagemaker_program": '"tune.py"', "sagemaker_submit_directory": json.dumps(CODE), **(static or {})},
                "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/tuning"},
                "HyperParameterTuningResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                "RoleArn": ROLE,
                "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            },
        },
    }


def top_model_step(image: str = SKLEARN, prefix: str = "tuning") -> dict[str, Any]:
    """A Model step fed by TuningStep.get_top_model_s3_uri(0, "test-bucket", prefix), as the SDK writes it."""
    join = {"Std:Join": {"On": "/", "Values": ["s3:/", "test-bucket", prefix, {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                                                "output/model.tar.gz"]}}  # fmt: skip
    return {"Name": "BestModel", "Type": "Model",
            "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": image, "ModelDataUrl": join}}}  # fmt: skip


def run(engine: LocalEngine, *steps: dict[str, Any]) -> Any:
    return engine.start(parse(definition(*steps)), "tuning")


def tuned_values(properties: dict[str, Any]) -> list[float]:
    return [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in properties["TrainingJobSummaries"]]


def test_random_search_ranks_its_training_jobs_and_the_top_model_uri_resolves(engine: LocalEngine) -> None:
    ranges = {"ContinuousParameterRanges": [continuous("lr", 0.0001, 1, "Logarithmic")], "IntegerParameterRanges": [integer("depth", 1, 8)],
              "CategoricalParameterRanges": [categorical("optimizer", "adam", "sgd")]}  # fmt: skip
    execution = run(engine, tuning_step("Random", ranges, jobs=6, parallel=2, seed=3), top_model_step())
    tune = execution.steps["Tune"]
    log = Path(tune.log_path).read_text()
    assert execution.status == "Succeeded", (tune.failure_reason, log)
    properties = tune.properties
    name = properties["HyperParameterTuningJobName"]
    assert len(name) <= 32 and properties["HyperParameterTuningJobStatus"] == "Completed"
    assert properties["HyperParameterTuningJobArn"] == f"arn:aws:sagemaker:us-east-1:000000000000:hyper-parameter-tuning-job/{name.lower()}"
    summaries = properties["TrainingJobSummaries"]
    assert len(summaries) == 6 and tuned_values(properties) == sorted(tuned_values(properties))
    assert properties["BestTrainingJob"] == summaries[0]
    for summary in summaries:
        tuned = summary["TunedHyperParameters"]
        assert set(tuned) == {"lr", "depth", "optimizer"} and all(isinstance(v, str) for v in tuned.values())
        assert 0.0001 <= float(tuned["lr"]) <= 1 and tuned["depth"] in {str(d) for d in range(1, 9)} and tuned["optimizer"] in ("adam", "sgd")
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"] == {"Type": "Minimize", "MetricName": "loss", "Value": pytest.approx(loss(tuned), abs=1e-5)}
        assert re.fullmatch(rf"{name}-\d{{3}}-[0-9a-f]{{8}}", summary["TrainingJobName"]), summary["TrainingJobName"]
        assert summary["TrainingJobStatus"] == "Completed" and summary["ObjectiveStatus"] == "Succeeded" and summary["TuningJobName"] == name
    assert len({s["TrainingJobName"] for s in summaries}) == 6
    assert properties["TrainingJobStatusCounters"] == {"Completed": 6, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    assert properties["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    # get_top_model_s3_uri's Join names the best job's model, which its training job wrote there.
    best = summaries[0]
    uri = f"s3://test-bucket/tuning/{best['TrainingJobName']}/output/model.tar.gz"
    assert execution.steps["BestModel"].properties["PrimaryContainer"]["ModelDataUrl"] == uri
    with tarfile.open(fileobj=io.BytesIO(engine.store.get_bytes(uri))) as archive:
        model = json.load(archive.extractfile("model.json"))  # type: ignore[arg-type]
    assert (model["optimizer"], str(model["depth"])) == (best["TunedHyperParameters"]["optimizer"], best["TunedHyperParameters"]["depth"])
    assert uri in tune.outputs and len(tune.outputs) == 6
    # One line per training job in the step log; each job's own log is kept in the tuning step's folder.
    assert "2 at a time" in log and len([line for line in log.splitlines() if " -> loss=" in line]) == 6
    logs = sorted((engine.settings.state_dir / "jobs" / tune.job_name / "logs").glob("*.log"))
    assert [p.stem for p in logs] == sorted(s["TrainingJobName"] for s in summaries)
    assert all("epoch 2: loss=" in p.read_text() for p in logs)


def test_grid_runs_every_combination_of_the_categorical_values(engine: LocalEngine) -> None:
    # The v2 SDK JSON-encodes a framework estimator's categorical values; the job gets them decoded.
    optimizers, depths = ['"adam"', '"sgd"', '"rmsprop"'], ['"2"', '"4"']
    ranges = {"CategoricalParameterRanges": [categorical("optimizer", *optimizers), categorical("depth", *depths)]}
    execution = run(engine, tuning_step("Grid", ranges, parallel=2))  # Grid needs no MaxNumberOfTrainingJobs
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", tune.failure_reason
    summaries = tune.properties["TrainingJobSummaries"]
    tried = sorted((s["TunedHyperParameters"]["optimizer"], s["TunedHyperParameters"]["depth"]) for s in summaries)
    assert tried == sorted(itertools.product(optimizers, depths))
    assert summaries[0]["TunedHyperParameters"] == {"optimizer": '"adam"', "depth": '"4"'}
    assert summaries[0]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.0


def test_bayesian_search_with_optuna_closes_in_on_the_best_value(engine: LocalEngine) -> None:
    ranges = {"ContinuousParameterRanges": [continuous("lr", 0.00001, 1, "Logarithmic")]}
    execution = run(engine, tuning_step("Bayesian", ranges, jobs=12, parallel=1, seed=11, static={"optimizer": '"adam"'}))
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", tune.failure_reason
    best = tune.properties["BestTrainingJob"]
    # Over five decades, lr = 0.01 is the best; within 0.2 of a decade of it the loss is under 0.04.
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] < 0.04, tune.properties["TrainingJobSummaries"]
    assert len(tune.properties["TrainingJobSummaries"]) == 12


def test_tuning_the_builtin_xgboost_feeds_a_model_step_through_the_top_model_uri(engine: LocalEngine) -> None:
    pytest.importorskip("xgboost")
    rng = np.random.default_rng(5)
    for channel, count in (("train", 300), ("validation", 100)):
        features = rng.uniform(0, 1, (count, 4))
        label = 3 * features[:, 0] + np.sin(6 * features[:, 1]) + rng.normal(0, 0.1, count)
        buffer = io.StringIO()
        np.savetxt(buffer, np.column_stack([label, features]), delimiter=",", fmt="%.5f")
        engine.store.put_bytes(f"s3://test-bucket/data/{channel}/{channel}.csv", buffer.getvalue().encode())
    config = {"Strategy": "Bayesian", "HyperParameterTuningJobObjective": {"MetricName": "validation:rmse", "Type": "Minimize"},
              "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}, "RandomSeed": 7,
              "ParameterRanges": {"CategoricalParameterRanges": [], "ContinuousParameterRanges": [continuous("eta", 0.05, 0.5, "Logarithmic")],
                                  "IntegerParameterRanges": [integer("max_depth", 2, 6)]},
              "TrainingJobEarlyStoppingType": "Off"}  # fmt: skip
    training = {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        "HyperParameterTuningResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
        "InputDataConfig": [{"ChannelName": channel, "ContentType": "text/csv",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://test-bucket/data/{channel}"}}}
                            for channel in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/xgb"},
        "RoleArn": ROLE,
        "StaticHyperParameters": {"eval_metric": "rmse", "num_round": "20", "objective": "reg:squarederror"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }  # fmt: skip
    tune = {"Name": "Tune", "Type": "Tuning", "Arguments": {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": training}}
    execution = run(engine, tune, top_model_step(XGBOOST, "xgb"))
    state = execution.steps["Tune"]
    assert execution.status == "Succeeded", (state.failure_reason, Path(state.log_path).read_text())
    summaries = state.properties["TrainingJobSummaries"]
    assert len(summaries) == 4 and tuned_values(state.properties) == sorted(tuned_values(state.properties))
    assert summaries[0]["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:rmse"
    uri = f"s3://test-bucket/xgb/{summaries[0]['TrainingJobName']}/output/model.tar.gz"
    assert execution.steps["BestModel"].properties["PrimaryContainer"]["ModelDataUrl"] == uri
    with tarfile.open(fileobj=io.BytesIO(engine.store.get_bytes(uri))) as archive:
        assert archive.getnames() == ["xgboost-model"]
    # Each training job got the static and tuned hyperparameters as strings, and the objective, as SageMaker sends them.
    folder = engine.settings.state_dir / "jobs" / state.job_name / "training-jobs" / summaries[0]["TrainingJobName"]
    sent = json.loads((folder / "input" / "config" / "hyperparameters.json").read_text())
    assert sent == {**training["StaticHyperParameters"], **summaries[0]["TunedHyperParameters"], "_tuning_objective_metric": "validation:rmse"}
    assert 0.05 <= float(sent["eta"]) <= 0.5 and sent["max_depth"] in {"2", "3", "4", "5", "6"}


SEEN = """
import argparse, json, os, sys

parser = argparse.ArgumentParser()
parser.add_argument("--model_dir", type=str)
parser.add_argument("--depth", type=int)
args = parser.parse_args()  # strict: an argument the training toolkit would not pass fails the job
seen = {"model_dir": args.model_dir, "argv": sys.argv[1:], "hps": json.loads(os.environ["SM_HPS"]),
        "hp_variables": sorted(k for k in os.environ if k.startswith("SM_HP_")),
        "sent": json.load(open("/opt/ml/input/config/hyperparameters.json"))}
json.dump(seen, open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w"))
print(f"loss={args.depth}")
"""


@pytest.mark.parametrize("image", [TENSORFLOW, SKLEARN], ids=["tensorflow", "sklearn"])
def test_every_training_job_gets_the_objective_and_a_script_never_sees_it(engine: LocalEngine, image: str) -> None:
    """SageMaker adds _tuning_objective_metric to each job; the toolkit hides it, and TensorFlow's gives each its own model_dir."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("seen.py")
        info.size = len(SEEN.encode())
        archive.addfile(info, io.BytesIO(SEEN.encode()))
    engine.store.put_bytes("s3://test-bucket/code/seen.tar.gz", buffer.getvalue())
    static = {"sagemaker_program": '"seen.py"', "sagemaker_submit_directory": '"s3://test-bucket/code/seen.tar.gz"',
              "model_dir": '"s3://test-bucket/tf/model"'}  # fmt: skip
    step = tuning_step("Grid", {"CategoricalParameterRanges": [categorical("depth", "1", "2", "3", "4")]}, parallel=2, static=static)
    step["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] = image
    execution = run(engine, step)
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", (tune.failure_reason, Path(tune.log_path).read_text())
    summaries = tune.properties["TrainingJobSummaries"]
    assert "2 at a time" in Path(tune.log_path).read_text() and len(summaries) == 4
    model_dirs = set()
    for summary in summaries:
        name = summary["TrainingJobName"]
        with tarfile.open(fileobj=io.BytesIO(engine.store.get_bytes(f"s3://test-bucket/tuning/{name}/output/model.tar.gz"))) as archive:
            seen = json.load(archive.extractfile("seen.json"))  # type: ignore[arg-type]
        assert seen["sent"]["_tuning_objective_metric"] == "loss"  # in hyperparameters.json, as SageMaker writes it
        assert not any("_tuning_objective_metric" in arg for arg in seen["argv"]), seen["argv"]
        assert "_tuning_objective_metric" not in seen["hps"] and seen["hp_variables"] == ["SM_HP_DEPTH", "SM_HP_MODEL_DIR"]
        # TensorFlow's toolkit appends /<job>/model to a trial's model_dir; other images pass it unchanged.
        expected = f"s3://test-bucket/tf/model/{name}/model" if image == TENSORFLOW else "s3://test-bucket/tf/model"
        assert seen["model_dir"] == seen["hps"]["model_dir"] == expected
        model_dirs.add(seen["model_dir"])
    assert len(model_dirs) == (4 if image == TENSORFLOW else 1)


def test_a_training_job_whose_setup_fails_is_a_failed_job(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    install = TrainingRunner._install_code

    def broken(runner: TrainingRunner, job: Any, submit_directory: Any) -> None:
        if job.arguments["HyperParameters"].get("optimizer") == "broken":
            raise ExecutionError("the job's environment could not be built")
        install(runner, job, submit_directory)

    monkeypatch.setattr(TrainingRunner, "_install_code", broken)
    execution = run(engine, tuning_step("Grid", {"CategoricalParameterRanges": [categorical("optimizer", "adam", "broken")]}, parallel=2))
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", tune.failure_reason
    assert tune.properties["TrainingJobStatusCounters"] == {"Completed": 1, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 0}
    assert "optimizer=broken -> Failed: the job's environment could not be built" in Path(tune.log_path).read_text()


def test_a_sagelab_bug_in_one_training_job_stops_the_others(engine: LocalEngine, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = project / "training-started"
    install = TrainingRunner._install_code

    def buggy(runner: TrainingRunner, job: Any, submit_directory: Any) -> None:
        if job.arguments["HyperParameters"].get("optimizer") == "bug":
            deadline = time.time() + 60
            while not marker.exists() and time.time() < deadline:  # the other job's process is running
                time.sleep(0.05)
            raise RuntimeError("a bug in sagelab")
        install(runner, job, submit_directory)

    monkeypatch.setattr(TrainingRunner, "_install_code", buggy)
    step = tuning_step("Grid", {"CategoricalParameterRanges": [categorical("optimizer", "sleep", "bug")]}, parallel=2,
                       static={"marker": str(marker)})  # fmt: skip
    started = time.time()
    execution = run(engine, step)  # the bug fails its step, not the engine; its traceback is in the step's log
    [state] = execution.steps.values()
    reason = state.failure_reason or ""
    assert execution.status == "Failed" and "RuntimeError: a bug in sagelab" in reason and "report a sagelab bug" in reason
    assert marker.exists() and time.time() - started < 30  # the sleeping job (a minute) was stopped, not waited for
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if _holds(p, str(marker))]


def _holds(cmdline: Path, text: str) -> bool:
    try:
        return text.encode() in cmdline.read_bytes()
    except OSError:
        return False


def test_failed_training_jobs_are_counted_and_the_tuning_goes_on(engine: LocalEngine) -> None:
    ranges = {"CategoricalParameterRanges": [categorical("optimizer", "adam", "crash", "quiet")]}
    execution = run(engine, tuning_step("Grid", ranges))
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", tune.failure_reason
    properties = tune.properties
    assert properties["TrainingJobStatusCounters"] == {"Completed": 2, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 0}
    assert properties["ObjectiveStatusCounters"] == {"Succeeded": 1, "Pending": 0, "Failed": 2}
    # Only jobs with an objective value are ranked, as ListTrainingJobsForHyperParameterTuningJob sorted by it lists them.
    assert [s["TunedHyperParameters"] for s in properties["TrainingJobSummaries"]] == [{"optimizer": "adam"}]
    log = Path(tune.log_path).read_text()
    assert "optimizer=crash -> Failed: AlgorithmError: ExecuteUserScriptError: tune.py exited with code 1. Last log line: crashed on purpose" in log
    assert "optimizer=quiet -> Completed, but loss is not in its log" in log


def test_training_job_definitions_take_turns_and_hyperband_runs_as_random_search(engine: LocalEngine) -> None:
    step = tuning_step("Hyperband", {}, jobs=4, parallel=2, seed=1)
    arguments = step["Arguments"]
    single, config = arguments.pop("TrainingJobDefinition"), arguments["HyperParameterTuningJobConfig"]
    del config["HyperParameterTuningJobObjective"], config["ParameterRanges"]
    objective = {"Type": "Minimize", "MetricName": "loss"}
    arguments["TrainingJobDefinitions"] = [
        {**single, "DefinitionName": "fast", "TuningObjective": objective,
         "HyperParameterRanges": {"CategoricalParameterRanges": [categorical("optimizer", "sgd")], "IntegerParameterRanges": [integer("depth", 3, 5)]}},
        {**single, "DefinitionName": "careful", "TuningObjective": objective,
         "HyperParameterRanges": {"CategoricalParameterRanges": [categorical("optimizer", "adam")]}},
    ]  # fmt: skip
    execution = run(engine, step)
    tune = execution.steps["Tune"]
    assert execution.status == "Succeeded", tune.failure_reason
    summaries = tune.properties["TrainingJobSummaries"]
    assert sorted(s["TrainingJobDefinitionName"] for s in summaries) == ["careful", "careful", "fast", "fast"]
    assert summaries[0]["TrainingJobDefinitionName"] == "careful" and summaries[0]["TunedHyperParameters"] == {"optimizer": "adam"}
    assert all(3 <= int(s["TunedHyperParameters"]["depth"]) <= 5 for s in summaries if s["TrainingJobDefinitionName"] == "fast")
    assert "Strategy Hyperband runs as Random search here" in Path(tune.log_path).read_text()


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (tuning_step("Grid", {"ContinuousParameterRanges": [continuous("lr", 0.001, 0.1)]}),
         "Strategy Grid searches categorical ranges only, as on SageMaker, and lr (Continuous) is not"),
        (tuning_step("Random", {"ContinuousParameterRanges": [continuous("lr", 0, 0.1, "Logarithmic")]}, jobs=2),
         "ParameterRanges.ContinuousParameterRanges[0] (lr): Logarithmic scaling needs a MinValue above 0, not 0"),
        (tuning_step("Random", {"CategoricalParameterRanges": [categorical("optimizer", "adam")]}, jobs=2, metric="accuracy"),
         "the objective metric accuracy is not one of the training job's metrics (loss)"),
        (tuning_step("Random", {"CategoricalParameterRanges": [categorical("optimizer", "quiet")]}, jobs=2),
         "no training job reported the objective metric loss: 2 of 2 completed, and the regex 'loss=([0-9.]+)'"),
        # SageMaker gives up once the first five training jobs have failed.
        (tuning_step("Random", {"CategoricalParameterRanges": [categorical("optimizer", "crash")]}, jobs=8),
         "No training job succeeded after 5 attempts"),
    ],
    ids=["grid-with-a-continuous-range", "log-scale-from-zero", "objective-not-a-metric", "objective-not-in-the-logs", "all-fail"],
)
def test_a_tuning_that_cannot_work_fails_its_step_saying_why(engine: LocalEngine, step: dict[str, Any], reason: str) -> None:
    execution = run(engine, step, top_model_step())
    tune = execution.steps["Tune"]
    assert execution.status == "Failed" and tune.status == "Failed"
    assert reason in (tune.failure_reason or ""), tune.failure_reason
    assert "Traceback" not in (tune.failure_reason or "")
    assert execution.steps["BestModel"].status == "NotStarted"


def test_stopping_the_execution_stops_the_running_training_jobs(project: Path) -> None:
    LocalEngine(load_settings(project)).store.put_bytes(CODE, code_tarball())
    marker = project / "training-started"
    step = tuning_step("Random", {"CategoricalParameterRanges": [categorical("optimizer", "sleep")]}, jobs=4, parallel=2,
                       static={"marker": str(marker)})  # fmt: skip
    write(project / "pipe.json", definition(step))
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    process = subprocess.Popen([str(Path(sys.executable).parent / "sagelab"), "run", "pipe.json"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60
    while not marker.exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Stopped" in stdout and "Traceback" not in stderr, stdout + stderr
    assert surviving_processes(marker) == []  # no training job outlived the stop


def test_scaling_types_shape_the_draws() -> None:
    rng = random.Random(0)

    def share_below(values: Range, bound: float) -> float:
        return sum(float(values.sample(rng)) < bound for _ in range(2000)) / 2000

    # A logarithmic range gives each decade the same share; a linear one gives 1e-4..1e-3 a thousandth.
    assert share_below(Range("lr", "Continuous", 0.0001, 1, "Logarithmic"), 0.001) == pytest.approx(0.25, abs=0.05)
    assert share_below(Range("lr", "Continuous", 0.0001, 1, "Linear"), 0.001) < 0.01
    # Reverse-logarithmic crowds the draws towards 1: 0.9..0.99 is a third of them, not nine tenths.
    assert share_below(Range("beta", "Continuous", 0.9, 0.9999, "ReverseLogarithmic"), 0.99) == pytest.approx(1 / 3, abs=0.05)
    depth = Range("trees", "Integer", 1, 1000, "Logarithmic")
    draws = [depth.sample(rng) for _ in range(2000)]
    assert all(d.isdigit() and 1 <= int(d) <= 1000 for d in draws) and sum(int(d) <= 10 for d in draws) > 600
    # Through optuna, a reverse-logarithmic range is searched as 1 - x on a log scale.
    beta = Range("beta", "Continuous", 0.9, 0.9999, "ReverseLogarithmic")
    assert (beta.distribution().low, beta.distribution().high) == (pytest.approx(0.0001), pytest.approx(0.1))
    assert beta.from_optuna(0.01) == "0.99"


def test_content_caching_knows_a_tuning_jobs_code_and_data(engine: LocalEngine) -> None:
    """With --cache content, a tuning job is reused until its training code (or data) changes."""
    step = tuning_step("Grid", {"CategoricalParameterRanges": [categorical("optimizer", "adam", "sgd")]})
    document = parse(definition(step))
    first = engine.start(document, "tuning", cache="content")
    again = engine.start(document, "tuning", cache="content")
    assert first.status == again.status == "Succeeded"
    assert "cached" in again.steps["Tune"].note
    changed = io.BytesIO()
    with tarfile.open(fileobj=changed, mode="w:gz") as archive:
        archive.add(SCRIPT, arcname="tune.py")
        archive.addfile(tarfile.TarInfo("NOTES.txt"))
    engine.store.put_bytes(CODE, changed.getvalue())
    rerun = engine.start(document, "tuning", cache="content")
    assert rerun.steps["Tune"].note == "ran: its code or input data changed since the last run"
