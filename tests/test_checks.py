"""QualityCheck and ClarifyCheck steps, from definitions the SageMaker SDK v2 wrote (tests/fixtures/checks).

The pipeline checks data quality and data bias on a training CSV and model quality on a
predictions CSV, then registers a model with the checks' baselines as ModelMetrics and
DriftCheckBaselines. The tests walk the baseline lifecycle: no baseline yet, a first run that
registers one, a run checked against the approved version's, a supplied baseline the data
violates, and the same data with SkipCheck.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from sagelab.config import load_settings
from sagelab.definition import find_problems, parse, parse_file
from sagelab.engines.local import LocalEngine
from sagelab.engines.local.scheduler import Execution
from sagelab.registry import Registry

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
PREFIX = "s3://sagemaker-us-east-1-123456789012/checks"
CHECKS = ("DataQuality", "ModelQuality", "DataBias")
FIRST_RUN = {**{f"Skip{name}Check": "true" for name in CHECKS}, **{f"RegisterNew{name}Baseline": "true" for name in CHECKS}}


def training_csv(rows: int = 240, seed: int = 7, broken: bool = False) -> bytes:
    """label, age, income, group, city; no header, label first. `broken` puts text in age and blanks in income."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        group = rng.randint(0, 1)
        label = int(rng.random() < 0.3 + 0.3 * group)
        age = "unknown" if broken and i % 4 == 0 else str(rng.randint(18, 70))
        income = "" if broken and i % 6 == 0 else f"{rng.gauss(50000, 9000):.2f}"
        lines.append(f"{label},{age},{income},{group},{rng.choice('abc')}")
    return ("\n".join(lines) + "\n").encode()


def predictions_csv(rows: int = 240, seed: int = 11, noise: float = 0.2) -> bytes:
    """label, prediction, probability with a header; more noise, worse predictions."""
    rng = random.Random(seed)
    lines = ["label,prediction,probability"]
    for _ in range(rows):
        label = rng.randint(0, 1)
        probability = min(1.0, max(0.0, 0.25 + 0.5 * label + rng.gauss(0, noise)))
        lines.append(f"{label},{int(probability >= 0.5)},{probability:.4f}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    engine = LocalEngine(load_settings(project))
    for dump in FIXTURES.glob("*.s3"):
        for file in (p for p in dump.rglob("*") if p.is_file()):
            engine.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
    engine.store.put_bytes(f"{PREFIX}/data/train.csv", training_csv())
    engine.store.put_bytes(f"{PREFIX}/data/predictions.csv", predictions_csv())
    engine.store.put_bytes(f"{PREFIX}/model/model.tar.gz", b"not a real model: registering only records its URI")
    return engine


def run(engine: LocalEngine, name: str, **parameters: str) -> Execution:
    return engine.start(parse_file(FIXTURES / f"{name}.json"), name, parameters)


def failures(execution: Execution) -> dict[str, str | None]:
    return {s.name: s.failure_reason for s in execution.steps.values() if s.status == "Failed"}


def properties(execution: Execution, step: str) -> dict[str, Any]:
    found = execution.steps[step].properties
    assert found is not None, (step, execution.steps[step].status, execution.steps[step].failure_reason)
    return found


def read_json(engine: LocalEngine, uri: str) -> Any:
    return json.loads(engine.store.get_bytes(uri))


def registry(engine: LocalEngine) -> Registry:
    return Registry(engine.settings.state_dir / "registry.db", engine.settings.region, engine.settings.account)


def test_the_validator_knows_the_check_step_properties() -> None:
    document = json.loads((FIXTURES / "checks.json").read_text())
    assert find_problems(parse(document)) == []
    register = document["Steps"][-1]["Arguments"]
    register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] = {"Get": "Steps.ModelQualityCheck.CalculatedBaselineStatistic"}
    register["ModelMetrics"]["Bias"]["PreTrainingReport"]["S3Uri"] = {"Get": "Steps.DataBiasCheck.CalculatedBaselineStatistics"}
    document["Steps"][0]["SkipCheck"] = {"Get": "Parameters.SkipDataQuality"}
    messages = [p.message for p in find_problems(parse(document))]
    assert any("CalculatedBaselineStatistic is not a property of a QualityCheck step (did you mean CalculatedBaselineStatistics?)" in m for m in messages)
    assert any("CalculatedBaselineStatistics is not a property of a ClarifyCheck step" in m for m in messages)
    assert any(p.pointer == "/Steps/0/SkipCheck/Get" and "SkipDataQuality is not declared" in p.message for p in find_problems(parse(document)))


def test_baseline_lifecycle_of_the_sdk_pipeline(engine: LocalEngine) -> None:
    # No supplied baseline and no approved version: a check that is not skipped has nothing to check against.
    none_yet = run(engine, "checks")
    assert none_yet.status == "Failed"
    reason = failures(none_yet)["DataQualityCheck"] or ""
    assert "needs a previous baseline" in reason and "ChecksPackageGroup has no Approved version" in reason

    # The first run: skip the checks and register the calculated baselines with the model.
    first = run(engine, "checks", **FIRST_RUN)
    assert first.status == "Succeeded", failures(first)
    quality = properties(first, "DataQualityCheck")
    assert quality["CalculatedBaselineStatistics"] == f"{PREFIX}/monitor/data-quality/statistics.json"
    assert quality["BaselineUsedForDriftCheckConstraints"] == quality["CalculatedBaselineConstraints"] == f"{PREFIX}/monitor/data-quality/constraints.json"
    statistics = read_json(engine, quality["CalculatedBaselineStatistics"])
    assert statistics["dataset"]["item_count"] == 240
    features = {f["name"]: f for f in statistics["features"]}
    assert [features[c]["inferred_type"] for c in ("_c0", "_c1", "_c2", "_c3", "_c4")] == ["Integral", "Integral", "Fractional", "Integral", "String"]
    assert features["_c1"]["numerical_statistics"]["common"] == {"num_present": 240, "num_missing": 0}
    constraints = {f["name"]: f for f in read_json(engine, quality["CalculatedBaselineConstraints"])["features"]}
    assert constraints["_c4"]["string_constraints"]["domains"] == ["a", "b", "c"]
    assert constraints["_c2"]["completeness"] == 1.0 and constraints["_c2"]["num_constraints"]["is_non_negative"]

    model = properties(first, "ModelQualityCheck")
    metrics = read_json(engine, model["CalculatedBaselineStatistics"])["binary_classification_metrics"]
    assert 0.8 < metrics["accuracy"]["value"] <= 1 and isinstance(metrics["f1"]["standard_deviation"], float)
    assert sum(sum(row.values()) for row in metrics["confusion_matrix"].values()) == 240
    thresholds = read_json(engine, model["CalculatedBaselineConstraints"])["binary_classification_constraints"]
    assert thresholds["f1"] == {"threshold": metrics["f1"]["value"], "comparison_operator": "LessThanThreshold"}

    bias = properties(first, "DataBiasCheck")
    assert bias["CalculatedBaselineConstraints"] == f"{PREFIX}/clarify/data-bias/analysis.json"
    facet = read_json(engine, bias["CalculatedBaselineConstraints"])["pre_training_bias_metrics"]["facets"]["group"][0]
    values = {m["name"]: m["value"] for m in facet["metrics"]}
    assert facet["value_or_threshold"] == "1" and -1 < values["CI"] < 1 and values["DPL"] < 0  # group 1 has more positive labels

    packages = registry(engine)
    try:
        [package] = packages.list("ChecksPackageGroup")
        assert package.request["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"] == quality["CalculatedBaselineStatistics"]
        assert package.request["DriftCheckBaselines"]["Bias"]["PreTrainingConstraints"]["S3Uri"] == bias["CalculatedBaselineConstraints"]
        packages.set_status("ChecksPackageGroup", 1, "Approved", "baseline for the next runs")
    finally:
        packages.close()

    # Later runs check new data against the approved version's baselines; the same data passes.
    checked = run(engine, "checks")
    assert checked.status == "Succeeded", failures(checked)
    log = Path(checked.steps["DataQualityCheck"].log_path or "").read_text()
    assert "(DriftCheckBaselines of ChecksPackageGroup/1)" in log
    assert read_json(engine, f"{PREFIX}/monitor/data-quality/constraint_violations.json") == {"violations": []}
    assert "drift check against" in Path(checked.steps["DataBiasCheck"].log_path or "").read_text()

    # Worse predictions break the model quality thresholds.
    engine.store.put_bytes(f"{PREFIX}/data/worse.csv", predictions_csv(noise=0.6))
    worse = run(engine, "checks", Predictions=f"{PREFIX}/data/worse.csv", SkipDataQualityCheck="true", SkipDataBiasCheck="true")
    reason = failures(worse)["ModelQualityCheck"] or ""
    assert "MODEL_QUALITY check failed" in reason and "accuracy: LessThanThreshold: Metric accuracy with" in reason
    report = read_json(engine, f"{PREFIX}/monitor/model-quality/constraint_violations.json")["violations"]
    assert {"f1", "auc", "false_positive_rate"} <= {v["metric_name"] for v in report}


def test_a_supplied_baseline_the_data_violates_fails_the_step_unless_skipped(engine: LocalEngine) -> None:
    first = run(engine, "checks", **FIRST_RUN)
    assert first.status == "Succeeded", failures(first)
    quality = properties(first, "DataQualityCheck")
    for name in ("statistics", "constraints"):
        engine.store.put_bytes(f"{PREFIX}/baselines/{name}.json", engine.store.get_bytes(f"{PREFIX}/monitor/data-quality/{name}.json"))
    engine.store.put_bytes(f"{PREFIX}/data/broken/train.csv", training_csv(broken=True))
    supplied = {
        "TrainData": f"{PREFIX}/data/broken/train.csv",
        "DataQualitySuppliedStatistics": f"{PREFIX}/baselines/statistics.json",
        "DataQualitySuppliedConstraints": f"{PREFIX}/baselines/constraints.json",
        "SkipModelQualityCheck": "true", "RegisterNewModelQualityBaseline": "true",
        "SkipDataBiasCheck": "true", "RegisterNewDataBiasBaseline": "true",
    }  # fmt: skip

    violated = run(engine, "checks", **supplied)
    assert violated.status == "Failed"
    reason = failures(violated)["DataQualityCheck"] or ""
    assert reason.startswith("ClientError: DATA_QUALITY check failed:")
    assert "_c1: data_type_check: Data type match requirement is not met. Expected data type: Integral" in reason
    assert "_c2: completeness_check" in reason and f"{PREFIX}/baselines/constraints.json (supplied)" in reason
    report = read_json(engine, f"{PREFIX}/monitor/data-quality/constraint_violations.json")["violations"]
    assert {(v["feature_name"], v["constraint_check_type"]) for v in report} >= {("_c1", "data_type_check"), ("_c2", "completeness_check")}

    skipped = run(engine, "checks", **supplied, SkipDataQualityCheck="true")
    assert skipped.status == "Succeeded", failures(skipped)
    check = properties(skipped, "DataQualityCheck")
    assert check["SkipCheck"] is True and "ViolationReport" not in check
    assert check["BaselineUsedForDriftCheckStatistics"] == f"{PREFIX}/baselines/statistics.json"  # not registering a new one
    assert check["CalculatedBaselineStatistics"] == quality["CalculatedBaselineStatistics"]
    assert read_json(engine, check["CalculatedBaselineStatistics"])["features"][1]["inferred_type"] == "String"  # "unknown" ages


def test_model_bias_and_explainability_checks_fail_rather_than_register_an_empty_report(engine: LocalEngine) -> None:
    execution = run(engine, "clarify_model")
    assert execution.status == "Failed"
    reasons = failures(execution)
    for step in ("ModelBiasCheck", "ModelExplainabilityCheck"):
        reason = reasons[step] or ""
        assert reason.startswith("ClientError: the MODEL_") and "does not run locally" in reason, reasons
        assert "behind a shadow endpoint" in reason and "--profile aws" in reason and "Traceback" not in reason
        assert execution.steps[step].properties is None  # no CalculatedBaselineConstraints for a registration to point at
