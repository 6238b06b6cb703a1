"""Pipeline executions: Start, Describe, List, Stop, Retry, ListPipelineExecutionSteps, and an execution's parameters and definition.

Executions are the project's execution records, whoever started them: StartPipelineExecution runs the
pipeline on the local engine in a worker process (`worker.py`) and answers as soon as the execution
exists; `sagelab executions` lists it, and an execution `sagelab run` started is described and listed
here alike. Where sagelab differs from SageMaker:
- StopPipelineExecution stops executions this server started (another process's `sagelab run` stops
  with Ctrl-C in its terminal); an execution whose process died is reported Failed, with the reason;
- steps that were skipped (a condition's other branch) or never started are not listed, as on
  SageMaker; a step's Metadata names its job, model, package or endpoint ARN, a condition's Outcome
  and a Fail step's ErrorMessage; QualityCheck, ClarifyCheck and EMR metadata hold what the local
  step reports of their members;
- PipelineExperimentConfig is given when the definition has one, with its Execution variables
  resolved; CreatedBy/LastModifiedBy are empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sagelab.awsapi.errors import ConflictException, ResourceNotFound, ValidationException
from sagelab.awsapi.operations import Context, created_between, newest_first, operation, page
from sagelab.awsapi.pipelines import find, recorded, visible
from sagelab.awsapi.state import ExecutionRow
from sagelab.errors import ExecutionError

# Step type → (Metadata member, the property holding its ARN, the resource of a job ARN made from the job name).
_RESOURCES = {
    "Processing": ("ProcessingJob", "ProcessingJobArn", "processing-job"),
    "Training": ("TrainingJob", "TrainingJobArn", "training-job"),
    "Transform": ("TransformJob", "TransformJobArn", "transform-job"),
    "Tuning": ("TuningJob", "HyperParameterTuningJobArn", "hyper-parameter-tuning-job"),
    "Model": ("Model", "ModelArn", None),
    "RegisterModel": ("RegisterModel", "ModelPackageArn", None),
    "EndpointConfig": ("EndpointConfig", "EndpointConfigArn", None),
    "Endpoint": ("Endpoint", "EndpointArn", None),
}
_LISTED = {"Executing": "Executing", "Succeeded": "Succeeded", "Failed": "Failed", "Stopped": "Stopped", "Interrupted": "Failed"}


def execution_arn(context: Context, pipeline: str, execution_id: str) -> str:
    return context.arn(f"pipeline/{pipeline.lower()}/execution/{execution_id}")


def _record(context: Context, arn: str) -> Any:
    """The execution record an execution ARN names.

    Raises:
        ResourceNotFound: no such execution in this project (or an ARN of another region or account).
    """
    missing = ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
    prefix = context.arn("pipeline/")
    if not arn.startswith(prefix) or "/execution/" not in arn:
        raise missing
    pipeline, _, execution_id = arn[len(prefix) :].partition("/execution/")
    try:
        records = context.backend.records()
    except ExecutionError:
        raise missing from None
    try:
        record = records.execution(execution_id) if execution_id.isalnum() else None
    except ExecutionError:
        record = None
    finally:
        records.close()
    if record is None or record.id != execution_id or record.pipeline.lower() != pipeline:
        raise missing
    return record


def _steps(context: Context, execution_id: str) -> list[Any]:
    records = context.backend.records()
    try:
        return list(records.steps(execution_id))
    finally:
        records.close()


def _status(context: Context, record: Any) -> str:
    if record.status == "Executing":
        return "Stopping" if context.runs.stopping(record.id) else "Executing"
    return "Failed" if record.status == "Interrupted" else str(record.status)


def _display_name(row: ExecutionRow | None, record: Any) -> str:
    return row.display_name if row and row.display_name else f"execution-{int(record.started * 1000)}"


def _parameter(value: Any) -> str:
    """A parameter's value as SageMaker hands it back: a string."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


@operation("StartPipelineExecution")
def start_pipeline_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Start an execution on the local engine and answer with its ARN at once (the same ARN again for a retried ClientRequestToken).

    PipelineParameters, PipelineVersionId, ParallelismConfiguration (the steps run at once) and
    SelectiveExecutionConfig are honoured; MlflowExperimentName is ignored.
    """
    found = find(context, request["PipelineName"])
    token = request["ClientRequestToken"]
    earlier = context.state.by_token(found.name, token)
    if earlier is not None:
        return {"PipelineExecutionArn": execution_arn(context, found.name, earlier)}
    definition, version = found.definition, found.version
    if "PipelineVersionId" in request:
        kept = context.state.definition(found.name, request["PipelineVersionId"])
        if kept is None:
            raise ResourceNotFound(f"Pipeline '{context.arn('pipeline/' + found.name.lower())}' has no version {request['PipelineVersionId']}.")
        definition, version = kept, request["PipelineVersionId"]
    select = None
    if "SelectiveExecutionConfig" in request:
        config = request["SelectiveExecutionConfig"]
        source = _record(context, config["SourcePipelineExecutionArn"]) if config.get("SourcePipelineExecutionArn") else None
        select = {"steps": [s["StepName"] for s in config["SelectedSteps"]], "reference": source.id if source else None}
    parallelism = request.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps") or (found.row.parallelism if found.row else None)
    parameters = {p["Name"]: p["Value"] for p in request.get("PipelineParameters", [])}
    execution_id = context.runs.start({"action": "start", "pipeline": found.name, "definition": definition, "parameters": parameters,
                                       "concurrency": parallelism, "select": select})  # fmt: skip
    context.state.add_execution(ExecutionRow(execution_id, found.name, request.get("PipelineExecutionDisplayName"),
                                             request.get("PipelineExecutionDescription"), token, version))  # fmt: skip
    return {"PipelineExecutionArn": execution_arn(context, found.name, execution_id)}


@operation("DescribePipelineExecution")
def describe_pipeline_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """An execution's status, failure reason and times (LastModifiedTime: its end, or its latest step change while it runs)."""
    record = _record(context, request["PipelineExecutionArn"])
    row = context.state.execution(record.id)
    status = _status(context, record)
    changes = [t for s in _steps(context, record.id) for t in (s.started, s.ended) if t]
    return {
        "PipelineArn": context.arn(f"pipeline/{record.pipeline.lower()}"),
        "PipelineExecutionArn": execution_arn(context, record.pipeline, record.id),
        "PipelineExecutionDisplayName": _display_name(row, record),
        "PipelineExecutionStatus": status,
        "PipelineExecutionDescription": row.description if row else None,
        "PipelineExperimentConfig": _experiment(record),
        "FailureReason": record.failure_reason if status in ("Failed", "Stopped") else None,
        "CreationTime": record.started,
        "LastModifiedTime": record.ended or max([record.started, *changes]),
        "CreatedBy": {},
        "LastModifiedBy": {},
        "PipelineVersionId": row.version if row else None,
    }


def _experiment(record: Any) -> dict[str, Any] | None:
    """The definition's PipelineExperimentConfig with its `Execution.*` variables resolved, as SageMaker reports it."""
    config = record.definition.get("PipelineExperimentConfig")
    if not isinstance(config, dict):
        return None
    variables = {"Execution.PipelineName": record.pipeline, "Execution.PipelineExecutionId": record.id}
    resolved = {}
    for key in ("ExperimentName", "TrialName"):
        value = config.get(key)
        if isinstance(value, dict):
            value = variables.get(str(value.get("Get")))
        if isinstance(value, str):
            resolved[key] = value
    return resolved


@operation("ListPipelineExecutions")
def list_pipeline_executions(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A pipeline's executions, newest first by default, 10 a page unless MaxResults says otherwise."""
    records = recorded(context)
    found = find(context, request["PipelineName"], records)
    rows = context.state.executions()
    mine = [r for r in visible(context, records) if r.pipeline == found.name and created_between(r.started, request)]
    by_arn = request.get("SortBy") == "PipelineExecutionArn"
    mine.sort(key=lambda r: r.id if by_arn else f"{r.started:020.6f}", reverse=newest_first(request))
    shown, following = page(mine, request)
    summaries = []
    for record in shown:
        row = rows.get(record.id)
        status = _status(context, record)
        summaries.append({"PipelineExecutionArn": execution_arn(context, record.pipeline, record.id), "StartTime": record.started,
                          "PipelineExecutionStatus": status, "PipelineExecutionDescription": row.description if row else None,
                          "PipelineExecutionDisplayName": _display_name(row, record),
                          "PipelineExecutionFailureReason": record.failure_reason if status in ("Failed", "Stopped") else None})  # fmt: skip
    return {"PipelineExecutionSummaries": summaries, "NextToken": following}


@operation("ListPipelineExecutionSteps")
def list_pipeline_execution_steps(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The steps that started, newest first by default, 100 a page (the SDK's `list_steps()` reads only the first)."""
    if "PipelineExecutionArn" not in request:
        raise ValidationException("PipelineExecutionArn is required: the execution whose steps to list")
    record = _record(context, request["PipelineExecutionArn"])
    declared = dict(_declared(record.definition))
    steps = [s for s in _steps(context, record.id) if s.status in _LISTED and s.started]
    steps.sort(key=lambda s: s.started, reverse=newest_first(request))
    shown, following = page(steps, request, default=100)
    listed = []
    for step in shown:
        status = _LISTED[step.status]
        if status == "Executing" and context.runs.stopping(record.id):
            status = "Stopping"
        raw = declared.get(step.name, {})
        entry: dict[str, Any] = {
            "StepName": step.name,
            "StepDisplayName": raw.get("DisplayName"),
            "StepDescription": raw.get("Description"),
            "StartTime": step.started,
            "EndTime": step.ended if status not in ("Executing", "Stopping") else None,
            "StepStatus": status,
            "FailureReason": step.failure_reason if status in ("Failed", "Stopped") else None,
            "Metadata": _metadata(context, step),
            "AttemptCount": step.attempts or None,
        }
        reused = step.reused_from
        if reused:
            member = "SelectiveExecutionResult" if "not selected" in (step.note or "") else "CacheHitResult"
            entry[member] = {"SourcePipelineExecutionArn": execution_arn(context, record.pipeline, reused)}
        listed.append(entry)
    return {"PipelineExecutionSteps": listed, "NextToken": following}


def _declared(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, raw step) for every step of a definition, a condition's branches included."""
    pending = list(definition.get("Steps", []))
    while pending:
        step = pending.pop()
        if isinstance(step, dict) and "Name" in step:
            yield str(step["Name"]), step
            arguments = step.get("Arguments")
            if isinstance(arguments, dict):
                pending += list(arguments.get("IfSteps", [])) + list(arguments.get("ElseSteps", []))


def _metadata(context: Context, step: Any) -> dict[str, Any]:
    """The step's Metadata: the ARN of what it made or ran, a condition's outcome, a Fail step's message."""
    properties = step.properties or {}
    if step.type in _RESOURCES:
        member, field, resource = _RESOURCES[step.type]
        made = properties.get(field) or (context.arn(f"{resource}/{step.job_name.lower()}") if resource and step.job_name else None)
        return {member: {"Arn": made}} if made else {}
    if step.type == "Condition" and "Outcome" in properties:
        return {"Condition": {"Outcome": "True" if properties["Outcome"] else "False"}}
    if step.type == "Fail":
        return {"Fail": {"ErrorMessage": step.failure_reason or ""}}
    if step.type in ("QualityCheck", "ClarifyCheck", "EMR"):
        return {step.type: properties}
    return {}


@operation("StopPipelineExecution")
def stop_pipeline_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Stop an execution this server started: its running jobs are terminated and it ends Stopped (Stopping until then)."""
    arn = request["PipelineExecutionArn"]
    record = _record(context, arn)
    if record.status != "Executing":
        raise ValidationException(f"Pipeline execution '{arn}' is {_status(context, record)}; only an Executing one can be stopped.")
    if not context.runs.stopping(record.id) and not context.runs.stop(record.id):
        raise ValidationException(f"Pipeline execution '{arn}' runs in another sagelab process (`sagelab run`); stop it with Ctrl-C there.")
    return {"PipelineExecutionArn": arn}


@operation("RetryPipelineExecution")
def retry_pipeline_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Run a Failed or Stopped execution's unfinished steps again under the same ARN, as `sagelab retry` does.

    SageMaker's answer for an execution that cannot be retried is not documented; this one is a ValidationException.
    """
    arn = request["PipelineExecutionArn"]
    record = _record(context, arn)
    if record.status == "Executing":
        raise ConflictException(f"Pipeline execution '{arn}' is still running here; retry it once it has ended.")
    if record.status not in ("Failed", "Stopped", "Interrupted"):
        raise ValidationException(f"Pipeline execution '{arn}' is {_status(context, record)}; only a Failed or Stopped one can be retried.")
    context.runs.start({"action": "retry", "execution": record.id, "concurrency": request.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps")})
    return {"PipelineExecutionArn": arn}


@operation("ListPipelineParametersForExecution")
def list_pipeline_parameters_for_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The parameter values an execution ran with (defaults included), as strings, 50 a page."""
    record = _record(context, request["PipelineExecutionArn"])
    values = [{"Name": name, "Value": _parameter(value)} for name, value in record.parameters.items()]
    shown, following = page(values, request, default=50)
    return {"PipelineParameters": shown, "NextToken": following}


@operation("DescribePipelineDefinitionForExecution")
def describe_pipeline_definition_for_execution(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The definition an execution ran."""
    record = _record(context, request["PipelineExecutionArn"])
    return {"PipelineDefinition": json.dumps(record.definition), "CreationTime": record.started}
