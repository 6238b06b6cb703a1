"""The two container commands: Model Monitor's analyzer and Clarify's data bias analysis."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.containers.monitor import (
    ANALYSIS,
    BASELINE_CONSTRAINTS,
    BASELINE_STATISTICS,
    CONSTRAINTS,
    STATISTICS,
    VIOLATIONS,
    MonitorError,
    bias,
    data_quality,
    model_quality,
)
from sagelab.containers.monitor.dataset import read

# Where the SDK's ClarifyCheckStep puts the job's config, data and results.
CLARIFY_CONFIG = Path("/opt/ml/processing/input/config")
CLARIFY_DATA = Path("/opt/ml/processing/input/data")
CLARIFY_OUTPUT = Path("/opt/ml/processing/output")
# Scripts the analyzer image runs inside itself; running user code there is not emulated.
_SCRIPTS = ("record_preprocessor_script", "post_analytics_processor_script")


def analyze(env: Mapping[str, str]) -> None:
    """Baseline the dataset (statistics and constraints), and check it against a given baseline."""
    for name in _SCRIPTS:
        if env.get(name):
            raise MonitorError(f"{name} ({env[name]}) is not run locally; drop it from the check's config to run the step here")
    for name in ("dataset_source", "output_path"):
        if not env.get(name):
            raise MonitorError(f"the job's Environment has no {name}")
    table = read(Path(env["dataset_source"]), env.get("dataset_format", ""))
    output = Path(env["output_path"])
    model = env.get("analysis_type") == "MODEL_QUALITY"
    print(f"analyzing {table.rows} rows, columns {', '.join(table.names)}", flush=True)
    statistics = model_quality.statistics(table, env) if model else data_quality.statistics(table)
    _write(output / STATISTICS, statistics)
    _write(output / CONSTRAINTS, model_quality.constraints(statistics) if model else data_quality.constraints(table))
    if env.get(BASELINE_CONSTRAINTS):
        baseline = _load(env[BASELINE_CONSTRAINTS], BASELINE_CONSTRAINTS)
        if model:
            found = model_quality.violations(statistics, baseline)
        else:
            previous = _load(env[BASELINE_STATISTICS], BASELINE_STATISTICS) if env.get(BASELINE_STATISTICS) else None
            found = data_quality.violations(table, baseline, previous)
        _write(output / VIOLATIONS, {"violations": found})
        print(f"{len(found)} violation(s) of the baseline constraints", flush=True)


def clarify() -> None:
    """Clarify's pre-training bias analysis of the job's dataset."""
    config_file = CLARIFY_CONFIG / "analysis_config.json"
    if not config_file.is_file():
        raise MonitorError(f"no analysis_config.json in {CLARIFY_CONFIG}")
    config = _load(str(config_file), "analysis_config.json")
    methods = set(config.get("methods", {})) - {"pre_training_bias", "report"}
    if methods:
        print(f"not computed locally: {', '.join(sorted(methods))} (only pre_training_bias is)", flush=True)
    _write(CLARIFY_OUTPUT / ANALYSIS, bias.analysis(config, CLARIFY_DATA))
    print("the analysis report (report.html, report.pdf) is not written locally", flush=True)


def _load(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise MonitorError(f"{what}: {path} is not valid JSON: {exc}") from None


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(partial, path)
