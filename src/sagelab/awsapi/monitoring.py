"""SageMaker Model Monitor's schedules and job definitions over the project's local endpoints.

CreateMonitoringSchedule, Describe/List/Delete/Start/StopMonitoringSchedule, ListMonitoringExecutions,
and Create/Describe/List/Delete of DataQuality and ModelQuality job definitions, over
`sagelab.api.schedules`: a schedule's checks come from an inline MonitoringJobDefinition (data
quality) or from the job definition it names (as the SDK's DefaultModelMonitor and
ModelQualityMonitor create them): one endpoint that captures data, a baseline's constraints (and
statistics), an output URI, and for model quality the ground truth's URI and the problem type.
The endpoint's supervisor runs a started schedule on its cron expression (UTC) while the endpoint
serves, and `NOW` runs it once at once. Each run is a data-quality or model-quality check of
everything the endpoint captured, written where a monitoring job writes
(`<output>/<endpoint>/<schedule>/yyyy/mm/dd/hh/`). Where sagelab differs from SageMaker: ModelBias
and ModelExplainability are refused, as are BatchTransformInput and a baseline without constraints;
cron minutes finer than an hour are taken as they are; resources, images and processor scripts are
recorded, not used. A run reads the records captured in its analysis window (DataAnalysisStartTime
and DataAnalysisEndTime from the scheduled time, else the hour before it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from sagelab.awsapi.errors import ResourceInUse, ResourceNotFound, ValidationException
from sagelab.awsapi.operations import Context, newest_first, operation, page
from sagelab.errors import EndpointError

if TYPE_CHECKING:
    from sagelab.serving.endpoints import Hosting


def _hosting(context: Context) -> Hosting:
    from sagelab.serving.endpoints import Hosting

    return Hosting(context.settings.state_dir, context.settings.region, context.settings.account)


def _arn(context: Context, name: str) -> str:
    return context.arn(f"monitoring-schedule/{name.lower()}")


def _records(context: Context, kind: str) -> list[tuple[str, dict[str, Any], float]]:
    """Every record of a kind in hosting.db (schedules, job definitions); none before the project has one."""
    if not (context.settings.state_dir / "hosting.db").is_file():
        return []
    hosting = _hosting(context)
    try:
        return hosting.records(kind)
    finally:
        hosting.close()


def _schedules(context: Context) -> list[tuple[str, dict[str, Any], float]]:
    from sagelab.api.schedules import SCHEDULE

    return _records(context, SCHEDULE)


def _found(context: Context, name: str) -> tuple[dict[str, Any], float]:
    for found, request, created in _schedules(context):
        if found == name:
            return request, created
    raise ValidationException(f"Monitoring Schedule {_arn(context, name)} does not exist.")


def _publish(context: Context, endpoint: str) -> None:
    """Tell the endpoint's supervisor which schedules it runs (the started ones, but NOW)."""
    from sagelab.api.schedules import expression_of

    mine = []
    for name, stored, _ in _schedules(context):
        expression = expression_of(stored)
        if stored.get("EndpointName") == endpoint and expression != "NOW" and stored.get("Status", "Scheduled") == "Scheduled":
            mine.append({"name": name, "expression": expression})
    hosting = _hosting(context)
    try:
        (hosting.folder / endpoint).mkdir(parents=True, exist_ok=True)
        hosting.set_monitoring(endpoint, mine)
    finally:
        hosting.close()


def _definition(context: Context) -> Callable[[str, str], dict[str, Any] | None]:
    """Finds a stored job definition's request by (kind, name), for `plan_of`."""

    def find(kind: str, name: str) -> dict[str, Any] | None:
        hosting = _hosting(context)
        try:
            found = hosting.record(kind, name)
        finally:
            hosting.close()
        return found[0] if found else None

    return find


@operation("CreateMonitoringSchedule")
def create_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Record the schedule; its endpoint's supervisor runs it from the next matching minute (NOW: a run starts at once).

    The checks (data quality, or model quality with ground truth) come from an inline MonitoringJobDefinition or the
    job definition MonitoringJobDefinitionName names, as the SDK's monitors create them."""
    from sagelab.api.local_hosting import LocalHosting
    from sagelab.api.schedules import SCHEDULE, expression_of, plan_of, start_run, window_of
    from sagelab.cron import check_expression

    name = request["MonitoringScheduleName"]
    try:
        plan = plan_of(request, _definition(context))
        expression = check_expression(expression_of(request))
        window_of(request)
    except EndpointError as exc:
        raise ValidationException(str(exc)) from None
    endpoint = plan.endpoint
    if LocalHosting(context.settings).endpoint(endpoint) is None:
        raise ValidationException(f"Could not find endpoint \"{context.arn(f'endpoint/{endpoint.lower()}')}\".")
    hosting = _hosting(context)
    try:
        if hosting.capture_folder(endpoint) is None:
            raise ValidationException(f"Endpoint {endpoint} does not capture data: give its endpoint config a DataCaptureConfig")
        stored = {**request, "Tags": list(request.get("Tags", [])), "Executions": [], "LastModifiedTime": time.time(), "EndpointName": endpoint,
                  "Status": "Scheduled"}  # fmt: skip
        if not hosting.add(SCHEDULE, name, stored):
            raise ValidationException(f"Monitoring Schedule {_arn(context, name)} already exists.")
    finally:
        hosting.close()
    _publish(context, endpoint)
    if expression == "NOW":
        start_run(context.settings, name, context.settings.state_dir / "endpoints" / endpoint / "endpoint.log")
    return {"MonitoringScheduleArn": _arn(context, name)}


@operation("DescribeMonitoringSchedule")
def describe_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    name = request["MonitoringScheduleName"]
    stored, created = _found(context, name)
    described: dict[str, Any] = {
        "MonitoringScheduleArn": _arn(context, name), "MonitoringScheduleName": name, "MonitoringScheduleStatus": stored.get("Status", "Scheduled"),
        "MonitoringType": stored["MonitoringScheduleConfig"].get("MonitoringType", "DataQuality"), "CreationTime": created,
        "LastModifiedTime": stored.get("LastModifiedTime", created), "MonitoringScheduleConfig": stored["MonitoringScheduleConfig"],
        "EndpointName": stored.get("EndpointName"),
    }  # fmt: skip
    if stored.get("Executions"):
        described["LastMonitoringExecutionSummary"] = stored["Executions"][-1]
    return described


@operation("ListMonitoringSchedules")
def list_monitoring_schedules(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Schedules, newest first by default (SortBy Name, CreationTime or Status), filtered by EndpointName, NameContains,
    StatusEquals, MonitoringJobDefinitionName and MonitoringTypeEquals."""
    rows = []
    for name, stored, created in _schedules(context):
        config = stored["MonitoringScheduleConfig"]
        row = {"MonitoringScheduleName": name, "MonitoringScheduleArn": _arn(context, name), "CreationTime": created,
               "LastModifiedTime": stored.get("LastModifiedTime", created), "MonitoringScheduleStatus": stored.get("Status", "Scheduled"),
               "EndpointName": stored.get("EndpointName"), "MonitoringType": config.get("MonitoringType", "DataQuality"),
               "MonitoringJobDefinitionName": config.get("MonitoringJobDefinitionName")}  # fmt: skip
        wanted = {"EndpointName": "EndpointName", "StatusEquals": "MonitoringScheduleStatus", "MonitoringTypeEquals": "MonitoringType",
                  "MonitoringJobDefinitionName": "MonitoringJobDefinitionName"}  # fmt: skip
        if any(request.get(key) not in (None, row[field]) for key, field in wanted.items()) or request.get("NameContains", "") not in name:
            continue
        rows.append({key: value for key, value in row.items() if value is not None})
    key = {"Name": "MonitoringScheduleName", "Status": "MonitoringScheduleStatus"}.get(request.get("SortBy", ""), "CreationTime")
    rows.sort(key=lambda row: row[key], reverse=newest_first(request))
    shown, following = page(rows, request)
    return {"MonitoringScheduleSummaries": shown, "NextToken": following}


@operation("DeleteMonitoringSchedule")
def delete_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    from sagelab.api.schedules import SCHEDULE

    name = request["MonitoringScheduleName"]
    stored, _ = _found(context, name)
    hosting = _hosting(context)
    try:
        hosting.remove(SCHEDULE, name)
    finally:
        hosting.close()
    _publish(context, stored["EndpointName"])
    return {}


def _set_status(context: Context, name: str, status: str) -> dict[str, Any]:
    from sagelab.api.schedules import SCHEDULE

    stored, _ = _found(context, name)
    hosting = _hosting(context)
    try:
        hosting.change(SCHEDULE, name, {"Status": status, "LastModifiedTime": time.time()})
    finally:
        hosting.close()
    _publish(context, stored["EndpointName"])
    return {}


@operation("StopMonitoringSchedule")
def stop_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """The schedule stays, Stopped: its endpoint's supervisor no longer runs it."""
    return _set_status(context, request["MonitoringScheduleName"], "Stopped")


@operation("StartMonitoringSchedule")
def start_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A stopped schedule runs on its cron expression again."""
    return _set_status(context, request["MonitoringScheduleName"], "Scheduled")


@operation("ListMonitoringExecutions")
def list_monitoring_executions(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Every schedule's runs, newest first by default (SortBy CreationTime, ScheduledTime or Status), filtered by schedule, endpoint and status."""
    runs = [run for name, stored, _ in _schedules(context) if request.get("MonitoringScheduleName") in (None, name)
            for run in stored.get("Executions", [])
            if request.get("EndpointName") in (None, run.get("EndpointName")) and request.get("StatusEquals") in (None, run.get("MonitoringExecutionStatus"))]  # fmt: skip
    key = {"ScheduledTime": "ScheduledTime", "Status": "MonitoringExecutionStatus"}.get(request.get("SortBy", ""), "CreationTime")
    runs.sort(key=lambda run: run.get(key) or 0, reverse=newest_first(request))
    shown, following = page(runs, request)
    return {"MonitoringExecutionSummaries": shown, "NextToken": following}


# -- job definitions: what the SDK's DefaultModelMonitor and ModelQualityMonitor create before their schedule ----------


def _definition_arn(context: Context, kind: str, name: str) -> str:
    return context.arn(f"{kind}/{name.lower()}")


def _create_definition(context: Context, request: dict[str, Any], monitoring_type: str) -> dict[str, Any]:
    from sagelab.api.local_hosting import LocalHosting
    from sagelab.api.schedules import DEFINITION_KINDS, definition_plan

    kind, name = DEFINITION_KINDS[monitoring_type], request["JobDefinitionName"]
    try:
        endpoint = definition_plan(monitoring_type, request).endpoint
    except EndpointError as exc:
        raise ValidationException(str(exc)) from None
    if LocalHosting(context.settings).endpoint(endpoint) is None:
        raise ValidationException(f"Could not find endpoint \"{context.arn(f'endpoint/{endpoint.lower()}')}\".")
    hosting = _hosting(context)
    try:
        if not hosting.add(kind, name, {**request, "Tags": list(request.get("Tags", []))}):
            raise ValidationException(f"Job definition {_definition_arn(context, kind, name)} already exists.")
    finally:
        hosting.close()
    return {"JobDefinitionArn": _definition_arn(context, kind, name)}


def _describe_definition(context: Context, request: dict[str, Any], monitoring_type: str) -> dict[str, Any]:
    from sagelab.api.schedules import DEFINITION_KINDS

    kind, name = DEFINITION_KINDS[monitoring_type], request["JobDefinitionName"]
    for found, stored, created in _records(context, kind):
        if found == name:
            fields = {key: value for key, value in stored.items() if key not in ("Tags", "JobDefinitionName")}
            return {"JobDefinitionArn": _definition_arn(context, kind, name), "JobDefinitionName": name, "CreationTime": created, **fields}
    raise ResourceNotFound(f"Job definition {_definition_arn(context, kind, name)} does not exist.")


def _list_definitions(context: Context, request: dict[str, Any], monitoring_type: str) -> dict[str, Any]:
    from sagelab.api.schedules import DEFINITION_KINDS

    kind = DEFINITION_KINDS[monitoring_type]
    rows = []
    for name, stored, created in _records(context, kind):
        endpoint = stored[f"{monitoring_type}JobInput"]["EndpointInput"]["EndpointName"]
        if request.get("EndpointName") not in (None, endpoint) or request.get("NameContains", "") not in name:
            continue
        if not request.get("CreationTimeAfter", 0) <= created <= request.get("CreationTimeBefore", float("inf")):
            continue
        rows.append({"MonitoringJobDefinitionName": name, "MonitoringJobDefinitionArn": _definition_arn(context, kind, name),
                     "CreationTime": created, "EndpointName": endpoint})  # fmt: skip
    key = "MonitoringJobDefinitionName" if request.get("SortBy") == "Name" else "CreationTime"
    rows.sort(key=lambda row: row[key], reverse=newest_first(request))
    shown, following = page(rows, request)
    return {"JobDefinitionSummaries": shown, "NextToken": following}


def _delete_definition(context: Context, request: dict[str, Any], monitoring_type: str) -> dict[str, Any]:
    """A job definition a schedule still names is refused, so that no schedule is left pointing at nothing."""
    from sagelab.api.schedules import DEFINITION_KINDS

    kind, name = DEFINITION_KINDS[monitoring_type], request["JobDefinitionName"]
    users = [schedule for schedule, stored, _ in _schedules(context)
             if stored["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName") == name
             and stored["MonitoringScheduleConfig"].get("MonitoringType") == monitoring_type]  # fmt: skip
    if users:
        raise ResourceInUse(f"Job definition {name} is used by the monitoring schedule(s) {', '.join(users)}: delete them first")
    hosting = _hosting(context)
    try:
        if not hosting.remove(kind, name):
            raise ResourceNotFound(f"Job definition {_definition_arn(context, kind, name)} does not exist.")
    finally:
        hosting.close()
    return {}


for _type in ("DataQuality", "ModelQuality"):  # the same four operations for each kind of job definition
    operation(f"Create{_type}JobDefinition")(partial(_create_definition, monitoring_type=_type))
    operation(f"Describe{_type}JobDefinition")(partial(_describe_definition, monitoring_type=_type))
    operation(f"List{_type}JobDefinitions")(partial(_list_definitions, monitoring_type=_type))
    operation(f"Delete{_type}JobDefinition")(partial(_delete_definition, monitoring_type=_type))
