"""Endpoints on this machine (`LocalEndpoints`) or on SageMaker (`SageMakerEndpoints`), behind one interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.errors import ConfigError

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.engines.sagemaker import hosting as sagemaker_hosting
    from sagelab.serving.endpoints import Hosting, Invocation


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as `sagelab endpoints` lists it; a field an engine does not know is None (or empty)."""

    name: str
    status: str
    model: str | None = None  # GROUP/VERSION a local endpoint serves
    url: str | None = None  # a local endpoint's address
    started: float | None = None  # Unix seconds a local endpoint came up
    created: str | None = None  # a SageMaker endpoint's CreationTime
    endpoint_config: str | None = None
    instances: list[str] = field(default_factory=list)  # SageMaker: "2 × ml.m5.large" per production variant
    restarts: int = 0  # a local endpoint's: times its server died and was started again
    last_restart: str | None = None  # when and why, the last time

    @property
    def uptime(self) -> float | None:
        return time.time() - self.started if self.started and self.status == "InService" else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deployed:
    """What a deploy did: the endpoint, the model version it serves, where, and its status."""

    endpoint: str
    model: str  # GROUP/VERSION locally; the model package ARN on SageMaker
    where: str  # a local URL, or SageMaker's instances
    status: str


class Endpoints(Protocol):
    """What the front ends ask of the endpoints of a profile."""

    billed: bool  # deleting stops a billed SageMaker endpoint: front ends ask first

    def list(self) -> list[Endpoint]: ...

    def deploy(self, model: str, name: str, *, port: int = 0, instance_type: str = "ml.m5.large",
               progress: Callable[[str], None] | None = None, capture: float | None = None) -> Deployed: ...  # fmt: skip

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None,
               target_container: str | None = None, target_variant: str | None = None) -> Invocation: ...  # fmt: skip

    def delete(self, name: str) -> str: ...


class LocalEndpoints:
    """Endpoints served on 127.0.0.1 from the project's registry; `port` picks a new endpoint's port."""

    billed = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _hosting(self) -> Hosting:
        from sagelab.serving.endpoints import Hosting

        return Hosting(self.settings.state_dir, self.settings.region, self.settings.account)

    def list(self) -> list[Endpoint]:
        """Every local endpoint: those `sagelab deploy` and pipelines started, and those made through `sagelab api` (Creating too)."""
        from sagelab.api.local_hosting import LocalHosting

        listed = []
        for state in LocalHosting(self.settings).endpoints():  # reading creates no file
            server = state.server
            listed.append(Endpoint(state.name, state.status, server.model if server else None, server.url if server and server.port else None,
                                   server.started if server else None, endpoint_config=state.config,
                                   restarts=server.restarts if server else 0, last_restart=server.last_restart if server else None))  # fmt: skip
        return listed

    def deploy(self, model: str, name: str, *, port: int = 0, instance_type: str = "ml.m5.large",
               progress: Callable[[str], None] | None = None, capture: float | None = None) -> Deployed:  # fmt: skip
        """Start the endpoint for a registered version, or move it to that version without downtime (`instance_type` is SageMaker's);
        `capture`: the percentage of requests captured (with their answers) under s3://BUCKET/datacapture."""
        from sagelab.engines.local.deploy import deploy_package

        package, info = deploy_package(self.settings, model, name, port, capture=capture)
        return Deployed(info.name, package.ref, info.url, info.status)

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None,
               target_container: str | None = None, target_variant: str | None = None) -> Invocation:  # fmt: skip
        return self._hosting().invoke(name, body, content_type, accept, target_container=target_container, target_variant=target_variant)

    def delete(self, name: str) -> str:
        from sagelab.api.local_hosting import LocalHosting

        if not LocalHosting(self.settings).delete_endpoint(name):
            self._hosting().delete(name)  # refuses the unknown name, listing the endpoints there are
        return f"endpoint {name} deleted"


class SageMakerEndpoints:
    """SageMaker's endpoints, with the profile's credentials: billed by the hour while they run."""

    billed = True

    def __init__(self, endpoints: sagemaker_hosting.Endpoints) -> None:
        self.endpoints = endpoints

    def list(self) -> list[Endpoint]:
        """Each endpoint with its instances (two calls an endpoint)."""
        return [Endpoint(e["EndpointName"], e["EndpointStatus"], created=str(e.get("CreationTime") or "") or None,
                         endpoint_config=e["EndpointConfigName"], instances=e["Instances"])
                for e in self.endpoints.overview()]  # fmt: skip

    def deploy(self, model: str, name: str, *, port: int = 0, instance_type: str = "ml.m5.large",
               progress: Callable[[str], None] | None = None, capture: float | None = None) -> Deployed:  # fmt: skip
        """A model and an endpoint config of its own, then CreateEndpoint or UpdateEndpoint; waits for InService."""
        deployment = self.endpoints.deploy(model, name, instance_type=instance_type, progress=progress, capture=capture)
        return Deployed(deployment.endpoint, deployment.model_package_arn, f"1 × {instance_type}", deployment.status)

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None,
               target_container: str | None = None, target_variant: str | None = None) -> Invocation:  # fmt: skip
        if target_container:
            raise ConfigError("--target-container is for local endpoints; sagelab's SageMaker invoke sends none")
        return self.endpoints.invoke(name, body, content_type, accept, target_variant=target_variant)

    def delete(self, name: str) -> str:
        self.endpoints.delete(name)
        return f"SageMaker endpoint {name} is being deleted (its models and endpoint configs stay)"
