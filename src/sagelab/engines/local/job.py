"""What a step runner gets (a `Job`) and gives back (a `StepResult`), and how it runs processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.containers import sandbox
from sagelab.definition import Step
from sagelab.store import ObjectStore


# Folders beside a job's folder, named `<job>.<suffix>`: its venv, HOME, requirements, input overlays' writes.
COMPANIONS = ("python", "home", "requirements", "overlay")


class StepFailed(Exception):
    """Raised by a runner to fail its step with a reason SageMaker would show.

    `fault` names the failure class a retry policy can cover; local failures map to them so:
    a job process killed by a signal sagelab did not send (the OOM killer, a crash) is
    SageMaker.JOB_INTERNAL_ERROR; the machine running out of room (disk, files) while moving
    data is SageMaker.RESOURCE_LIMIT. A script that exits non-zero is an AlgorithmError,
    which SageMaker never retries.
    """

    def __init__(self, message: str, fault: str | None = None, properties: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.fault = fault
        self.properties = properties  # what the failed job still reports (the releases it ran with)


@dataclass
class Job:
    """One step's run: its resolved arguments, its folder (the step's /opt/ml) and its log."""

    step: Step
    arguments: dict[str, Any]
    job_name: str
    root: Path
    log_path: Path
    store: ObjectStore
    settings: Settings
    step_env: dict[str, str]  # S3 endpoint, region and throwaway credentials for the step
    execution_arn: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    sandbox_mode: str = ""  # how the job's process got its /opt/ml (sandbox.MODES), once it ran one
    # Inputs shown copy-on-write instead of copied: (the store's folder, the container path), for the launcher to mount.
    mounted_inputs: list[tuple[Path, str]] = field(default_factory=list)
    copied_inputs: list[Path] = field(default_factory=list)  # inputs staged as copies, dropped once the job succeeded
    _process: subprocess.Popen[bytes] | None = None
    _starting: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)  # a start against a terminate

    def companion(self, suffix: str) -> Path:
        """The folder beside the job's folder for one of COMPANIONS."""
        assert suffix in COMPANIONS, suffix
        return self.root.with_name(f"{self.root.name}.{suffix}")

    def arn(self, resource: str) -> str:
        return f"arn:aws:sagemaker:{self.settings.region}:{self.settings.account}:{resource}/{self.job_name.lower()}"

    def log(self, message: str) -> None:
        """Add a line of sagelab's own to the step log, as SageMaker's agent lines are."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"[sagelab] {message}\n")

    def run(self, argv: list[str], workdir: str, variables: dict[str, str], timeout: float | None = None,
            interpreter: str | None = None, shown: tuple[Path, ...] = ()) -> int:  # fmt: skip
        """Run `argv` in the sandbox (on `interpreter`, else sagelab's), output appended to the step log; returns the exit code.

        The step sees its own folders and `shown` (a Spark job: the store); the rest of the project's state is hidden.

        A job stopped before its process starts (during a slow setup: downloads, pip) raises
        StepFailed instead of starting it.
        """
        box = sandbox.current()
        refusal = box.refusal(argv)
        if refusal:
            raise StepFailed(f"ClientError: {refusal}")
        self.sandbox_mode = box.mode
        self.log(f"sandbox: {box.describe()}")
        home = self.companion("home")
        home.mkdir(exist_ok=True)
        env = sandbox.environment({**self.step_env, **variables}, interpreter, home)
        # ~/.aws stays visible to a step working on real S3 with the user's credentials (a hybrid run's profiles, SSO cache)
        aws = () if env.get(sandbox.KEEP_CREDENTIALS) == "1" else (sandbox.aws_folder(),)
        hidden = tuple(folder for folder in (self.settings.state_dir, self.settings.store, *aws) if folder not in shown)
        # shown: the job's folder and those beside it (the launcher skips missing ones); the model cache, which batch transform reads
        kept = (self.root, *map(self.companion, COMPANIONS), self.settings.state_dir / "models", *shown)
        with self._starting, open(self.log_path, "ab") as log:
            if self.cancelled.is_set():
                raise StepFailed("stopped before the job's process started")
            self._process = subprocess.Popen(
                sandbox.command(box, self.root, workdir, argv, interpreter, hidden, kept, tuple(self.mounted_inputs)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches sagelab, which stops the step itself
            )
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.terminate()
            raise StepFailed(f"MaxRuntimeExceeded: the job ran longer than {timeout:.0f} seconds") from None
        except BaseException:  # never leave the job's processes behind
            self.terminate()
            raise
        if code < 0 and not self.cancelled.is_set():
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            raise StepFailed(f"InternalServerError: the job's process was killed by {name}", fault="SageMaker.JOB_INTERNAL_ERROR")
        return code

    def terminate(self, grace: float = 5.0) -> None:
        """Stop the step's processes: SIGTERM, then SIGKILL after `grace` seconds."""
        self.cancelled.set()
        with self._starting:  # a process being started is seen here; one not yet started never starts
            process = self._process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 3) -> str:
        return tail(self.log_path, lines)


def remove_job_folder(folder: Path) -> None:
    """Delete a job's folder (or one beside it), including an input overlay's work folder, which the
    kernel leaves unreadable (mode 000) to its owner: a normal user could not delete it otherwise."""
    for parent, folders, _ in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(parent, name), 0o700, follow_symlinks=False)
    shutil.rmtree(folder, ignore_errors=True)


def tail(path: Path, lines: int = 3) -> str:
    """The last `lines` lines of a log file (reads only its end)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(deque(text.splitlines(), maxlen=lines))


@dataclass
class StepResult:
    """What a finished step reports: its Describe* properties and the objects it wrote."""

    properties: dict[str, Any]
    outputs: list[str] = field(default_factory=list)


def now_iso(timestamp: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp or time.time())) + "Z"
