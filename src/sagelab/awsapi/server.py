"""`sagelab api`'s server: the ASGI app on uvicorn, bound to 127.0.0.1.

`serve()` runs in the foreground until Ctrl-C or SIGTERM (uvicorn's signal handling), noting its port
in `.sagelab/api.json` for `sagelab env`; `start()`/`stop()` run it in a background thread (tests,
notebooks). Stopping the server stops the executions it started (they end Stopped, retryable).
Given a socket already listening (a run's steps' API, `for_steps.py`), it serves there and notes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sagelab.awsapi.env import DEFAULT_PORT, PORT_FILE
from sagelab.config import Settings
from sagelab.errors import ConfigError
from sagelab.loopback import listen

if TYPE_CHECKING:
    import uvicorn

    from sagelab.awsapi.app import ApiApp, Observer


class ApiServer:
    """The local SageMaker and S3 API of one project, on 127.0.0.1:`port` (0: any free port).

    Example:
        >>> server = ApiServer(load_settings(), port=0)  # doctest: +SKIP
        >>> endpoint = server.start()   # http://127.0.0.1:PORT  # doctest: +SKIP
        >>> boto3.client("sagemaker", endpoint_url=endpoint, ...).list_pipelines()  # doctest: +SKIP
        >>> server.stop()  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, port: int = DEFAULT_PORT, *, observers: tuple[Observer, ...] = (),
                 listening: socket.socket | None = None) -> None:
        """Raises ConfigError for a profile that does not run locally on the project's own store."""
        if settings.engine != "local":
            raise ConfigError(f"profile {settings.profile} runs on SageMaker; the local API serves this machine's runs: use the local profile "
                              "(or point boto3 at SageMaker itself)")  # fmt: skip
        if settings.s3_endpoint_url:
            raise ConfigError(f"profile {settings.profile} keeps its data at {settings.s3_endpoint_url}; the local API serves the project's "
                              "own store: use a profile without s3_endpoint_url")  # fmt: skip
        self.settings = settings
        self.port = port
        self.observers = observers
        self.app: ApiApp | None = None
        self._given = listening
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, once bound."""
        if self._socket is None:
            raise RuntimeError("the server is not running; call start() or serve() first")
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _prepare(self) -> uvicorn.Server:
        try:
            import botocore  # noqa: F401 - the service models are botocore's
            import uvicorn
        except ImportError as exc:
            raise ConfigError(f"`sagelab api` needs {exc.name}: pip install 'sagelab[serve,aws]'") from None
        from sagelab.awsapi.app import ApiApp
        from sagelab.awsapi.auth import credentials
        from sagelab.awsapi.operations import Context
        from sagelab.api.runs import Runs
        from sagelab.awsapi.s3 import S3Bridge
        from sagelab.awsapi.shapes import service_model
        from sagelab.awsapi.state import State
        from sagelab.store import LocalStore

        service_model("sagemaker")  # loaded now, so the first request does not wait for it
        self._socket = self._given or listen(self.port, "sagelab api")
        creds = credentials(self.settings.state_dir)
        context = Context(self.settings, State(self.settings.state_dir), Runs(self.settings))
        s3 = S3Bridge(LocalStore(self.settings.store), (creds.access_key, creds.secret_key))
        self.app = ApiApp(context, creds, s3, observers=self.observers)
        config = uvicorn.Config(self.app, lifespan="off", access_log=False, log_level="warning", server_header=False)
        from sagelab.awsapi.uvicorn_server import QuietServer

        self._server = QuietServer(config)
        return self._server

    def start(self, timeout: float = 30.0) -> str:
        """Serve in a background thread; return the endpoint once it accepts connections."""
        server = self._prepare()
        assert self._socket is not None
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]}, name="sagelab-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not server.started:
            self.stop()
            raise RuntimeError("the local API did not start; see the messages above")
        return self.endpoint

    def serve(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in this thread until Ctrl-C or SIGTERM; `ready` is told the endpoint before the first request."""
        server = self._prepare()
        assert self._socket is not None
        note = self.settings.state_dir / PORT_FILE
        if self._given is None:
            _write(note, {"port": self._socket.getsockname()[1], "pid": os.getpid()})
        try:
            if ready is not None:
                ready(self.endpoint)
            server.run(sockets=[self._socket])
        finally:
            if note.is_file() and json.loads(note.read_text()).get("pid") == os.getpid():
                note.unlink()
            self._close()

    def stop(self) -> None:
        """Stop a server `start()` started, and the executions it started."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    def _close(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            app.context.runs.close()
            app.s3.close()
            app.context.state.close()
        listening, self._socket = self._socket, None
        if listening is not None:
            listening.close()


def _write(path: Any, document: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document))
    temporary.replace(path)
