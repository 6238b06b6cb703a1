"""The Python environment a step runs on: sagelab's own, or one built for it and cached.

SageMaker's framework containers pip-install a job's requirements.txt before its entry point
runs (the training toolkit for /opt/ml/code, FrameworkProcessor's runproc.sh for a processing
job's code), and each image ships its own framework release. sagelab does both in a venv of
its own interpreter, built once per content hash under the user's cache folder:

- requirements.txt in the job's code is installed with pip, as the container installs it;
- with `parity = true`, the image's framework release (and the numpy, scipy and pandas it
  pins, from framework_versions.json) is installed, or the closest release installable here.

A `.pth` file appends sagelab's own site-packages to the venv, so a step still imports pandas,
boto3 and sagelab itself, while what the venv installed comes first. Every step on a framework
image also reports which framework version it ran with against the image's (version drift).
See docs/containers.md, "Environments".
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from sagelab.containers.contract import job_path
from sagelab.containers.images import ContainerBehaviour
from sagelab.errors import ExecutionError

__all__ = ["PROPERTY", "CachedEnvironment", "Runtime", "cache_dir", "cached", "closest", "describe", "image_pins", "prepare",
           "processing_code", "remove"]

PROPERTY = "SagelabEnvironment"  # the step property that records the image's framework version against the step's
FORMAT = "1"  # part of every environment's hash: a change in how environments are built makes new ones
MANIFEST = "sagelab-environment.json"  # written last into a built environment
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_PIP_LAUNCHER = "#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"


class StepLog(Protocol):
    """Where a step's log goes (a local engine `Job` is one)."""

    log_path: Path

    def log(self, message: str) -> None: ...


@dataclass(frozen=True)
class Runtime:
    """The interpreter a step runs on (None: sagelab's own) and its image's framework version against the step's."""

    python: str | None = None
    versions: dict[str, Any] | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """What the runner adds to the step's properties."""
        return {PROPERTY: self.versions} if self.versions else {}


def prepare(step: StepLog, image: ContainerBehaviour | None, code: Path | None, *, parity: bool, builtin: bool = False) -> Runtime:
    """Build or reuse the environment a step needs, and log the framework version it runs with.

    Args:
        step: the step's log.
        image: what `images.identify` says the step's image is.
        code: the folder holding the job's code (requirements.txt, or a sourcedir.tar.gz with one).
        parity: run on the image's framework release (`parity = true` in [tool.sagelab]).
        builtin: the step runs a built-in algorithm, which runs on sagelab's own packages.

    Raises:
        ExecutionError: pip could not install requirements.txt or the image's release.
    """
    requirements = None if builtin or code is None else _requirements(code)
    pins = image_pins(image) if parity and image is not None and not builtin else {}
    if parity and builtin and image is not None:
        step.log(f"parity: the built-in algorithm of {image.label} runs on sagelab's own {image.framework}, "
                 "whose defaults it sets to the image's")  # fmt: skip
    env = _ensure(step, image, pins, requirements, code) if pins or requirements is not None else None
    versions = _versions(image, env)
    if versions is not None:
        hint = "; parity = true in [tool.sagelab] runs the image's" if versions["Drift"] and not (env or builtin) else ""
        step.log(describe(versions) + hint)
    return Runtime(str(env / "bin" / "python") if env else None, versions)


def processing_code(request: Mapping[str, Any], root: Path) -> Path | None:
    """The folder of a processing job's `code` input (the SDK's name for it), inside the job folder."""
    for item in request.get("ProcessingInputs", []):
        if item.get("InputName") == "code" and "S3Input" in item:
            try:
                return job_path(root, item["S3Input"]["LocalPath"])
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class CachedEnvironment:
    """A built environment in the cache, as `sagelab envs` lists it."""

    key: str  # the content hash it is published under
    path: Path  # the folder the `key` link points to
    built_for: str  # "requirements.txt", "the framework release of sagemaker-scikit-learn:1.2-1", ...
    python: str  # the interpreter it was built from
    created: float
    size: int  # bytes on disk


def cached() -> list[CachedEnvironment]:
    """The environments built so far, oldest first (builds a crash left half-done are not listed)."""
    root = cache_dir()
    found = []
    for link in root.iterdir() if root.is_dir() else ():
        if not link.is_symlink() or not (link / MANIFEST).is_file():
            continue
        manifest = json.loads((link / MANIFEST).read_text())
        folder = link.resolve()
        size = sum(f.lstat().st_size for f in folder.rglob("*") if not f.is_symlink() and f.is_file())
        found.append(CachedEnvironment(link.name, folder, manifest.get("built_for", ""), manifest.get("python", ""),
                                       (folder / MANIFEST).stat().st_mtime, size))  # fmt: skip
    return sorted(found, key=lambda env: env.created)


def remove(key: str) -> CachedEnvironment:
    """Delete one environment; the next step that needs it builds it again.

    Raises:
        ExecutionError: no environment has this key (or key prefix), or more than one has.
    """
    matches = [env for env in cached() if env.key.startswith(key)] if key else []
    if len(matches) != 1:
        known = ", ".join(env.key for env in cached()) or "none"
        what = "no environment" if not matches else f"{len(matches)} environments"
        raise ExecutionError(f"{what} match {key!r}; cached environments: {known} (sagelab envs lists them)")
    env = matches[0]
    with _locked(cache_dir() / f"{env.key}.lock"):  # never while a step builds it
        (cache_dir() / env.key).unlink()
        shutil.rmtree(env.path, ignore_errors=True)
    return env


def cache_dir() -> Path:
    """Where built environments live: $XDG_CACHE_HOME/sagelab/envs, by default ~/.cache/sagelab/envs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sagelab" / "envs"


@cache
def _table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(Path(__file__).with_name("framework_versions.json").read_text())
    return table


def image_pins(image: ContainerBehaviour) -> dict[str, str]:
    """The framework release an image ships, first, then the numpy, scipy and pandas it pins.

    >>> from sagelab.containers.images import identify
    >>> image_pins(identify("sagemaker-scikit-learn:1.2-1-cpu-py3"))
    {'scikit-learn': '1.2.1', 'numpy': '1.24.1', 'scipy': '1.8.0', 'pandas': '1.1.3'}
    >>> image_pins(identify("pytorch-training:2.1.0-cpu-py310"))
    {'torch': '2.1.0', 'numpy': '1.26.4'}
    """
    table = _table()
    packages = table["packages"].get(image.framework)
    if not packages or not image.version:
        return {}
    known = table["images"].get(image.family, {}).get(image.version)
    if known:
        return dict(known)
    version = re.sub(r"-\d+$", "", image.version)  # a container revision: 1.9-1 is scikit-learn 1.9
    pins = {packages[0]: version}
    numpy1 = table["numpy1"]
    before = numpy1["before"].get(image.framework)
    if before and _release(version) < _release(before):
        pins["numpy"] = numpy1["numpy"]
    return pins


def closest(wanted: str, available: Iterable[str]) -> str | None:
    """The available version nearest `wanted`, or None when there is none.

    The newest of the versions `wanted` names (`2.1` names every 2.1.x); else the nearest patch
    of the same minor release; else the newest patch of the nearest minor release on either
    side, preferring one in the same major release, then the nearer, then the newer.

    >>> closest("0.23.2", ["1.1.3", "1.1.0", "1.2.1"])
    '1.1.3'
    >>> closest("1.2.1", ["1.2.0", "1.2.2", "1.3.0"])
    '1.2.2'
    """
    target = _release(wanted)
    versions = sorted(set(available), key=_release)
    named = [v for v in versions if _release(v)[: len(target)] == target]
    if named:
        return named[-1]
    line = target[:2]
    same = [v for v in versions if _release(v)[:2] == line]
    if same:
        patch = (target + (0, 0))[2]
        return min(same, key=lambda v: (abs((_release(v) + (0, 0))[2] - patch), -(_release(v) + (0, 0))[2]))
    lines = sorted({_release(v)[:2] for v in versions})
    sides = [x for x in lines if x < line][-1:] + [x for x in lines if x > line][:1]
    if not sides:
        return None
    nearest = min(sides, key=lambda x: (x[0] != line[0], abs(x[1] - line[1]) if x[0] == line[0] else 0, x < line))
    return [v for v in versions if _release(v)[:2] == nearest][-1]


def describe(versions: Mapping[str, Any]) -> str:
    """One line: the framework version a step ran with, against its image's."""
    package, shipped, ran, image = versions["Package"], versions["ImageVersion"], versions["StepVersion"], versions["Image"]
    where = "sagelab's environment" if versions["Environment"] == "sagelab" else f"environment {Path(versions['Environment']).name}"
    if ran is None:
        return f"{package} is not installed in {where}; {image} ships {shipped}"
    if not versions["Drift"]:
        return f"{package} {ran} in {where}, as {image} ships"
    return f"{package} {ran} in {where}, but {image} ships {shipped} (drift)"


def _release(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with: 2.13.0+cpu → (2, 13, 0), 0.90 → (0, 90)."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match[0].split(".")) if match else ()


def _requirements(code: Path) -> str | None:
    """The job's requirements.txt: in its code folder, or at the top of the sourcedir.tar.gz there."""
    path = code / "requirements.txt"
    if path.is_file():
        return path.read_text(errors="replace")
    archive = code / "sourcedir.tar.gz"
    if not archive.is_file():
        return None
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.isfile() and os.path.normpath(member.name) == "requirements.txt":
                    data = tar.extractfile(member)
                    return data.read().decode(errors="replace") if data else None
    except (OSError, tarfile.TarError):
        return None  # the step's own script unpacks it, and says what is wrong with it
    return None


def _ensure(step: StepLog, image: ContainerBehaviour | None, pins: dict[str, str], requirements: str | None, code: Path | None) -> Path:
    """The environment for these pins and requirements: reused when built before, else built now.

    Built in a folder of its own and published by renaming a symlink onto `<hash>`, so nobody
    sees a half-built environment; a lock file makes concurrent steps with the same hash wait
    for one build. The folder never moves, so the paths pip writes into scripts stay valid.
    """
    identity = [FORMAT, sys.executable, sys.version, *_base_sites()]
    key = hashlib.sha256(json.dumps([identity, pins, requirements]).encode()).hexdigest()[:16]
    what = " and ".join(([f"the framework release of {image.label}"] if pins and image else []) + (["requirements.txt"] if requirements is not None else []))
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    link = root / key
    with _locked(root / f"{key}.lock"):
        if (link / MANIFEST).is_file():
            step.log(f"reusing environment {link} ({what}, hash {key})")
            for note in json.loads((link / MANIFEST).read_text())["notes"]:
                step.log(note)
            return link
        for stale in [link, *root.glob(f"{key}-*")]:  # a link whose folder is gone, builds a crash left
            if stale.is_symlink():
                stale.unlink()
            elif stale.exists():
                shutil.rmtree(stale, ignore_errors=True)
        step.log(f"installing {what} (hash {key}) into {link}")
        build = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
        try:
            python = _create(build)
            notes = _install_pins(step, python, pins, image, build) if pins and image else []
            if requirements is not None and code is not None:
                _install_requirements(step, python, code)
            (build / MANIFEST).write_text(json.dumps({"built_for": what, "python": sys.executable, "notes": notes}))
            staged = root / f"{key}.new"
            staged.unlink(missing_ok=True)
            staged.symlink_to(build.name)
            os.replace(staged, link)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    return link


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def _base_sites() -> list[str]:
    """sagelab's own site-packages folders, which a built environment appends to its own."""
    import site

    folders = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [folder for folder in folders if os.path.isdir(folder)]


def _site(env: Path) -> Path:
    return env / "lib" / f"python{PYTHON}" / "site-packages"


def _create(build: Path) -> Path:
    """A venv of sagelab's interpreter that sees sagelab's packages after its own; returns its python.

    pip comes from sagelab's environment through the .pth file (no 3-second ensurepip), with
    `pip` commands in the venv's bin so a script's own `pip install` installs into the venv.
    """
    import venv

    own_pip = importlib.util.find_spec("pip") is not None
    venv.EnvBuilder(with_pip=not own_pip, symlinks=True).create(build)
    lines = "".join(f"import site; site.addsitedir({folder!r})\n" for folder in _base_sites())
    (_site(build) / "_sagelab_base.pth").write_text(lines)
    python = build / "bin" / "python"
    if own_pip:
        for name in ("pip", "pip3", f"pip{PYTHON}"):
            launcher = build / "bin" / name
            launcher.write_text(_PIP_LAUNCHER.format(python=python))
            launcher.chmod(0o755)
    return python


def _install_pins(step: StepLog, python: Path, pins: dict[str, str], image: ContainerBehaviour, build: Path) -> list[str]:
    """Install the image's releases, or the closest installable here; returns the log lines saying which differ."""
    notes, chosen = [], []
    for position, (name, wanted) in enumerate(pins.items()):
        versions, said = _available(python, name, build)
        found = _installable(python, name, wanted, versions, build)
        if found is None and position == 0:
            raise ExecutionError(
                f"parity: pip finds no release of {name} installable on Python {PYTHON} for {image.label} "
                f"(pip index versions {name}: {said}). Check the package index pip uses, or set parity = false in [tool.sagelab]"
            )
        if found is None:
            notes.append(f"{name} {wanted} ({image.label} ships it) is not installable on Python {PYTHON}, nor any other release; keeping sagelab's")
            continue
        if _release(found)[: len(_release(wanted))] != _release(wanted):
            notes.append(f"{name} {wanted} is not installable on Python {PYTHON}; using {found}, the closest")
        chosen.append(f"{name}=={found}")
    for note in notes:
        step.log(note)
    _pip(step, python, ["install", "--no-input", "--only-binary=:all:", *chosen], build, f"the framework release of {image.label}")
    return notes


def _installable(python: Path, name: str, wanted: str, versions: list[str], cwd: Path, tries: int = 12) -> str | None:
    """The closest of `versions` that pip can install here, trying the next closest minor release when one cannot be.

    `pip index versions` lists releases with no wheel for this Python when pip is older than 24
    (it ignores --only-binary there), so each pick is confirmed with a dry run. A release
    without a wheel for this Python usually means its whole minor line has none, so a failed
    pick rules out its minor line.
    """
    left = list(versions)
    for _ in range(tries):
        found = closest(wanted, left)
        if found is None:
            return None
        command = [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--no-input", "--no-deps",
                   "--only-binary=:all:", f"{name}=={found}"]  # fmt: skip
        if subprocess.run(command, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, check=False).returncode == 0:
            return found
        left = [v for v in left if _release(v)[:2] != _release(found)[:2]]
    return None


def _available(python: Path, name: str, cwd: Path) -> tuple[list[str], str]:
    """The releases of `name` with a wheel for this interpreter, and pip's last line."""
    command = [str(python), "-m", "pip", "index", "versions", "--no-input", "--only-binary=:all:", name]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    output = result.stdout + result.stderr
    for line in output.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()], line
    return [], (output.strip().splitlines() or ["no output"])[-1]


def _install_requirements(step: StepLog, python: Path, code: Path) -> None:
    """pip install -r requirements.txt in the code folder, as the container does (unpacking sourcedir.tar.gz first)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = code
        if not (code / "requirements.txt").is_file():
            with tarfile.open(code / "sourcedir.tar.gz") as tar:
                tar.extractall(scratch, filter="data")
            folder = Path(scratch)
        _pip(step, python, ["install", "--no-input", "-r", "requirements.txt"], folder, "requirements.txt")


def _pip(step: StepLog, python: Path, args: list[str], cwd: Path, what: str) -> None:
    """Run pip with its output in the step log; fail the step with pip's last lines when it fails."""
    tail: deque[str] = deque(maxlen=12)
    command = [str(python), "-m", "pip", *args]
    with open(step.log_path, "a", encoding="utf-8") as log, subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        for line in process.stdout or ():
            log.write(line)
            tail.append(line.rstrip())
    code = process.returncode
    if code != 0:
        raise ExecutionError(
            f"{what}: pip could not install it (exit code {code}), so the step did not run and no environment was kept. "
            f"pip's last lines:\n" + "\n".join(tail) + f"\nFix {what} (or the package index pip uses) and run the step again"
        )


def _versions(image: ContainerBehaviour | None, env: Path | None) -> dict[str, Any] | None:
    """The image's framework version against the one the step imports (from `env` first, then sagelab's)."""
    packages = _table()["packages"].get(image.framework) if image else None
    if image is None or not packages or not image.version:
        return None
    shipped = image_pins(image)[packages[0]]
    ran = _installed(packages, env)
    drift = ran is None or _release(ran)[: len(_release(shipped))] != _release(shipped)
    return {"Image": image.label, "Package": packages[0], "ImageVersion": shipped, "StepVersion": ran,
            "Environment": str(env) if env else "sagelab", "Drift": drift}  # fmt: skip


def _installed(packages: list[str], env: Path | None) -> str | None:
    from importlib import metadata

    if env is not None:
        for name in packages:
            for found in metadata.distributions(name=name, path=[str(_site(env))]):
                return found.version
    for name in packages:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
