"""A pipeline step's job log from CloudWatch Logs, where SageMaker's jobs write it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sagelab.engines.sagemaker.aws_errors import is_not_found
from sagelab.engines.sagemaker.clients import AwsClients
from sagelab.errors import AwsError, ExecutionError

# Jobs a pipeline starts are named pipelines-<execution id>-<step>-<random>; the id is lowercase.
_PIPELINE_JOB = re.compile(r"^pipelines-[a-z0-9]+-")
# Metadata key → (log group, Describe call, its name field). Each instance of a job writes
# streams named `<job name>/<host>...` into its kind's group.
LOG_SOURCES = {
    "ProcessingJob": ("/aws/sagemaker/ProcessingJobs", "DescribeProcessingJob", "ProcessingJobName"),
    "TrainingJob": ("/aws/sagemaker/TrainingJobs", "DescribeTrainingJob", "TrainingJobName"),
    "TransformJob": ("/aws/sagemaker/TransformJobs", "DescribeTransformJob", "TransformJobName"),
}


def step_logs(clients: AwsClients, step: dict[str, Any], page_size: int | None = None) -> Iterator[str]:
    """The log lines of the job a step ran (one ListPipelineExecutionSteps entry), stream by stream.

    With several streams (instances), each line starts with `[<host>] `. A job that has not
    written anything yet has no lines.
    """
    metadata: dict[str, Any] = step.get("Metadata") or {}
    kind = next((key for key in LOG_SOURCES if key in metadata), None)
    if kind is None:
        what = next(iter(metadata), "no job yet")
        reason = f"; it failed: {step['FailureReason']}" if step.get("FailureReason") else ""
        raise ExecutionError(
            f"step {step['StepName']} ({what}, {step.get('StepStatus', 'Starting')}) ran no processing, training or "
            f"transform job, so it has no job log{reason}"
        )
    return _lines(clients, kind, str(metadata[kind]["Arn"]), page_size)


def _lines(clients: AwsClients, kind: str, job_arn: str, page_size: int | None) -> Iterator[str]:
    group, describe, name_field = LOG_SOURCES[kind]
    job = _job_name(clients, describe, name_field, job_arn)
    streams = _streams(clients, group, f"{job}/")
    pipeline_job = _PIPELINE_JOB.match(job)
    if not streams and pipeline_job:  # the job's exact case is unknown: match case-insensitively within the execution
        streams = [s for s in _streams(clients, group, pipeline_job.group(0)) if s.split("/", 1)[0].lower() == job.lower()]
    for stream in streams:
        host = stream.split("/", 1)[1] if len(streams) > 1 else None
        for message in _events(clients, group, stream, page_size):
            yield f"[{host}] {message}" if host else message


def _job_name(clients: AwsClients, describe: str, name_field: str, job_arn: str) -> str:
    """The job's name as it was created: ARNs are lowercase, log stream names keep the case."""
    name = job_arn.rsplit("/", 1)[-1]
    try:
        return str(clients.call("sagemaker", describe, job_arn, **{name_field: name})[name_field])
    except AwsError as exc:
        if is_not_found(exc):
            return name
        raise


def _streams(clients: AwsClients, group: str, prefix: str) -> list[str]:
    streams: list[str] = []
    try:
        for page in clients.pages("logs", "DescribeLogStreams", f"log group {group}", logGroupName=group, logStreamNamePrefix=prefix):
            streams.extend(stream["logStreamName"] for stream in page.get("logStreams", []))
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":  # the group appears with the account's first job of the kind
            return []
        raise
    return streams


def _events(clients: AwsClients, group: str, stream: str, page_size: int | None) -> Iterator[str]:
    # GetLogEvents pages forward until it returns the token it was given (or nothing).
    request: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    if page_size:
        request["limit"] = page_size
    while True:
        response = clients.call("logs", "GetLogEvents", f"log stream {group}/{stream}", **request)
        events = response.get("events", [])
        for event in events:
            yield str(event.get("message", "")).rstrip("\n")
        following = response.get("nextForwardToken")
        if not events or not following or following == request.get("nextToken"):
            return
        request["nextToken"] = following
