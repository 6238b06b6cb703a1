"""Runners for SageMaker's hosting steps: Model (CreateModel), EndpointConfig, Endpoint."""

from __future__ import annotations

from typing import Any

from sagelab.engines.local.deploy import (EndpointLog, data_capture, expand_packages, materialize_all, served_model, startup_timeout,
                                          with_environments)
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
    """Starts (or updates, with no downtime) a local endpoint serving the config's first variant."""

    def run(self, job: Job) -> StepResult:
        name = str(job.arguments.get("EndpointName") or job.job_name)
        hosting = hosting_for(job)
        try:
            config = hosting.describe("endpoint-config", str(job.arguments.get("EndpointConfigName")))
            variants = config.get("ProductionVariants") or []
            if not variants:
                raise StepFailed(f"endpoint config {config['EndpointConfigName']} has no ProductionVariants")
            containers, mode = model_containers(job, hosting, variants[0]["ModelName"])
            local = with_environments(materialize_all(job.store, job.settings, containers, job), EndpointLog(hosting.log_path(name), also=job),
                                      mode=job.settings.environment)
            model, env = served_model(job.settings, local, mode)
            env = {**env, **data_capture(job.settings, job.store, config.get("DataCaptureConfig"), name, str(variants[0].get("VariantName") or "AllTraffic"))}
            info = hosting.deploy(name, model, label=variants[0]["ModelName"], environment=env, timeout=startup_timeout(variants[0]),
                                  log_max_bytes=job.settings.endpoint_log_bytes)  # fmt: skip
        except EndpointError as exc:
            raise StepFailed(str(exc)) from None
        finally:
            hosting.close()
        job.log(f"endpoint {name} is InService at {info.url}")
        described = info.describe(job.settings.region, job.settings.account)
        return StepResult({**described, "EndpointConfigName": config["EndpointConfigName"],
                           "ProductionVariants": [{"VariantName": v.get("VariantName"), "CurrentWeight": 1.0} for v in variants]})  # fmt: skip
