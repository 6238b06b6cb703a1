"""What a pipeline's steps cost on SageMaker: instance type × count × hours × the hourly price.

Pure functions over a definition: which steps hold instances (Processing and the check steps,
Training, Tuning, Transform), for what use, resolved with the run's parameters; then, given each
step's expected duration, the price per step and in total. Where a duration or price comes from
(earlier runs, a default, AWS's price list) travels with each row, so a table can say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelab.cost.catalog import Catalog
from sagelab.definition.model import PipelineDefinition, Step
from sagelab.errors import Problem

# Step type → (use, where its instances are described in the arguments).
_PROCESSING = ("processing", ("ProcessingResources", "ClusterConfig"))
_RESOURCES = {
    "Processing": _PROCESSING,
    "QualityCheck": _PROCESSING,
    "ClarifyCheck": _PROCESSING,
    "Training": ("training", ("ResourceConfig",)),
    "Transform": ("transform", ("TransformResources",)),
}
NOT_SAGEMAKER = {"EMR": "billed by Amazon EMR", "Lambda": "billed by AWS Lambda"}


@dataclass(frozen=True)
class BilledStep:
    """Instances one step holds: `jobs` jobs (a tuning step's trainings), each on `count` × `instance_type`."""

    name: str
    step_type: str
    use: str
    instance_type: str | None  # None: set by an expression only known at run time
    count: int
    jobs: int = 1
    parallel: int = 1  # jobs at once (tuning): the step lasts about jobs / parallel job durations
    condition: str = ""  # "if Check is true": the step runs only on that branch
    group: str = ""  # the instance group's name, in a heterogeneous training cluster
    pointer: str = ""  # JSON pointer to its InstanceType in the definition

    @property
    def label(self) -> str:
        return f"{self.name} ({self.group})" if self.group else self.name

    @property
    def instances(self) -> int:
        return self.count * self.jobs


@dataclass(frozen=True)
class Row:
    """One step's cost: its instances, expected duration (seconds, and where that figure comes from) and price."""

    step: BilledStep
    seconds: float | None
    basis: str
    hourly: float | None  # USD per instance-hour

    @property
    def instance_hours(self) -> float | None:
        return None if self.seconds is None else self.step.instances * self.seconds / 3600

    @property
    def usd(self) -> float | None:
        hours = self.instance_hours
        return None if hours is None or self.hourly is None else hours * self.hourly


@dataclass
class Estimate:
    region: str
    rows: list[Row] = field(default_factory=list)
    unbilled: list[tuple[str, str]] = field(default_factory=list)  # (step, why it is not counted here)

    @property
    def usd(self) -> float:
        """The total over the rows with a known price."""
        return sum(row.usd or 0.0 for row in self.rows)

    @property
    def unpriced(self) -> list[Row]:
        return [row for row in self.rows if row.usd is None]

    @property
    def instance_hours(self) -> float:
        return sum(row.instance_hours or 0.0 for row in self.rows)


def billed_steps(definition: PipelineDefinition, parameters: Mapping[str, Any] | None = None) -> tuple[list[BilledStep], list[tuple[str, str]]]:
    """The steps holding SageMaker instances, with their instance types resolved from `parameters` (and the
    definition's defaults); and the steps billed elsewhere (EMR, Lambda) with why they are not counted."""
    values = definition.typed_parameters(dict(parameters or {}))
    billed, elsewhere = [], []
    for step in definition.all_steps():
        condition = _condition(step.branch[-1]) if step.branch else ""
        if step.type in NOT_SAGEMAKER:
            elsewhere.append((step.name, NOT_SAGEMAKER[step.type]))
        elif step.type == "Tuning":
            billed.extend(_tuning(step, values, condition))
        elif step.type in _RESOURCES:
            use, path = _RESOURCES[step.type]
            billed.extend(_groups(step, use, path, values, condition))
    return billed, elsewhere


def _condition(branch: str) -> str:
    """"Check:if" (a step of Check's IfSteps) → "if Check is true"."""
    name, _, outcome = branch.rpartition(":")
    return f"if {name} is {'true' if outcome == 'if' else 'false'}"


def _groups(step: Step, use: str, path: tuple[str, ...], values: Mapping[str, Any], condition: str,
            jobs: int = 1, parallel: int = 1) -> list[BilledStep]:  # fmt: skip
    """One row per instance group (heterogeneous training clusters), else one for the step."""
    resources = _dig(step.arguments, path)
    where = "/".join((step.pointer, "Arguments", *path))
    groups = resources.get("InstanceGroups")
    placed = [(g, f"{where}/InstanceGroups/{i}") for i, g in enumerate(groups) if isinstance(g, dict)] if isinstance(groups, list) else [(resources, where)]
    rows = []
    for group, pointer in placed:
        name = str(_value(group.get("InstanceGroupName"), values) or "") if len(placed) > 1 else ""
        kind = _value(group.get("InstanceType"), values)
        count = _value(group.get("InstanceCount", 1), values)
        rows.append(BilledStep(step.name, step.type, use, kind if isinstance(kind, str) else None, _integer(count), jobs, parallel, condition, name,
                               f"{pointer}/InstanceType"))  # fmt: skip
    return rows


def _tuning(step: Step, values: Mapping[str, Any], condition: str) -> list[BilledStep]:
    limits = _dig(step.arguments, ("HyperParameterTuningJobConfig", "ResourceLimits"))
    jobs = _integer(_value(limits.get("MaxNumberOfTrainingJobs", 1), values))
    parallel = min(jobs, _integer(_value(limits.get("MaxParallelTrainingJobs", 1), values)))
    path = ("TrainingJobDefinitions", "0", "ResourceConfig") if step.arguments.get("TrainingJobDefinitions") else ("TrainingJobDefinition", "ResourceConfig")
    return _groups(step, "training", path, values, condition, jobs, parallel)


def _dig(arguments: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    found: Any = arguments
    for key in path:
        if isinstance(found, list):
            found = found[int(key)] if found else {}
        else:
            found = found.get(key, {}) if isinstance(found, dict) else {}
    return found if isinstance(found, dict) else {}


def _value(raw: Any, values: Mapping[str, Any]) -> Any:
    """A literal, or a parameter's value; None for any other expression (a step property, a join)."""
    if isinstance(raw, dict):
        reference = raw.get("Get")
        if len(raw) == 1 and isinstance(reference, str) and reference.startswith("Parameters."):
            return values.get(reference.removeprefix("Parameters."))
        return None
    return raw


def _integer(value: Any) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def estimate(steps: list[BilledStep], durations: Mapping[str, tuple[float, str]], catalog: Catalog, region: str,
             default: tuple[float, str]) -> Estimate:  # fmt: skip
    """Price each step for `durations` (step → seconds one job takes, and where that figure comes from), `default` where none."""
    rows = []
    for step in steps:
        seconds, basis = durations.get(step.name, default)
        hourly = catalog.price(step.instance_type, step.use, region) if step.instance_type else None
        rows.append(Row(step, seconds, basis, hourly))
    return Estimate(region, rows)


def unavailable(steps: list[BilledStep], catalog: Catalog, region: str) -> list[Problem]:
    """Why a step's instance type cannot be used: not a type for its use, or not offered in the region."""
    problems = []
    for step in steps:
        kind = step.instance_type
        if kind is None or kind.startswith("local"):
            continue
        known = catalog.get(kind)
        what = f"step {step.label}: {kind}"
        if known is None:
            problems.append(Problem(step.pointer, f"{what} is not a SageMaker instance type (none of the {len(catalog.types)} in sagelab's catalog); "
                            "`sagelab instances` lists them"))  # fmt: skip
        elif step.use not in known.uses:
            uses = ", ".join(sorted(known.uses))
            problems.append(Problem(step.pointer, f"{what} cannot be used for {step.use} (SageMaker takes it for {uses}); "
                            f"`sagelab instances --use {step.use}` lists those that can"))  # fmt: skip
        elif catalog.offered(kind, step.use, region) is False:
            problems.append(Problem(step.pointer, f"{what} is not offered for {step.use} in {region} (AWS's price list for the region lacks it); "
                            f"`sagelab instances --use {step.use} --region {region}` lists those that are"))  # fmt: skip
    return problems
