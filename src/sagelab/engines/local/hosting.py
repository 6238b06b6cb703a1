"""Runners for SageMaker's hosting steps: Model (CreateModel), EndpointConfig, Endpoint."""

from __future__ import annotations

from typing import Any

from sagelab.engines.local.deploy import deploy_config, expand_packages
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


def model_containers(job: Job, hosting: Hosting, model_name: str) -> tuple[list[dict[str, Any]], str]:
    """The containers of a recorded model (PrimaryContainer, or Containers in order) and its mode (Serial or Direct)."""
    try:
        model = hosting.describe("model", model_name)
    except EndpointError as exc:
        raise StepFailed(f"ValidationException: {exc}") from None
    containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else list(model.get("Containers") or [])
    if not containers:
        raise StepFailed(f"ValidationException: model {model_name} has neither a PrimaryContainer nor Containers")
    mode = str((model.get("InferenceExecutionConfig") or {}).get("Mode", "Serial"))
    if mode not in ("Serial", "Direct"):
        raise StepFailed(f"ValidationException: model {model_name}: InferenceExecutionConfig Mode must be Serial or Direct, got {mode!r}")
    try:
        return expand_packages(job.settings, [dict(c) for c in containers]), mode
    except EndpointError as exc:
        raise StepFailed(f"ValidationException: model {model_name}: {exc}") from None


class EndpointRunner:
    """Starts (or updates, with no downtime) a local endpoint serving the config's production variants."""

    def run(self, job: Job) -> StepResult:
        name = str(job.arguments.get("EndpointName") or job.job_name)
        config_name = str(job.arguments.get("EndpointConfigName"))
        try:
            info = deploy_config(job.settings, job.store, name, config_name, job)
            hosting = hosting_for(job)
            try:
                variants = hosting.variants(name)
            finally:
                hosting.close()
        except EndpointError as exc:
            raise StepFailed(str(exc)) from None
        job.log(f"endpoint {name} is InService at {info.url}")
        described = info.describe(job.settings.region, job.settings.account)
        return StepResult({**described, "EndpointConfigName": config_name,
                           "ProductionVariants": [{"VariantName": variant or "AllTraffic", "CurrentWeight": weight, "DesiredWeight": weight,
                                                   "CurrentInstanceCount": 1} for variant, weight, _ in variants]})  # fmt: skip
