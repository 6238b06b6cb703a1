"""SageMaker's API for the steps of a local run, as a step on SageMaker reaches SageMaker's.

A step that calls SageMaker itself — registers a model package, describes its own training job, reads
its pipeline's execution — finds the project's local API (`sagelab api`'s, same records, registry and
store) at its AWS_ENDPOINT_URL, with the project's throwaway credentials in its AWS_ACCESS_KEY_ID.

The run only binds a socket on 127.0.0.1: most steps never call SageMaker, and the API's process
(uvicorn, botocore's service model) takes about a second to start. A step's first connection waits in
the socket's backlog while the run starts `python -m sagelab.awsapi.for_steps` on that socket; the
server lasts until the run ends. Where sagelab lacks the API's packages, each call is answered with an
error that names them, rather than reaching AWS with credentials AWS does not know.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from sagelab.config import Settings

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

LOG = "api-steps.log"  # in .sagelab/: the steps' API's requests, one line each, and its own errors
NEEDS = ("uvicorn", "botocore")


class StepApi:
    """The local API a run lends its steps at `endpoint`, started on first use, stopped at exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._wake, self._woken = socket.socketpair()  # ends the watcher's wait at exit
        self._refusals: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._watcher = threading.Thread(target=self._watch, name="sagelab-step-api", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> StepApi:
        self._watcher.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._closing = True
        self._wake.send(b"x")
        self._watcher.join()
        if self._refusals is not None:
            self._refusals.shutdown()
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)  # it stops the executions steps started through it, as `sagelab api` does
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for end in (self._socket, self._wake, self._woken):
            end.close()

    def _watch(self) -> None:
        ready, _, _ = select.select([self._socket, self._woken], [], [])
        with self._lock:
            if self._closing or self._socket not in ready:
                return
            missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
            if missing:
                self._refusals = _refusals(self._socket, self.settings, missing)
                threading.Thread(target=self._refusals.serve_forever, args=(0.05,), name="sagelab-step-api-refusals", daemon=True).start()
                return
            log = open(self.settings.state_dir / LOG, "ab")  # noqa: SIM115 - the child writes to it; closed here once it has it
            with log:
                # A session of its own: Ctrl-C in the run's terminal stops the run, which then stops this server once.
                self.process = subprocess.Popen(  # noqa: S603
                    [sys.executable, "-m", "sagelab.awsapi.for_steps", str(self._socket.fileno()), str(self.settings.root), self.settings.profile],
                    pass_fds=(self._socket.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=self.settings.root, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip


def _refusals(listening: socket.socket, settings: Settings, missing: list[str]) -> ThreadingHTTPServer:
    from http.server import ThreadingHTTPServer

    from sagelab.engines.local.offline_aws import Refusals

    class Handler(Refusals):
        account, role = settings.account, settings.role_arn
        code = "UnavailableLocally"

        def refusal(self, service: str, action: str) -> str:
            return (f"{service} {action}: sagelab serves SageMaker's API to a run's steps when it has {' and '.join(missing)} beside it: "
                    "pip install 'sagelab[serve,aws]' where sagelab is installed")  # fmt: skip

    server = ThreadingHTTPServer(listening.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listening
    server.daemon_threads = True
    return server
