"""SageMaker Model Monitor's schedules over the project's local endpoints.

CreateMonitoringSchedule, DescribeMonitoringSchedule, ListMonitoringSchedules, DeleteMonitoringSchedule
and ListMonitoringExecutions, over `sagelab.api.schedules`: a schedule names one endpoint that
captures data, a baseline's constraints (and statistics) and an output URI; its endpoint's
supervisor runs it on its cron expression (UTC) while the endpoint serves, and `NOW` runs it once at
once. Each run is a data-quality check of everything the endpoint captured, written where a
monitoring job writes (`<output>/<endpoint>/<schedule>/yyyy/mm/dd/hh/`). Where sagelab differs from
SageMaker: only inline MonitoringJobDefinitions (not MonitoringJobDefinitionName), only data quality
(a ModelQuality schedule is refused: its ground-truth merge is not emulated), cron minutes finer than
an hour are taken as they are; MonitoringResources and the image are recorded, not used.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sagelab.awsapi.errors import ValidationException
from sagelab.awsapi.operations import Context, newest_first, operation, page
from sagelab.errors import EndpointError

if TYPE_CHECKING:
    from sagelab.serving.endpoints import Hosting


def _hosting(context: Context) -> Hosting:
    from sagelab.serving.endpoints import Hosting

    return Hosting(context.settings.state_dir, context.settings.region, context.settings.account)


def _arn(context: Context, name: str) -> str:
    return context.arn(f"monitoring-schedule/{name.lower()}")


def _schedules(context: Context) -> list[tuple[str, dict[str, Any], float]]:
    from sagelab.api.schedules import SCHEDULE

    if not (context.settings.state_dir / "hosting.db").is_file():
        return []
    hosting = _hosting(context)
    try:
        return hosting.records(SCHEDULE)
    finally:
        hosting.close()


def _found(context: Context, name: str) -> tuple[dict[str, Any], float]:
    for found, request, created in _schedules(context):
        if found == name:
            return request, created
    raise ValidationException(f"Monitoring Schedule {_arn(context, name)} does not exist.")


def _publish(context: Context, endpoint: str) -> None:
    """Tell the endpoint's supervisor which schedules it runs."""
    from sagelab.api.schedules import schedule_parts

    mine = []
    for name, request, _ in _schedules(context):
        if schedule_parts(request)[0] == endpoint and request["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] != "NOW":
            mine.append({"name": name, "expression": request["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]})
    hosting = _hosting(context)
    try:
        (hosting.folder / endpoint).mkdir(parents=True, exist_ok=True)
        hosting.set_monitoring(endpoint, mine)
    finally:
        hosting.close()


@operation("CreateMonitoringSchedule")
def create_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Record the schedule; its endpoint's supervisor runs it from the next matching minute (NOW: a run starts at once)."""
    from sagelab.api.local_hosting import LocalHosting
    from sagelab.api.schedules import SCHEDULE, schedule_parts, start_run
    from sagelab.cron import check_expression

    name, config = request["MonitoringScheduleName"], request["MonitoringScheduleConfig"]
    if config.get("MonitoringType", "DataQuality") != "DataQuality":
        raise ValidationException(f"MonitoringType {config['MonitoringType']}: sagelab's local schedules check data quality only")
    try:
        endpoint, *_ = schedule_parts(request)
        expression = check_expression(config["ScheduleConfig"]["ScheduleExpression"])
    except EndpointError as exc:
        raise ValidationException(str(exc)) from None
    if LocalHosting(context.settings).endpoint(endpoint) is None:
        raise ValidationException(f"Could not find endpoint \"{context.arn(f'endpoint/{endpoint.lower()}')}\".")
    hosting = _hosting(context)
    try:
        if hosting.capture_folder(endpoint) is None:
            raise ValidationException(f"Endpoint {endpoint} does not capture data: give its endpoint config a DataCaptureConfig")
        stored = {**request, "Tags": list(request.get("Tags", [])), "Executions": [], "LastModifiedTime": time.time()}
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
    from sagelab.api.schedules import schedule_parts

    name = request["MonitoringScheduleName"]
    stored, created = _found(context, name)
    described: dict[str, Any] = {
        "MonitoringScheduleArn": _arn(context, name), "MonitoringScheduleName": name, "MonitoringScheduleStatus": "Scheduled",
        "MonitoringType": stored["MonitoringScheduleConfig"].get("MonitoringType", "DataQuality"), "CreationTime": created,
        "LastModifiedTime": stored.get("LastModifiedTime", created), "MonitoringScheduleConfig": stored["MonitoringScheduleConfig"],
        "EndpointName": schedule_parts(stored)[0],
    }  # fmt: skip
    if stored.get("Executions"):
        described["LastMonitoringExecutionSummary"] = stored["Executions"][-1]
    return described


@operation("ListMonitoringSchedules")
def list_monitoring_schedules(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Schedules, newest first by default (SortBy Name, CreationTime or Status), filtered by EndpointName and NameContains."""
    from sagelab.api.schedules import schedule_parts

    rows = []
    for name, stored, created in _schedules(context):
        endpoint = schedule_parts(stored)[0]
        if request.get("EndpointName") not in (None, endpoint) or request.get("NameContains", "") not in name:
            continue
        rows.append({"MonitoringScheduleName": name, "MonitoringScheduleArn": _arn(context, name), "CreationTime": created,
                     "LastModifiedTime": stored.get("LastModifiedTime", created), "MonitoringScheduleStatus": "Scheduled",
                     "EndpointName": endpoint, "MonitoringType": stored["MonitoringScheduleConfig"].get("MonitoringType", "DataQuality")})  # fmt: skip
    key = "MonitoringScheduleName" if request.get("SortBy") == "Name" else "CreationTime"
    rows.sort(key=lambda row: row[key], reverse=newest_first(request))
    shown, following = page(rows, request)
    return {"MonitoringScheduleSummaries": shown, "NextToken": following}


@operation("DeleteMonitoringSchedule")
def delete_monitoring_schedule(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    from sagelab.api.schedules import SCHEDULE, schedule_parts

    name = request["MonitoringScheduleName"]
    stored, _ = _found(context, name)
    hosting = _hosting(context)
    try:
        hosting.remove(SCHEDULE, name)
    finally:
        hosting.close()
    _publish(context, schedule_parts(stored)[0])
    return {}


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
