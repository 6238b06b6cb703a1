"""Run a step's command as SageMaker's container would, with `/opt/ml` private to its job.

Each job gets a folder that the step sees as `/opt/ml`. How depends on what the machine allows,
best first (`_launch.py` does the work; `current()` picks the mode once per process):

- namespace: as root, a private mount namespace binds the job's folder onto /opt/ml;
- user-namespace: as any user, the same inside an unprivileged user namespace (Linux);
- shared: /opt/ml is a user-owned link made once by `sagelab setup` (macOS, containers without
  namespaces); jobs point it at their folder in turn, so they run one at a time;
- remap: Python scripts only, with /opt/ml paths remapped inside the interpreter.

SAGELAB_SANDBOX=MODE forces a mode (tests use it to run each one). Commands named
`python`/`python3` run on the step's interpreter: sagelab's own, whose packages the steps use,
or an environment built for the step (`environments`), whose bin folder comes first on PATH.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sagelab.containers._launch import OPT_ML, runs_in_process
from sagelab.errors import ConfigError

LAUNCHER = Path(__file__).with_name("_launch.py")
STARTER = LAUNCHER.with_name("_start.py")  # runs the launcher from its bytecode cache
MODES = ("namespace", "user-namespace", "shared", "remap")
FORCE = "SAGELAB_SANDBOX"
PROPERTY = "SagelabSandbox"  # the mode a step's process ran in, among its properties
GUARANTEES = {
    "namespace": "/opt/ml private to each job, for every program",
    "user-namespace": "/opt/ml private to each job, for every program",
    "shared": "the real /opt/ml, lent to one job at a time (sagelab setup)",
    "remap": "/opt/ml remapped for Python only; programs a script starts see the real /opt/ml",
}
# Set in a step's variables when it works on real S3 (a hybrid run) and so needs the user's own
# credentials; otherwise the credentials of the user's own AWS account never reach a local step.
KEEP_CREDENTIALS = "SAGELAB_KEEP_AWS_CREDENTIALS"
# Of the user's AWS_* variables, a local step keeps only these; every other one (keys, tokens, profiles, role and
# web-identity settings, container credential URIs, endpoints) could lead it to the user's own account.
_KEPT_AWS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")
# And boto3 in a step must not fall back to the user's files or to an EC2 instance's role.
_NO_AWS_FALLBACKS = {"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class Sandbox:
    """The mode steps run in on this machine, and why each better mode is out of reach."""

    mode: str
    unavailable: dict[str, str] = field(default_factory=dict)  # mode → reason, for the modes before `mode`
    problem: str = ""  # a forced mode this machine does not allow
    forced: bool = False

    def describe(self) -> str:
        return f"{self.mode} mode, {GUARANTEES[self.mode]}"

    def refusal(self, argv: list[str]) -> str | None:
        """Why a command cannot run in this mode, with the fix; None when it can. Said before the step starts."""
        if self.problem:
            return f"the sandbox is forced to {self.mode} mode ({FORCE}), but {self.problem}; unset {FORCE}"
        if self.mode == "remap" and not runs_in_process(argv):
            program = " ".join(argv)
            program = program if len(program) <= 60 else f"{program[:57]}..."
            if self.forced:
                return f"{program!r} needs a real /opt/ml, and remap mode ({FORCE}=remap) covers Python scripts alone; unset {FORCE}"
            why = self.unavailable.get("user-namespace", "")
            return (f"{program!r} needs a real /opt/ml, and this machine gives steps only remap mode, which covers Python "
                    f"scripts alone{f' ({why})' if why else ''}; fix: run `sagelab setup` once (see `sagelab doctor`)")  # fmt: skip
        return None

    def argument(self) -> str:
        """The launcher's MODE argument."""
        return f"shared={shared_link()}" if self.mode == "shared" else self.mode


def state_home() -> Path:
    """Where sagelab keeps per-user state outside projects (XDG_STATE_HOME, else ~/.local/state)."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "sagelab"


def shared_link() -> Path:
    """The link that a shared /opt/ml points to; each job in shared mode points it at its own folder."""
    return state_home() / "opt-ml"


@functools.cache
def _probe(link: str, first: bool) -> dict[str, str]:
    command = [sys.executable, "-I", "-S", str(LAUNCHER), "--probe", link, *(["--first"] if first else [])]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:  # never expected; then only remap is sure to work
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {**dict.fromkeys(MODES[:-1], f"the sandbox probe failed ({last})"), "remap": ""}
    return dict(json.loads(result.stdout))


def probe(first: bool = False) -> dict[str, str]:
    """Each mode, best first, with why this machine does not allow it ('' where it does).

    With `first`, only up to the first mode that works (each namespace mode probed costs a fork and
    mounts), remembered until the machine restarts: a run then spends no ~30 ms probing.
    """
    if not first:
        return _probe(str(shared_link()), first)
    key = f"{_boot_id()} {os.getuid()} {sys.executable} {shared_link()} {LAUNCHER.stat().st_mtime_ns}"
    if key in _READ:  # each step asks; the file is read once per process
        return dict(_READ[key])
    try:
        remembered = json.loads(_probe_file().read_text())
        if remembered["key"] == key:
            _READ[key] = dict(remembered["reasons"])
            return dict(remembered["reasons"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    reasons = _probe(str(shared_link()), first)
    try:
        remembered_at = _probe_file()
        remembered_at.parent.mkdir(parents=True, exist_ok=True)
        staged = remembered_at.with_name(f"{remembered_at.name}.{os.getpid()}")
        staged.write_text(json.dumps({"key": key, "reasons": reasons}))
        os.replace(staged, remembered_at)
    except OSError:
        pass  # a read-only home: probe every run
    return reasons


_READ: dict[str, dict[str, str]] = {}  # the probe file's reasons, by key, as this process read them


def forget_probe() -> None:
    """Probe again on the next run (`sagelab setup` changed what shared mode finds)."""
    _READ.clear()
    try:
        _probe_file().unlink()
    except OSError:
        pass


def _probe_file() -> Path:
    return state_home() / "sandbox-probe.json"


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: no namespace modes to probe, only the shared link, which setup changes
        return "no-boot-id"


def current() -> Sandbox:
    """The best mode this machine allows, or the one SAGELAB_SANDBOX forces."""
    forced = os.environ.get(FORCE, "")
    if forced == "remap":
        return Sandbox("remap", forced=True)
    if forced:
        if forced not in MODES:
            return Sandbox("remap", problem=f"{FORCE}={forced!r} is not one of {', '.join(MODES)}", forced=True)
        return Sandbox(forced, problem=probe()[forced], forced=True)
    reasons = probe(first=True)
    mode = next(mode for mode in MODES if not reasons.get(mode, "x"))
    return Sandbox(mode, {better: reasons[better] for better in MODES[: MODES.index(mode)]})


def setup_commands(undo: bool = False) -> list[list[str]]:
    """The commands (with sudo where /opt is not the user's to change) that make /opt/ml this user's shared link, or remove it.

    Raises:
        ConfigError: /opt/ml holds something sagelab must not replace.
    """
    link = str(shared_link())
    parent = os.path.dirname(OPT_ML)
    existing = next(folder for folder in (Path(parent), *Path(parent).parents) if folder.is_dir())  # where mkdir -p writes
    sudo = [] if os.access(existing, os.W_OK) else ["sudo"]
    target = os.readlink(OPT_ML) if os.path.islink(OPT_ML) else None
    if undo:
        return [[*sudo, "rm", OPT_ML]] if target == link else []
    if target == link:
        return []
    if target is not None:
        return [[*sudo, "ln", "-sfn", link, OPT_ML]]
    if os.path.isdir(OPT_ML):
        if os.listdir(OPT_ML):
            raise ConfigError(f"{OPT_ML} is a folder with files in it; move them elsewhere, then run `sagelab setup` again")
        return [[*sudo, "rmdir", OPT_ML], [*sudo, "ln", "-s", link, OPT_ML]]
    if os.path.lexists(OPT_ML):
        raise ConfigError(f"{OPT_ML} is a file; move it elsewhere, then run `sagelab setup` again")
    return [[*sudo, "mkdir", "-p", parent], [*sudo, "ln", "-s", link, OPT_ML]]


def command(sandbox: Sandbox, job_root: Path, workdir: str, argv: list[str], interpreter: str | None = None,
            hidden: tuple[Path, ...] = (), kept: tuple[Path, ...] = (), mounts: tuple[tuple[Path, str], ...] = ()) -> list[str]:  # fmt: skip
    """The argument list that runs `argv` in `workdir` with `job_root` as /opt/ml, on `interpreter` (default: ours).

    In the namespace modes the `hidden` folders look empty to the step, but for the `kept` paths inside
    them, and each (folder, container path) of `mounts` is shown copy-on-write at its container path.
    """
    options = [*(arg for folder in hidden for arg in ("--hide", str(folder))), *(arg for path in kept for arg in ("--keep", str(path))),
               *(arg for folder, target in mounts for arg in ("--overlay", f"{folder}={target}"))]  # fmt: skip
    return [interpreter or sys.executable, str(STARTER), sandbox.argument(), str(job_root), workdir, *options, "--", *argv]


def mounts_inputs(mode: str) -> bool:
    """Whether steps in this mode can see a store folder copy-on-write (an overlay in their mount namespace)."""
    return mode in ("namespace", "user-namespace")


def aws_folder() -> Path:
    """The user's ~/.aws, which a local step never sees (the namespace modes hide it)."""
    return Path.home() / ".aws"


def environment(variables: Mapping[str, str], interpreter: str | None = None, home: Path | None = None) -> dict[str, str]:
    """The environment of a step: ours minus the user's AWS settings (unless it works on real S3), plus the step's variables.

    A step that does not work on real S3 gets `home` as its HOME, as a container has a home of its
    own, and a cache folder that all steps share (font and model caches survive from job to job).
    """
    keep = variables.get(KEEP_CREDENTIALS) == "1"
    env = {k: v for k, v in os.environ.items() if keep or not k.startswith("AWS_") or k in _KEPT_AWS}
    if not keep:
        env.update(_NO_AWS_FALLBACKS)
        if home is not None:
            env["XDG_CACHE_HOME"] = str(_user_cache() / "sagelab" / "steps")
            user_pip = next((str(f) for f in _pip_configs() if f.is_file()), None)
            if user_pip:  # pip in the step keeps the user's index settings
                env.setdefault("PIP_CONFIG_FILE", user_pip)
            env["HOME"] = str(home)
    interpreter_dirs = dict.fromkeys(os.path.dirname(path) for path in (interpreter or sys.executable, sys.executable))
    env["PATH"] = os.pathsep.join([*interpreter_dirs, env.get("PATH", os.defpath)])
    env["PYTHONUNBUFFERED"] = "1"  # so the live view shows log lines as they are printed
    env.update(variables)
    return env


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _pip_configs() -> tuple[Path, ...]:
    """The user's pip configuration files, which pip in a step would no longer find under its own HOME."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return (config / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf")
