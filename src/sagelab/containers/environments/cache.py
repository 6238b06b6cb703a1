"""The cache of built environments: content-addressed folders, built atomically, listed and deleted.

An environment is built in a folder of its own (`<hash>-<random>`) and published by renaming a
symlink `<hash>` onto it, so a step never sees a half-built one and the paths an installer
writes into scripts stay valid (the folder never moves). A lock file (`<hash>.lock`) makes steps
with the same hash that start together wait for one build and then reuse it. A build a crash
interrupted is removed by the next build of the same hash.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

from sagelab.errors import ExecutionError

__all__ = ["MANIFEST", "SERVER", "STEP", "CachedEnvironment", "Purpose", "StepLog", "cache_dir", "cached", "ensure", "keys", "manifest", "remove"]

MANIFEST = "sagelab-environment.json"  # written last into a built environment


class StepLog(Protocol):
    """Where a step's log goes (a local engine `Job` is one)."""

    log_path: Path

    def log(self, message: str) -> None: ...


@dataclass(frozen=True)
class Purpose:
    """What an environment is prepared for, in the words of a failed build."""

    stopped: str  # what did not happen because the build failed
    again: str  # what to do once the cause is fixed


STEP = Purpose("the step did not run", "run the step again")
SERVER = Purpose("the model server did not start", "deploy again")


@dataclass(frozen=True)
class CachedEnvironment:
    """A built environment in the cache, as `sagelab envs` lists it."""

    key: str  # the content hash it is published under
    path: Path  # the folder the `key` link points to
    built_for: str  # "requirements.txt", "sagemaker-scikit-learn:1.2-1", ...
    python: str  # the interpreter it was built from
    created: float
    size: int  # bytes on disk


def cache_dir() -> Path:
    """Where built environments live: $XDG_CACHE_HOME/sagelab/envs, by default ~/.cache/sagelab/envs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sagelab" / "envs"


def ensure(step: StepLog, key: str, what: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The environment published under `key`: reused when built before, else made now by `build(folder)`.

    `build` fills the folder and returns what to record in its manifest ("notes" are logged
    again on every reuse). Returns the published link and the manifest.
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    link = root / key
    with locked(root / f"{key}.lock"):
        if (link / MANIFEST).is_file():
            try:
                found = manifest(link)
            except ExecutionError as exc:
                step.log(f"{exc}; building it again")
            else:
                step.log(f"reusing environment {link} ({what}, hash {key})")
                for note in found.get("notes", []):
                    step.log(note)
                return link, found
        for stale in [link, *root.glob(f"{key}-*")]:  # a link whose folder is gone, builds a crash left
            if stale.is_symlink():
                stale.unlink()
            elif stale.exists():
                shutil.rmtree(stale, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
        try:
            record = {"built_for": what, **build(folder)}
            (folder / MANIFEST).write_text(json.dumps(record))
            staged = root / f"{key}.new"
            staged.unlink(missing_ok=True)
            staged.symlink_to(folder.name)
            os.replace(staged, link)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return link, record


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
            found.append(_describe(key, manifest(cache_dir() / key)))
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
    with locked(cache_dir() / f"{matches[0]}.lock"):  # never while a step builds it
        try:
            try:
                found = manifest(link)
            except ExecutionError:
                found = {}  # a corrupt manifest is one more reason to delete it
            env = _describe(matches[0], found)
            link.unlink()
        except FileNotFoundError:
            raise ExecutionError(f"environment {matches[0]} was deleted meanwhile (by another sagelab envs delete, or a "
                                 "step rebuilding it); sagelab envs lists what is left") from None  # fmt: skip
        shutil.rmtree(env.path, ignore_errors=True)
    return env


def manifest(link: Path) -> dict[str, Any]:
    """A built environment's manifest (FileNotFoundError when it is gone).

    Raises:
        ExecutionError: it is not valid JSON.
    """
    path = link / MANIFEST
    try:
        found = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExecutionError(f"environment {link.name}: its manifest {path} is corrupt ({exc}); delete the environment "
                             f"with: sagelab envs delete {link.name} (a step that needs it builds it again)") from None  # fmt: skip
    if not isinstance(found, dict):
        raise ExecutionError(f"environment {link.name}: its manifest {path} is not a JSON object; delete the environment "
                             f"with: sagelab envs delete {link.name}")  # fmt: skip
    return found


def _describe(key: str, found: Mapping[str, Any]) -> CachedEnvironment:
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
    return CachedEnvironment(key, folder, str(found.get("built_for", "")), str(found.get("python", "")), created, size)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield
