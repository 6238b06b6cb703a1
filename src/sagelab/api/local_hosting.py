"""SageMaker's hosting resources on this machine: models, endpoint configs, and the endpoints made from them.

Models and endpoint configs are records in `.sagelab/hosting.db`, beside the ones a pipeline's Model and
EndpointConfig steps make. An endpoint made from an endpoint config is created or updated in the
background, as SageMaker does it: `create_endpoint` returns at once with the endpoint Creating, and a
thread of this process fetches the model, builds its environment and starts the endpoint's server
(`sagelab.serving.endpoints`, the same servers `sagelab deploy` starts); then the endpoint is InService,
or Failed with the reason. An update keeps the previous model serving until the new one is ready; a
failed update leaves the endpoint InService on its previous config, with the reason.

The endpoint's own record (kind "endpoint") names its config and the process deploying it, so
another process (`sagelab endpoints`) sees it Creating too, and a deployment whose process ended
midway (the server stopped) reads as Failed. Endpoints `sagelab deploy` or a pipeline started have
no such record: they are described from their server alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagelab.errors import EndpointError
from sagelab.processes import alive

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.serving.endpoints import EndpointInfo, Hosting, Invocation

ENDPOINT = "endpoint"  # the kind of an endpoint's own record in hosting.db
DEFAULT_VARIANT = "AllTraffic"  # the variant name of an endpoint without a config (`sagelab deploy`), as the SDK names one
_ACTIVE: dict[str, threading.Thread] = {}  # deployment token → the thread running it in this process
_ACTIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Record:
    """A model's or an endpoint config's request as it was created."""

    name: str
    request: dict[str, Any]
    created: float


@dataclass(frozen=True)
class EndpointState:
    """An endpoint as DescribeEndpoint tells it: its status, config and server (None until the server has started)."""

    name: str
    status: str
    created: float
    modified: float
    config: str | None = None
    failure_reason: str | None = None
    server: EndpointInfo | None = None
    variants: tuple[dict[str, Any], ...] = ()  # the production variants it serves, as its config had them, with their containers' "Images"

    @property
    def variant_names(self) -> list[str]:
        return [str(v.get("VariantName") or DEFAULT_VARIANT) for v in self.variants] or [DEFAULT_VARIANT]

    @property
    def serving(self) -> bool:
        """Whether its server answers invocations (also while an update is under way)."""
        return self.server is not None and self.server.status == "InService"


def _in_progress(marker: dict[str, Any] | None) -> bool:
    """Whether the deployment a record's marker names still runs (a thread here, or a live process elsewhere)."""
    if not marker:
        return False
    if marker.get("pid") == os.getpid():
        return marker.get("token") in _ACTIVE
    return alive(marker.get("pid"))


def wait_for_deployments(timeout: float = 300.0) -> bool:
    """Wait for the endpoint deployments this process runs to end; False if some still run after `timeout` seconds.

    A test or a notebook that stops its API server waits here before it deletes the endpoints.
    """
    deadline = time.monotonic() + timeout
    while True:
        with _ACTIVE_LOCK:
            threads = list(_ACTIVE.values())
        if not threads:
            return True
        if time.monotonic() > deadline:
            return False
        threads[0].join(max(0.0, min(1.0, deadline - time.monotonic())))


class LocalHosting:
    """The project's models, endpoint configs and endpoints (SageMaker's hosting resources), on this machine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _hosting(self) -> Hosting:
        from sagelab.serving.endpoints import Hosting

        return Hosting(self.settings.state_dir, self.settings.region, self.settings.account)

    # -- models and endpoint configs ------------------------------------------------------------

    def create_record(self, kind: str, name: str, request: dict[str, Any]) -> bool:
        """Record a "model" or an "endpoint-config"; False when one of that name exists."""
        hosting = self._hosting()
        try:
            return hosting.add(kind, name, request)
        finally:
            hosting.close()

    def record(self, kind: str, name: str) -> Record | None:
        if not (self.settings.state_dir / "hosting.db").is_file():  # reading creates no file
            return None
        hosting = self._hosting()
        try:
            found = hosting.record(kind, name)
        finally:
            hosting.close()
        return Record(name, *found) if found else None

    def records(self, kind: str) -> list[Record]:
        if not (self.settings.state_dir / "hosting.db").is_file():
            return []
        hosting = self._hosting()
        try:
            return [Record(name, request, created) for name, request, created in hosting.records(kind)]
        finally:
            hosting.close()

    def delete_record(self, kind: str, name: str) -> bool:
        """Forget a model or an endpoint config (endpoints using it keep serving, as on SageMaker); False if there was none."""
        if not (self.settings.state_dir / "hosting.db").is_file():
            return False
        hosting = self._hosting()
        try:
            return hosting.remove(kind, name)
        finally:
            hosting.close()

    # -- endpoints ------------------------------------------------------------------------------

    def endpoint(self, name: str) -> EndpointState | None:
        """The endpoint of that name, made here, by `sagelab deploy` or by a pipeline; None if there is none."""
        record = self.record(ENDPOINT, name)
        return self._state(name, record, self._server(name))

    def endpoints(self) -> list[EndpointState]:
        """Every endpoint of the project, by name."""
        if not (self.settings.state_dir / "hosting.db").is_file():
            return []
        hosting = self._hosting()
        try:
            servers = {info.name: info for info in hosting.endpoints()}
            records = {name: Record(name, request, created) for name, request, created in hosting.records(ENDPOINT)}
        finally:
            hosting.close()
        found = (self._state(name, records.get(name), servers.get(name)) for name in sorted({*servers, *records}))
        return [state for state in found if state is not None]

    def _server(self, name: str) -> EndpointInfo | None:
        if not (self.settings.state_dir / "endpoints" / name / "state.json").is_file():
            return None
        hosting = self._hosting()
        try:
            return hosting.endpoint(name)
        except EndpointError:
            return None  # stopped meanwhile
        finally:
            hosting.close()

    @staticmethod
    def _state(name: str, record: Record | None, server: EndpointInfo | None) -> EndpointState | None:
        if record is None:
            if server is None:
                return None
            started = server.started or time.time()
            return EndpointState(name, server.status, started, started, None, server.failure_reason, server)
        document = record.request
        marker: dict[str, Any] = document.get("Deploying") or {}
        failure = document.get("FailureReason") or (server.failure_reason if server else None)
        if _in_progress(marker):
            status = "Updating" if marker.get("update") else "Creating"
        elif marker:  # the process that deployed it ended midway
            serving = server is not None and server.status == "InService"
            status = "InService" if serving and marker.get("update") else "Failed"
            failure = (f"the {'update' if marker.get('update') else 'creation'} stopped midway: the process deploying it (pid "
                       f"{marker.get('pid')}) ended, as when `sagelab api` stops; " + ("update it again" if status == "InService"
                       else "delete the endpoint and create it again"))  # fmt: skip
        elif server is None:
            status = "Failed"
            failure = failure or "its server is gone; delete the endpoint and create it again"
        else:
            status = server.status
        modified = float(document.get("LastModifiedTime") or record.created)
        variants = document.get("Variants") or ([document["Variant"]] if document.get("Variant") else [])  # records before variants: one
        return EndpointState(name, status, record.created, modified, document.get("EndpointConfigName"), failure, server, tuple(variants))

    def create_endpoint(self, name: str, config: str, tags: list[dict[str, str]] | None = None) -> bool:
        """Create the endpoint in the background (Creating at once); False when an endpoint of that name exists.

        The config must exist (checked by the caller, as SageMaker checks it when the request arrives).
        """
        if self._server(name) is not None:
            return False
        token = uuid.uuid4().hex
        marker = {"pid": os.getpid(), "token": token, "config": config, "update": False}
        now = time.time()
        request = {"EndpointConfigName": config, "Tags": list(tags or []), "LastModifiedTime": now, "Deploying": marker}
        with _ACTIVE_LOCK:  # registered before the record exists: no reader sees the marker of a thread not yet known
            _ACTIVE[token] = threading.Thread(target=self._deploy, args=(name, config, token), name=f"sagelab-deploy-{name}", daemon=True)
        if not self.create_record(ENDPOINT, name, request):
            with _ACTIVE_LOCK:
                del _ACTIVE[token]
            return False
        _ACTIVE[token].start()
        return True

    def update_endpoint(self, name: str, config: str) -> bool:
        """Move an InService endpoint to another config in the background (Updating at once); False if it is not InService."""
        state = self.endpoint(name)
        if state is None or state.status != "InService":
            return False
        if self.record(ENDPOINT, name) is None:  # started by `sagelab deploy` or a pipeline: it gets a record now
            self.create_record(ENDPOINT, name, {"EndpointConfigName": None, "Tags": [], "LastModifiedTime": state.modified})
        token = uuid.uuid4().hex
        marker = {"pid": os.getpid(), "token": token, "config": config, "update": True}
        with _ACTIVE_LOCK:
            _ACTIVE[token] = threading.Thread(target=self._deploy, args=(name, config, token), name=f"sagelab-update-{name}", daemon=True)
        hosting = self._hosting()
        try:
            changed = hosting.change(ENDPOINT, name, {"Deploying": marker, "LastModifiedTime": time.time()},
                                     only_if=lambda document: not _in_progress(document.get("Deploying")))  # fmt: skip
        finally:
            hosting.close()
        if changed is None:
            with _ACTIVE_LOCK:
                del _ACTIVE[token]
            return False
        _ACTIVE[token].start()
        return True

    def _deploy(self, name: str, config: str, token: str) -> None:
        """The deployment's thread: start (or switch) the endpoint's server, then note how it went in the endpoint's record."""
        from sagelab.engines.local.deploy import deploy_config
        from sagelab.store import LocalStore

        outcome: dict[str, Any]
        try:
            variants = self._variants(config)  # read first: the config may be deleted while the endpoint starts
            deploy_config(self.settings, LocalStore(self.settings.store), name, config)
            outcome = {"EndpointConfigName": config, "Variants": variants, "Variant": None, "FailureReason": None}
        except EndpointError as exc:
            outcome = {"FailureReason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the endpoint fails with it, the traceback goes to stderr
            print(f"sagelab could not deploy endpoint {name} (a bug in sagelab; please report it with this traceback):", file=sys.stderr)
            traceback.print_exc()
            outcome = {"FailureReason": f"sagelab could not deploy it: {type(exc).__name__}: {exc}"}
        hosting = self._hosting()
        try:
            hosting.change(ENDPOINT, name, {**outcome, "Deploying": None, "LastModifiedTime": time.time()},
                           only_if=lambda document: (document.get("Deploying") or {}).get("token") == token)  # fmt: skip
        finally:
            hosting.close()
            with _ACTIVE_LOCK:
                _ACTIVE.pop(token, None)

    def _variants(self, config: str) -> list[dict[str, Any]]:
        """The config's production variants, each with the images of its model's containers."""
        record = self.record("endpoint-config", config)
        variants = [dict(v) for v in ((record.request.get("ProductionVariants") if record else None) or [])]
        for variant in variants:
            model = self.record("model", str(variant["ModelName"])) if variant.get("ModelName") else None
            if model is not None:
                request = model.request
                containers = [request["PrimaryContainer"]] if request.get("PrimaryContainer") else list(request.get("Containers") or [])
                variant["Images"] = [str(c["Image"]) for c in containers if c.get("Image")]
        return variants

    def delete_endpoint(self, name: str) -> bool:
        """Stop the endpoint's server and forget it; False if there is no such endpoint.

        Raises:
            EndpointError: it is being created or updated (SageMaker refuses that too).
        """
        state = self.endpoint(name)
        if state is None:
            return False
        if state.status in ("Creating", "Updating"):
            raise EndpointError(f"endpoint {name} is {state.status}; delete it once it is InService or Failed")
        hosting = self._hosting()
        try:
            if state.server is not None:
                hosting.delete(name)
            hosting.remove(ENDPOINT, name)
        finally:
            hosting.close()
        return True

    def pick_variant(self, name: str) -> str | None:
        """The production variant the endpoint's next request goes to, drawn by weight as SageMaker splits traffic.

        Raises:
            EndpointError: the endpoint has no server.
        """
        hosting = self._hosting()
        try:
            return hosting.pick(name)[0]
        finally:
            hosting.close()

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None, *, target_container: str | None = None,
               custom_attributes: str | None = None, inference_id: str | None = None, target_variant: str | None = None,
               timeout: float = 60.0) -> Invocation:  # fmt: skip
        """POST the body to the endpoint's server, as InvokeEndpoint does (the model's answer, whatever its status, within `timeout` s).

        Raises:
            EndpointError: the endpoint is not serving, or its server did not answer.
        """
        hosting = self._hosting()
        try:
            return hosting.invoke(name, body, content_type, accept, timeout, target_container=target_container, custom_attributes=custom_attributes,
                                  inference_id=inference_id, target_variant=target_variant)  # fmt: skip
        finally:
            hosting.close()
