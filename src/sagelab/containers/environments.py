"""The Python environment a step runs on: sagelab's own, or one built for it and cached.

SageMaker's framework containers pip-install a job's requirements.txt before its entry point
runs (the training toolkit for /opt/ml/code, FrameworkProcessor's runproc.sh for a processing
job's code), and each image ships its own framework release. sagelab does both in a venv of
its own interpreter, built once per content hash under the user's cache folder:

- requirements.txt in the job's code is installed with pip, as the container installs it (in the
  code folder, so its local references resolve as there; editable local installs are refused,
  as an environment outlives the job's folder they would point at);
- with `parity = true`, the image's framework release (and the numpy, scipy and pandas it
  pins, from framework_versions.json) is installed, or the closest release installable here.

A `.pth` file appends sagelab's own site-packages to the venv, so a step still imports pandas,
boto3 and sagelab itself, while what the venv installed comes first; what it imports from there
depends on sagelab's installed distributions, which are part of the hash, as are the files of
the code folder when requirements.txt names local files. pip runs without the user's AWS
credentials, as a step does (building an sdist runs its setup.py). Every step on a framework
image also reports which framework version it ran with against the image's (version drift).
See docs/containers.md, "Environments".
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

from sagelab.containers import sandbox
from sagelab.containers.contract import job_path
from sagelab.containers.images import ContainerBehaviour
from sagelab.errors import ExecutionError

__all__ = ["PROPERTY", "SERVER", "STEP", "CachedEnvironment", "Purpose", "Runtime", "cache_dir", "cached", "closest", "describe",
           "image_pins", "keys", "prepare", "processing_code", "remove"]

PROPERTY = "SagelabEnvironment"  # the step property that records the image's framework version against the step's
FORMAT = "2"  # part of every environment's hash: a change in how environments are built makes new ones
MANIFEST = "sagelab-environment.json"  # written last into a built environment
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_PIP_LAUNCHER = "#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
_ARCHIVE_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)  # what reading a bad or truncated .tar.gz raises
_UNHASHED = ("__pycache__", ".pyc", ".egg-info")  # what running or building the code adds to its folder, left out of its hash


class StepLog(Protocol):
    """Where a step's log goes (a local engine `Job` is one)."""

    log_path: Path

    def log(self, message: str) -> None: ...


@dataclass(frozen=True)
class Purpose:
    """What an environment is prepared for, in the words of a failed build."""

    stopped: str  # what did not happen because pip failed
    again: str  # what to do once the requirements are fixed


STEP = Purpose("the step did not run", "run the step again")
SERVER = Purpose("the model server did not start", "deploy again")


@dataclass(frozen=True)
class Runtime:
    """The interpreter a step runs on (None: sagelab's own) and its image's framework version against the step's."""

    python: str | None = None
    versions: dict[str, Any] | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """What the runner adds to the step's properties."""
        return {PROPERTY: self.versions} if self.versions else {}


def prepare(step: StepLog, image: ContainerBehaviour | None, code: Path | None, *, parity: bool, builtin: bool = False,
            purpose: Purpose = STEP) -> Runtime:  # fmt: skip
    """Build or reuse the environment a step needs, and log the framework version it runs with.

    Args:
        step: the step's log.
        image: what `images.identify` says the step's image is.
        code: the folder holding the job's code (requirements.txt, or a sourcedir.tar.gz with one).
        parity: run on the image's framework release (`parity = true` in [tool.sagelab]).
        builtin: the step runs a built-in algorithm, which runs on sagelab's own packages.
        purpose: what the environment is for (a step, a model server), for the words of a failure.

    Raises:
        ExecutionError: pip could not install requirements.txt or the image's release, or was
            interrupted; requirements.txt asks for an editable local install; sourcedir.tar.gz
            cannot be unpacked.
    """
    requirements = None if builtin or code is None else _requirements(code)
    pins = image_pins(image) if parity and image is not None and not builtin else {}
    if parity and builtin and image is not None:
        step.log(f"parity: the built-in algorithm of {image.label} runs on sagelab's own {image.framework}, "
                 "whose defaults it sets to the image's")  # fmt: skip
    env = _ensure(step, image, pins, requirements, purpose) if pins or requirements is not None else None
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


def keys() -> list[str]:
    """The hashes of the environments built so far, without reading or sizing them (builds a crash left half-done are not listed)."""
    root = cache_dir()
    return sorted(link.name for link in (root.iterdir() if root.is_dir() else ()) if link.is_symlink() and (link / MANIFEST).is_file())


def cached() -> list[CachedEnvironment]:
    """The environments built so far, oldest first; one deleted while they are listed is left out.

    Raises:
        ExecutionError: an environment's manifest is not valid JSON (it says how to delete it).
    """
    found = []
    for key in keys():
        try:
            found.append(_describe(key, _manifest(cache_dir() / key)))
        except FileNotFoundError:
            continue  # deleted meanwhile (sagelab envs delete, or a rebuild)
    return sorted(found, key=lambda env: env.created)


def remove(key: str) -> CachedEnvironment:
    """Delete one environment; the next step that needs it builds it again (a running endpoint keeps using it, broken).

    Raises:
        ExecutionError: no environment has this key (or key prefix), or more than one has, or it
            was deleted meanwhile by another process.
    """
    if re.fullmatch(r"[0-9a-f]{16}", key) and (cache_dir() / key / MANIFEST).is_file():
        known = matches = [key]  # a whole hash (sagelab envs delete --all): no need to list the others
    else:
        known = keys()
        matches = [name for name in known if name.startswith(key)] if key else []
    if len(matches) != 1:
        what = "no environment" if not matches else f"{len(matches)} environments"
        raise ExecutionError(f"{what} match {key!r}; cached environments: {', '.join(known) or 'none'} (sagelab envs lists them)")
    link = cache_dir() / matches[0]
    with _locked(cache_dir() / f"{matches[0]}.lock"):  # never while a step builds it
        try:
            try:
                manifest = _manifest(link)
            except ExecutionError:
                manifest = {}  # a corrupt manifest is one more reason to delete it
            env = _describe(matches[0], manifest)
            link.unlink()
        except FileNotFoundError:
            raise ExecutionError(f"environment {matches[0]} was deleted meanwhile (by another sagelab envs delete, or a "
                                 "step rebuilding it); sagelab envs lists what is left") from None  # fmt: skip
        shutil.rmtree(env.path, ignore_errors=True)
    return env


def _manifest(link: Path) -> dict[str, Any]:
    """A built environment's manifest (FileNotFoundError when it is gone).

    Raises:
        ExecutionError: it is not valid JSON.
    """
    path = link / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExecutionError(f"environment {link.name}: its manifest {path} is corrupt ({exc}); delete the environment "
                             f"with: sagelab envs delete {link.name} (a step that needs it builds it again)") from None  # fmt: skip
    if not isinstance(manifest, dict):
        raise ExecutionError(f"environment {link.name}: its manifest {path} is not a JSON object; delete the environment "
                             f"with: sagelab envs delete {link.name}")  # fmt: skip
    return manifest


def _describe(key: str, manifest: Mapping[str, Any]) -> CachedEnvironment:
    """One environment with its size (FileNotFoundError when it is gone); files removed while it is sized are not counted."""
    folder = (cache_dir() / key).resolve(strict=True)
    created = (folder / MANIFEST).stat().st_mtime if (folder / MANIFEST).exists() else folder.stat().st_mtime
    size = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            size += info.st_size if S_ISREG(info.st_mode) else 0
    return CachedEnvironment(key, folder, str(manifest.get("built_for", "")), str(manifest.get("python", "")), created, size)


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


@dataclass(frozen=True)
class _Requirements:
    """A job's requirements.txt: its text, and where pip finds it and the files it names."""

    text: str
    folder: Path  # the code folder: requirements.txt is in it, or in its sourcedir.tar.gz
    archive: Path | None  # the sourcedir.tar.gz holding requirements.txt, if it is there
    local: list[str]  # the lines naming local files (`.`, `./x.whl`, `-r other.txt`, `file:...`)


def _requirements(code: Path) -> _Requirements | None:
    """The job's requirements.txt: in its code folder, or at the top of the sourcedir.tar.gz there."""
    path = code / "requirements.txt"
    if path.is_file():
        text = path.read_text(errors="replace")
        return _Requirements(text, code, None, _local_references(text))
    archive = code / "sourcedir.tar.gz"
    if not archive.is_file():
        return None
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.isfile() and os.path.normpath(member.name) == "requirements.txt":
                    data = tar.extractfile(member)
                    text = data.read().decode(errors="replace") if data else ""
                    return _Requirements(text, code, archive, _local_references(text))
    except _ARCHIVE_ERRORS:
        return None  # the step's own script unpacks it, and says what is wrong with it
    return None


_PATH_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-f", "--find-links")
_EDITABLE = ("-e", "--editable")


def _lines(text: str) -> Iterator[str]:
    """requirements.txt's lines as pip reads them: continuation lines joined, comments and blank lines left out."""
    for line in re.sub(r"\\\n", "", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            yield line


def _option(line: str, names: tuple[str, ...]) -> str | None:
    """The value of `line` when it is one of the options `names` (`-r x`, `-rx`, `--requirement=x`), else None."""
    for name in names:
        if line == name:
            return ""
        if line.startswith(name) and (name.startswith("--") and line[len(name)] in " =" or not name.startswith("--")):
            return line[len(name):].lstrip(" =").strip()
    return None


def _is_local(value: str) -> bool:
    """Whether a path, URL or requirement names a file on this machine (not a package index or a remote URL)."""
    value = value.strip().strip("'\"")
    return value.startswith("file:") or "://" not in value


def _local_references(text: str) -> list[str]:
    r"""The lines of a requirements.txt that name local files, whose content pip installs from.

    >>> _local_references("pandas==2.2\n-e .\n./wheels/x-1.0-py3-none-any.whl\n-r base.txt\nx @ file:///tmp/x\n"
    ...                   "--index-url https://pypi.org/simple\n-e git+https://github.com/a/b#egg=b\nnumpy; python_version>'3'")
    ['-e .', './wheels/x-1.0-py3-none-any.whl', '-r base.txt', 'x @ file:///tmp/x']
    """
    found = []
    for line in _lines(text):
        value = _option(line, _PATH_OPTIONS + _EDITABLE)
        if value is not None:
            local = bool(value) and _is_local(value)
        elif line.startswith("-"):
            local = False  # --index-url, --pre, --only-binary ...: nothing local
        else:
            spec = line.split(";", 1)[0].strip()
            if " @ " in spec or re.match(r"^[A-Za-z0-9._\-\[\], ]+@", spec):
                local = spec.split("@", 1)[1].strip().startswith("file:")
            else:
                local = _is_local(spec) and (spec.startswith((".", "/", "~")) or "/" in spec or "\\" in spec
                                             or spec.endswith((".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")))  # fmt: skip
        if local:
            found.append(line)
    return found


def _editable_local(folder: Path, name: str = "requirements.txt", seen: frozenset[Path] = frozenset()) -> str | None:
    """The first `-e <local path>` line in requirements.txt or a requirements file it includes (`-r`), else None."""
    path = (folder / name).resolve()
    if path in seen or not path.is_file():
        return None
    for line in _lines(path.read_text(errors="replace")):
        editable = _option(line, _EDITABLE)
        if editable and _is_local(editable):
            return line
        included = _option(line, ("-r", "--requirement"))
        if included and _is_local(included):
            found = _editable_local(path.parent, included.strip("'\"").removeprefix("file:"), seen | {path})
            if found:
                return found
    return None


def _content(requirements: _Requirements) -> str:
    """A hash of the files requirements.txt's local references may name: the code folder's, or its sourcedir.tar.gz.

    Links are followed (once per folder); what running or building the code adds (`__pycache__`,
    `*.egg-info`) is left out, so a folder pip built a package in keeps its hash.
    """
    if requirements.archive is not None:
        return _file_hash(requirements.archive)
    digest = hashlib.sha256()
    seen: set[str] = set()
    for root, folders, files in os.walk(requirements.folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link loop, or a folder linked twice
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(name for name in folders if not name.endswith(_UNHASHED))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(_UNHASHED) or not os.path.isfile(path):
                continue
            digest.update(f"{os.path.relpath(path, requirements.folder)}\0{_file_hash(path)}\0".encode())
    return digest.hexdigest()


def _file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ensure(step: StepLog, image: ContainerBehaviour | None, pins: dict[str, str], requirements: _Requirements | None,
            purpose: Purpose) -> Path:  # fmt: skip
    """The environment for these pins and requirements: reused when built before, else built now.

    The hash covers sagelab's interpreter and its installed distributions (what a venv does not
    install itself, it imports from there), the pins, the requirements' text and, when they name
    local files, the code folder's files. Built in a folder of its own and published by renaming
    a symlink onto `<hash>`, so nobody sees a half-built environment; a lock file makes
    concurrent steps with the same hash wait for one build. The folder never moves, so the paths
    pip writes into scripts stay valid.
    """
    identity = [FORMAT, sys.executable, sys.version, *_base_sites()]
    text = requirements.text if requirements else None
    content = _content(requirements) if requirements and requirements.local else None
    key = hashlib.sha256(json.dumps([identity, _base_distributions(), pins, text, content]).encode()).hexdigest()[:16]
    what = " and ".join(([f"the framework release of {image.label}"] if pins and image else []) + (["requirements.txt"] if requirements else []))
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    link = root / key
    with _locked(root / f"{key}.lock"):
        if (link / MANIFEST).is_file():
            try:
                notes = _manifest(link).get("notes", [])
            except ExecutionError as exc:
                step.log(f"{exc}; building it again")
            else:
                step.log(f"reusing environment {link} ({what}, hash {key})")
                for note in notes:
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
            notes = _install_pins(step, python, pins, image, build, purpose) if pins and image else []
            if requirements is not None:
                _install_requirements(step, python, requirements, purpose)
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


def _base_distributions() -> list[str]:
    """`name==version` of every distribution in sagelab's site-packages, which a built environment imports what it lacks from.

    A requirement they satisfy installs nothing into the environment, so an upgrade there changes
    what a step imports: this is part of the hash. Read from each distribution's metadata header
    (6 ms for 150 distributions, where `Distribution.version` parses the whole file: 40 ms), and
    kept while the folders' modification times say no distribution was added or removed.
    """
    sites = _base_sites()
    stamp = tuple((folder, os.stat(folder).st_mtime_ns) for folder in sites)
    if stamp in _FINGERPRINT:
        return _FINGERPRINT[stamp]
    from importlib import metadata

    found = set()
    for dist in metadata.distributions(path=sites):
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        fields = dict(line.split(":", 1) for line in itertools.takewhile(bool, text.splitlines()) if ":" in line and line[0] != " ")
        found.add(f"{fields.get('Name', '').strip()}=={fields.get('Version', '').strip()}")
    fingerprint = sorted(found)
    _FINGERPRINT.clear()  # steps run in threads: each keeps its own list
    _FINGERPRINT[stamp] = fingerprint
    return fingerprint


_FINGERPRINT: dict[tuple[tuple[str, int], ...], list[str]] = {}  # sagelab's site-packages folders' last stamp: their distributions


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


def _install_pins(step: StepLog, python: Path, pins: dict[str, str], image: ContainerBehaviour, build: Path, purpose: Purpose) -> list[str]:
    """Install the image's releases, or the closest installable here; returns the log lines saying which differ."""
    notes, chosen = [], []
    for position, (name, wanted) in enumerate(pins.items()):
        versions, said = _available(python, name, build, purpose)
        found = _installable(python, name, wanted, versions, build, purpose)
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
    _pip(step, python, ["install", "--no-input", "--only-binary=:all:", *chosen], build, f"the framework release of {image.label}", purpose)
    return notes


def _installable(python: Path, name: str, wanted: str, versions: list[str], cwd: Path, purpose: Purpose = STEP,
                 tries: int = 12) -> str | None:  # fmt: skip
    """The closest of `versions` that pip can install here, trying the next closest minor release when one cannot be.

    `pip index versions` lists releases with no wheel for this Python when pip is older than 24
    (it ignores --only-binary there), so each pick is confirmed with a dry run. A release
    without a wheel for this Python usually means its whole minor line has none, so a failed
    pick rules out its minor line; a dry run killed by a signal (Ctrl-C, a stopped execution)
    ends the build instead.

    Raises:
        ExecutionError: pip was interrupted.
    """
    left = list(versions)
    for _ in range(tries):
        found = closest(wanted, left)
        if found is None:
            return None
        command = [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--no-input", "--no-deps",
                   "--only-binary=:all:", f"{name}=={found}"]  # fmt: skip
        returncode = subprocess.run(command, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, env=_pip_environment(python),
                                    check=False).returncode  # fmt: skip
        _interrupted(returncode, f"pip install --dry-run {name}=={found}", purpose)
        if returncode == 0:
            return found
        left = [v for v in left if _release(v)[:2] != _release(found)[:2]]
    return None


def _available(python: Path, name: str, cwd: Path, purpose: Purpose = STEP) -> tuple[list[str], str]:
    """The releases of `name` with a wheel for this interpreter, and pip's last line."""
    command = [str(python), "-m", "pip", "index", "versions", "--no-input", "--only-binary=:all:", name]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=_pip_environment(python), check=False)
    _interrupted(result.returncode, f"pip index versions {name}", purpose)
    output = result.stdout + result.stderr
    for line in output.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()], line
    return [], (output.strip().splitlines() or ["no output"])[-1]


def _install_requirements(step: StepLog, python: Path, requirements: _Requirements, purpose: Purpose) -> None:
    """pip install -r requirements.txt in the code folder, as the container does.

    From a sourcedir.tar.gz, pip gets requirements.txt alone, or the whole archive unpacked when
    requirements.txt names local files.

    Raises:
        ExecutionError: pip failed or was interrupted; requirements.txt asks for an editable local
            install; the archive cannot be unpacked.
    """
    if requirements.archive is None:
        _refuse_editable(requirements.folder, "requirements.txt")
        _pip(step, python, ["install", "--no-input", "-r", "requirements.txt"], requirements.folder, "requirements.txt", purpose)
        return
    with tempfile.TemporaryDirectory() as scratch:
        if requirements.local:
            _unpack(requirements.archive, Path(scratch))
            _refuse_editable(Path(scratch), f"requirements.txt in {requirements.archive}")
        else:
            (Path(scratch) / "requirements.txt").write_text(requirements.text)
        _pip(step, python, ["install", "--no-input", "-r", "requirements.txt"], Path(scratch), "requirements.txt", purpose)


def _unpack(archive: Path, target: Path) -> None:
    """Unpack a sourcedir.tar.gz for pip, refusing what the tar "data" filter refuses (links out of it, absolute paths, devices).

    Raises:
        ExecutionError: the archive is corrupt, or holds a member the filter refuses.
    """
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except tarfile.FilterError as exc:
        raise ExecutionError(f"{archive}: cannot unpack it to install its requirements.txt, which names files in it: {exc}. "
                             "Build the archive from the code folder without links that point outside it, absolute paths "
                             "or device files (sagelab unpacks it with Python's tar 'data' filter)") from None  # fmt: skip
    except _ARCHIVE_ERRORS as exc:
        raise ExecutionError(f"{archive}: cannot unpack it to install its requirements.txt, which names files in it: it is not "
                             f"a complete .tar.gz ({type(exc).__name__}: {exc}). Upload it again "
                             "(tar -czf sourcedir.tar.gz -C CODE_FOLDER .)") from None  # fmt: skip


def _refuse_editable(folder: Path, where: str) -> None:
    """Refuse `-e ./pkg`: an editable install points at the job's folder, which is deleted while the environment is kept.

    Raises:
        ExecutionError: requirements.txt, or a file it includes, has an editable local install.
    """
    line = _editable_local(folder)
    if line is not None:
        raise ExecutionError(
            f"{where}: {line!r} is an editable install of a local folder, which sagelab does not make: the cached "
            "environment outlives the job's folder an editable install would point at (and is shared by every step "
            f"with the same requirements). Write {re.sub(r'^(-e|--editable)[ =]*', '', line)!r} instead: pip installs a "
            "copy, rebuilt whenever the code folder changes"
        )


def _pip_environment(python: Path) -> dict[str, str]:
    """What pip runs with: a step's environment (PATH with the venv's bin first, PIP_* and proxy variables kept).

    Building an sdist runs its setup.py, which should no more reach your AWS account than the step
    does: AWS credential variables are left out, and the AWS credential and config files point
    at an empty file.
    """
    return sandbox.environment({"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull}, str(python))


def _interrupted(returncode: int, what: str, purpose: Purpose) -> None:
    """Fail the build when pip was killed by a signal (Ctrl-C, a stopped execution): that says nothing about the requirements.

    Raises:
        ExecutionError: `returncode` is negative.
    """
    if returncode < 0:
        raise ExecutionError(f"the environment build was interrupted: {what} was stopped by signal {-returncode}, so "
                             f"{purpose.stopped} and no environment was kept")  # fmt: skip


def _pip(step: StepLog, python: Path, args: list[str], cwd: Path, what: str, purpose: Purpose) -> None:
    """Run pip with its output in the step log; fail the step with pip's last lines when it fails."""
    tail: deque[str] = deque(maxlen=12)
    command = [str(python), "-m", "pip", *args]
    with open(step.log_path, "a", encoding="utf-8") as log, subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        env=_pip_environment(python),
    ) as process:
        for line in process.stdout or ():
            log.write(line)
            tail.append(line.rstrip())
    code = process.returncode
    _interrupted(code, f"pip install ({what})", purpose)
    if code != 0:
        raise ExecutionError(
            f"{what}: pip could not install it (exit code {code}), so {purpose.stopped} and no environment was kept. "
            f"pip's last lines:\n" + "\n".join(tail) + f"\nFix {what} (or the package index pip uses) and {purpose.again}"
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
