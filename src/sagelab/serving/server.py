"""Start the inference server: its socket, its worker processes, its ready file.

The listening socket is either bound here (host and port) or inherited (`fd`) from a parent
that already listens on it, which is how an endpoint swaps servers without downtime: the new
server accepts on the same socket as soon as its model is loaded, and the old one, sent
SIGTERM, stops accepting and finishes what it has. With several workers this process forks
them (before anything heavy is imported), accepts the connections itself and deals them to
the workers in turn (dispatch.py), restarts a worker that dies, and on SIGTERM stops
accepting, passes the signal on and waits for all of them.

This module imports only the standard library; the worker brings in uvicorn and numpy.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from sagelab.errors import ModelError, SagelabError
from sagelab.serving.archive import resolve_model
from sagelab.serving.dispatch import BACKLOG, Dealer
from sagelab.serving.pipeline_model import PipelineModel, is_pipeline_model
from sagelab.serving.protocol import PYTHON_ENV, ServingSettings
from sagelab.serving.spawn import interpreter, runs_on

logger = logging.getLogger("sagelab.serving")
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def configure_logging() -> None:
    """Log sagelab.serving to stderr (once), so tracebacks of failing requests are seen."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening: it listens once the model is loaded)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ModelError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.set_inheritable(True)
    return sock


def inherit_socket(fd: int) -> socket.socket:
    """The listening socket passed down as file descriptor `fd`."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ModelError(f"--fd {fd} is not an open socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        raise ModelError(f"--fd {fd} is not a stream (TCP) socket")
    return sock


def write_ready_file(path: Path, sock: socket.socket, workers: int) -> None:
    """Atomically write `path`: its existence means the model is loaded and connections are accepted."""
    address = sock.getsockname()
    document = {"pid": os.getpid(), "host": address[0], "port": address[1], "workers": workers}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(path)


def serve(model: Path, host: str = "127.0.0.1", port: int = 8080, workers: int = 1, *, fd: int | None = None,
          ready_file: Path | None = None, settings: ServingSettings | None = None) -> None:  # fmt: skip
    """Serve a model with SageMaker's inference protocol until SIGTERM or SIGINT (blocking).

    Args:
        model: a model folder or a model.tar.gz (extracted once to a cache folder), or a pipeline
            model's description (pipeline_model.py): then this process answers, and each container
            runs in a server process of its own with `workers` workers.
        host, port: where to listen (port 0: any free port; see the ready file for which).
        workers: server processes sharing the socket.
        fd: serve on this inherited, already-bound socket instead of host and port.
        ready_file: written (JSON: pid, host, port, workers) once every worker accepts connections.
        settings: the serving settings; by default read from SAGEMAKER_* environment variables.

    SAGELAB_SERVING_PYTHON naming another environment's interpreter (one built with the model's
    requirements.txt, as `sagelab serve GROUP/VERSION` sets it) replaces this process with
    `python -m sagelab.serving` on that interpreter, which reads its settings from the
    environment variables as a container does (`framework` and `micro_batching` are passed on).

    Raises:
        ModelError: the model, its code or the settings are wrong, or the port is taken.
    """
    configure_logging()
    settings = settings or ServingSettings.from_env()
    if workers < 1:
        raise ModelError(f"workers must be at least 1, got {workers}")
    python = os.environ.get(PYTHON_ENV)
    if python and not runs_on(python):
        _exec_on(python, model, host, port, workers, fd, ready_file, settings)
    pipeline = PipelineModel.load(Path(model)) if is_pipeline_model(model) else None
    model_dir = resolve_model(model) if pipeline is None else Path(model)
    sock = inherit_socket(fd) if fd is not None else bind_socket(host, port)

    def ready() -> None:
        address = sock.getsockname()
        logger.info("serving %s on http://%s:%s with %d worker(s)", model_dir, address[0], address[1], workers)
        if ready_file is not None:
            write_ready_file(Path(ready_file), sock, workers)

    try:
        if pipeline is not None:
            _stop_on_sigterm_while_loading()
            from sagelab.serving.chain import run_pipeline

            run_pipeline(pipeline, sock, settings, workers=workers, on_ready=ready)
        elif workers == 1:
            _stop_on_sigterm_while_loading()
            from sagelab.serving.worker import run_worker

            run_worker(model_dir, sock, settings, workers=1, on_ready=ready)
        else:
            _supervise(model_dir, sock, settings, workers, ready)
    finally:
        sock.close()


def _exec_on(python: str, model: Path, host: str, port: int, workers: int, fd: int | None, ready_file: Path | None,
             settings: ServingSettings) -> NoReturn:  # fmt: skip
    """Become `python -m sagelab.serving` on another environment's interpreter (same process, same signals)."""
    python, env = interpreter(os.environ)
    argv = [python, "-m", "sagelab.serving", str(model), "--host", host, "--workers", str(workers), "--framework", settings.framework]
    argv += ["--fd", str(fd)] if fd is not None else ["--port", str(port)]
    if ready_file is not None:
        argv += ["--ready-file", str(ready_file)]
    if not settings.micro_batching:
        argv.append("--no-micro-batching")
    logger.info("starting the server on %s (the environment with the model's requirements.txt)", python)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execve(python, argv, env)


def _stop_on_sigterm_while_loading() -> None:
    """Until uvicorn installs its handlers, SIGTERM ends a loading server cleanly (exit 0)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, stop)


def _child(model_dir: Path, channel: socket.socket, settings: ServingSettings, workers: int, slot: int, ready_fd: int) -> None:
    """The body of the forked worker in `slot`, served the connections dealt on `channel`; never returns."""
    code = 0
    _exit_with_parent()
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_on_sigterm_while_loading()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by spawn() across the fork
        from sagelab.serving.worker import run_worker

        def ready() -> None:
            os.write(ready_fd, bytes([slot]))

        run_worker(model_dir, channel, settings, workers=workers, on_ready=ready, dealt=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except SagelabError as exc:
        print(f"sagelab: {exc}", file=sys.stderr)
        code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def _exit_with_parent() -> None:
    """End this worker when the server that forked it is gone (killed with SIGKILL, it could not stop its workers):
    an orphan would go on serving its connections beside the server started in its place."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="sagelab-parent-watch", daemon=True).start()


def _supervise(model_dir: Path, sock: socket.socket, settings: ServingSettings, workers: int,
               ready: Callable[[], None]) -> None:  # fmt: skip
    """Fork `workers` servers; once all have loaded the model, accept on `sock` and deal the
    connections to them in turn (dispatch.py); restart any that dies."""
    ready_r, ready_w = os.pipe()
    wake_r, wake_w = os.pipe()  # every signal writes a byte here, so the loop below wakes at once
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    dealer = Dealer(sock)
    children: dict[int, int] = {}  # pid -> worker slot
    stopping = False

    def spawn(slot: int) -> None:
        # A stop signal waits until the new worker is among `children` (stop() signals those), and in
        # the worker until its own handlers are set: before, it would run this process's stop().
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            if stopping:  # a signal that came while a dead worker was being replaced
                return
            channel = dealer.open(slot)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (ready_r, wake_r, wake_w):
                    os.close(fd)
                dealer.close_all(keep=channel)
                sock.close()  # the server process alone accepts
                _child(model_dir, channel, settings, workers, slot, ready_w)
            children[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reap() -> None:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            slot = children.pop(pid)
            dealer.close(slot)
            if not stopping:
                logger.error("server worker %d exited with code %d; starting another", pid, os.waitstatus_to_exitcode(status))
                time.sleep(0.2)
                spawn(slot)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler, so that a child's exit wakes the loop
    previous_wakeup = signal.set_wakeup_fd(wake_w)
    try:
        for slot in range(workers):
            spawn(slot)
        serving: set[int] = set()  # slots whose worker has loaded the model
        while len(serving) < workers and not stopping:
            readable, _, _ = select.select([ready_r], [], [], 0.1)
            if readable:
                serving.update(os.read(ready_r, 64))
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                children.pop(pid, None)
                stop(signal.SIGTERM, None)
                _reap(children)
                raise ModelError(f"a server worker exited with code {os.waitstatus_to_exitcode(status)} before it was ready "
                                 "(its error is above)")  # fmt: skip
        for slot in serving:
            dealer.ready(slot)
        if not stopping:
            sock.listen(BACKLOG)  # only now: until the model is loaded, connections wait or go to another server
            sock.setblocking(False)
            ready()
        while children:
            readable, _, _ = select.select([wake_r, ready_r] if stopping else [wake_r, ready_r, sock.fileno()], [], [], 1.0)
            if wake_r in readable:
                while _drain(wake_r):
                    pass
            if ready_r in readable:
                for slot in os.read(ready_r, 64):  # a restarted worker has loaded the model
                    dealer.ready(slot)
            reap()
            if stopping:
                sock.close()  # this process's hold on the socket: with no other holder, it stops listening
            elif sock.fileno() in readable:
                dealer.accept()
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        dealer.close_all()
        for fd in (ready_r, ready_w, wake_r, wake_w):
            os.close(fd)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _reap(children: dict[int, int]) -> None:
    while children:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            return
        children.pop(pid, None)
