"""Monitoring schedules of local endpoints: when each runs (AWS cron expressions) and what each run did.

A schedule (CreateMonitoringSchedule through `sagelab api`, as the SageMaker SDK's
`DefaultModelMonitor.create_monitoring_schedule` sends it) is a record in `.sagelab/hosting.db`,
beside the endpoint's models and configs. Its endpoint's supervisor (`sagelab.serving.endpoints`)
reads the endpoint's `monitoring.json` once a minute and, when an expression matches the minute,
starts `python -m sagelab.api.schedules ROOT SCHEDULE` — so a schedule runs while the endpoint serves,
as on SageMaker. Each run is a data-quality monitoring run (`monitoring.monitor_endpoint`) over what
the endpoint captured, recorded as a monitoring execution (ListMonitoringExecutions).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import EndpointError, SagelabError

if TYPE_CHECKING:
    from sagelab.config import Settings

SCHEDULE = "monitoring-schedule"  # the kind of a schedule's record in hosting.db
KEEP_EXECUTIONS = 100  # a schedule's newest runs kept in its record
def schedule_parts(request: dict[str, Any]) -> tuple[str, str, str | None, str]:
    """The endpoint, the baseline's constraints and statistics URIs and the output URI of a CreateMonitoringSchedule request."""
    definition = request["MonitoringScheduleConfig"].get("MonitoringJobDefinition")
    if definition is None:
        raise EndpointError("MonitoringScheduleConfig: give a MonitoringJobDefinition; MonitoringJobDefinitionName (a job definition made "
                            "with CreateDataQualityJobDefinition) is not served locally")  # fmt: skip
    endpoints = [i["EndpointInput"]["EndpointName"] for i in definition.get("MonitoringInputs", []) if i.get("EndpointInput")]
    if len(endpoints) != 1:
        raise EndpointError("MonitoringInputs: a local schedule monitors one endpoint (one EndpointInput)")
    baseline = definition.get("BaselineConfig") or {}
    constraints = (baseline.get("ConstraintsResource") or {}).get("S3Uri")
    if not constraints:
        raise EndpointError("BaselineConfig.ConstraintsResource.S3Uri: a local schedule checks the captured data against a baseline's constraints")
    statistics = (baseline.get("StatisticsResource") or {}).get("S3Uri")
    output = definition["MonitoringOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"]
    return endpoints[0], constraints, statistics, output


def run_schedule(settings: Settings, name: str, scheduled: datetime) -> dict[str, Any]:
    """Run a schedule once (a data-quality run over what its endpoint captured) and record it as a monitoring execution."""
    from sagelab.api.monitoring import monitor_endpoint
    from sagelab.serving.endpoints import Hosting

    hosting = Hosting(settings.state_dir, settings.region, settings.account)
    try:
        found = hosting.record(SCHEDULE, name)
        if found is None:
            raise EndpointError(f"no monitoring schedule {name!r}")
        endpoint, constraints, statistics, output = schedule_parts(found[0])
        started = time.time()
        summary: dict[str, Any] = {"MonitoringScheduleName": name, "ScheduledTime": scheduled.timestamp(), "CreationTime": started,
                                   "EndpointName": endpoint, "MonitoringType": found[0].get("MonitoringScheduleConfig", {}).get("MonitoringType", "DataQuality"),
                                   "ProcessingJobArn": f"arn:aws:sagemaker:{settings.region}:{settings.account}:processing-job/"
                                                       f"model-monitoring-{scheduled:%Y%m%d%H%M}-{name[:20].lower()}"}  # fmt: skip
        try:
            done = monitor_endpoint(settings, endpoint, constraints_uri=constraints, statistics_uri=statistics, output=output, schedule=name,
                                    when=scheduled)  # fmt: skip
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
