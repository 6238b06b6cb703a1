"""What is still billing on SageMaker while doing nothing: the idle audit behind `sagelab idle`.

Endpoints with no invocations in the window (CloudWatch's AWS/SageMaker `Invocations`), Studio apps
(in their spaces) and notebook instances running since before the window, and jobs in progress for
longer than it. Each comes with its hourly price and the one call that stops it. The calls go through
`aws` (`call(service, operation, resource, **params)` and `pages(...)`, as `AwsClients` offers them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sagelab.cost.catalog import Catalog
from sagelab.errors import SagelabError


class Aws(Protocol):
    def call(self, service: str, operation: str, resource: str | None = None, **params: Any) -> dict[str, Any]: ...

    def pages(self, service: str, operation: str, resource: str | None = None, **params: Any) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class Idle:
    """One thing left running: what it is, on what, since when, and how to stop it."""

    kind: str  # "endpoint", "Studio app", "notebook instance", "training job", ...
    name: str
    use: str  # the catalog use its price is looked up for
    instances: tuple[tuple[str, int], ...]  # (instance type, count)
    since: datetime | None
    why: str  # "no invocations in 2 h", "running for 5.3 h"
    stop: tuple[str, str, dict[str, Any]]  # (service, operation, parameters) that stops it
    stop_says: str  # what stopping does, in words

    def hourly(self, catalog: Catalog, region: str) -> float | None:
        """USD per hour it costs while left running; None when a type has no known price."""
        total = 0.0
        for kind, count in self.instances:
            price = catalog.price(kind, self.use, region)
            if price is None:
                return None
            total += price * count
        return total


def clock() -> datetime:
    return datetime.now(timezone.utc)


def audit(aws: Aws, hours: float, now: datetime | None = None) -> tuple[list[Idle], list[str]]:
    """Everything idle for `hours` before `now` (default: the clock's), and a line for each kind that could not be listed (and why)."""
    now = now or clock()
    since = now - timedelta(hours=hours)
    found: list[Idle] = []
    problems: list[str] = []
    sources: list[tuple[str, Callable[[], list[Idle]]]] = [
        ("endpoints", lambda: endpoints(aws, since, now)),
        ("Studio apps", lambda: studio_apps(aws, since, now)),
        ("notebook instances", lambda: notebook_instances(aws, since, now)),
        ("jobs", lambda: jobs(aws, since, now)),
    ]
    for what, source in sources:
        try:
            found.extend(source())
        except SagelabError as exc:
            problems.append(f"{what} could not be listed: {exc}")
    return found, problems


def endpoints(aws: Aws, since: datetime, now: datetime) -> list[Idle]:
    """InService endpoints older than the window whose instance variants had no invocation in it (serverless ones cost nothing idle)."""
    found = []
    for page in aws.pages("sagemaker", "ListEndpoints", StatusEquals="InService"):
        for summary in page.get("Endpoints", []):
            name = summary["EndpointName"]
            if _aware(summary.get("CreationTime")) > since:
                continue
            described = aws.call("sagemaker", "DescribeEndpoint", name, EndpointName=name)
            config = aws.call("sagemaker", "DescribeEndpointConfig", described["EndpointConfigName"], EndpointConfigName=described["EndpointConfigName"])
            counts = {v["VariantName"]: v.get("CurrentInstanceCount") for v in described.get("ProductionVariants", [])}
            variants = [v for v in config.get("ProductionVariants", []) if v.get("InstanceType")]
            if not variants or _invocations(aws, name, [v["VariantName"] for v in variants], since, now) > 0:
                continue
            instances = tuple((v["InstanceType"], int(counts.get(v["VariantName"]) or v.get("InitialInstanceCount", 1))) for v in variants)
            found.append(Idle("endpoint", name, "hosting", instances, _aware(summary.get("CreationTime")), f"no invocations in {_span(now - since)}",
                              ("sagemaker", "DeleteEndpoint", {"EndpointName": name}),
                              "deletes the endpoint (its endpoint config and model stay, to deploy again)"))  # fmt: skip
    return found


def _invocations(aws: Aws, endpoint: str, variants: list[str], since: datetime, now: datetime) -> float:
    period = max(60, int((now - since).total_seconds()) // 60 * 60)
    queries = [{"Id": f"v{index}", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                   "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]},
        "Period": period, "Stat": "Sum"}} for index, variant in enumerate(variants)]  # fmt: skip
    total = 0.0
    for page in aws.pages("cloudwatch", "GetMetricData", endpoint, MetricDataQueries=queries, StartTime=since, EndTime=now):
        total += sum(sum(result.get("Values", [])) for result in page.get("MetricDataResults", []))
    return total


def studio_apps(aws: Aws, since: datetime, now: datetime) -> list[Idle]:
    """Studio apps on an instance (JupyterLab, Code Editor, kernel gateways) running since before the window, with their space."""
    owners = {}
    for page in aws.pages("sagemaker", "ListSpaces"):
        for space in page.get("Spaces", []):
            owner = space.get("OwnershipSettingsSummary", {}).get("OwnerUserProfileName")
            owners[(space.get("DomainId"), space.get("SpaceName"))] = owner
    found = []
    for page in aws.pages("sagemaker", "ListApps"):
        for app in page.get("Apps", []):
            kind = app.get("ResourceSpec", {}).get("InstanceType")
            created = _aware(app.get("CreationTime"))
            if app.get("Status") != "InService" or not kind or kind == "system" or created > since:
                continue
            where = {key: app[key] for key in ("UserProfileName", "SpaceName") if app.get(key)}
            if "SpaceName" in where:
                owner = owners.get((app.get("DomainId"), app["SpaceName"]))
                place = f"space {app['SpaceName']}" + (f" of {owner}" if owner else "")
            else:
                place = f"user {where.get('UserProfileName', '?')}"
            stop = {"DomainId": app["DomainId"], "AppType": app["AppType"], "AppName": app["AppName"], **where}
            found.append(Idle("Studio app", f"{app['AppType']} {app['AppName']} ({place})", "studio", ((kind, 1),), created,
                              f"running for {_span(now - created)}", ("sagemaker", "DeleteApp", stop),
                              "deletes the app (the space and its storage stay; open it again from Studio)"))  # fmt: skip
    return found


def notebook_instances(aws: Aws, since: datetime, now: datetime) -> list[Idle]:
    found = []
    for page in aws.pages("sagemaker", "ListNotebookInstances", StatusEquals="InService"):
        for notebook in page.get("NotebookInstances", []):
            started = _aware(notebook.get("LastModifiedTime") or notebook.get("CreationTime"))
            if started > since:
                continue
            name = notebook["NotebookInstanceName"]
            found.append(Idle("notebook instance", name, "notebook", ((notebook["InstanceType"], 1),), started, f"running for {_span(now - started)}",
                              ("sagemaker", "StopNotebookInstance", {"NotebookInstanceName": name}),
                              "stops the instance (its storage volume stays; start it again to go on)"))  # fmt: skip
    return found


_JOBS = (  # kind, use, list call, its key, name field, describe call, resources path, stop call
    ("training job", "training", "ListTrainingJobs", "TrainingJobSummaries", "TrainingJobName", "DescribeTrainingJob", ("ResourceConfig",), "StopTrainingJob"),
    ("processing job", "processing", "ListProcessingJobs", "ProcessingJobSummaries", "ProcessingJobName", "DescribeProcessingJob",
     ("ProcessingResources", "ClusterConfig"), "StopProcessingJob"),
    ("transform job", "transform", "ListTransformJobs", "TransformJobSummaries", "TransformJobName", "DescribeTransformJob", ("TransformResources",),
     "StopTransformJob"),
)  # fmt: skip


def jobs(aws: Aws, since: datetime, now: datetime) -> list[Idle]:
    """Jobs in progress since before the window: a job that long may be stuck (waiting on data, a hung process)."""
    found = []
    for kind, use, listing, key, field, describe, path, stop in _JOBS:
        for page in aws.pages("sagemaker", listing, StatusEquals="InProgress", CreationTimeBefore=since):
            for summary in page.get(key, []):
                name = summary[field]
                resources: Any = aws.call("sagemaker", describe, name, **{field: name})
                for part in path:
                    resources = resources.get(part, {})
                groups = resources.get("InstanceGroups") or [resources]
                instances = tuple((g["InstanceType"], int(g.get("InstanceCount", 1))) for g in groups if g.get("InstanceType"))
                created = _aware(summary.get("CreationTime"))
                found.append(Idle(kind, name, use, instances, created, f"in progress for {_span(now - created)}", ("sagemaker", stop, {field: name}),
                                  f"stops the {kind} (what it wrote so far stays; it ends Stopped)"))  # fmt: skip
    return found


def _aware(moment: Any) -> datetime:
    """A response's time as an aware datetime (boto3 gives aware ones; a missing time counts as long ago)."""
    if not isinstance(moment, datetime):
        return datetime(1970, 1, 1, tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f} h"
