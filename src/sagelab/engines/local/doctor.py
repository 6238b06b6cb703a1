"""`sagelab doctor`: what this machine gives local runs, and for each problem the fix.

One command a user runs before filing a bug: how steps get their /opt/ml (the sandbox mode and why
better ones are out of reach), Python, pip and uv, the image environments this platform has, free
disk under the project and the caches, Java (for Spark), AWS credentials (present or not, never
their values) and the project's configuration.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sagelab.config import find_project_root, load_settings
from sagelab.containers import sandbox
from sagelab.containers.environments import cache_dir, manifest
from sagelab.errors import SagelabError

GB = 1e9
LOW_DISK_GB = 5.0  # an image environment takes 0.3-1 GB; a few of them and some data fit in 5 GB
NO_DISK_GB = 1.0
USER_NAMESPACE_FIX = (
    "or allow unprivileged user namespaces: `sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian), "
    "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+); "
    "in Docker, run with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined`"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" (works, with a cost) or "fail" (something will not run)
    detail: str
    fix: str = ""


def checks(start: Path | None = None) -> list[Check]:
    root = find_project_root(start)
    return [_sandbox(), _python(), _pip(), _uv(), _images(), *_disks(root), _java(), _aws(), _project(root)]


def _sandbox() -> Check:
    box = sandbox.current()
    if box.problem:
        return Check("sandbox", "fail", f"forced to {box.mode} mode ({sandbox.FORCE}), but {box.problem}", f"unset {sandbox.FORCE}")
    detail = box.describe()
    if box.unavailable:
        detail += "; " + "; ".join(f"not {mode}: {reason}" for mode, reason in box.unavailable.items())
    if box.mode in ("namespace", "user-namespace"):
        return Check("sandbox", "ok", detail)
    if box.mode == "shared":
        return Check("sandbox", "warn", detail + "; steps take turns with /opt/ml, one at a time",
                     USER_NAMESPACE_FIX.removeprefix("or ").capitalize() if sys.platform == "linux" else "")  # fmt: skip
    fix = "run `sagelab setup` once: a shared /opt/ml (sudo once) that shell entry points and subprocesses see"
    return Check("sandbox", "warn", detail + "; shell entry points (the SDK's repack step, smspark-submit) cannot run",
                 f"{fix}; {USER_NAMESPACE_FIX}" if sys.platform == "linux" else fix)  # fmt: skip


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    tar = "tarfile's data filter" if hasattr(tarfile, "data_filter") else "sagelab's own member checks (this Python predates tarfile's data filter)"
    detail = f"{version} ({sys.executable}); model and code archives are unpacked with {tar}"
    if sys.version_info < (3, 10):
        return Check("python", "fail", detail, "install Python 3.10 or newer")
    return Check("python", "ok", detail)


def _pip() -> Check:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Check("pip", "ok", version("pip"))
    except PackageNotFoundError:
        return Check("pip", "warn", "not installed: steps on sagelab's own packages (environment = host) cannot install a requirements.txt",
                     f"{sys.executable} -m ensurepip")  # fmt: skip


def _uv() -> Check:
    from sagelab.containers.environments.uv import binary

    try:
        result = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=30)
    except (SagelabError, OSError) as exc:
        return Check("uv", "fail", f"cannot run uv: {exc}", "pip install --force-reinstall uv")
    return Check("uv", "ok", f"{result.stdout.strip()} (builds each image's step environment)")


def _images() -> Check:
    covered, missing = manifest.coverage()
    where = f"Python {manifest.PYTHON} on {manifest.PLATFORM}"
    if not covered:
        return Check("images", "warn", f"no image environment for {where}: steps run on sagelab's own packages, with drift",
                     "use Python 3.10 to 3.13 on Linux (x86_64, aarch64) or macOS arm64")  # fmt: skip
    detail = f"{len(covered)} of {len(covered) + len(missing)} image versions have an environment for {where}"
    return Check("images", "ok", detail + (f"; not {', '.join(missing)}" if missing else ""))


def _disks(root: Path) -> list[Check]:
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uv")
    found = []
    for what, path in (("project", root / ".sagelab"), ("environments", cache_dir()), ("uv cache", uv_cache)):
        existing = next(folder for folder in (path, *path.parents) if folder.exists())
        free = shutil.disk_usage(existing).free / GB
        detail = f"{free:.1f} GB free under {path}"
        status = "fail" if free < NO_DISK_GB else "warn" if free < LOW_DISK_GB else "ok"
        fix = "" if status == "ok" else "free some space: `sagelab gc` (old executions), `sagelab envs delete --all`, `uv cache prune`"
        found.append(Check(f"disk ({what})", status, detail, fix))
    return found


def _java() -> Check:
    from sagelab.spark.java import JAVA_FIX as fix
    from sagelab.spark.java import java as find_java

    java = find_java()
    if java is None:
        return Check("java", "warn", "not found: local Spark (notebooks' %%spark and %%sql, sagelab.spark) needs Java 17 or newer", fix)
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return Check("java", "warn", f"{java} does not run: {exc.strerror}", fix)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr)
    major = int(match.group(2) if match and match.group(1) == "1" else match.group(1)) if match else 0
    detail = f"{result.stderr.splitlines()[0] if result.stderr else 'unknown version'} ({java})"
    return Check("java", "ok" if major >= 17 else "warn", detail, "" if major >= 17 else fix)


def _aws() -> Check:
    """Where AWS credentials would come from, by name only: never a key, token or secret."""
    found = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE") if os.environ.get(name)]
    for name, default in (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), ("AWS_CONFIG_FILE", "~/.aws/config")):
        path = Path(os.path.expanduser(os.environ.get(name) or default))
        if path.is_file():
            found.append(str(path))
    if not found:
        return Check("aws", "ok", "no credentials found: local runs need none; for --profile aws run `aws configure` or `aws sso login`")
    return Check("aws", "ok", f"credentials may come from {', '.join(found)} (checked when a command reaches AWS)")


def _project(root: Path) -> Check:
    if not (root / "pyproject.toml").is_file():
        return Check("project", "ok", f"no pyproject.toml in {root} or above: commands use the defaults")
    try:
        settings = load_settings(root)
    except SagelabError as exc:
        return Check("project", "fail", str(exc), "fix [tool.sagelab] in pyproject.toml as the message says")
    return Check("project", "ok", f"{root}: environment = {settings.environment!r}, concurrency {settings.concurrency}")
