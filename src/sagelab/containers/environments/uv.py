"""Building environments with uv: the binary the `uv` wheel ships, told what pip is told, its output in the step log.

uv creates a venv and installs a few hundred MB of wheels in about a second from its cache
(hard links, no copies), where pip takes tens of seconds; benchmarks/bench_environments.py
measures both. uv does not read pip's configuration, which is where users keep their package
index (a company mirror, CodeArtifact's `aws codeartifact login --tool pip`): `index_options`
passes pip's index, extra indexes, find-links and certificate on to uv, and lets uv weigh every
index as pip does. Without the network, uv installs from its own cache (`--offline`) what it
downloaded before; when that is not enough the build fails with one line saying what to do.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from sagelab.containers import sandbox
from sagelab.containers.environments.cache import Purpose, StepLog
from sagelab.errors import ExecutionError

__all__ = ["NetworkUnavailable", "binary", "index_options", "run"]

# What uv prints when it cannot reach an index (DNS, refused or unreachable, TLS, timeouts).
_NETWORK = re.compile(r"error sending request|dns error|failed to lookup address|Connection refused|tcp connect error|"
                      r"Network is unreachable|operation timed out|Could not connect|client error \(Connect\)", re.I)  # fmt: skip


_OFFLINE = re.compile(r"network (connectivity )?(is|was) disabled|--offline|not found in the cache|needs to be downloaded from a registry", re.I)


class NetworkUnavailable(ExecutionError):
    """uv needed a package index it could not reach, and its cache did not hold what was needed."""


def binary() -> str:
    """The uv executable: the one the `uv` wheel installed next to sagelab (a dependency, not a system tool).

    Raises:
        ExecutionError: the uv package is missing.
    """
    try:
        from uv import find_uv_bin
    except ImportError:
        raise ExecutionError("sagelab builds step environments with uv, which is not installed: pip install uv "
                             "(or reinstall sagelab, which depends on it)") from None  # fmt: skip
    return str(find_uv_bin())


def _pip_settings() -> dict[str, str]:
    """pip's settings from its configuration files and PIP_* variables (`pip config list`), by name; read for each build."""
    try:
        listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30,
                                 stdin=subprocess.DEVNULL, check=False).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    settings: dict[str, str] = {}
    for line in listing.splitlines():  # global.extra-index-url='...', :env:.find-links='...'; later lines win, as in pip
        match = re.match(r"^[^=]*?\.?([a-z-]+)='(.*)'$", line.strip())
        if match:
            settings[match[1]] = match[2]
    return settings


def index_options() -> tuple[str, ...]:
    """pip's index settings as uv options, so both install from the same places."""
    settings = _pip_settings()
    options: list[str] = []
    if settings.get("no-index", "").lower() in ("1", "true", "yes"):
        options.append("--no-index")
    if "index-url" in settings:
        options += ["--default-index", settings["index-url"]]
    for url in settings.get("extra-index-url", "").split():
        options += ["--index", url]
    for location in settings.get("find-links", "").split():
        options += ["--find-links", location]
    if "extra-index-url" in settings or "find-links" in settings:
        options += ["--index-strategy", "unsafe-best-match"]  # pip takes the best release from every index
    return tuple(options)


def _environment() -> dict[str, str]:
    """What uv runs with: a step's environment, without AWS credentials (an sdist's setup.py runs here), and pip's certificate."""
    env = sandbox.environment({"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull})
    certificate = _pip_settings().get("cert")
    if certificate and Path(certificate).is_file():
        env.setdefault("SSL_CERT_FILE", certificate)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def run(step: StepLog, args: list[str], cwd: Path, what: str, purpose: Purpose) -> None:
    """Run `uv ARGS` with its output in the step log; without the network, once more from uv's cache alone.

    Raises:
        NetworkUnavailable: no index could be reached and uv's cache lacks a package.
        ExecutionError: uv failed otherwise (its last lines, and how to fix it), or was interrupted.
    """
    offline = os.environ.get("UV_OFFLINE", "").lower() in ("1", "true", "yes")
    code, tail = _run(step, [binary(), *args], cwd)
    if code > 0 and not offline and any(_NETWORK.search(line) for line in tail):
        step.log("the package index cannot be reached; installing from uv's cache alone (--offline)")
        code, tail = _run(step, [binary(), *args, "--offline"], cwd)
        offline = True
    missing = [line.strip() for line in tail if _OFFLINE.search(line)]
    if code > 0 and offline and missing:
        reason = re.sub(r"^(cause:|╰─▶)\s*", "", missing[0]).rstrip(".")
        when = "Run the step once while online" if what == "requirements.txt" else "Build it while online (sagelab envs prepare PIPELINE)"
        raise NetworkUnavailable(f"{what}: not built yet, and the package index cannot be reached to build it ({reason}), so {purpose.stopped}. "
                                 f"{when}, or run on sagelab's own packages (environment = \"host\" in [tool.sagelab])")  # fmt: skip
    if code < 0:
        raise ExecutionError(f"the environment build was interrupted: uv was stopped by signal {-code}, so {purpose.stopped} "
                             "and no environment was kept")  # fmt: skip
    if code != 0:
        raise ExecutionError(
            f"{what}: uv could not install it (exit code {code}), so {purpose.stopped} and no environment was kept. uv's last lines:\n"
            + "\n".join(tail) + f"\nFix {what} (or the package index pip is configured with) and {purpose.again}"
        )  # fmt: skip


def _run(step: StepLog, command: list[str], cwd: Path) -> tuple[int, list[str]]:
    tail: deque[str] = deque(maxlen=12)
    with open(step.log_path, "a", encoding="utf-8") as log:
        log.write(f"[sagelab] {shlex.join(['uv', *command[1:]])}\n")
        log.flush()
        with subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", env=_environment()) as process:  # fmt: skip
            progress = _Progress(step, process.pid)
            for line in process.stdout or ():
                progress.saw(line)  # first: no progress line lands after the phase it describes
                log.write(line)
                log.flush()  # the live view shows the build's last line
                tail.append(line.rstrip())
            progress.stop()
    return process.returncode, list(tail)


class _Progress:
    """While uv downloads and unpacks (silent when not on a terminal), a line every few seconds with what it has received."""

    EVERY = 5.0

    def __init__(self, step: StepLog, pid: int) -> None:
        self.step, self.pid = step, pid
        self.started = time.monotonic()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()  # a progress line is written whole before the phase may end

    def saw(self, line: str) -> None:
        if line.startswith("Resolved ") and self.thread is None:
            self.thread = threading.Thread(target=self._tick, args=(line.split()[1],), daemon=True)
            self.thread.start()
        elif line.startswith(("Prepared ", "Installed ", "Audited ")):
            with self._lock:
                self.done.set()

    def stop(self) -> None:
        with self._lock:
            self.done.set()
        if self.thread is not None:
            self.thread.join()

    def _tick(self, packages: str) -> None:
        first = self._received()
        while not self.done.wait(self.EVERY):
            received = self._received()
            amount = f", {(received - first) / 1e6:,.0f} MB received" if received is not None and first is not None else ""
            with self._lock:
                if self.done.is_set():
                    return
                self.step.log(f"uv is fetching what its cache lacks of {packages} packages ({time.monotonic() - self.started:.0f} s{amount})")

    def _received(self) -> int | None:
        """Bytes uv has read so far, mostly the downloads in this phase (Linux /proc; None elsewhere)."""
        try:
            with open(f"/proc/{self.pid}/io") as io:
                return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))
        except (OSError, StopIteration, ValueError):
            return None
