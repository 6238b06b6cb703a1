"""Jobs as the project's execution records hold them: every Processing, Training, Transform and Tuning step that ran a
job, whoever started it — a Create*Job request through the API, or a pipeline (`sagelab run`, StartPipelineExecution).

A job is a step record: its name the step's job name (a tuning job's, at most 32 characters, as `TuningRunner` names
it), its status the step's, its request the step's resolved Arguments once it completed (its properties are the
Describe* answer's) and, until then, the Arguments its definition gives. The training jobs of a completed tuning job
are jobs too, from the tuning job's TrainingJobSummaries. `jobs.py` answers the API's operations from these;
`logs.py` serves their logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.awsapi.operations import Context
from sagelab.awsapi.shapes import epoch
from sagelab.definition.expressions import EXPRESSION_KEYS
from sagelab.errors import ExecutionError


@dataclass(frozen=True)
class Kind:
    """One type of job: its step type in the local engine and its names in the API."""

    step_type: str
    prefix: str  # members are <prefix>JobName, <prefix>JobArn, <prefix>JobStatus; the list <prefix>JobSummaries
    noun: str  # "training job", in messages
    resource: str  # of its ARN
    started: str | None  # the Describe* member of its start time, and of its end time
    ended: str
    log_group: str | None  # its CloudWatch log group

    def member(self, suffix: str) -> str:
        return f"{self.prefix}Job{suffix}"


KINDS = {
    "Training": Kind("Training", "Training", "training job", "training-job", "TrainingStartTime", "TrainingEndTime", "/aws/sagemaker/TrainingJobs"),
    "Processing": Kind("Processing", "Processing", "processing job", "processing-job", "ProcessingStartTime", "ProcessingEndTime",
                       "/aws/sagemaker/ProcessingJobs"),
    "Transform": Kind("Transform", "Transform", "transform job", "transform-job", "TransformStartTime", "TransformEndTime",
                      "/aws/sagemaker/TransformJobs"),
    "Tuning": Kind("Tuning", "HyperParameterTuning", "hyper-parameter tuning job", "hyper-parameter-tuning-job", None,
                   "HyperParameterTuningEndTime", None),
}  # fmt: skip
# A step's status → its job's. A step whose process died (Interrupted) ran a job that failed.
_STATUSES = {"Executing": "InProgress", "Succeeded": "Completed", "Failed": "Failed", "Stopped": "Stopped", "Interrupted": "Failed"}
FINISHED = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class Job:
    """A job of the records, as the API describes it."""

    kind: Kind
    name: str
    execution_id: str
    step: Any  # its StepRecord (a tuning job's, for one of its training jobs)
    status: str  # InProgress, Stopping, Completed, Failed or Stopped
    summary: dict[str, Any] | None = None  # a tuning job's training job: its HyperParameterTrainingJobSummary
    tuning: Job | None = None  # ... and its tuning job

    @property
    def created(self) -> float:
        if self.summary is not None:
            return epoch(self.summary["CreationTime"])
        return float(self.step.started or 0.0)

    @property
    def ended(self) -> float | None:
        if self.summary is not None:
            return epoch(self.summary["TrainingEndTime"]) if self.summary.get("TrainingEndTime") else None
        return float(self.step.ended) if self.status in FINISHED and self.step.ended else None

    @property
    def modified(self) -> float:
        return self.ended or self.created

    @property
    def failure_reason(self) -> str | None:
        reason = self.step.failure_reason if self.status == "Failed" and self.summary is None else None
        return reason[:1024] if reason else None  # FailureReason's limit

    def arn(self, context: Context) -> str:
        return context.arn(f"{self.kind.resource}/{self.name.lower()}")

    def log(self, context: Context) -> Path | None:
        """Its log file: the step's, or the tuning job's folder's for one of its training jobs."""
        if self.tuning is not None:
            return context.settings.state_dir / "jobs" / str(self.step.job_name) / "logs" / f"{self.name}.log"
        return Path(self.step.log_path) if self.step.log_path else None


def jobs(context: Context, kind: Kind) -> list[Job]:
    """Every job of `kind` in the project's records, oldest first; none when nothing has run yet."""
    from sagelab.engines.local.tuning import tuning_name

    try:
        records = context.backend.records()
    except ExecutionError:
        return []
    try:
        found = []
        for execution_id, step in records.job_steps(kind.step_type):
            if step.status not in _STATUSES or step.reused_from:
                continue  # not started, or results taken from another execution's job (a cache hit, a selective execution)
            name = tuning_name(execution_id, step.name, str(step.job_name)) if kind.step_type == "Tuning" else step.job_name
            status = _STATUSES[step.status]
            if status == "InProgress" and context.runs.stopping(execution_id):
                status = "Stopping"
            found.append(Job(kind, str(name), execution_id, step, status))
        if kind.step_type == "Training":
            found += [child for tuning in jobs(context, KINDS["Tuning"]) for child in training_jobs(tuning)]
        return found
    finally:
        records.close()


def training_jobs(tuning: Job) -> list[Job]:
    """The training jobs a completed tuning job reports (those with an objective value, best first, as SageMaker lists them)."""
    summaries = (tuning.step.properties or {}).get("TrainingJobSummaries") or [] if tuning.status == "Completed" else []
    return [Job(KINDS["Training"], str(s["TrainingJobName"]), tuning.execution_id, tuning.step, str(s.get("TrainingJobStatus", "Completed")),
                summary=s, tuning=tuning) for s in summaries]  # fmt: skip


def find(context: Context, kind: Kind, name: str) -> Job | None:
    """The job of `kind` named `name` (job names are unique whatever their case, as their ARNs are lowercase)."""
    wanted = name.lower()
    return next((job for job in reversed(jobs(context, kind)) if job.name.lower() == wanted), None)


def request(context: Context, job: Job) -> dict[str, Any]:
    """The job's Create*Job request: what it ran with once it completed, else its step's Arguments as its definition gives
    them (a pipeline step's values that are still expressions left out)."""
    if job.tuning is not None:
        return _training_request(context, job)
    if job.status == "Completed" and job.step.properties:
        return dict(job.step.properties)
    records = context.backend.records()
    try:
        definition = records.execution(job.execution_id).definition
    finally:
        records.close()
    arguments = _arguments(definition, job.step.name)
    return dict(_literal(arguments) or {})


def _training_request(context: Context, job: Job) -> dict[str, Any]:
    """A tuning job's training job: the CreateTrainingJob request the tuning job made (its definition's, and its hyperparameters)."""
    from sagelab.containers.contract import TUNING_OBJECTIVE
    from sagelab.engines.local.tuning_search import parse_definitions

    assert job.summary is not None and job.tuning is not None
    tuning = request(context, job.tuning)
    definitions = parse_definitions(tuning)
    chosen = next((d for d in definitions if d.name == job.summary.get("TrainingJobDefinitionName")), definitions[0])
    metric = chosen.objective["MetricName"]
    hyperparameters = {**chosen.static, **job.summary.get("TunedHyperParameters", {}), TUNING_OBJECTIVE: metric}
    output = chosen.request.get("OutputDataConfig", {}).get("S3OutputPath", "")
    return {**chosen.request, "HyperParameters": {k: str(v) for k, v in hyperparameters.items()}, "TuningJobArn": job.tuning.arn(context),
            "ModelArtifacts": {"S3ModelArtifacts": f"{output.rstrip('/')}/{job.name}/output/model.tar.gz"},
            "FinalMetricDataList": [{"MetricName": metric, "Value": job.summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                                     "Timestamp": job.summary.get("TrainingEndTime")}],
            "CreationTime": job.summary.get("CreationTime"), "TrainingStartTime": job.summary.get("TrainingStartTime"),
            "TrainingEndTime": job.summary.get("TrainingEndTime")}  # fmt: skip


def _arguments(definition: dict[str, Any], step: str) -> dict[str, Any]:
    """A step's Arguments in a definition, a condition's branches included."""
    pending = list(definition.get("Steps", []))
    while pending:
        raw = pending.pop()
        if not isinstance(raw, dict):
            continue
        given = raw.get("Arguments")
        arguments: dict[str, Any] = given if isinstance(given, dict) else {}
        if raw.get("Name") == step:
            return dict(arguments)
        pending += list(arguments.get("IfSteps", [])) + list(arguments.get("ElseSteps", []))
    return {}


def _literal(value: Any) -> Any:
    """`value` without its expressions (`Get`, `Std:Join`, `Std:JsonGet`): None for an expression."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS:
            return None
        return {key: kept for key, item in value.items() if (kept := _literal(item)) is not None}
    if isinstance(value, list):
        return [kept for item in value if (kept := _literal(item)) is not None]
    return value
