"""`CheckRunner`: QualityCheck and ClarifyCheck steps, their baseline job and drift check run locally.

The rules are SageMaker's (pipelines-quality-clarify-baseline-lifecycle in its developer guide):
the step always calculates a new baseline (the CalculatedBaseline* properties). The previous
baseline is the supplied one, else the DriftCheckBaselines of the latest Approved version in
ModelPackageGroupName, and it must exist unless SkipCheck and RegisterNewBaseline are both true.
Unless SkipCheck, the data is checked against it and a violation fails the step (FailOnViolation
false only logs it). BaselineUsedForDriftCheck* is the new baseline with RegisterNewBaseline,
the previous one otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sagelab.containers.monitor import (
    ANALYSIS,
    ANALYZER_COMMAND,
    BASELINE_CONSTRAINTS,
    BASELINE_STATISTICS,
    CLARIFY_COMMAND,
    CONSTRAINTS,
    STATISTICS,
    VIOLATIONS,
)
from sagelab.definition.model import CHECK_SETTINGS
from sagelab.engines.local.deploy import open_registry
from sagelab.engines.local.job import Job, StepFailed, StepResult
from sagelab.engines.local.processing import ProcessingRunner
from sagelab.errors import NoSuchKey, RegistryError

_ENV = {"Statistics": BASELINE_STATISTICS, "Constraints": BASELINE_CONSTRAINTS}
_MAX_LISTED = 5  # violations named in a failure reason; the report has them all


@dataclass(frozen=True)
class CheckKind:
    """What one CheckType computes, where a model version keeps its baseline, and what runs it."""

    step_type: str
    files: dict[str, str]  # "Statistics"/"Constraints" → the file the job writes
    registry: dict[str, tuple[str, str]]  # the same → where DriftCheckBaselines holds it
    command: tuple[str, ...] | None  # the container command; None: not run locally
    checks_drift: bool  # whether the new data is checked against the previous baseline here


_QUALITY_FILES = {"Statistics": STATISTICS, "Constraints": CONSTRAINTS}
KINDS = {
    "DATA_QUALITY": CheckKind("QualityCheck", _QUALITY_FILES, {k: ("ModelDataQuality", k) for k in _QUALITY_FILES}, ANALYZER_COMMAND, True),
    "MODEL_QUALITY": CheckKind("QualityCheck", _QUALITY_FILES, {k: ("ModelQuality", k) for k in _QUALITY_FILES}, ANALYZER_COMMAND, True),
    "DATA_BIAS": CheckKind("ClarifyCheck", {"Constraints": ANALYSIS}, {"Constraints": ("Bias", "PreTrainingConstraints")}, CLARIFY_COMMAND, False),
    "MODEL_BIAS": CheckKind("ClarifyCheck", {"Constraints": ANALYSIS}, {"Constraints": ("Bias", "PostTrainingConstraints")}, None, False),
    "MODEL_EXPLAINABILITY": CheckKind("ClarifyCheck", {"Constraints": ANALYSIS}, {"Constraints": ("Explainability", "Constraints")}, None, False),
}


@dataclass
class Baseline:
    """A set of baseline files and where they came from, for the step log and failure reasons."""

    uris: dict[str, str]
    origin: str


class CheckRunner:
    """Runs the check's baselining job, decides the drift check, and sets the check properties."""

    def run(self, job: Job) -> StepResult:
        settings = {key: job.arguments.get(key) for key in CHECK_SETTINGS}
        request = {k: v for k, v in job.arguments.items() if k not in CHECK_SETTINGS}
        check_type = str(settings["CheckType"])
        kind = KINDS.get(check_type)
        if kind is None or kind.step_type != job.step.type:
            types = [name for name, k in KINDS.items() if k.step_type == job.step.type]
            raise StepFailed(f"ClientError: CheckType {check_type!r} is not a {job.step.type} check; use one of {', '.join(types)}")
        skip = _flag(settings["SkipCheck"], False, "SkipCheck")
        register = _flag(settings["RegisterNewBaseline"], False, "RegisterNewBaseline")
        fail_on_violation = _flag(settings["FailOnViolation"], True, "FailOnViolation")
        group = settings["ModelPackageGroupName"]
        previous = _previous_baseline(job, settings, kind, check_type)
        if previous is None and not (skip and register):
            raise StepFailed(_no_baseline(check_type, kind, group))
        if previous is not None:
            job.log(f"previous baseline: {_describe(previous)}")
        checked = previous if previous is not None and not skip and kind.checks_drift else None
        if skip:
            job.log("SkipCheck is true: the data is not checked for drift")
        elif previous is not None and not kind.checks_drift:
            job.log(f"the {check_type} drift check against {_describe(previous)} is not run locally; the step passes it")
        properties: dict[str, Any] = {"CheckType": check_type, "SkipCheck": skip, "RegisterNewBaseline": register}
        if group:
            properties["ModelPackageGroupName"] = group
        calculated, violations, processed = self._calculate(job, request, kind, checked, settings)
        if processed is not None:
            properties["CheckJobArn"] = processed.properties["ProcessingJobArn"]
        used = calculated if register or previous is None else previous.uris
        for key in kind.files:
            properties[f"CalculatedBaseline{key}"] = calculated[key]
            properties[f"BaselineUsedForDriftCheck{key}"] = used[key]
        if violations and checked is not None:
            report = properties["ViolationReport"] = _sibling(calculated["Constraints"], VIOLATIONS)
            message = _violated(check_type, violations, checked, report)
            if fail_on_violation:
                raise StepFailed(message)
            job.log(f"{message.removeprefix('ClientError: ')} (FailOnViolation is false: the step succeeds)")
        return StepResult(properties, processed.outputs if processed else [])

    def _calculate(self, job: Job, request: dict[str, Any], kind: CheckKind, checked: Baseline | None, settings: dict[str, Any]
                   ) -> tuple[dict[str, str], list[dict[str, Any]], StepResult | None]:  # fmt: skip
        """The new baseline's URIs, the violations of `checked`, and the check's processing job (None if none ran)."""
        check_type = settings["CheckType"]
        if kind.command is None:  # never a report that does not exist, registered as if it did
            raise StepFailed(
                f"ClientError: the {check_type} analysis does not run locally: SageMaker Clarify computes it on model "
                f"{settings['ModelName']} behind a shadow endpoint (post-training bias, SHAP), which sagelab does not emulate, so "
                "the step fails rather than give a model version an empty report. Run this check on SageMaker (--profile aws), "
                "or leave the step out of local runs (a condition on a pipeline parameter)"
            )
        output = next((o["S3Output"] for o in request.get("ProcessingOutputConfig", {}).get("Outputs", []) if "S3Output" in o), None)
        if output is None:
            raise StepFailed(f"ClientError: the {check_type} check's request has no S3 output for its results; add one to ProcessingOutputConfig")
        environment = dict(request.get("Environment") or {})
        inputs = list(request.get("ProcessingInputs") or [])
        for key, uri in (checked.uris if checked else {}).items():
            folder = f"/opt/ml/processing/baseline/{key.lower()}"
            inputs.append({"InputName": f"baseline_{key.lower()}",
                           "S3Input": {"S3Uri": uri, "LocalPath": folder, "S3DataType": "S3Prefix", "S3InputMode": "File"}})  # fmt: skip
            environment[_ENV[key]] = f"{folder}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
        app = request.get("AppSpecification") or {}
        job.log(f"{check_type} check: {app.get('ImageUri', 'the image')} is emulated by `{' '.join(kind.command)}` (docs/containers.md)")
        job.arguments = {**request, "AppSpecification": {**app, "ContainerEntrypoint": list(kind.command)},
                         "Environment": environment, "ProcessingInputs": inputs}  # fmt: skip
        processed = ProcessingRunner().run(job)
        base = str(output["S3Uri"]).rstrip("/")
        violations = _violations(job, f"{base}/{VIOLATIONS}") if checked else []
        return {key: f"{base}/{name}" for key, name in kind.files.items()}, violations, processed


def _previous_baseline(job: Job, settings: dict[str, Any], kind: CheckKind, check_type: str) -> Baseline | None:
    """The supplied baseline, else the one registered with the group's latest Approved version."""
    supplied = {key: str(settings[f"SuppliedBaseline{key}"]) for key in kind.files if settings.get(f"SuppliedBaseline{key}")}
    if supplied:
        missing = [f"SuppliedBaseline{key}" for key in kind.files if key not in supplied]
        if missing:
            raise StepFailed(f"ClientError: {check_type} check: {' and '.join(missing)} is empty; supply every file of the baseline or none")
        return Baseline(supplied, "supplied")
    group = settings["ModelPackageGroupName"]
    if not group:
        return None
    registry = open_registry(job.settings)
    try:
        package = registry.latest(str(group))
    except RegistryError:
        return None
    finally:
        registry.close()
    drift = package.request.get("DriftCheckBaselines") or {}
    found = {key: ((drift.get(section) or {}).get(name) or {}).get("S3Uri") for key, (section, name) in kind.registry.items()}
    if not all(found.values()):
        job.log(f"{package.ref}, the latest Approved version of {group}, has no {check_type} DriftCheckBaselines")
        return None
    return Baseline({key: str(uri) for key, uri in found.items()}, f"DriftCheckBaselines of {package.ref}")


def _flag(value: Any, default: bool, name: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise StepFailed(f"ClientError: {name} must be true or false; got {value!r}")


def _no_baseline(check_type: str, kind: CheckKind, group: Any) -> str:
    section, name = next(iter(kind.registry.values()))
    where = f"model package group {group} has no Approved version with DriftCheckBaselines.{section}.{name}" if group else "no ModelPackageGroupName is set"
    return (
        f"ClientError: the {check_type} check needs a previous baseline (unless SkipCheck and RegisterNewBaseline are both true), "
        f"and there is none: no SuppliedBaseline{'/'.join(kind.files)} was given and {where}. For a first run set SkipCheck "
        "and RegisterNewBaseline to true; register the model with the step's baselines and approve that version "
        f"(`sagelab models approve {group or 'GROUP'}/VERSION`) for later runs to check against it"
    )


def _violated(check_type: str, violations: list[dict[str, Any]], baseline: Baseline, report: str) -> str:
    named = "; ".join(
        f"{v.get('feature_name') or v.get('metric_name')}: {v.get('constraint_check_type')}: {v.get('description')}"
        for v in violations[:_MAX_LISTED]
    )
    more = f"; and {len(violations) - _MAX_LISTED} more" if len(violations) > _MAX_LISTED else ""
    return (
        f"ClientError: {check_type} check failed: {len(violations)} violation(s) of the baseline {_describe(baseline)}: "
        f"{named}{more}. Report: {report}. If the change is expected, run with SkipCheck and RegisterNewBaseline "
        "true to make this data the new baseline"
    )


def _describe(baseline: Baseline) -> str:
    return f"{baseline.uris.get('Constraints', '')} ({baseline.origin})"


def _sibling(uri: str, name: str) -> str:
    return f"{uri.rsplit('/', 1)[0]}/{name}"


def _violations(job: Job, uri: str) -> list[Any]:
    """The violations the check's report lists (published with its outputs; none when it wrote no report)."""
    try:
        return list(json.loads(job.store.get_bytes(uri)).get("violations", []))
    except NoSuchKey:
        return []
