"""The container-fidelity corpus: template-style pipelines built with the official SageMaker SDK, run unmodified.

Each definition in tests/fixtures/corpus/definitions/ was written by the SDK v2 (generate.py);
the tests seed a local store with what the SDK uploaded, generate small input data, run the
pipeline locally end to end, and serve what it registered through the inference server with the
container's handlers. See tests/fixtures/corpus/README.md.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import pickletools
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SAGELAB, pip_offline
from sagelab.config import load_settings
from sagelab.definition import parse_file
from sagelab.engines.local import LocalEngine
from sagelab.registry import ModelPackage, Registry

CORPUS = Path(__file__).parent / "fixtures" / "corpus" / "definitions"
SEXES = np.array(["M", "F", "I"])


def abalone_csv(count: int = 600, seed: int = 3) -> bytes:
    """Raw abalone rows as the template reads them: sex, seven measurements, rings; no header."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.15, 0.75, count)
    sex = SEXES[rng.integers(0, 3, count)]
    measures = [length, length * 0.8 + rng.normal(0, 0.02, count), length * 0.25 + rng.normal(0, 0.01, count),
                *(length**3 * k + rng.normal(0, 0.02, count) for k in (2.0, 0.9, 0.45, 0.6))]  # fmt: skip
    rings = np.round(3 + 10 * length + 2 * (sex == "F") + rng.normal(0, 0.7, count)).astype(int)
    lines = [",".join([s, *(f"{m[i]:.4f}" for m in measures), str(r)]) for i, (s, r) in enumerate(zip(sex, rings))]
    return ("\n".join(lines) + "\n").encode()


def churn_csv(count: int = 800, seed: int = 5) -> bytes:
    """Customer rows with a header; churn depends on customer-service calls, the plan and day minutes."""
    rng = np.random.default_rng(seed)
    calls, day = rng.poisson(1.5, count), rng.normal(180, 50, count)
    intl = rng.choice(["yes", "no"], count, p=[0.1, 0.9])
    logit = -4 + 1.1 * calls + 0.012 * (day - 180) + 1.5 * (intl == "yes")
    churn = rng.uniform(size=count) < 1 / (1 + np.exp(-logit))
    rows = ["state,account_length,intl_plan,vmail_plan,day_mins,eve_mins,night_mins,custserv_calls,churn"]
    for i in range(count):
        rows.append(f"{rng.choice(['CA', 'NY', 'TX'])},{rng.integers(1, 200)},{intl[i]},{rng.choice(['yes', 'no'])},"
                    f"{day[i]:.1f},{rng.normal(200, 50):.1f},{rng.normal(200, 50):.1f},{calls[i]},{'True.' if churn[i] else 'False.'}")  # fmt: skip
    return ("\n".join(rows) + "\n").encode()


class Corpus:
    """One project with a local engine whose store holds what the SDK uploaded for a pipeline."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.engine = LocalEngine(load_settings(project))
        self.endpoints: list[str] = []

    def run(self, name: str, data: bytes | None, status: str = "Succeeded") -> Any:
        dump = CORPUS / f"{name}.s3"
        for file in (p for p in dump.rglob("*") if p.is_file()):
            self.engine.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
        document = parse_file(CORPUS / f"{name}.json")
        if data is not None:
            self.engine.store.put_bytes(str(document.parameters["InputData"].default), data)
        execution = self.engine.start(document, name)
        failures = {s.name: f"{s.failure_reason}\n{Path(s.log_path).read_text()[-3000:] if s.log_path else ''}"
                    for s in execution.steps.values() if s.status == "Failed"}  # fmt: skip
        assert execution.status == status, failures
        return execution

    def package(self, group: str) -> ModelPackage:
        settings = self.engine.settings
        registry = Registry(settings.state_dir / "registry.db", settings.region, settings.account)
        try:
            [package] = registry.list(group)
        finally:
            registry.close()
        return package

    def model_file(self, uri: str, member: str) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(self.engine.store.get_bytes(uri))) as archive:
            return archive.extractfile(member).read()  # type: ignore[union-attr]

    def sagelab(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
        result = subprocess.run([SAGELAB, *args], cwd=self.project, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def invoke(self, reference: str, body: str, content_type: str = "text/csv", accept: str | None = None) -> str:
        """Deploy a registered version on a local endpoint (approving it first) and invoke it."""
        name = f"corpus-{len(self.endpoints)}"
        if self.package(reference.split("/")[0]).status != "Approved":
            self.sagelab("models", "approve", reference, "--reason", "corpus test")
        self.sagelab("deploy", reference, "--name", name)
        self.endpoints.append(name)
        return self.sagelab("invoke", name, "--body", body, "--content-type", content_type, *(["--accept", accept] if accept else []))

    def close(self) -> None:
        for name in self.endpoints:
            subprocess.run([SAGELAB, "endpoints", "delete", name], cwd=self.project, capture_output=True, timeout=60)


@pytest.fixture
def corpus(project: Path) -> Iterator[Corpus]:
    corpus = Corpus(project)
    yield corpus
    corpus.close()


ABALONE_ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15"


def pickled_class(data: bytes) -> str:
    """The class a pickle makes, read from its opcodes without importing it."""
    strings: list[str] = []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            return str(argument).replace(" ", ".")
        if opcode.name == "STACK_GLOBAL":
            return ".".join(strings[-2:])
        if isinstance(argument, str):
            strings.append(argument)
    return ""


@pytest.mark.parametrize(("name", "version", "pickled"), [("abalone_xgboost_1_0", "1.0-1", True), ("abalone_xgboost_1_7", "1.7-1", False)])
def test_abalone_template_with_the_builtin_xgboost(corpus: Corpus, name: str, version: str, pickled: bool) -> None:
    execution = corpus.run(name, abalone_csv())
    statuses = {step: state.status for step, state in execution.steps.items()}
    assert statuses["RegisterAbaloneModel-RegisterModel"] == "Succeeded" and statuses["AbaloneMSEFail"] == "Skipped"
    train = execution.steps["TrainAbaloneModel"]
    assert f"sagemaker-xgboost:{version}" in train.properties["AlgorithmSpecification"]["TrainingImage"]
    assert {"train:rmse", "validation:rmse"} <= {m["MetricName"] for m in train.properties["FinalMetricDataList"]}
    artifact = corpus.model_file(train.properties["ModelArtifacts"]["S3ModelArtifacts"], "xgboost-model")
    assert artifact.startswith(b"\x80") == pickled  # what the evaluation script loads with pickle.load or load_model
    if pickled:  # a pickled Booster of the image's xgboost (1.0.0), which the xgboost here cannot unpickle
        assert pickled_class(artifact) == "xgboost.core.Booster"

    package = corpus.package("AbalonePackageGroup")
    assert package.status == "PendingManualApproval"
    metrics = package.describe()["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert json.loads(corpus.engine.store.get_bytes(metrics))["regression_metrics"]["mse"]["value"] < 6.0
    # The built-in algorithm's serving: preprocessed features in, one rings estimate per line out.
    features = ",".join(["0.1"] * 10)
    answer = corpus.invoke("AbalonePackageGroup/1", f"{features}\n{features}")
    assert len(answer.replace(",", "\n").split()) == 2 and 2 < float(answer.replace(",", "\n").split()[0]) < 25


def test_xgboost_framework_entry_point_with_the_containers_helpers(corpus: Corpus) -> None:
    execution = corpus.run("xgboost_framework", abalone_csv())
    train = execution.steps["Train"]
    log = Path(train.log_path).read_text()
    assert "validation-rmse" in log, log[-2000:]
    artifact = corpus.model_file(train.properties["ModelArtifacts"]["S3ModelArtifacts"], "xgboost-model")
    assert pickled_class(artifact) == "xgboost.core.Booster"
    # Served by the script, which imports the container's helpers at the top: its model_fn, and the XGBoost
    # container's default input, predict and output handlers.
    assert corpus.package("XGBoostFrameworkGroup").container["Environment"]["SAGEMAKER_PROGRAM"] == "abalone.py"
    answer = corpus.invoke("XGBoostFrameworkGroup/1", ",".join(["0.2"] * 10), accept="text/csv")
    assert 2 < float(answer.strip().split(",")[0]) < 25


def test_sklearn_training_registered_with_a_custom_inference_script(corpus: Corpus) -> None:
    execution = corpus.run("sklearn_inference", abalone_csv())
    train = execution.steps["Train"]
    assert any(m["MetricName"] == "train:mse" for m in train.properties["FinalMetricDataList"])
    package = corpus.package("SklearnInferenceGroup")
    assert package.container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    answer = json.loads(corpus.invoke("SklearnInferenceGroup/1", json.dumps({"instances": [[0.1] * 10, [-0.5] * 10]}),
                                      content_type="application/json"))  # fmt: skip
    assert len(answer["rings"]) == 2 and all(2 < r < 25 for r in answer["rings"])


def test_churn_classification_evaluated_on_the_training_image(corpus: Corpus) -> None:
    execution = corpus.run("churn", churn_csv())
    evaluate = execution.steps["EvaluateChurnModel"]
    assert evaluate.properties["AppSpecification"]["ImageUri"].endswith("sagemaker-xgboost:1.7-1")  # resolved from the training step
    assert execution.steps["AucTooLow"].status == "Skipped"
    report = corpus.engine.store.get_bytes(corpus.package("ChurnGroup").describe()["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert json.loads(report)["binary_classification_metrics"]["auc"]["value"] >= 0.7
    rows = [row.split(",")[1:] for row in corpus.engine.store.get_bytes(
        f"{execution.steps['PreprocessChurn'].properties['ProcessingOutputConfig']['Outputs'][2]['S3Output']['S3Uri']}/test.csv"
    ).decode().split()[:3]]  # fmt: skip
    scores = corpus.invoke("ChurnGroup/1", "\n".join(",".join(r) for r in rows)).replace(",", "\n").split()
    assert len(scores) == 3 and all(0 <= float(s) <= 1 for s in scores)  # binary:logistic answers probabilities


def test_tuning_feeds_the_best_model_to_a_batch_transform(corpus: Corpus) -> None:
    execution = corpus.run("tuning", abalone_csv())
    tune = execution.steps["Tune"].properties
    summaries = tune["TrainingJobSummaries"]
    assert len(summaries) == 4
    best = tune["BestTrainingJob"]
    assert summaries[0]["TrainingJobName"] == best["TrainingJobName"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == min(values)
    model = execution.steps["BestModel-CreateModel"].properties
    assert best["TrainingJobName"] in model["PrimaryContainer"]["ModelDataUrl"]
    output = execution.steps["Predict"].properties["TransformOutput"]["S3OutputPath"]
    predictions = corpus.engine.store.get_bytes(f"{output}/test-features.csv.out").decode().split()
    test_rows = execution.steps["Preprocess"].properties["ProcessingOutputConfig"]["Outputs"][3]["S3Output"]["S3Uri"]
    assert len(predictions) == len(corpus.engine.store.get_bytes(f"{test_rows}/test-features.csv").decode().split())


def test_pytorch_behind_a_sklearn_featurizer_as_a_pipeline_model(corpus: Corpus) -> None:
    pytest.importorskip("torch")
    execution = corpus.run("pytorch_pipeline_model", abalone_csv())
    assert execution.steps["Register-RepackModel-1"].status == "Succeeded"  # the SDK's repack step put inference.py in code/
    repacked = execution.steps["Register-RepackModel-1"].properties["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(fileobj=io.BytesIO(corpus.engine.store.get_bytes(repacked))) as archive:
        assert {"model.pth", "code/inference.py", "code/train.py"} <= set(archive.getnames())
    package = corpus.package("PyTorchAbaloneGroup")
    assert len(package.describe()["InferenceSpecification"]["Containers"]) == 2
    # Raw rows go to the featurizer, its scaled CSV to the network; the PyTorch defaults answer JSON.
    answer = json.loads(corpus.invoke("PyTorchAbaloneGroup/1", f"{ABALONE_ROW}\nF,0.6,0.48,0.16,1.1,0.45,0.24,0.33",
                                      accept="application/json"))  # fmt: skip
    assert len(answer) == 2 and all(2 < float(np.ravel(a)[0]) < 25 for a in answer)


def _no_package_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pip in the steps sees no index (the tests stay off the network) and a cache of its own."""
    pip_offline(monkeypatch, tmp_path / "cache")


def test_function_steps_run_on_the_sdks_remote_function_runner(corpus: Corpus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("sagemaker")
    _no_package_index(monkeypatch, tmp_path)
    execution = corpus.run("function_steps", None)
    summarize = execution.steps["Summarize"]
    results = summarize.properties["OutputDataConfig"]["S3OutputPath"]
    assert pickle.loads(corpus.engine.store.get_bytes(f"{results}/payload.pkl")) == {"count": 5, "mean": 6.0}
    log = Path(execution.steps["Load"].log_path).read_text()
    assert "installing requirements.txt" in log and "Requirement already satisfied: sagemaker" in log  # not in sagelab's env


def test_function_steps_without_the_sdk_say_what_to_install(corpus: Corpus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if importlib.util.find_spec("sagemaker") is not None:
        pytest.skip("the SageMaker SDK is installed here")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the tests run offline (UV_OFFLINE): the SDK cannot be fetched
    execution = corpus.run("function_steps", None, status="Failed")
    load = execution.steps["Load"]
    assert "requirements.txt: not built yet, and the package index cannot be reached" in load.failure_reason
    assert "sagemaker" in load.failure_reason and "Run the step once while online" in load.failure_reason
    assert "installed into the step's environment from its dependency file" in Path(load.log_path).read_text()
    assert not list((tmp_path / "cache" / "sagelab" / "envs").glob("*/bin"))  # nothing half-built is kept
