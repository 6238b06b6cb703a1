"""Inference servers started as child processes on 127.0.0.1, which end when their parent does.

A pipeline model's front process starts one server per container this way (each with the
container's own environment, so two containers' `inference.py` never share a module namespace,
sys.path or os.environ), and batch transform starts the front of a pipeline model. Each child
holds the read end of a pipe whose write end only the parent has: when the parent dies, even
by SIGKILL, the child reads end-of-file and stops (`python -m sagelab.serving --watch-fd`). The
child has a session of its own, so signals for the parent's process group (a Ctrl-C) do not
stop it behind the parent's back: the parent stops it once its own requests are answered.

A container whose code has a requirements.txt runs on the interpreter of an environment the local
engine built with it (SAGELAB_SERVING_PYTHON in the container's environment, see `interpreter`),
as the framework containers pip-install it before their model server starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from sagelab.errors import ModelError
from sagelab.serving.protocol import PYTHON_ENV

READY_TIMEOUT = 120.0


def interpreter(environment: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The interpreter a server with this environment starts on, and the environment to start it with.

    SAGELAB_SERVING_PYTHON names an environment built for the model's requirements.txt: the server
    runs on its python, whose bin folder goes first on PATH (as for a step on such an
    environment). Without it the server runs on this process's interpreter.

    Raises:
        ModelError: the environment is gone (its folder was deleted from the cache).
    """
    env = dict(environment)
    python = env.get(PYTHON_ENV)
    if not python:
        return sys.executable, env
    if not os.path.exists(python):
        raise ModelError(f"{python}, the environment built for the model's requirements.txt, is gone "
                         "(deleted from the cache?); deploy or serve the model again to rebuild it")  # fmt: skip
    env["PATH"] = os.pathsep.join([os.path.dirname(python), env.get("PATH", os.defpath)])
    return python, env


def runs_on(python: str) -> bool:
    """Whether this process runs on the environment whose interpreter is `python` (not the same as its binary)."""
    try:
        return os.path.samefile(sys.prefix, os.path.dirname(os.path.dirname(python)))
    except OSError:
        return False


class ServerProcess:
    """`python -m sagelab.serving MODEL` on a free port of 127.0.0.1, with its own environment (and interpreter)."""

    def __init__(self, model: str, environment: Mapping[str, str], *, label: str, workers: int | None = None) -> None:
        self.model, self.environment, self.label, self.workers = model, dict(environment), label, workers
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._folder = Path(tempfile.mkdtemp(prefix="sagelab-server-"))
        self._watch_w: int | None = None

    def start(self) -> ServerProcess:
        """Start the server; `wait_ready` returns once it accepts connections."""
        python, env = interpreter(self.environment)
        watch_r, self._watch_w = os.pipe()
        argv = [python, "-m", "sagelab.serving", self.model, "--port", "0",
                "--ready-file", str(self._folder / "ready"), "--watch-fd", str(watch_r)]  # fmt: skip
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        try:
            # A session of its own: a Ctrl-C meant for the parent reaches the parent only, which then stops the child.
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, pass_fds=(watch_r,),
                                            start_new_session=True)  # fmt: skip
        finally:
            os.close(watch_r)
        return self

    def wait_ready(self, deadline: float) -> None:
        """Block until the server accepts connections.

        Raises:
            ModelError: the server exited first (its error is in the log above), or took too long.
        """
        ready = self._folder / "ready"
        while not ready.exists():
            code = self.process.poll() if self.process is not None else 1
            if code is not None:
                raise ModelError(f"the server of {self.label} exited with code {code} before it was ready (its error is above)")
            if time.time() > deadline:
                raise ModelError(f"the server of {self.label} was not ready after {READY_TIMEOUT:.0f} s")
            time.sleep(0.02)
        self.port = int(json.loads(ready.read_text())["port"])

    def exit_code(self) -> int | None:
        """None while the server runs."""
        return self.process.poll() if self.process is not None else None

    def terminate(self) -> None:
        """Ask the server to stop: it stops accepting and finishes the requests it has."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; the server's files go too."""
        self.terminate()
        process = self.process
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watch_w is not None:
            os.close(self._watch_w)
            self._watch_w = None
        for path in self._folder.iterdir():
            path.unlink()
        self._folder.rmdir()


def start_all(servers: list[ServerProcess]) -> None:
    """Start every server at once (their models load in parallel) and wait until all are ready.

    Raises:
        ModelError: one did not start; all are stopped.
    """
    deadline = time.time() + READY_TIMEOUT
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(deadline)
    except BaseException:
        stop_all(servers, timeout=5)
        raise


def stop_all(servers: list[ServerProcess], timeout: float = 30.0) -> None:
    """Stop every server, in parallel: all are asked first, then each is waited for."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop(timeout)


def watch_parent(fd: int) -> None:
    """Stop this process (SIGTERM to itself) once `fd` reads end-of-file: the parent has died."""
    import threading

    def wait() -> None:
        while os.read(fd, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="sagelab-watch-parent", daemon=True).start()
