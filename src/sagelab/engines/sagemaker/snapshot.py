"""What `watch` hands its listener: an execution on SageMaker and its steps, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sagelab.errors import ExecutionError

# PipelineExecutionStatus values after which nothing changes any more.
FINISHED = ("Succeeded", "Failed", "Stopped", "CompletedWithFailures")
# The step type each ListPipelineExecutionSteps Metadata key stands for, where the two differ.
_STEP_TYPES = {
    "ProcessingJob": "Processing",
    "TrainingJob": "Training",
    "TransformJob": "Transform",
    "TuningJob": "Tuning",
    "AutoMLJob": "AutoML",
}


@dataclass(frozen=True)
class StepSnapshot:
    """One step of an execution: its status (Starting, Executing, Stopping, Stopped, Failed,
    Succeeded), start and end (Unix seconds), failure reason, and the job it ran."""

    name: str
    status: str
    type: str | None = None  # Processing, Training, Condition, RegisterModel, ... (from the step's Metadata)
    started: float | None = None
    ended: float | None = None
    failure_reason: str | None = None
    job_arn: str | None = None  # Metadata.<ProcessingJob|TrainingJob|...>.Arn
    attempts: int | None = None
    cached_from: str | None = None  # the execution whose result a cache hit reused


@dataclass(frozen=True)
class ExecutionSnapshot:
    """An execution: status (Executing, Stopping, Stopped, Failed, Succeeded, CompletedWithFailures),
    start and end (Unix seconds), failure reason, and its steps in the order they started."""

    arn: str
    pipeline: str
    status: str
    started: float | None
    ended: float | None
    failure_reason: str | None
    steps: tuple[StepSnapshot, ...]
    display_name: str | None = None

    @property
    def id(self) -> str:
        """The execution id, the ARN's last part."""
        return self.arn.rsplit("/", 1)[-1]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def step(self, name: str) -> StepSnapshot:
        for step in self.steps:
            if step.name == name:
                return step
        known = ", ".join(s.name for s in self.steps) or "none has started yet"
        raise ExecutionError(f"execution {self.id} has no step {name!r}; its steps: {known}")


def step_snapshot(step: dict[str, Any]) -> StepSnapshot:
    """A StepSnapshot from one ListPipelineExecutionSteps entry."""
    metadata: dict[str, Any] = step.get("Metadata") or {}
    kind = next(iter(metadata), None)
    job_arn = next((value["Arn"] for value in metadata.values() if isinstance(value, dict) and value.get("Arn")), None)
    cache = step.get("CacheHitResult") or {}
    return StepSnapshot(
        name=step["StepName"],
        status=step.get("StepStatus") or "Starting",
        type=_STEP_TYPES.get(kind, kind) if kind else None,
        started=_seconds(step.get("StartTime")),
        ended=_seconds(step.get("EndTime")),
        failure_reason=step.get("FailureReason") or None,
        job_arn=job_arn,
        attempts=step.get("AttemptCount"),
        cached_from=cache.get("SourcePipelineExecutionArn"),
    )


def execution_snapshot(described: dict[str, Any], steps: list[dict[str, Any]]) -> ExecutionSnapshot:
    """An ExecutionSnapshot from DescribePipelineExecution and ListPipelineExecutionSteps."""
    status = described.get("PipelineExecutionStatus") or "Executing"
    pipeline_arn = described.get("PipelineArn") or described["PipelineExecutionArn"].split("/execution/")[0]
    return ExecutionSnapshot(
        arn=described["PipelineExecutionArn"],
        pipeline=pipeline_arn.rsplit("/", 1)[-1],
        status=status,
        started=_seconds(described.get("CreationTime")),
        ended=_seconds(described.get("LastModifiedTime")) if status in FINISHED else None,
        failure_reason=described.get("FailureReason") or None,
        steps=tuple(step_snapshot(step) for step in steps),
        display_name=described.get("PipelineExecutionDisplayName") or None,
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None
