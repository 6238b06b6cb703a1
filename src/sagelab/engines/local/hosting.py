"""Runners for SageMaker's hosting steps: Model (CreateModel), EndpointConfig, Endpoint."""

from __future__ import annotations

from typing import Any

from sagelab.engines.local.deploy import materialize
from sagelab.engines.local.job import Job, StepFailed, StepResult
from sagelab.errors import EndpointError
from sagelab.serving.endpoints import Hosting


def hosting_for(job: Job) -> Hosting:
    return Hosting(job.settings.state_dir, job.settings.region, job.settings.account)


class RecordRunner:
    """Records a Model or an EndpointConfig, for the endpoints and transform jobs that use it."""

    def __init__(self, kind: str, name_field: str) -> None:
        self.kind, self.name_field = kind, name_field

    def run(self, job: Job) -> StepResult:
        name = str(job.arguments.get(self.name_field) or job.job_name)
        hosting = hosting_for(job)
        try:
            return StepResult(hosting.create(self.kind, name, job.arguments))
        finally:
            hosting.close()


def model_container(hosting: Hosting, model_name: str) -> dict[str, Any]:
    """The container of a recorded model: PrimaryContainer, or the first of Containers."""
    try:
        model = hosting.describe("model", model_name)
    except EndpointError as exc:
        raise StepFailed(f"ValidationException: {exc}") from None
    container = model.get("PrimaryContainer") or (model.get("Containers") or [None])[0]
    if not container or not container.get("ModelDataUrl"):
        raise StepFailed(f"model {model_name} has no container with ModelDataUrl; local serving needs model data")
    return dict(container)


class EndpointRunner:
    """Starts (or updates, with no downtime) a local endpoint serving the config's first variant."""

    def run(self, job: Job) -> StepResult:
        name = str(job.arguments.get("EndpointName") or job.job_name)
        hosting = hosting_for(job)
        try:
            config = hosting.describe("endpoint-config", str(job.arguments.get("EndpointConfigName")))
            variants = config.get("ProductionVariants") or []
            if not variants:
                raise StepFailed(f"endpoint config {config['EndpointConfigName']} has no ProductionVariants")
            container = model_container(hosting, variants[0]["ModelName"])
            model, env = materialize(job.store, job.settings, container)
            info = hosting.deploy(name, model, label=variants[0]["ModelName"], environment=env)
        except EndpointError as exc:
            raise StepFailed(str(exc)) from None
        finally:
            hosting.close()
        job.log(f"endpoint {name} is InService at {info.url}")
        described = info.describe(job.settings.region, job.settings.account)
        return StepResult({**described, "EndpointConfigName": config["EndpointConfigName"],
                           "ProductionVariants": [{"VariantName": v.get("VariantName"), "CurrentWeight": 1.0} for v in variants]})  # fmt: skip
