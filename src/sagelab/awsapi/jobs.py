"""Training, processing, transform and hyper-parameter tuning jobs: Create, Describe, List and Stop each, and a tuning
job's training jobs (ListTrainingJobsForHyperParameterTuningJob).

A Create*Job request runs on the local engine in a worker process (`worker.py`), as `LocalEngine.run_job`: the
request without its name is exactly a pipeline step's Arguments, so the job is that step, run by the step type's
runner in a one-step execution of its own (pipeline `training-job/<name>`, its job taking the request's name). One
code path for a job, inside a pipeline or not: the same runner, container contract, sandbox, S3 endpoint, records
and log, and the same stop (SIGTERM to the worker, as Ctrl-C stops `sagelab run`). It also puts the job in
`sagelab executions`, `sagelab status` and `sagelab logs`. A runner called straight from the server would have
needed all of that again: the scheduler is what sets it up.

The jobs served are those of the records (`job_records.py`): the ones created here and the ones pipelines ran, as
SageMaker lists a pipeline's jobs with the others. Describe* answers are the job's properties once it completed
(the Describe*-shaped properties the local engine fills); before that, the request, with the status InProgress
(Stopping once a stop was asked), and Failed or Stopped with the step's failure reason at the end. Errors are
SageMaker's, codes and words: a name in use is ResourceInUse; an unknown training job a ValidationException
"Requested resource not found.", an unknown processing or transform job "Could not find requested job with name
...", an unknown tuning job ResourceNotFound. Where sagelab differs:
- a job stops only if this server started it (a pipeline's job: its whole execution stops, as StopPipelineExecution);
- a tuning job's training jobs are known once it completed, those with an objective value (SageMaker's
  TrainingJobSummaries); a running tuning job lists none;
- SecondaryStatus is Training, then the end status, with transitions to match; timestamps are the step's.
"""

from __future__ import annotations

import threading
from typing import Any

from sagelab.awsapi.errors import ApiError, ResourceInUse, ResourceNotFound, ValidationException
from sagelab.awsapi.job_records import KINDS, Job, Kind, find, jobs, request, training_jobs
from sagelab.awsapi.operations import Context, created_between, newest_first, operation, page
from sagelab.awsapi.shapes import epoch, service_model, to_wire

_reserved: set[tuple[str, str, str]] = set()  # (project, step type, name) of jobs being created: a name is taken at once
_reserving = threading.Lock()
_SECONDARY = {"InProgress": "Training"}
_ZERO_COUNTERS = {"TrainingJobStatusCounters": {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0},
                  "ObjectiveStatusCounters": {"Succeeded": 0, "Pending": 0, "Failed": 0}}  # fmt: skip


def _missing(kind: Kind, name: str) -> ApiError:
    """SageMaker's answer for a job that does not exist (the SDK and other tools rely on these codes)."""
    if kind.step_type == "Training":
        return ValidationException("Requested resource not found.")
    if kind.step_type == "Tuning":
        return ResourceNotFound(f"Amazon SageMaker can't find a tuning job called {name}. Type another name.")
    return ValidationException(f"Could not find requested job with name {name}")


def _in_use(context: Context, kind: Kind, name: str) -> ApiError:
    if kind.step_type == "Tuning":
        return ResourceInUse(f"A hyperparameter tuning job with the name, {name}, already exists. Choose a different name.")
    arn = context.arn(f"{kind.resource}/{name.lower()}")
    return ResourceInUse(f"{kind.noun.capitalize()} names must be unique within an AWS account and region, and a {kind.noun} with this "
                         f"name already exists ({arn})")  # fmt: skip


def _found(context: Context, kind: Kind, name: str) -> Job:
    job = find(context, kind, name)
    if job is None:
        raise _missing(kind, name)
    return job


def create(context: Context, kind: Kind, given: dict[str, Any]) -> dict[str, Any]:
    """Start the job in a worker and answer with its ARN once it exists (its step started)."""
    name = str(given[kind.member("Name")])
    key = (str(context.settings.root), kind.step_type, name.lower())
    with _reserving:
        if key in _reserved or find(context, kind, name) is not None:
            raise _in_use(context, kind, name)
        _reserved.add(key)
    try:
        shape = service_model("sagemaker").operation_model(f"Create{kind.prefix}Job").input_shape
        context.runs.start({"action": "job", "type": kind.step_type, "request": to_wire(shape, given)})  # the request as JSON had it
    finally:
        with _reserving:
            _reserved.discard(key)
    return {kind.member("Arn"): context.arn(f"{kind.resource}/{name.lower()}")}


def describe(context: Context, job: Job) -> dict[str, Any]:
    """The Describe*Job answer: the request (or what the job reported), its status, times and failure reason."""
    kind = job.kind
    answer = request(context, job)
    answer.update({kind.member("Name"): job.name, kind.member("Arn"): job.arn(context), kind.member("Status"): job.status,
                   "FailureReason": job.failure_reason, "CreationTime": job.created, "LastModifiedTime": job.modified,
                   kind.ended: job.ended})  # fmt: skip
    if kind.started:
        answer[kind.started] = job.created
    if kind.step_type == "Training":
        output = answer.get("OutputDataConfig", {}).get("S3OutputPath", f"s3://{context.settings.default_bucket}/")
        answer.setdefault("ModelArtifacts", {"S3ModelArtifacts": f"{output.rstrip('/')}/{job.name}/output/model.tar.gz"})
        answer["SecondaryStatus"] = _SECONDARY.get(job.status, job.status)
        answer["SecondaryStatusTransitions"] = _transitions(job)
        if job.ended is not None:
            answer["TrainingTimeInSeconds"] = answer["BillableTimeInSeconds"] = max(1, int(job.ended - job.created))
    elif kind.step_type == "Tuning":
        for member, zero in _ZERO_COUNTERS.items():
            answer.setdefault(member, zero)
    return answer


def _transitions(job: Job) -> list[dict[str, Any]]:
    """SecondaryStatusTransitions: Starting, Training, then how it ended (the SDK prints them while it waits)."""
    ended = job.ended
    steps = [{"Status": "Starting", "StartTime": job.created, "EndTime": job.created, "StatusMessage": "Preparing the instances for training"},
             {"Status": "Training", "StartTime": job.created, "EndTime": ended,
              "StatusMessage": "Training image download completed. Training in progress."}]  # fmt: skip
    if ended is not None:
        end = {"Completed": "Training job completed", "Failed": job.failure_reason or "Training job failed", "Stopped": "Training job stopped"}
        steps.append({"Status": _SECONDARY.get(job.status, job.status), "StartTime": ended, "EndTime": ended,
                      "StatusMessage": end.get(job.status, job.status)[:1024]})  # fmt: skip
    return steps


def list_jobs(context: Context, kind: Kind, given: dict[str, Any], *, order: str = "Ascending", by: str = "CreationTime") -> dict[str, Any]:
    """List*Jobs: NameContains, StatusEquals and the creation and modification time filters, sorted as asked, a page at a time."""
    contains = str(given.get("NameContains", "")).lower()

    def wanted(job: Job) -> bool:
        return (contains in job.name.lower() and given.get("StatusEquals", job.status) == job.status
                and created_between(job.created, given, "CreationTimeAfter", "CreationTimeBefore")
                and created_between(job.modified, given, "LastModifiedTimeAfter", "LastModifiedTimeBefore"))  # fmt: skip

    chosen = [job for job in jobs(context, kind) if wanted(job)]
    sort_by = given.get("SortBy", by)
    chosen.sort(key=lambda job: job.name if sort_by == "Name" else job.status if sort_by == "Status" else f"{job.created:020.6f}",
                reverse=newest_first(given, order))  # fmt: skip
    shown, following = page(chosen, given)
    operation_model = service_model("sagemaker").operation_model(f"List{kind.prefix}Jobs")
    members = operation_model.output_shape.members[kind.member("Summaries")].member.members
    summaries = []
    for job in shown:
        described = describe(context, job)
        summary = {key: value for key, value in described.items() if key in members}
        if kind.step_type == "Tuning":
            config = described.get("HyperParameterTuningJobConfig", {})
            summary.update(Strategy=config.get("Strategy", "Bayesian"), ResourceLimits=config.get("ResourceLimits"))
        summaries.append(summary)
    return {kind.member("Summaries"): summaries, "NextToken": following}


def stop(context: Context, kind: Kind, name: str) -> dict[str, Any]:
    """Stop a job this server started: its process is terminated and it ends Stopped (Stopping until then)."""
    job = _found(context, kind, name)
    if job.tuning is not None or job.status not in ("InProgress", "Stopping"):
        raise ValidationException(f"The request was rejected because the {kind.noun} is in status {job.status}.")
    if job.status == "InProgress" and not context.runs.stop(job.execution_id):
        raise ValidationException(f"The {kind.noun} {job.name} runs in another sagelab process (`sagelab run`); stop it with Ctrl-C there.")
    return {}


@operation("CreateTrainingJob")
def create_training_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return create(context, KINDS["Training"], given)


@operation("DescribeTrainingJob")
def describe_training_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return describe(context, _found(context, KINDS["Training"], given["TrainingJobName"]))


@operation("ListTrainingJobs")
def list_training_jobs(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """Oldest first by default, as SageMaker's (SortBy CreationTime, SortOrder Ascending)."""
    return list_jobs(context, KINDS["Training"], given)


@operation("StopTrainingJob")
def stop_training_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return stop(context, KINDS["Training"], given["TrainingJobName"])


@operation("CreateProcessingJob")
def create_processing_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return create(context, KINDS["Processing"], given)


@operation("DescribeProcessingJob")
def describe_processing_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return describe(context, _found(context, KINDS["Processing"], given["ProcessingJobName"]))


@operation("ListProcessingJobs")
def list_processing_jobs(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return list_jobs(context, KINDS["Processing"], given)


@operation("StopProcessingJob")
def stop_processing_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return stop(context, KINDS["Processing"], given["ProcessingJobName"])


@operation("CreateTransformJob")
def create_transform_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """The model (ModelName) is one CreateModel or a pipeline's Model step recorded, as batch transform reads it."""
    return create(context, KINDS["Transform"], given)


@operation("DescribeTransformJob")
def describe_transform_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return describe(context, _found(context, KINDS["Transform"], given["TransformJobName"]))


@operation("ListTransformJobs")
def list_transform_jobs(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """Newest first by default, as SageMaker's (SortOrder Descending)."""
    return list_jobs(context, KINDS["Transform"], given, order="Descending")


@operation("StopTransformJob")
def stop_transform_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return stop(context, KINDS["Transform"], given["TransformJobName"])


@operation("CreateHyperParameterTuningJob")
def create_hyper_parameter_tuning_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return create(context, KINDS["Tuning"], given)


@operation("DescribeHyperParameterTuningJob")
def describe_hyper_parameter_tuning_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    return describe(context, _found(context, KINDS["Tuning"], given["HyperParameterTuningJobName"]))


@operation("ListHyperParameterTuningJobs")
def list_hyper_parameter_tuning_jobs(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """By name by default, as SageMaker's (SortBy Name, SortOrder Ascending)."""
    return list_jobs(context, KINDS["Tuning"], given, by="Name")


@operation("StopHyperParameterTuningJob")
def stop_hyper_parameter_tuning_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """The running training jobs are stopped with it."""
    return stop(context, KINDS["Tuning"], given["HyperParameterTuningJobName"])


@operation("ListTrainingJobsForHyperParameterTuningJob")
def list_training_jobs_for_hyper_parameter_tuning_job(context: Context, given: dict[str, Any]) -> dict[str, Any]:
    """A completed tuning job's training jobs with an objective value; by name by default (SortBy Name, SortOrder Ascending)."""
    tuning = _found(context, KINDS["Tuning"], given["HyperParameterTuningJobName"])
    children = [child for child in training_jobs(tuning) if given.get("StatusEquals", child.status) == child.status]
    sort_by = given.get("SortBy", "Name")

    def key(child: Job) -> Any:
        assert child.summary is not None
        if sort_by == "FinalObjectiveMetricValue":
            return float(child.summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        return child.name if sort_by == "Name" else child.status if sort_by == "Status" else epoch(child.summary["CreationTime"])

    children.sort(key=key, reverse=newest_first(given, "Ascending"))
    shown, following = page(children, given)
    return {"TrainingJobSummaries": [child.summary for child in shown], "NextToken": following}
