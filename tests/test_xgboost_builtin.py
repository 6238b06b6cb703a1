"""SageMaker's built-in XGBoost algorithm runs locally, unmodified, as its image does.

End to end through the LocalEngine (real step subprocesses, real store): abalone-shaped
pipelines for 1.0-1 and 1.7-1 whose evaluation scripts load the model the way each version
needs, and the official SDK's abalone definition up to the model registry. The algorithm's
finer behaviour (content types, metric lines, early stopping, artifacts, failures) is checked
by running it in-process on job folders made here. Image URIs come from the SDK's own
`image_uris.retrieve` (tests/fixtures/image_uris.json).
"""

from __future__ import annotations

import doctest
import io
import json
import pickle
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import definition
from sagelab.config import load_settings
from sagelab.containers import images
from sagelab.containers.images import ContainerBehaviour, identify
from sagelab.containers.xgboost.train import main as train_main
from sagelab.containers.xgboost.versions import VERSIONS
from sagelab.definition import parse, parse_file
from sagelab.engines.local import LocalEngine
from sagelab.registry import Registry

xgboost = pytest.importorskip("xgboost")

FIXTURES = Path(__file__).parent / "fixtures"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:{}"
TAGS = {"1.0-1": "1.0-1-cpu-py3", "1.7-1": "1.7-1"}  # as image_uris.retrieve("xgboost", region, version) spells them
ABALONE_HYPERPARAMETERS = {"objective": "reg:linear", "num_round": "50", "max_depth": "5", "eta": "0.2", "gamma": "4",
                           "min_child_weight": "6", "subsample": "0.7"}  # fmt: skip

EVALUATE = '''
import json, pickle, sys, tarfile
import numpy as np
import xgboost

with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
    tar.extractall(path=".")
if sys.argv[1] == "pickle":  # 1.0-1 and earlier pickle the Booster
    model = pickle.load(open("xgboost-model", "rb"))
else:  # 1.3-1 and later save it in XGBoost's own format
    model = xgboost.Booster()
    model.load_model("xgboost-model")
test = np.loadtxt("/opt/ml/processing/test/test.csv", delimiter=",")
predictions = model.predict(xgboost.DMatrix(test[:, 1:]))
errors = test[:, 0] - predictions
report = {"regression_metrics": {"mse": {"value": float(np.mean(errors ** 2)), "standard_deviation": float(np.std(errors))}},
          "label_variance": float(np.var(test[:, 0]))}
json.dump(report, open("/opt/ml/processing/evaluation/evaluation.json", "w"))
'''


def abalone_rows(count: int, seed: int = 7, noise: float = 1.0, scale: float = 12.0) -> np.ndarray:
    """Abalone-shaped rows: rings (the label) first, then seven numeric measurements."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.1, 0.8, count)
    features = np.column_stack([
        length, length * 0.8 + rng.normal(0, 0.02, count), length * 0.25 + rng.normal(0, 0.01, count),
        *(length**3 * k + rng.normal(0, 0.02, count) for k in (2.0, 0.9, 0.45, 0.6)),
    ])  # fmt: skip
    rings = np.round(4 + scale * length + 3 * features[:, 6] + rng.normal(0, noise, count))
    return np.column_stack([rings, features])


def csv_bytes(rows: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.4f")
    return buffer.getvalue().encode()


def training_step(name: str, version: str, hyperparameters: dict[str, str], data: str = "s3://test-bucket/abalone") -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE.format(TAGS.get(version, version)), "TrainingInputMode": "File"},
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {"ChannelName": channel, "ContentType": "text/csv",
                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{data}/{channel}"}}}
                for channel in ("train", "validation")
            ],  # fmt: skip
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def evaluation_step(train: str, loader: str) -> dict[str, Any]:
    def s3_input(name: str, uri: Any, local: str) -> dict[str, Any]:
        return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"}}

    return {
        "Name": "Evaluate",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": IMAGE.format("1.7-1"), "ContainerArguments": [loader],
                                 "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "ProcessingInputs": [
                s3_input("model", {"Get": f"Steps.{train}.ModelArtifacts.S3ModelArtifacts"}, "/opt/ml/processing/model"),
                s3_input("test", "s3://test-bucket/abalone/test", "/opt/ml/processing/test"),
                s3_input("code", "s3://test-bucket/code/evaluate.py", "/opt/ml/processing/input/code"),
            ],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
                "S3Uri": "s3://test-bucket/evaluation", "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
        },
    }  # fmt: skip


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    engine = LocalEngine(load_settings(project))
    rows = abalone_rows(500)
    for name, part in (("train", rows[:300]), ("validation", rows[300:400]), ("test", rows[400:])):
        engine.store.put_bytes(f"s3://test-bucket/abalone/{name}/{name}.csv", csv_bytes(part))
    engine.store.put_bytes("s3://test-bucket/code/evaluate.py", EVALUATE.encode())
    return engine


def last_logged(log: str, name: str) -> float:
    return float(re.findall(rf"\t{name}:([0-9.]+)", log)[-1])


@pytest.mark.parametrize(("version", "loader"), [("1.0-1", "pickle"), ("1.7-1", "load_model")])
def test_abalone_pipeline_trains_and_evaluates(engine: LocalEngine, version: str, loader: str) -> None:
    hyperparameters = dict(ABALONE_HYPERPARAMETERS, **({"silent": "0"} if version == "1.0-1" else {}))
    execution = engine.start(parse(definition(training_step("Train", version, hyperparameters), evaluation_step("Train", loader))), "t")
    train = execution.steps["Train"]
    log = Path(train.log_path).read_text()
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()] + [log[-2000:]]
    assert re.search(r"^\[0\]\ttrain-rmse:[0-9.]+\tvalidation-rmse:[0-9.]+$", log, re.M), log
    assert re.search(r"^\[49\]\t", log, re.M) and not re.search(r"^\[50\]\t", log, re.M)

    metrics = {m["MetricName"]: m["Value"] for m in train.properties["FinalMetricDataList"]}
    assert metrics["validation:rmse"] == last_logged(log, "validation-rmse")
    assert metrics["train:rmse"] == last_logged(log, "train-rmse")
    definitions = {d["Name"]: d["Regex"] for d in train.properties["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "#011validation-rmse:" in definitions["validation:rmse"]  # SageMaker's regex, read as CloudWatch shows tabs

    model = train.properties["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(fileobj=io.BytesIO(engine.store.get_bytes(model))) as archive:
        assert archive.getnames() == ["xgboost-model"]
        artifact = archive.extractfile("xgboost-model").read()  # type: ignore[union-attr]
    assert artifact.startswith(b"\x80") == (version == "1.0-1")  # a pickle, or XGBoost's own format
    report = json.loads(engine.store.get_bytes("s3://test-bucket/evaluation/evaluation.json"))
    assert report["regression_metrics"]["mse"]["value"] < report["label_variance"] / 2, report


def test_bad_hyperparameters_fail_the_step_with_the_algorithms_reason(engine: LocalEngine) -> None:
    silent = training_step("Silent", "1.7-1", dict(ABALONE_HYPERPARAMETERS, silent="0"))  # 1.7-1 has no 'silent'
    no_rounds = training_step("NoRounds", "1.0-1", {k: v for k, v in ABALONE_HYPERPARAMETERS.items() if k != "num_round"})
    execution = engine.start(parse(definition(silent, no_rounds)), "t")
    assert execution.status == "Failed"
    reasons = {name: state.failure_reason for name, state in execution.steps.items()}
    assert reasons["Silent"].startswith("AlgorithmError: Extraneous hyperparameter found: silent"), reasons
    assert reasons["NoRounds"].startswith("AlgorithmError: Missing required hyperparameter: num_round"), reasons
    assert "Extraneous hyperparameter found: silent" in Path(execution.steps["Silent"].log_path).read_text()


def test_images_that_run_no_builtin_training_fail_saying_what_runs(engine: LocalEngine) -> None:
    custom = training_step("Custom", "1.7-1", {"num_round": "5"})
    custom["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-algo:3"
    framework = training_step("Framework", "1.7-1", {"num_round": "5"})
    framework["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3")
    execution = engine.start(parse(definition(custom, framework)), "t")
    reasons = {name: state.failure_reason for name, state in execution.steps.items()}
    assert "my-algo:3 is run without sagemaker_program" in reasons["Custom"]
    assert "sagemaker-xgboost 0.90-1, 0.90-2, 1.0-1" in reasons["Custom"]
    assert "sagemaker-scikit-learn:1.2-1 is a framework image" in reasons["Framework"]
    assert "sagemaker_program" in reasons["Framework"]


def test_the_sdk_abalone_pipeline_runs_to_the_model_registry(project: Path) -> None:
    """tests/fixtures/sdk/v2/abalone.json (SDK v2, XGBoost 1.0-1) unchanged, with abalone-shaped data at InputData."""
    engine = LocalEngine(load_settings(project))
    dump = FIXTURES / "sdk" / "v2" / "abalone.s3"
    for file in (p for p in dump.rglob("*") if p.is_file()):
        engine.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
    document = parse_file(FIXTURES / "sdk" / "v2" / "abalone.json")
    input_data = document.parameters["InputData"].default
    # The fixture's evaluate.py scores the mean ring count (stdlib only), so the rings must vary little to pass MseThreshold 6.
    engine.store.put_bytes(str(input_data), csv_bytes(abalone_rows(400, noise=0.5, scale=4)))
    execution = engine.start(document, "AbalonePipeline")
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    statuses = {name: state.status for name, state in execution.steps.items()}
    assert statuses == {"PreprocessAbaloneData": "Succeeded", "TrainAbaloneModel": "Succeeded", "EvaluateAbaloneModel": "Succeeded",
                        "CheckMSE": "Succeeded", "RegisterAbaloneModel-RegisterModel": "Succeeded", "AbaloneMSEFail": "Skipped"}  # fmt: skip
    train = execution.steps["TrainAbaloneModel"]
    assert "validation:rmse" in {m["MetricName"] for m in train.properties["FinalMetricDataList"]}
    registry = Registry(engine.settings.state_dir / "registry.db", engine.settings.region, engine.settings.account)
    try:
        [package] = registry.list("AbalonePackageGroup")
    finally:
        registry.close()
    assert package.status == "PendingManualApproval"
    assert package.container["ModelDataUrl"] == train.properties["ModelArtifacts"]["S3ModelArtifacts"]


# The algorithm in-process, on job folders made here.


def job(root: Path, hyperparameters: dict[str, str], files: dict[str, bytes] | None = None,
        content_type: str | None = "text/csv", channels: tuple[str, ...] = ("train", "validation")) -> Path:  # fmt: skip
    """A job's /opt/ml with abalone-shaped CSV channels (or `files`, channel/name → bytes)."""
    rows = abalone_rows(300)
    files = files or {"train/train.csv": csv_bytes(rows[:200]), "validation/validation.csv": csv_bytes(rows[200:])}
    for name, content in files.items():
        (root / "input/data" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "input/data" / name).write_bytes(content)
    config = {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None",
                  **({"ContentType": content_type} if content_type else {})} for c in channels}  # fmt: skip
    (root / "input/config").mkdir(parents=True, exist_ok=True)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
    (root / "input/config/inputdataconfig.json").write_text(json.dumps(config))
    return root


def failure(root: Path) -> str:
    return (root / "output/failure").read_text()


@pytest.mark.parametrize(
    ("version", "line"),
    [
        ("0.90-2", r"\[2\]\ttrain-rmse:\d+\.?\d*\tvalidation-rmse:\d+\.?\d*\ttrain-mse:[\d.]+\tvalidation-mse:[\d.]+"),  # %g
        ("1.0-1", r"\[2\]\ttrain-rmse:\d+\.\d{5}\tvalidation-rmse:\d+\.\d{5}\ttrain-mse:\d+\.\d{5}\tvalidation-mse:\d+\.\d{5}"),
        ("1.7-1", r"\[2\]\ttrain-rmsle:\d+\.\d{5}\ttrain-mse:\d+\.\d{5}\tvalidation-rmsle:\d+\.\d{5}\tvalidation-mse:\d+\.\d{5}"),
    ],
)  # fmt: skip
def test_metric_lines_are_printed_as_each_version_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str, line: str) -> None:
    metric = "rmse,mse" if version != "1.7-1" else "rmsle,mse"  # mse is the container's own; from 1.3-1 so is rmse
    assert train_main([version], job(tmp_path, {"num_round": "3", "eval_metric": metric})) == 0
    printed = capsys.readouterr().out
    assert re.search(f"^{line}$", printed, re.M), printed


@pytest.mark.parametrize("version", ["1.0-1", "1.7-1"])
def test_the_containers_own_classification_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str) -> None:
    """accuracy is the container's metric: computed from predictions up to 1.0-1 and from margins after, alike."""
    rng = np.random.default_rng(3)
    features = rng.random((400, 4))
    label = (features[:, 0] + 0.2 * rng.normal(size=400) > 0.5).astype(float)
    rows = np.column_stack([label, features])
    files = {"train/t.csv": csv_bytes(rows[:300]), "validation/v.csv": csv_bytes(rows[300:])}
    assert train_main([version], job(tmp_path, {"num_round": "5", "objective": "binary:logistic", "eval_metric": "accuracy"}, files)) == 0
    accuracy = float(re.findall(r"\tvalidation-accuracy:([0-9.]+)", capsys.readouterr().out)[-1])
    booster = pickle.loads((tmp_path / "model/xgboost-model").read_bytes()) if version == "1.0-1" else xgboost.Booster()
    if version != "1.0-1":
        booster.load_model(bytearray((tmp_path / "model/xgboost-model").read_bytes()))
    expected = np.mean((booster.predict(xgboost.DMatrix(rows[300:, 1:])) > 0.5) == rows[300:, 0])
    assert accuracy == pytest.approx(expected, abs=1e-5) and accuracy > 0.7


def test_early_stopping_keeps_every_round_up_to_1_2_and_the_best_one_from_1_3(tmp_path: Path) -> None:
    rows = abalone_rows(300)
    noisy = {"train/train.csv": csv_bytes(rows[:200]), "validation/validation.csv": csv_bytes(abalone_rows(100, seed=99, noise=4))}
    settings = {"num_round": "200", "eta": "0.9", "max_depth": "8", "early_stopping_rounds": "3", "eval_metric": "rmse"}
    old, new = job(tmp_path / "old", settings, noisy), job(tmp_path / "new", settings, noisy)
    assert train_main(["1.0-1"], old) == 0 and train_main(["1.7-1"], new) == 0
    kept = pickle.loads((old / "model/xgboost-model").read_bytes())
    best = xgboost.Booster()
    best.load_model(bytearray((new / "model/xgboost-model").read_bytes()))
    assert kept.num_boosted_rounds() == int(kept.attr("best_iteration")) + 4  # stopped 3 rounds after the best
    assert best.num_boosted_rounds() == int(best.attr("best_iteration")) + 1  # cut at the best round (save_best)
    assert best.num_boosted_rounds() < 200


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_writes_its_artifact(tmp_path: Path, version: str) -> None:
    assert train_main([version], job(tmp_path, {"num_round": "2"})) == 0
    artifact = (tmp_path / "model/xgboost-model").read_bytes()
    if version in ("0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2"):
        assert isinstance(pickle.loads(artifact), xgboost.Booster)
    else:
        booster = xgboost.Booster()
        booster.load_model(bytearray(artifact))
        assert booster.num_boosted_rounds() == 2
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["xgboost-model"]


def test_libsvm_with_weights_and_csv_weights(tmp_path: Path) -> None:
    libsvm = b"".join(f"{i % 5}:{1 + i % 2} 0:{i / 10} 3:{(i * 7) % 11}\n".encode() for i in range(60))
    assert train_main(["1.7-1"], job(tmp_path / "svm", {"num_round": "2"}, {"train/a.libsvm": libsvm}, "text/libsvm", ("train",))) == 0
    rows = abalone_rows(100)
    weighted = np.column_stack([rows[:, 0], np.ones(100), rows[:, 1:]])
    files = {"train/t.csv": csv_bytes(weighted), "validation/v.csv": csv_bytes(rows)}  # validation is read without weights
    assert train_main(["1.0-1"], job(tmp_path / "w", {"num_round": "2", "csv_weights": "1"}, files)) == 0


def test_parquet_channels(tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    pyarrow = pytest.importorskip("pyarrow")
    rows = abalone_rows(120)
    for name, part in (("train", rows[:80]), ("validation", rows[80:])):
        (tmp_path / "input/data" / name).mkdir(parents=True)
        parquet.write_table(pyarrow.table({f"c{i}": part[:, i] for i in range(part.shape[1])}), tmp_path / "input/data" / name / "part.parquet")
    assert train_main(["1.7-1"], job(tmp_path, {"num_round": "2"}, {"train/.keep": b""}, "application/x-parquet")) != 0  # hidden file
    (tmp_path / "input/data/train/.keep").unlink()
    assert train_main(["1.7-1"], job(tmp_path, {"num_round": "2"}, {"train/_SUCCESS": b""}, "application/x-parquet")) == 0


@pytest.mark.parametrize(
    ("version", "hyperparameters", "content_type", "edit", "reason"),
    [
        ("1.7-1", {"num_round": "5", "max_depth": "deep"}, "text/csv", None, "Hyperparameter max_depth: could not parse value 'deep'"),
        ("1.7-1", {"num_round": "5", "eta": "1.5"}, "text/csv", None, "Hyperparameter eta: 1.5 is not in [0, 1]"),
        ("1.7-1", {"num_round": "5", "objective": "multi:softprob"}, "text/csv", None, "Require input for parameter 'num_class'"),
        ("1.7-1", {"num_round": "5", "eval_metric": "rmse,nope"}, "text/csv", None, "eval_metric: value 'nope' is not in"),
        ("1.0-1", {"num_round": "5", "tree_method": "gpu_hist"}, "text/csv", None, "GPU training is not supported yet."),
        ("1.7-1", {"num_round": "5"}, "text/csv", b"sex,length,diameter\nM,0.455,0.365\n", "holds 'sex', which is not numeric"),
        ("1.7-1", {"num_round": "5"}, "text/csv", b"1,0.4,0.3\nM,0.455,0.365\n", "line 2: the label column (the first) holds 'M'"),
        ("1.7-1", {"num_round": "5"}, None, b"1,0.4,0.3\n2,0.5,0.2\n", "The channel names no ContentType, and the algorithm then reads text/libsvm"),
        ("1.7-1", {"num_round": "5"}, "application/x-recordio-protobuf", None, "not emulated by sagelab"),
        ("1.7-1", {"num_round": "5"}, "application/json", None, "application/json is not an accepted ContentType"),
    ],
)  # fmt: skip
def test_mistakes_fail_with_the_reason_in_the_failure_file(
    tmp_path: Path, version: str, hyperparameters: dict[str, str], content_type: str | None, edit: bytes | None, reason: str
) -> None:
    files = {"train/train.csv": edit, "validation/validation.csv": edit} if edit else None
    assert train_main([version], job(tmp_path, hyperparameters, files, content_type)) == 1
    assert reason in failure(tmp_path)
    assert not (tmp_path / "model/xgboost-model").exists()


def test_extra_channels_and_missing_data_fail_as_on_sagemaker(tmp_path: Path) -> None:
    assert train_main(["1.7-1"], job(tmp_path / "a", {"num_round": "2"}, channels=("train", "validation", "test"))) == 1
    assert failure(tmp_path / "a").startswith("Extraneous channel found: test")
    assert train_main(["1.7-1"], job(tmp_path / "b", {"num_round": "2"}, {"train/t.csv": csv_bytes(abalone_rows(20))})) == 1
    assert failure(tmp_path / "b") == "No data in validation channel path /opt/ml/input/data/validation"


def test_without_xgboost_the_job_says_which_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now raises ImportError
    assert train_main(["1.7-1"], job(tmp_path, {"num_round": "2"})) == 1
    assert "install sagelab[xgboost]" in failure(tmp_path)


# The image registry.

SDK_URIS = [c for c in json.loads((FIXTURES / "image_uris.json").read_text())["cases"] if c["uri"]]


def test_every_image_the_sdk_retrieves_is_identified_with_its_version() -> None:
    for case in SDK_URIS:
        framework, version = case["spec"].split(":", 1)
        behaviour = identify(case["uri"])
        assert behaviour is not None, case
        expected = version.split("-")[0] if framework == "huggingface" else version  # transformers version
        assert (behaviour.framework, behaviour.version) == (framework, expected), case
        assert (behaviour.train_command is not None) == (behaviour.family == "sagemaker-xgboost" and version in VERSIONS), case


@pytest.mark.parametrize(
    ("uri", "family", "version"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "sagemaker-xgboost", "1.7-1"),
        ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3", "sagemaker-xgboost", "1.0-1"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.5-1-cpu-py3", "sagemaker-xgboost", "1.5-1"),
        ("450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1", "sagemaker-xgboost", "1.7-1"),
        ("414596584902.dkr.ecr.us-gov-west-1.amazonaws.com/sagemaker-xgboost:1.3-1", "sagemaker-xgboost", "1.3-1"),
        ("833128469047.dkr.ecr.us-iso-east-1.c2s.ic.gov/sagemaker-xgboost:3.0-5", "sagemaker-xgboost", "3.0-5"),
        ("683313688378.dkr.ecr-fips.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1@sha256:" + "a" * 64, "sagemaker-xgboost", "1.7-1"),
        ("173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.3-cpu-py39-v1.0", "sagemaker-spark-processing", "3.3"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu22.04",
         "huggingface-pytorch-tgi-inference", "2.1.1"),
    ],
)  # fmt: skip
def test_identify_reads_any_region_partition_and_tag_form(uri: str, family: str, version: str) -> None:
    behaviour = identify(uri)
    assert behaviour is not None and (behaviour.family, behaviour.version) == (family, version)
    if family == "sagemaker-xgboost":
        assert behaviour.train_command == ("python3", "-m", "sagelab.containers.xgboost", version)
        assert ("validation:rmse", r".*\[[0-9]+\].*#011validation-rmse:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*") in behaviour.metric_definitions


@pytest.mark.parametrize("uri", ["123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:latest", "local/python:3", "", "python:3.11"])
def test_unknown_images_are_none(uri: str) -> None:
    assert identify(uri) is None


def test_an_unknown_version_of_the_algorithm_says_which_are_known() -> None:
    behaviour = identify(IMAGE.format("9.9-1"))
    assert isinstance(behaviour, ContainerBehaviour) and behaviour.train_command is None
    assert "9.9-1" in behaviour.note and "1.7-1" in behaviour.note


def test_the_registry_docstring_examples_run() -> None:
    assert doctest.testmod(images, raise_on_error=True).attempted >= 2
