"""What pipelines cost on SageMaker, from a definition and the executions already run: the Python API behind
`sagelab cost`, `sagelab status --cost` and the local run summary's estimate.

Expected durations come from earlier runs of each step: SageMaker's own when the profile runs there
and the step has succeeded there (the median of the last few), else local ones with SageMaker's
start-up added (labelled an estimate: a job waits for its instance and image before the code runs),
else a stated default.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sagelab.cost.catalog import Catalog, load_catalog
from sagelab.cost.estimate import BilledStep, Estimate, Row, billed_steps, estimate, unavailable
from sagelab.definition.parser import parse
from sagelab.errors import ExecutionError, Problem, SagelabError

if TYPE_CHECKING:
    from sagelab.api.model import Execution
    from sagelab.config import Settings
    from sagelab.definition.model import PipelineDefinition

HISTORY = 5  # executions whose step durations are considered, newest first
START_SECONDS = 90.0  # what a local duration lacks on SageMaker: the instance's start and the image's download, billed


def expected_durations(settings: Settings, pipeline: str, start_seconds: float = START_SECONDS) -> dict[str, tuple[float, str]]:
    """Each step's expected duration on SageMaker from the pipeline's earlier executions (SageMaker's before local ones)."""
    found: dict[str, tuple[float, str]] = {}
    if settings.engine == "sagemaker":
        for step, seconds in _history(_sagemaker_executions(settings, pipeline)).items():
            found[step] = (statistics.median(seconds), f"SageMaker, median of {_runs(len(seconds))}")
    for step, seconds in _history(_local_executions(settings, pipeline)).items():
        if step not in found:
            found[step] = (statistics.median(seconds) + start_seconds, f"estimate: local median of {_runs(len(seconds))} + {start_seconds:g} s start")
    return found


def _runs(count: int) -> str:
    return f"{count} run" + ("s" if count != 1 else "")


def _history(executions: list[Execution]) -> dict[str, list[float]]:
    """Step → durations of its succeeded runs (per training job, for a tuning step), newest first; a step that took
    an earlier run's results (a cache hit) did not run, and its near-zero span would pull the median down."""
    seconds: dict[str, list[float]] = {}
    for execution in executions:
        billed = {b.name: b for b in _billed_or_none(execution)}
        for step in execution.steps.values():
            if step.status == "Succeeded" and step.duration is not None and step.reused_from is None:
                took = step.duration
                known = billed.get(step.name)
                if known is not None and known.jobs > 1:
                    took = took * known.parallel / known.jobs  # the step's span covers jobs/parallel rounds of trainings
                seconds.setdefault(step.name, []).append(took)
    return seconds


def _billed_or_none(execution: Execution) -> list[BilledStep]:
    if not execution.definition:
        return []
    try:
        return billed_steps(parse(execution.definition), execution.parameters)[0]
    except SagelabError:
        return []


def _local_executions(settings: Settings, pipeline: str) -> list[Execution]:
    from sagelab.api.backends import LocalBackend

    try:
        return LocalBackend(settings).executions(pipeline, HISTORY * 2)
    except ExecutionError:
        return []


def _sagemaker_executions(settings: Settings, pipeline: str) -> list[Execution]:
    """The pipeline's last finished executions on SageMaker (three calls each: steps, parameters, definition)."""
    from sagelab.api.backends import SageMakerBackend

    backend = SageMakerBackend(settings)
    try:
        summaries = backend.engine.executions(pipeline, HISTORY)
    except SagelabError:  # a pipeline never upserted has no executions: local runs are what is known
        return []
    finished = [s["PipelineExecutionArn"] for s in summaries if s.get("PipelineExecutionStatus") in ("Succeeded", "Failed", "Stopped")]
    return [backend.from_snapshot(backend.engine.snapshot(arn)) for arn in finished]


def pipeline_estimate(definition: PipelineDefinition, pipeline: str, parameters: Mapping[str, Any], settings: Settings,
                      default_seconds: float, catalog: Catalog | None = None) -> Estimate:  # fmt: skip
    """The cost of one run of `definition` on SageMaker in the profile's region, before it runs.

    Raises:
        ParameterError: a parameter is unknown or of the wrong type.
    """
    catalog = catalog or load_catalog()
    steps, elsewhere = billed_steps(definition, parameters)
    durations = expected_durations(settings, pipeline) if steps else {}
    found = estimate(steps, durations, catalog, settings.region, (default_seconds, f"default ({default_seconds / 60:g} min)"))
    found.unbilled = elsewhere
    return found


def unavailable_instances(definition: PipelineDefinition, parameters: Mapping[str, Any], region: str, catalog: Catalog | None = None) -> list[Problem]:
    """Why a step's instance type cannot run in `region` for its use; empty when all can (or nothing is known against them)."""
    return unavailable(billed_steps(definition, parameters)[0], catalog or load_catalog(), region)


def execution_cost(execution: Execution, region: str, *, local: bool, catalog: Catalog | None = None) -> Estimate:
    """What a finished execution cost (on SageMaker), or would have (a local one), from its steps' timings.

    A training step counts SageMaker's `BillableTimeInSeconds` when its job reports one; a tuning step the
    span of each of its trainings; a step that reused an earlier run's results nothing. A local execution's
    steps get SageMaker's start-up added.
    """
    catalog = catalog or load_catalog()
    try:
        steps, elsewhere = billed_steps(parse(execution.definition), execution.parameters)
    except SagelabError as exc:
        raise ExecutionError(f"execution {execution.id}: its definition cannot be read for costs ({exc})") from None
    rows = []
    for billed in steps:
        step = execution.steps.get(billed.name)
        if step is None or step.duration is None or step.status in ("NotStarted", "Executing"):
            continue
        seconds, basis = _step_seconds(step, billed, local)
        rows.append(Row(billed, seconds, basis, catalog.price(billed.instance_type, billed.use, region) if billed.instance_type else None))
    return Estimate(region, rows, elsewhere)


def _step_seconds(step: Any, billed: BilledStep, local: bool) -> tuple[float, str]:
    if step.reused_from is not None:  # a cache hit starts no job: SageMaker bills nothing for it
        return 0.0, f"reused from execution {step.reused_from}: no job ran"
    if local:
        return step.duration + START_SECONDS, f"estimate: local {step.duration:.1f} s + {START_SECONDS:g} s start"
    properties = step.properties
    if billed.step_type == "Training" and properties.get("BillableTimeInSeconds"):
        return float(properties["BillableTimeInSeconds"]), "billable time SageMaker reported"
    summaries = properties.get("TrainingJobSummaries") if billed.step_type == "Tuning" else None
    if summaries:
        spans = [(s["TrainingEndTime"] - s["TrainingStartTime"]).total_seconds() for s in summaries if s.get("TrainingEndTime") and s.get("TrainingStartTime")]
        if spans:  # the trainings that ran, spread over the step's `jobs` (the tuning's maximum) so rows multiply out
            return sum(spans) / billed.jobs, f"its {len(spans)} trainings, {sum(spans):.0f} s in all"
    return float(step.duration), "the step's duration"
