"""Monitoring schedules of local endpoints: when each runs (AWS cron expressions) and what each run did.

A schedule (CreateMonitoringSchedule through `sagelab api`) is a record in `.sagelab/hosting.db`,
beside the endpoint's models and configs, and so are the job definitions a schedule may name
(Create{DataQuality,ModelQuality}JobDefinition: the SageMaker SDK's DefaultModelMonitor and
ModelQualityMonitor create one, then a schedule naming it). Its endpoint's supervisor
(`sagelab.serving.endpoints`) reads the endpoint's `monitoring.json` once a minute and, when an
expression matches the minute, starts `python -m sagelab.api.schedules ROOT SCHEDULE` — so a
schedule runs while the endpoint serves, as on SageMaker. Each run is a data-quality or (with
ground truth) model-quality monitoring run (`monitoring.monitor_endpoint`) over what the endpoint
captured, recorded as a monitoring execution (ListMonitoringExecutions).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import EndpointError, SagelabError

if TYPE_CHECKING:
    from sagelab.config import Settings

SCHEDULE = "monitoring-schedule"  # the kind of a schedule's record in hosting.db
KEEP_EXECUTIONS = 100  # a schedule's newest runs kept in its record
DEFINITION_KINDS = {"DataQuality": "data-quality-job-definition", "ModelQuality": "model-quality-job-definition"}  # records in hosting.db
PROBLEM_TYPES = ("Regression", "BinaryClassification", "MulticlassClassification")
DAILY = "cron(0 0 ? * * *)"  # a schedule without a ScheduleConfig runs daily, as the SDK's default says


@dataclass(frozen=True)
class Plan:
    """What one run of a schedule checks: from its inline MonitoringJobDefinition, or the job definition it names."""

    endpoint: str
    constraints: str
    statistics: str | None
    output: str
    ground_truth: str | None = None
    problem_type: str | None = None


def expression_of(request: dict[str, Any]) -> str:
    """A CreateMonitoringSchedule request's cron expression (daily when it has no ScheduleConfig)."""
    return str((request["MonitoringScheduleConfig"].get("ScheduleConfig") or {}).get("ScheduleExpression") or DAILY)


_OFFSET = re.compile(r"^([-+]?)P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def window_of(request: dict[str, Any]) -> tuple[timedelta, timedelta]:
    """The analysis window of a schedule, as offsets from each run's scheduled time: its ScheduleConfig's
    DataAnalysisStartTime and DataAnalysisEndTime (ISO 8601 durations such as -PT1H, required with NOW), else the
    hour before the run.

    Raises:
        EndpointError: an offset that is not an ISO 8601 duration, one missing with NOW, or a window that is empty or
            longer than 24 hours.
    """
    config = request["MonitoringScheduleConfig"].get("ScheduleConfig") or {}
    start, end = config.get("DataAnalysisStartTime"), config.get("DataAnalysisEndTime")
    if start is None and end is None:
        if expression_of(request) == "NOW":
            raise EndpointError("ScheduleConfig: a NOW schedule needs DataAnalysisStartTime and DataAnalysisEndTime (e.g. -PT1H and -PT0H)")
        return timedelta(hours=-1), timedelta(0)
    if start is None or end is None:
        raise EndpointError("ScheduleConfig: give both DataAnalysisStartTime and DataAnalysisEndTime, or neither")
    offsets = []
    for field, text in (("DataAnalysisStartTime", start), ("DataAnalysisEndTime", end)):
        found = _OFFSET.match(str(text))
        if not found or not any(found.groups()[1:]):
            raise EndpointError(f"ScheduleConfig.{field}: {text!r} is not an ISO 8601 duration such as -PT1H or -P1D")
        sign, days, hours, minutes, seconds = found.groups()
        size = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0))
        offsets.append(-size if sign == "-" else size)
    if not offsets[0] < offsets[1] or offsets[1] - offsets[0] > timedelta(hours=24):
        raise EndpointError(f"ScheduleConfig: the window {start} to {end} must start before it ends, and span at most 24 hours")
    return offsets[0], offsets[1]


def plan_of(request: dict[str, Any], definition: Callable[[str, str], dict[str, Any] | None]) -> Plan:
    """The Plan of a CreateMonitoringSchedule request; `definition(kind, name)` finds a stored job definition.

    Raises:
        EndpointError: what the request (or its job definition) lacks for a local run, or names that does not exist.
    """
    config = request["MonitoringScheduleConfig"]
    monitoring_type = config.get("MonitoringType", "DataQuality")
    inline = config.get("MonitoringJobDefinition")
    if inline is not None:
        if monitoring_type != "DataQuality":
            raise EndpointError(f"MonitoringType {monitoring_type}: an inline MonitoringJobDefinition checks data quality; for "
                                f"{monitoring_type}, create a job definition and give its MonitoringJobDefinitionName")  # fmt: skip
        endpoints = [i["EndpointInput"] for i in inline.get("MonitoringInputs", []) if i.get("EndpointInput")]
        if len(endpoints) != 1:
            raise EndpointError("MonitoringInputs: a local schedule monitors one endpoint (one EndpointInput)")
        return _plan(endpoints[0], inline.get("BaselineConfig"), inline["MonitoringOutputConfig"], None)
    name = config.get("MonitoringJobDefinitionName")
    if not name:
        raise EndpointError("MonitoringScheduleConfig: give a MonitoringJobDefinition or a MonitoringJobDefinitionName")
    if monitoring_type not in DEFINITION_KINDS:
        raise EndpointError(f"MonitoringType {monitoring_type}: local schedules check DataQuality or ModelQuality")
    found = definition(DEFINITION_KINDS[monitoring_type], name)
    if found is None:
        raise EndpointError(f"no {monitoring_type} job definition {name!r}: create it with Create{monitoring_type}JobDefinition first")
    return definition_plan(monitoring_type, found)


def definition_plan(monitoring_type: str, request: dict[str, Any]) -> Plan:
    """The Plan of a Create{DataQuality,ModelQuality}JobDefinition request.

    Raises:
        EndpointError: what the job definition lacks for a local run.
    """
    job_input = request[f"{monitoring_type}JobInput"]
    if "EndpointInput" not in job_input:
        raise EndpointError(f"{monitoring_type}JobInput: a local job definition monitors an endpoint (EndpointInput); "
                            "BatchTransformInput is not served locally")  # fmt: skip
    problem_type = (request.get(f"{monitoring_type}AppSpecification") or {}).get("ProblemType")
    ground_truth = (job_input.get("GroundTruthS3Input") or {}).get("S3Uri")
    if monitoring_type == "ModelQuality":
        if problem_type not in PROBLEM_TYPES:
            raise EndpointError(f"ModelQualityAppSpecification.ProblemType: one of {', '.join(PROBLEM_TYPES)}, got {problem_type!r}")
        if not ground_truth:
            raise EndpointError("ModelQualityJobInput.GroundTruthS3Input.S3Uri: where the labels are uploaded")
    return _plan(job_input["EndpointInput"], request.get(f"{monitoring_type}BaselineConfig"),
                 request[f"{monitoring_type}JobOutputConfig"], (ground_truth, problem_type))  # fmt: skip


def _plan(endpoint_input: dict[str, Any], baseline: dict[str, Any] | None, outputs: dict[str, Any],
          labels: tuple[str | None, str | None] | None) -> Plan:  # fmt: skip
    constraints = ((baseline or {}).get("ConstraintsResource") or {}).get("S3Uri")
    if not constraints:
        raise EndpointError("the baseline's ConstraintsResource.S3Uri: a local run checks the captured data against a baseline's constraints")
    statistics = ((baseline or {}).get("StatisticsResource") or {}).get("S3Uri")
    output = outputs["MonitoringOutputs"][0]["S3Output"]["S3Uri"]
    ground_truth, problem_type = labels or (None, None)
    return Plan(endpoint_input["EndpointName"], constraints, statistics, output, ground_truth, problem_type)


def run_schedule(settings: Settings, name: str, scheduled: datetime) -> dict[str, Any]:
    """Run a schedule once (a data- or model-quality run over what its endpoint captured in the schedule's window) and
    record it as a monitoring execution."""
    from sagelab.api.monitoring import monitor_endpoint
    from sagelab.serving.endpoints import Hosting

    hosting = Hosting(settings.state_dir, settings.region, settings.account)

    def definition(kind: str, definition_name: str) -> dict[str, Any] | None:
        record = hosting.record(kind, definition_name)
        return record[0] if record else None

    try:
        found = hosting.record(SCHEDULE, name)
        if found is None:
            raise EndpointError(f"no monitoring schedule {name!r}")
        stored = found[0]
        started = time.time()
        summary: dict[str, Any] = {"MonitoringScheduleName": name, "ScheduledTime": scheduled.timestamp(), "CreationTime": started,
                                   "EndpointName": stored.get("EndpointName"),
                                   "MonitoringType": stored["MonitoringScheduleConfig"].get("MonitoringType", "DataQuality"),
                                   "ProcessingJobArn": f"arn:aws:sagemaker:{settings.region}:{settings.account}:processing-job/"
                                                       f"model-monitoring-{scheduled:%Y%m%d%H%M}-{name[:20].lower()}"}  # fmt: skip
        try:
            plan = plan_of(stored, definition)
            summary["EndpointName"] = plan.endpoint
            start, end = window_of(stored)
            done = monitor_endpoint(settings, plan.endpoint, constraints_uri=plan.constraints, statistics_uri=plan.statistics, output=plan.output,
                                    schedule=name, when=scheduled, ground_truth_uri=plan.ground_truth, problem_type=plan.problem_type,
                                    window=(scheduled + start, scheduled + end))  # fmt: skip
            summary.update(MonitoringExecutionStatus=done.status)
            print(f"monitoring schedule {name}: {done.status}, {len(done.violations)} violation(s); reports in {done.output}", flush=True)
        except SagelabError as exc:
            summary.update(MonitoringExecutionStatus="Failed", FailureReason=str(exc)[:1024])
            print(f"monitoring schedule {name}: Failed: {exc}", flush=True)
        summary["LastModifiedTime"] = time.time()
        latest = hosting.record(SCHEDULE, name)
        if latest is not None:  # deleted meanwhile: the run is not recorded
            hosting.change(SCHEDULE, name, {"Executions": [*latest[0].get("Executions", []), summary][-KEEP_EXECUTIONS:]})
        return summary
    finally:
        hosting.close()


def start_run(settings: Settings, name: str, log: Path | None = None) -> None:
    """Run a schedule now, in a process of its own (a NOW schedule, or the supervisor's cron), its output to `log`."""
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        run = subprocess.Popen([sys.executable, "-m", "sagelab.api.schedules", str(settings.root), name, datetime.now(timezone.utc).isoformat()],
                               stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        threading.Thread(target=run.wait, name=f"sagelab-monitoring-{name}", daemon=True).start()  # reaped when it ends
    finally:
        if log:
            output.close()  # type: ignore[union-attr]


def main(argv: list[str]) -> int:
    """`python -m sagelab.api.schedules ROOT SCHEDULE SCHEDULED-TIME`: one run of a schedule, for the endpoint's supervisor."""
    from sagelab.config import load_settings

    root, name, when = argv
    try:
        run_schedule(load_settings(Path(root)), name, datetime.fromisoformat(when))
    except SagelabError as exc:
        print(f"monitoring schedule {name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
