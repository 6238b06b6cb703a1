"""A pipeline model's front: one request through its containers in turn, as SageMaker runs them.

Each container runs as its own inference server process (spawn.py) with its own model, its
own environment and its own user module; this front process answers SageMaker's protocol and
passes requests on over keep-alive HTTP connections on 127.0.0.1, as SageMaker's host does
between the containers of an inference pipeline:

- Serial mode: the request's body and Content-Type go to the first container; each
  container's response body and Content-Type become the next one's request. The caller's
  Accept goes to the last container only; the others get none, so each answers with its own
  SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (else its framework's default: JSON for scikit-learn),
  which is how SageMaker's examples set up the content type between containers.
- Direct mode: only the container named by the X-Amzn-SageMaker-Target-Container-Hostname
  header (InvokeEndpoint's TargetContainerHostname) answers.

An error status from a container ends the request with that status, and the message names the
container. X-Amzn-SageMaker-* headers (CustomAttributes, ...) reach every container. If a
container's server dies, the front stops (exit code 1), as an endpoint whose container fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable

from sagelab.errors import ModelError
from sagelab.serving import protocol
from sagelab.serving.app import ProtocolApp
from sagelab.serving.pipeline_model import ContainerModel, PipelineModel
from sagelab.serving.protocol import Reply, ServingSettings
from sagelab.serving.spawn import ServerProcess, start_all, stop_all

logger = logging.getLogger("sagelab.serving")
_FORWARDED = "x-amzn-sagemaker-"  # header prefix passed on to every container
_GRACE = 5.0  # seconds past a container's own timeout (it answers 504 itself) before the front gives up on it
_WATCH_INTERVAL = 0.25
# Variables that describe one container's code, image and interpreter: a container has them from its own
# Environment only, never from the front's (which may have them from a shell or a single model).
_ONE_CONTAINERS = frozenset({protocol.PROGRAM_ENV, protocol.SUBMIT_DIRECTORY_ENV, protocol.FRAMEWORK_ENV, protocol.IMAGE_ENV,
                             protocol.PYTHON_ENV})  # fmt: skip


class _Upstream:
    """Keep-alive HTTP/1.1 connections to one container's server."""

    def __init__(self, container: ContainerModel, index: int, count: int, port: int) -> None:
        self.container, self.port = container, port
        self.name = f"container {index + 1} of {count}, {container.label}"
        self.timeout = container.settings.timeout + _GRACE
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> Reply:
        lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{self.port}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            reply = await asyncio.wait_for(self._exchange(message), self.timeout)
        except asyncio.TimeoutError:
            return Reply.error(504, f"{self.name} did not answer within {self.timeout:g} s")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return Reply.error(502, f"{self.name} is not answering ({exc}); see the server log")
        if reply.status >= 400:  # say which container failed
            detail = reply.body.decode("utf-8", "replace").strip()
            return Reply.error(reply.status, f"{self.name} answered {reply.status}: {detail}")
        return reply

    async def _exchange(self, message: bytes) -> Reply:
        while True:
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(message)
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and not getattr(exc, "partial", b""):  # the server had closed this idle connection
                    continue
                raise
            except BaseException:  # cancelled (timeout): the connection is in an unknown state
                writer.close()
                raise
            try:
                status, headers = _parse_head(head)
                length = headers.get("content-length")
                body = await (reader.readexactly(int(length)) if length is not None else reader.read())
            except BaseException:
                writer.close()
                raise
            if length is None or headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self._idle.append((reader, writer))
            return Reply(status, body, headers.get("content-type", protocol.OCTET_STREAM))


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line[:60]!r}")
    headers = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class ChainApp(ProtocolApp):
    """SageMaker's protocol for a pipeline model whose containers listen on `ports`."""

    def __init__(self, model: PipelineModel, ports: list[int], *, max_payload_bytes: int | None) -> None:
        super().__init__(max_payload_bytes=max_payload_bytes)
        self.model = model
        count = len(model.containers)
        self.upstreams = [_Upstream(c, i, count, port) for i, (c, port) in enumerate(zip(model.containers, ports))]
        self.by_hostname = {u.container.hostname: u for u in self.upstreams}

    def ready(self) -> bool:
        return True  # the front accepts connections only once every container is ready

    async def answer(self, body: bytes, content_type: str | None, accept: str | None, headers: dict[str, str]) -> Reply:
        forwarded = [(name, value) for name, value in headers.items() if name.startswith(_FORWARDED)]
        if self.model.mode == "Direct":
            target = headers.get(protocol.TARGET_CONTAINER_HEADER)
            upstream = self.by_hostname.get(target or "")
            if upstream is None:
                names = ", ".join(self.by_hostname)
                got = f"got {target!r}" if target else "the request names none"
                return Reply.error(400, f"this model runs its containers in Direct mode: name the one to invoke with the "
                                        f"X-Amzn-SageMaker-Target-Container-Hostname header (TargetContainerHostname; "
                                        f"`sagelab invoke --target-container`), one of {names}; {got}")  # fmt: skip
            return await upstream.request("POST", "/invocations", body, _headers(content_type, accept, forwarded))
        reply = Reply(200, body, content_type or "")
        last = len(self.upstreams) - 1
        for index, upstream in enumerate(self.upstreams):
            request_headers = _headers(reply.content_type or None, accept if index == last else None, forwarded)
            reply = await upstream.request("POST", "/invocations", reply.body, request_headers)
            if reply.status >= 400:
                return reply
        return reply

    async def execution_parameters(self) -> Reply:
        """The first container's answer: it is the one that receives the records."""
        return await self.upstreams[0].request("GET", "/execution-parameters", b"", [])


def _headers(content_type: str | None, accept: str | None, forwarded: list[tuple[str, str]]) -> list[tuple[str, str]]:
    headers = list(forwarded)
    if content_type:
        headers.append(("content-type", content_type))
    if accept:
        headers.append(("accept", accept))
    return headers


def run_pipeline(model: PipelineModel, sock: socket.socket, settings: ServingSettings, *, workers: int = 1,
                 on_ready: Callable[[], None] = lambda: None) -> None:  # fmt: skip
    """Start a server per container, then answer on `sock` until SIGTERM/SIGINT; stop them all.

    Raises:
        ModelError: a container's server did not start, or died while serving.
    """
    from sagelab.serving.worker import run_app

    inherited = {k: v for k, v in os.environ.items() if k not in _ONE_CONTAINERS}
    servers = [ServerProcess(c.model, {**inherited, **c.environment}, label=f"container {c.label}",
                             workers=None if protocol.WORKERS_ENV in c.environment else workers)
               for c in model.containers]  # fmt: skip
    start_all(servers)
    for container, server in zip(model.containers, servers):
        logger.info("container %s: pid %s on 127.0.0.1:%d", container.label, server.process.pid if server.process else "?", server.port)
    app = ChainApp(model, [s.port for s in servers], max_payload_bytes=settings.max_payload_bytes)
    died: list[str] = []

    async def watch() -> None:
        while not died:
            await asyncio.sleep(_WATCH_INTERVAL)
            for container, server in zip(model.containers, servers):
                code = server.exit_code()
                if code is not None:
                    died.append(f"the server of container {container.label} exited with code {code}")
                    logger.error("%s; stopping", died[0])
                    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn drains and returns
                    return

    tasks: list[asyncio.Task[None]] = []
    try:
        run_app(app, sock, settings, on_start=lambda loop: tasks.append(loop.create_task(watch())), on_ready=on_ready)
    finally:
        stop_all(servers, timeout=settings.timeout)
    if died:
        raise ModelError(died[0])
