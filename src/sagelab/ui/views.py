"""The JSON shapes of the UI's API, as pydantic models made from the Python API's objects.

They are the OpenAPI schema (`/api/openapi.json`) and what the pages render; field names follow the
Python API's (`Execution.summary()`, `Step`), so a notebook user reads the same words.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from sagelab.api.model import Execution, Step

DRIFT_MARK = "drift from"  # the step log's line naming packages that differ from the image's (containers/environments)


class StepSummary(BaseModel):
    name: str
    type: str
    status: str
    started: datetime | None = None
    ended: datetime | None = None
    duration: float | None = Field(None, description="Seconds the step ran (so far, while it runs).")
    failure_reason: str | None = None
    job_name: str | None = None
    attempts: int = 0


class StepDetail(StepSummary):
    execution: str
    pipeline: str
    arguments: dict[str, Any] = Field(description="The step's Arguments as the definition gives them (expressions unresolved).")
    properties: dict[str, Any] = Field(description="The step's Describe* response.")
    outputs: dict[str, str] = Field(description="Output name → S3 URI.")
    metrics: dict[str, float]
    drift: list[str] = Field(description="Lines of the step's log naming packages that differ from its image's.")


class ExecutionSummary(BaseModel):
    id: str
    pipeline: str
    status: str
    started: datetime | None = None
    ended: datetime | None = None
    duration: float | None = None
    failure_reason: str | None = None
    parameters: dict[str, Any]
    steps: dict[str, str] = Field(description="Step name → status.")


class ExecutionDetail(ExecutionSummary):
    arn: str
    finished: bool
    step_list: list[StepSummary]
    outputs: dict[str, dict[str, str]]


class ExecutionPage(BaseModel):
    items: list[ExecutionSummary]
    offset: int
    limit: int
    more: bool = Field(description="Whether a next page exists (ask with offset + limit).")


class PipelineSummary(BaseModel):
    name: str
    executions: int | None = Field(None, description="How many executions it has (not known for SageMaker)")
    last_status: str
    last_started: datetime | None


class Comparison(BaseModel):
    executions: list[ExecutionSummary]
    parameters: dict[str, list[Any]] = Field(description="Parameter → its value in each execution, in order (null where absent).")
    metrics: dict[str, list[float | None]] = Field(description="Metric → its value in each execution, in order.")


class Preview(BaseModel):
    uri: str
    size: int
    kind: str = Field(description="csv, json, parquet, text, or binary (no preview).")
    columns: list[str] = []
    rows: list[list[Any]] = []
    text: str = ""
    truncated: bool = False


class StartRequest(BaseModel):
    pipeline: str = Field(description="A pipeline name: its latest execution's definition is run again.")
    parameters: dict[str, Any] = {}
    from_step: str | None = Field(None, description="Run this step and what follows it, reusing the rest from `reference`.")
    reference: str | None = Field(None, description="The execution whose results `from_step` reuses.")


class Started(BaseModel):
    execution: str
    pipeline: str


class Problem(BaseModel):
    detail: str = Field(description="What is wrong and how to fix it.")


class Said(BaseModel):
    message: str


class StatusChange(BaseModel):
    status: str = Field(pattern="^(Approved|Rejected)$")
    reason: str | None = None


class DeployRequest(BaseModel):
    model: str = Field(description="A model package version, `group/version`.")
    name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class Invocation(BaseModel):
    body: str
    content_type: str = "text/csv"
    accept: str | None = None


class InvocationResult(BaseModel):
    status: int
    content_type: str
    body: str


class EndpointView(BaseModel):
    name: str
    status: str
    model: str | None = None
    url: str | None = None
    uptime: float | None = None
    details: dict[str, Any] = {}


def step_summary(step: Step) -> StepSummary:
    return StepSummary(name=step.name, type=step.type, status=step.status, started=step.started, ended=step.ended, duration=step.duration,
                       failure_reason=step.failure_reason, job_name=step.job_name, attempts=step.attempts)  # fmt: skip


def execution_summary(execution: Execution) -> ExecutionSummary:
    return ExecutionSummary(id=execution.id, pipeline=execution.pipeline, status=execution.status, started=execution.started,
                            ended=execution.ended, duration=execution.duration, failure_reason=execution.failure_reason,
                            parameters=execution.parameters, steps={s.name: s.status for s in execution.steps.values()})  # fmt: skip


def execution_detail(execution: Execution) -> ExecutionDetail:
    return ExecutionDetail(**execution_summary(execution).model_dump(), arn=execution.arn, finished=execution.finished,
                           step_list=[step_summary(s) for s in execution.steps.values()], outputs=execution.outputs)  # fmt: skip


def step_detail(execution: Execution, step: Step, log: list[str]) -> StepDetail:
    raw = next((s for s in _all_steps(execution.definition.get("Steps", [])) if s.get("Name") == step.name), {})
    return StepDetail(**step_summary(step).model_dump(), execution=execution.id, pipeline=execution.pipeline, arguments=jsonable(raw.get("Arguments", {})),
                      properties=jsonable(step.properties), outputs=step.outputs, metrics=step.metrics,
                      drift=[line.strip() for line in log if DRIFT_MARK in line])  # fmt: skip


def comparison(executions: list[Execution]) -> Comparison:
    """The executions oldest first (a chart across them reads as over time), their parameters and metrics by name."""
    executions = sorted(executions, key=lambda e: e.started.timestamp() if e.started else 0.0)
    metrics = [e.metrics for e in executions]
    parameter_names = sorted({name for e in executions for name in e.parameters})
    metric_names = sorted({name for found in metrics for name in found})
    return Comparison(executions=[execution_summary(e) for e in executions],
                      parameters={name: [e.parameters.get(name) for e in executions] for name in parameter_names},
                      metrics={name: [found.get(name) for found in metrics] for name in metric_names})  # fmt: skip


def _all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definition's steps, with those inside conditions' branches."""
    found = []
    for step in steps:
        found.append(step)
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            found.extend(_all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])))
    return found


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
