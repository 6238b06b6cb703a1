"""One inference server process: load the model, then serve it with uvicorn.

Connections come either from a listening socket this process accepts on (a single-worker
server), or dealt by the server process over a channel (several workers; dispatch.py).
uvicorn (httptools, each response in one write: http_protocol.py; uvloop when installed) runs
the raw ASGI app; the model runs on the inference thread or, once it has proved fast, on the
event loop (batching.py). On SIGTERM uvicorn stops accepting, lets in-flight requests finish and
returns; the process then exits 0 (uvicorn would otherwise re-raise the signal after draining).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from sagelab.serving.app import InferenceApp, ProtocolApp
from sagelab.serving.batching import InferenceRunner
from sagelab.serving.dispatch import BACKLOG, receive
from sagelab.serving.handlers import REPEATED_ERRORS, InferenceHandler
from sagelab.serving.http_protocol import OneWriteHttpToolsProtocol
from sagelab.serving.protocol import ServingSettings

ACCEPT_GRACE = 0.5  # seconds for a just-accepted connection to send its request before shutdown


class _Server(uvicorn.Server):
    """uvicorn's server, starting the app's helpers on its loop and reporting readiness once it accepts."""

    def __init__(self, config: uvicorn.Config, on_start: Callable[[asyncio.AbstractEventLoop], None],
                 on_ready: Callable[[], None], channel: socket.socket | None = None) -> None:  # fmt: skip
        super().__init__(config)
        self.on_start = on_start
        self.on_ready = on_ready
        self.channel = channel
        self._adopting: set[asyncio.Task[object]] = set()  # held until done: the loop keeps only weak references

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.on_start(loop)
        await super().startup(sockets=sockets)
        if self.channel is not None:
            self.channel.setblocking(False)
            loop.add_reader(self.channel.fileno(), self._receive)
        if self.started and not self.should_exit:
            self.on_ready()

    def _receive(self) -> None:
        """Adopt the connections the server process dealt to this worker, as uvicorn's own server would."""
        if self.channel is not None:
            receive(self.channel, self._adopt)

    def _adopt(self, connection: socket.socket) -> None:
        def protocol() -> asyncio.Protocol:
            return self.config.http_protocol_class(config=self.config, server_state=self.server_state,  # type: ignore[call-arg]
                                                   app_state=self.lifespan.state)  # fmt: skip

        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(protocol, connection))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    def _close_channel(self) -> None:
        if self.channel is not None:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
            self.channel.close()
            self.channel = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting first, then give just-accepted connections time to send their request.

        uvicorn closes connections that have no request in progress yet; on a socket shared
        with a newer server (an endpoint update) a connection accepted a moment before SIGTERM
        would be reset. Waiting a little lets its request arrive, so it is served instead.
        """
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self._receive()  # connections dealt just before the signal are served too
        self._close_channel()
        await asyncio.sleep(ACCEPT_GRACE)
        await super().shutdown(sockets=[])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike uvicorn's own handler this does not record the signal, so that after draining
        # uvicorn does not raise it again: a drained server exits 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def run_worker(model_dir: Path, sock: socket.socket, settings: ServingSettings, *, workers: int = 1,
               on_ready: Callable[[], None] = lambda: None, dealt: bool = False) -> None:  # fmt: skip
    """Load the model, start accepting on `sock` (or adopting what it deals, if `dealt`), serve until
    SIGTERM/SIGINT, drain, return."""
    handler = InferenceHandler(model_dir, settings).load()
    runner = InferenceRunner(handler, timeout=settings.timeout)
    app = InferenceApp(runner, workers=workers, max_payload_bytes=settings.max_payload_bytes)
    try:
        run_app(app, sock, settings, on_start=runner.start, on_ready=on_ready, dealt=dealt)
    finally:
        runner.stop(timeout=settings.timeout)
        REPEATED_ERRORS.flush()  # the repeats since the last summary, before the process ends
        if app.capture is not None:
            app.capture.flush()  # the records of the last second


def run_app(app: ProtocolApp, sock: socket.socket, settings: ServingSettings, *,
            on_start: Callable[[asyncio.AbstractEventLoop], None], on_ready: Callable[[], None], dealt: bool = False) -> None:  # fmt: skip
    """Serve `app` with uvicorn until SIGTERM/SIGINT, then drain and return.

    `sock` is a listening socket to accept on, or with `dealt` the channel over which the server
    process deals this worker its connections (dispatch.py).
    """
    if not dealt:
        sock.listen(BACKLOG)  # only now: until the model is loaded, connections wait or go to another server
    config = uvicorn.Config(
        app,
        loop="auto",  # uvloop when installed
        http=OneWriteHttpToolsProtocol,  # httptools, each response in one write
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,  # the protocol never reads the client's address or scheme (X-Forwarded-For, -Proto)
        backlog=BACKLOG,
        timeout_graceful_shutdown=int(settings.timeout) + 5,
    )
    _Server(config, on_start, on_ready, channel=sock if dealt else None).run(sockets=[] if dealt else [sock])
