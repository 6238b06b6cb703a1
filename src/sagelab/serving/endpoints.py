"""Local SageMaker hosting: models, endpoint configs, and endpoints that keep serving.

Records live in `.sagelab/hosting.db`; each endpoint has a folder `.sagelab/endpoints/<name>/`
with its model, its log and its state. An endpoint is a small supervisor process that owns
the listening socket and runs the inference server (`python -m sagelab.serving`) on it. An
update starts a new server on the same socket, waits until it is ready, then lets the old
one finish its in-flight requests: the port never changes and no request is dropped.

    python -m sagelab.serving.endpoints [--detach] FOLDER   (the supervisor; `Hosting.deploy` starts it)
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sagelab.cron import cron_matches
from sagelab.database import open_database
from sagelab.errors import EndpointError, ModelError
from sagelab.processes import alive, descendants, tree_memory_mb
from sagelab.serving.capped_log import DEFAULT_MAX_BYTES, CappedLog, tail
from sagelab.serving.capture import CAPTURE_ENV, INFERENCE_ID_HEADER
from sagelab.serving.protocol import CUSTOM_ATTRIBUTES_HEADER, TARGET_CONTAINER_HEADER
from sagelab.serving.spawn import interpreter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
"""
_READY_TIMEOUT = 120.0
MEMORY_CHECK_SECONDS = 1.0  # how often a serverless variant's server is weighed against its MemorySizeInMB


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "Z"


def _write_json(path: Path, document: Any) -> None:
    """Atomically: readers see the old document or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


@dataclass(frozen=True)
class EndpointInfo:
    """What `sagelab endpoints` shows about one endpoint."""

    name: str
    status: str
    port: int | None
    model: str
    started: float | None
    failure_reason: str | None = None
    restarts: int = 0  # times its server died and was started again
    last_restart: str | None = None  # why, the last time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def describe(self, region: str, account: str) -> dict[str, Any]:
        """The DescribeEndpoint shape."""
        described: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": f"arn:aws:sagemaker:{region}:{account}:endpoint/{self.name.lower()}",
            "EndpointStatus": self.status,
            "CreationTime": _iso(self.started or time.time()),
            "LastModifiedTime": _iso(time.time()),
        }
        if self.failure_reason:
            described["FailureReason"] = self.failure_reason
        return described


@dataclass(frozen=True)
class Invocation:
    status: int
    content_type: str
    body: bytes
    custom_attributes: str | None = None  # the model's X-Amzn-SageMaker-Custom-Attributes, when it sends one
    variant: str | None = None  # the production variant that answered (an endpoint with several)


class Hosting:
    """A project's local models, endpoint configs and endpoints."""

    def __init__(self, state_dir: Path, region: str = "us-east-1", account: str = "000000000000") -> None:
        self.folder = state_dir / "endpoints"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = open_database(state_dir / "hosting.db", _SCHEMA)
        self.region, self.account = region, account

    def close(self) -> None:
        self._db.close()

    # -- models and endpoint configs (CreateModel, CreateEndpointConfig) ---------------

    def create(self, kind: str, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Record a Model or EndpointConfig and return its Describe* shape."""
        now = time.time()
        self._db.execute("INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?)", (kind, name, json.dumps(request), now))
        return self.describe(kind, name)

    def describe(self, kind: str, name: str) -> dict[str, Any]:
        row = self._db.execute("SELECT request, created FROM resources WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        if row is None:
            raise EndpointError(f"no {kind} named {name!r} was created in this project")
        resource = {"model": "model", "endpoint-config": "endpoint-config"}[kind]
        key = {"model": "Model", "endpoint-config": "EndpointConfig"}[kind]
        return {
            **json.loads(row[0]),
            f"{key}Name": name,
            f"{key}Arn": f"arn:aws:sagemaker:{self.region}:{self.account}:{resource}/{name.lower()}",
            "CreationTime": _iso(row[1]),
        }

    # -- records of any kind: "model", "endpoint-config", and an endpoint's own ("endpoint") --

    def add(self, kind: str, name: str, request: dict[str, Any]) -> bool:
        """Record a resource that must be new; False when one of that kind and name exists already."""
        try:
            self._db.execute("INSERT INTO resources VALUES (?, ?, ?, ?)", (kind, name, json.dumps(request), time.time()))
        except sqlite3.IntegrityError:
            return False
        return True

    def record(self, kind: str, name: str) -> tuple[dict[str, Any], float] | None:
        """A resource's request as recorded, and when it was created."""
        row = self._db.execute("SELECT request, created FROM resources WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return (json.loads(row[0]), float(row[1])) if row else None

    def records(self, kind: str) -> list[tuple[str, dict[str, Any], float]]:
        """Every resource of a kind: name, request, creation time."""
        rows = self._db.execute("SELECT name, request, created FROM resources WHERE kind = ?", (kind,)).fetchall()
        return [(str(name), json.loads(request), float(created)) for name, request, created in rows]

    def change(self, kind: str, name: str, changes: dict[str, Any],
               only_if: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:  # fmt: skip
        """Merge `changes` into a record (its creation time kept) in one transaction, if it exists and `only_if` agrees.

        Returns the record as changed, or None when nothing changed.
        """
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT request FROM resources WHERE kind = ? AND name = ?", (kind, name)).fetchone()
            if row is None or (only_if is not None and not only_if(json.loads(row[0]))):
                return None
            changed = {**json.loads(row[0]), **changes}
            self._db.execute("UPDATE resources SET request = ? WHERE kind = ? AND name = ?", (json.dumps(changed), kind, name))
        return changed

    def remove(self, kind: str, name: str) -> bool:
        """Forget a resource; False when there was none."""
        return self._db.execute("DELETE FROM resources WHERE kind = ? AND name = ?", (kind, name)).rowcount > 0

    # -- endpoints -----------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        """The endpoint's log (its folder made if new), where its servers and the building of its environment write."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "endpoint.log"

    def _folder(self, name: str) -> Path:
        if not name or not all(c.isalnum() or c == "-" for c in name) or len(name) > 63:
            raise EndpointError(f"{name!r} is not a valid endpoint name: use up to 63 letters, digits and hyphens")
        return self.folder / name

    def _variant_folder(self, name: str, variant: str) -> Path:
        if not variant or not all(c.isalnum() or c == "-" for c in variant) or len(variant) > 63:
            raise EndpointError(f"{variant!r} is not a valid variant name: use up to 63 letters, digits and hyphens")
        return self._folder(name) / "variants" / variant

    def deploy(self, name: str, model: Path, label: str, environment: dict[str, str] | None = None,
               port: int = 0, timeout: float = _READY_TIMEOUT, log_max_bytes: int = DEFAULT_MAX_BYTES,
               variant: str | None = None, memory_limit_mb: int | None = None) -> EndpointInfo:  # fmt: skip
        """Create the endpoint, or move it to another model without dropping a request.

        SAGELAB_SERVING_PYTHON in `environment` starts the server on that interpreter (an
        environment with the model's requirements.txt, which the local engine builds). `timeout`
        is how long the model may take to answer /ping (ContainerStartupHealthCheckTimeoutInSeconds);
        the endpoint's log is rotated past `log_max_bytes`. `variant` names a production variant
        beside the endpoint's first one: it gets a server of its own (`set_variants` weighs them).
        A server holding more than `memory_limit_mb` (a serverless variant's MemorySizeInMB) is killed
        and started again, or fails the deployment while it loads its model.
        """
        folder = self._folder(name) if variant is None else self._variant_folder(name, variant)
        folder.mkdir(parents=True, exist_ok=True)
        generation = int(_read_json(folder / "desired.json").get("generation", 0)) + 1
        desired = {"model": str(model), "label": label, "environment": environment or {}, "port": port, "generation": generation,
                   "startup_timeout": timeout, "log_max_bytes": log_max_bytes, "memory_limit_mb": memory_limit_mb}  # fmt: skip
        _write_json(folder / "desired.json", desired)
        capture = (environment or {}).get(CAPTURE_ENV)
        if capture:  # kept after the endpoint is deleted: its captured data can still be monitored
            _write_json(folder / "capture.json", {"folder": json.loads(capture)["folder"]})
        else:
            (folder / "capture.json").unlink(missing_ok=True)
        state = _read_json(folder / "state.json")
        if alive(state.get("pid")):
            os.kill(int(state["pid"]), signal.SIGHUP)
        else:
            with open(folder / "endpoint.log", "ab") as log:
                subprocess.run(  # returns at once: the supervisor detaches and outlives this process
                    [sys.executable, "-m", "sagelab.serving.endpoints", "--detach", str(folder)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, check=True,
                )  # fmt: skip
        deadline = time.time() + timeout + 10
        while time.time() < deadline:
            state = _read_json(folder / "state.json")
            if state.get("generation") == generation and state.get("status") in ("InService", "Failed"):
                break
            time.sleep(0.05)
        info = self._info(folder, name)
        if info.status != "InService" or info.model != label:
            reason = info.failure_reason or f"not ready after {timeout:.0f} s"
            raise EndpointError(f"endpoint {name} did not start {label}: {reason}; see {folder / 'endpoint.log'}")
        return info

    def endpoint(self, name: str) -> EndpointInfo:
        """The endpoint's first (or only) production variant's server."""
        return self._info(self.folder / name, name)

    def _info(self, folder: Path, name: str) -> EndpointInfo:
        state = _read_json(folder / "state.json")
        if not state:
            known = ", ".join(e.name for e in self.endpoints()) or "none"
            raise EndpointError(f"no endpoint {name!r}; endpoints: {known}")
        status = state.get("status", "Creating") if alive(state.get("pid")) else "OutOfService"
        return EndpointInfo(name, status, state.get("port"), state.get("label", ""), state.get("started"), state.get("failure_reason"),
                            int(state.get("restarts") or 0), state.get("last_restart"))  # fmt: skip

    def set_variants(self, name: str, weights: list[tuple[str, float]]) -> None:
        """The endpoint's production variants and their weights, the first served by the endpoint's own server; variants
        deployed before and not named any more are stopped."""
        folder = self._folder(name)
        _write_json(folder / "variants.json", {"variants": [{"name": v, "weight": w} for v, w in weights]})
        kept = {v for v, _ in weights[1:]}
        for stale in sorted((folder / "variants").glob("*")) if (folder / "variants").is_dir() else []:
            if stale.name not in kept:
                _stop(stale)

    def variants(self, name: str) -> list[tuple[str, float, EndpointInfo]]:
        """Each production variant with its weight and server (one, unnamed, for an endpoint deployed without a config)."""
        listed = _read_json(self._folder(name) / "variants.json").get("variants") or [{"name": "", "weight": 1.0}]
        found = [(str(listed[0]["name"]), float(listed[0]["weight"]), self.endpoint(name))]
        for extra in listed[1:]:
            folder = self._variant_folder(name, str(extra["name"]))
            found.append((str(extra["name"]), float(extra["weight"]), self._info(folder, name)))
        return found

    def set_monitoring(self, name: str, schedules: list[dict[str, str]]) -> None:
        """The monitoring schedules the endpoint's supervisor runs ({"name", "expression"} each; `sagelab.api.schedules`)."""
        _write_json(self._folder(name) / "monitoring.json", {"schedules": schedules})

    def capture_folder(self, name: str) -> Path | None:
        """Where the endpoint's data capture writes (the folder its DestinationS3Uri maps to), or None when it captures nothing."""
        folder = _read_json(self._folder(name) / "capture.json").get("folder")
        return Path(folder) if folder else None

    def endpoints(self) -> list[EndpointInfo]:
        if not self.folder.is_dir():
            return []
        return [self.endpoint(f.name) for f in sorted(self.folder.iterdir()) if (f / "state.json").is_file()]

    def delete(self, name: str, timeout: float = 30.0) -> None:
        """Stop the endpoint and its variants' servers (in-flight requests finish) and free its port."""
        self.endpoint(name)  # refuses an unknown name
        folder = self.folder / name
        for variant in sorted((folder / "variants").glob("*")) if (folder / "variants").is_dir() else []:
            _stop(variant, timeout)
        _stop(folder, timeout)
        (folder / "variants.json").unlink(missing_ok=True)

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None, timeout: float = 60.0,
               target_container: str | None = None, custom_attributes: str | None = None, inference_id: str | None = None,
               target_variant: str | None = None) -> Invocation:  # fmt: skip
        """POST /invocations to the endpoint, as sagemaker-runtime InvokeEndpoint does (`inference_id`: its InferenceId, which
        data capture records). With several production variants, one is picked at random by weight, or `target_variant`.

        `target_container` is InvokeEndpoint's TargetContainerHostname: the container of a
        Direct-mode pipeline model that answers; `custom_attributes` its CustomAttributes, passed
        to the model as the X-Amzn-SageMaker-Custom-Attributes header.
        """
        variant, info = self.pick(name, target_variant)
        if info.status not in ("InService", "Updating"):  # Updating: its server restarts; the request waits on the socket meanwhile
            raise EndpointError(f"endpoint {name} is {info.status}; deploy it again with `sagelab deploy`")
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        if target_container:
            headers[TARGET_CONTAINER_HEADER] = target_container
        if custom_attributes is not None:
            headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes
        if inference_id:
            headers[INFERENCE_ID_HEADER] = inference_id
        request = urllib.request.Request(f"{info.url}/invocations", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Invocation(response.status, response.headers.get("Content-Type", ""), response.read(),
                                  response.headers.get(CUSTOM_ATTRIBUTES_HEADER), variant)  # fmt: skip
        except urllib.error.HTTPError as exc:
            return Invocation(exc.code, exc.headers.get("Content-Type", ""), exc.read(), exc.headers.get(CUSTOM_ATTRIBUTES_HEADER), variant)
        except OSError as exc:
            if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                raise EndpointError(f"endpoint {name} at {info.url} did not answer within {timeout:g} s") from None
            raise EndpointError(f"endpoint {name} at {info.url} did not answer: {exc}") from None

    def pick(self, name: str, target: str | None = None) -> tuple[str | None, EndpointInfo]:
        """The variant a request goes to: `target`, else one drawn by weight (SageMaker's traffic split)."""
        variants = self.variants(name)
        if target is not None:
            for variant, _, info in variants:
                if variant == target:
                    return variant, info
            raise EndpointError(f"endpoint {name} has no production variant {target!r}; it has {', '.join(v for v, _, _ in variants)}")
        if len(variants) == 1:
            return variants[0][0] or None, variants[0][2]
        weights = [max(0.0, weight) for _, weight, _ in variants]
        variant, _, info = random.choices(variants, weights=weights if sum(weights) > 0 else None)[0]
        return variant, info


def _stop(folder: Path, timeout: float = 30.0) -> None:
    """Stop the supervisor serving from `folder` (SIGTERM, then SIGKILL after `timeout`) and forget its state."""
    pid = int(_read_json(folder / "state.json").get("pid") or 0)
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    (folder / "state.json").unlink(missing_ok=True)
    (folder / "desired.json").unlink(missing_ok=True)


# -- the supervisor process ------------------------------------------------------------


class _Supervisor:
    """Owns an endpoint's socket; runs one server on it, two for the moment of an update.

    A server that dies is started again, after 1 s, then 2, 4, ... up to a minute while it keeps dying
    (the count resets once one has served for a minute): SageMaker replaces an unhealthy instance
    the same way. Meanwhile the socket stays open, so clients' connections wait for the new server.
    A serverless variant's server is killed, and so started again, when its processes hold more than
    its MemorySizeInMB (looked at every second; on Linux, where /proc tells), as that compute runs
    out of memory; one killed while loading its model fails the deployment instead. Every server's
    output goes through one capped log (`capped_log.py`).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.reload = False
        self.stop = False
        self.server: subprocess.Popen[bytes] | None = None
        self.server_started = 0.0
        self.failures_in_a_row = 0
        self.restart_at: float | None = None
        self.minute = int(time.time() // 60)  # the last minute whose monitoring schedules were looked at
        self.monitoring: list[subprocess.Popen[bytes]] = []  # runs of monitoring schedules not yet reaped
        self.memory_limit_mb: float | None = None  # the serving server's (a serverless variant's MemorySizeInMB)
        self.memory_checked = 0.0
        self.killed_for: str | None = None  # why this supervisor killed the server, for the restart's reason
        self.state: dict[str, Any] = {"pid": os.getpid(), "started": time.time(), "status": "Creating", "restarts": 0}

    def run(self) -> None:
        desired = _read_json(self.folder / "desired.json")
        self.log = CappedLog(self.folder / "endpoint.log", int(desired.get("log_max_bytes") or DEFAULT_MAX_BYTES))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(desired.get("port") or 0)))
        listener.listen(1024)
        listener.set_inheritable(True)
        self.socket = listener
        self.state["port"] = listener.getsockname()[1]
        self._save()
        signal.signal(signal.SIGHUP, self._on_reload)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        self._switch(desired)
        while not self.stop:
            if self.reload:
                self.reload = False
                self._switch(_read_json(self.folder / "desired.json"))
            elif self.server is not None and self.server.poll() is not None and not self.stop:
                self._died(self.server)
            elif self.restart_at is not None and time.time() >= self.restart_at:
                self.restart_at = None
                self._switch(_read_json(self.folder / "desired.json"), restart=True)
            elif int(time.time() // 60) != self.minute:
                self.minute = int(time.time() // 60)
                self._monitor()
            elif self.server is not None and self.memory_limit_mb and time.time() - self.memory_checked >= MEMORY_CHECK_SECONDS:
                self.memory_checked = time.time()
                if not self._check_memory(self.server, self.memory_limit_mb):
                    self.memory_limit_mb = None
            time.sleep(0.05)
        if self.server is not None:
            self._drain(self.server)
        listener.close()
        (self.folder / "state.json").unlink(missing_ok=True)
        self.log.close()

    def _on_reload(self, *_: Any) -> None:
        self.reload = True

    def _on_stop(self, *_: Any) -> None:
        self.stop = True

    def _died(self, server: subprocess.Popen[bytes]) -> None:
        """The serving server exited on its own: note why, and start another after a backoff."""
        self.server = None
        if time.time() - self.server_started >= 60:
            self.failures_in_a_row = 0
        self.failures_in_a_row += 1
        delay = min(60.0, 2.0 ** (self.failures_in_a_row - 1))
        reason = f"the inference server (pid {server.pid}) {self.killed_for or _exit_reason(server.returncode)}"
        self.killed_for = None
        self._line(f"{reason}; starting another in {delay:g} s")
        self.restart_at = time.time() + delay
        self._save(status="Updating", last_restart=f"{_iso(time.time())}: {reason}")

    def _switch(self, desired: dict[str, Any], restart: bool = False) -> None:
        """Start a server for `desired`; once it is ready, drain the old one."""
        ready = self.folder / f"ready-{desired['generation']}"
        ready.unlink(missing_ok=True)
        keep = "InService" if self.server is not None else "Failed"  # an update that fails leaves the old server serving
        try:
            python, env = interpreter({**os.environ, **{str(k): str(v) for k, v in desired.get("environment", {}).items()}})
        except ModelError as exc:
            self._save(status=keep, failure_reason=str(exc), generation=desired["generation"])
            return
        fd = self.socket.fileno()
        server = subprocess.Popen(
            [python, "-m", "sagelab.serving", desired["model"], "--fd", str(fd), "--ready-file", str(ready)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(fd,), env=env,
        )  # fmt: skip
        assert server.stdout is not None
        self.log.start_copying(server.stdout)
        timeout = float(desired.get("startup_timeout") or _READY_TIMEOUT)
        deadline = time.time() + timeout
        limit, weighed = float(desired.get("memory_limit_mb") or 0) or None, time.time()
        self.killed_for = None
        while not ready.exists() and server.poll() is None and time.time() < deadline and not self.stop:
            if limit and time.time() - weighed >= MEMORY_CHECK_SECONDS:  # a model too big to load in its memory fails here
                weighed = time.time()
                if not self._check_memory(server, limit):
                    limit = None
            time.sleep(0.02)
        if not ready.exists():
            timed_out = server.poll() is None
            server.kill()
            server.wait()
            if self.stop:
                return
            why = f"did not answer /ping within {timeout:g} s (ContainerStartupHealthCheckTimeoutInSeconds)" if timed_out else (
                (self.killed_for or _exit_reason(server.returncode)) + " before it was ready")  # fmt: skip
            self.killed_for = None
            time.sleep(0.1)  # the server's last lines reach the log
            reason = f"the server for {desired['label']} {why}; the log ends:\n{tail(self.log.path, 15)}"
            if restart:  # still dying: try again later, as SageMaker keeps replacing an unhealthy instance
                self.state["failure_reason"] = reason
                self._died(server)  # saves the state, the reason with it
                return
            self._save(status=keep, failure_reason=reason, generation=desired["generation"])
            return
        ready.unlink(missing_ok=True)
        old, self.server = self.server, server
        self.server_started = time.time()
        self.memory_limit_mb = limit
        if old is not None:
            self._drain(old)
        if restart:
            self.state["restarts"] = int(self.state.get("restarts", 0)) + 1
            self._line(f"restarted: the inference server (pid {server.pid}) serves again")
        self._save(status="InService", label=desired["label"], generation=desired["generation"], failure_reason=None, server_pid=server.pid)

    def _monitor(self) -> None:
        """Start the monitoring schedules whose cron expression names this minute, each in a process of its own."""
        self.monitoring = [run for run in self.monitoring if run.poll() is None]  # the ended ones reaped
        schedules = _read_json(self.folder / "monitoring.json").get("schedules") or []
        if not schedules:
            return
        now = datetime.fromtimestamp(self.minute * 60, timezone.utc)
        root = self.folder.parents[2]  # <root>/.sagelab/endpoints/<name>
        for schedule in schedules:
            if cron_matches(str(schedule.get("expression", "")), now):
                self._line(f"monitoring schedule {schedule['name']}: running for {now:%Y-%m-%d %H:%M} UTC")
                run = subprocess.Popen([sys.executable, "-m", "sagelab.api.schedules", str(root), str(schedule["name"]), now.isoformat()],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
                assert run.stdout is not None
                self.log.start_copying(run.stdout)
                self.monitoring.append(run)

    def _check_memory(self, server: subprocess.Popen[bytes], limit_mb: float) -> bool:
        """Kill the server and its workers when they hold more than `limit_mb` (saying why in `killed_for`): the main loop
        then starts another, or the deployment fails when it was loading its model. False where memory cannot be weighed."""
        try:
            used = tree_memory_mb(server.pid)
        except OSError as exc:  # /proc changed under it: weigh again next time
            self._line(f"could not weigh the inference server's memory: {exc}")
            return True
        if used is None:
            self._line(f"MemorySizeInMB ({limit_mb:g} MB) is not enforced here: this system does not tell a process's memory")
            return False
        if used > limit_mb:
            self.killed_for = (f"held {used:.0f} MB, more than its serverless MemorySizeInMB ({limit_mb:g} MB), and was killed, as "
                               "that compute runs out of memory")  # fmt: skip
            workers = descendants(server.pid)  # listed first: once the server is gone they are no longer its children
            for pid in [server.pid, *workers]:  # the server first, so that it forks no replacement for a killed worker
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:  # ended already
                    pass
        return True

    def _drain(self, server: subprocess.Popen[bytes]) -> None:
        server.terminate()  # the server stops accepting and finishes what it has
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def _line(self, message: str) -> None:
        self.log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [sagelab] {message}\n".encode())

    def _save(self, **changes: Any) -> None:
        self.state.update(changes)
        _write_json(self.folder / "state.json", self.state)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def main(argv: list[str]) -> None:
    if argv[0] == "--detach":  # the caller waits for this process only; the supervisor lives on
        argv = argv[1:]
        if os.fork():
            os._exit(0)
        os.setsid()
    _Supervisor(Path(argv[0])).run()


if __name__ == "__main__":
    main(sys.argv[1:])
