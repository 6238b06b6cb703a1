"""Executions a server started — `sagelab api`'s, `sagelab ui`'s — each in a worker process (`sagelab.api.worker`), and how to stop them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from sagelab.config import Settings
from sagelab.errors import ExecutionError

ANNOUNCE_TIMEOUT = 300.0  # seconds a worker may take to start its first step (gc can hold the project lock that long)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    stopping: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Runs:
    """Starts, tracks and stops worker processes; their records are the project's like any run's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()

    def start(self, request: dict[str, Any]) -> str:
        """Start a worker for `request` (see worker.py) and return its execution's id once the execution exists.

        Raises:
            ExecutionError: the worker refused the definition, the parameters or the retry (its message says why).
        """
        log = self.settings.state_dir / "api-workers.log"  # a worker's stderr: only sagelab's own tracebacks go there
        log.parent.mkdir(parents=True, exist_ok=True)
        request = {**request, "root": str(self.settings.root), "profile": self.settings.profile}
        with open(log, "ab") as stderr:
            # A session of its own: Ctrl-C in the server's terminal reaches the server, which stops each worker once (SIGTERM);
            # a worker interrupted twice could not finish stopping its jobs and recording the execution as Stopped.
            process = subprocess.Popen([sys.executable, "-m", "sagelab.api.worker"], stdin=subprocess.PIPE,  # noqa: S603
                                       stdout=subprocess.PIPE, stderr=stderr, cwd=self.settings.root, start_new_session=True)  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request).encode())
        process.stdin.close()
        line = _first_line(process, ANNOUNCE_TIMEOUT)
        try:
            answer = json.loads(line)
        except ValueError:
            process.kill()
            process.wait()
            process.stdout.close()
            raise RuntimeError(f"the execution's worker process ended (exit code {process.returncode}) before it started; "
                               f"its traceback is in {log}") from None  # fmt: skip
        worker = _Worker(process)
        threading.Thread(target=self._reap, args=(worker,), name="sagelab-api-reaper", daemon=True).start()
        if "error" in answer:
            raise ExecutionError(str(answer["message"]))
        with self._lock:
            self._workers[str(answer["id"])] = worker
        return str(answer["id"])

    @staticmethod
    def _reap(worker: _Worker) -> None:
        assert worker.process.stdout is not None
        with worker.process.stdout:
            worker.process.stdout.read()  # nothing more is written; wait for the end without leaving a zombie
        worker.process.wait()
        worker.done.set()

    def running(self, execution_id: str) -> bool:
        """Whether this server's worker for the execution is still at work."""
        worker = self._workers.get(execution_id)
        return worker is not None and not worker.done.is_set()

    def stopping(self, execution_id: str) -> bool:
        """Whether a stop was asked for and the execution has not ended yet."""
        worker = self._workers.get(execution_id)
        return worker is not None and worker.stopping and not worker.done.is_set()

    def stop(self, execution_id: str) -> bool:
        """Stop the execution as Ctrl-C stops `sagelab run`; False if no worker of this server runs it."""
        worker = self._workers.get(execution_id)
        if worker is None or worker.done.is_set():
            return False
        worker.stopping = True
        try:
            os.kill(worker.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop every execution still running (they end Stopped, retryable) and wait for the workers."""
        with self._lock:
            workers = list(self._workers.items())
        for execution_id, _ in workers:
            self.stop(execution_id)
        for _, worker in workers:
            if not worker.done.wait(timeout):
                worker.process.kill()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The worker's first line of output, or b"" if it ends (or stays silent past `timeout`) without one."""
    assert process.stdout is not None
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline() if process.stdout else b""), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else b""
