"""`collect_garbage`: remove what old executions left behind, keeping what is still referenced.

An execution older than the cut-off (and not running) loses its job folders, its logs, its
records, and exactly the objects it wrote (recorded as it ran: its steps' outputs and what
scripts PUT through the S3 endpoint; never whatever shares a prefix with them) — except objects
the model registry refers to (model data, inference code, metrics) and objects a kept execution
wrote or names in its steps (inputs read by prefix included). Executions recorded before writes
were tracked keep their objects. gc holds the project's run lock: it refuses while a run is live,
and runs wait for it. Staging files that a killed run left in the store go too.
"""

from __future__ import annotations

import bisect
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.engines.local import locks
from sagelab.engines.local.deploy import open_registry
from sagelab.engines.local.job import remove_job_folder
from sagelab.engines.local.records import Records
from sagelab.errors import ExecutionError, StoreError
from sagelab.store import LocalStore

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """Seconds in an age such as 7d, 12h, 30m."""
    match = _AGE.match(text.strip())
    if not match:
        raise ExecutionError(f"{text!r} is not an age; write a number and a unit, e.g. 7d, 12h, 30m")
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass
class Collected:
    executions: list[str] = field(default_factory=list)
    objects: list[tuple[str, int]] = field(default_factory=list)  # URI and size of each object removed (or to remove)
    kept_objects: int = 0  # written by a removed execution, but still referenced
    unrecorded: list[str] = field(default_factory=list)  # executions from before writes were recorded: objects left alone
    folders: list[tuple[str, int]] = field(default_factory=list)  # job folders and logs, with their size


def collect_garbage(settings: Settings, older_than: float, dry_run: bool = False) -> Collected:
    """Remove executions older than `older_than` seconds and exactly the objects they wrote, unless still referenced.

    Raises:
        ExecutionError: a run is live in the project (gc waits for none).
    """
    with locks.collecting(settings.state_dir):
        records = Records(settings.state_dir / "sagelab.db")
        try:
            return _collect(settings, records, time.time() - older_than, dry_run)
        finally:
            records.close()


def _collect(settings: Settings, records: Records, cutoff: float, dry_run: bool) -> Collected:
    records.mark_interrupted()
    store = LocalStore(settings.store)
    executions = records.executions(limit=1_000_000)
    old = [e for e in executions if e.started < cutoff and e.status != "Executing"]
    kept_ids = {e.id for e in executions} - {e.id for e in old}
    referenced = _registry_references(settings)
    for execution_id in kept_ids:  # what kept executions read and wrote, by their records
        referenced.update(records.written(execution_id))
        for step in records.steps(execution_id):
            referenced.update(uri for uri in step.outputs if uri.startswith("s3://"))
            referenced.update(_uris(step.properties))
    still_used = _Referenced(referenced)
    collected = Collected()
    for execution in old:
        if not records.writes_recorded(execution.id):
            collected.unrecorded.append(execution.id)
        for uri in records.written(execution.id):
            if still_used(uri):
                collected.kept_objects += 1
                continue
            try:
                size = store.head(uri).size
            except StoreError:
                continue  # already gone
            collected.objects.append((uri, size))
            if not dry_run:
                store.delete(uri)
        folders = [*settings.state_dir.joinpath("jobs").glob(f"pipelines-{execution.id}-*"), settings.state_dir / "executions" / execution.id]
        for folder in (f for f in folders if f.exists()):
            collected.folders.append((str(folder), _size(folder)))
            if not dry_run:
                remove_job_folder(folder)
        if not dry_run:
            records.delete_execution(execution.id)
        collected.executions.append(execution.id)
    for leftover in (settings.store / ".tmp", settings.store / ".multipart"):
        for path in leftover.glob("*") if leftover.is_dir() else []:
            if path.stat().st_mtime < time.time() - 3600 and not dry_run:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return collected


class _Referenced:
    """Whether an object is still used: named exactly, or under a prefix a kept step reads (S3Prefix inputs match by string)."""

    def __init__(self, uris: set[str]) -> None:
        self.prefixes = sorted(uris)

    def __call__(self, uri: str) -> bool:
        # a prefix of `uri` (itself included) sorts at or before it; check the candidates sharing its bucket
        index = bisect.bisect_right(self.prefixes, uri)
        bucket = uri.split("/", 3)[2]
        while index > 0:
            index -= 1
            candidate = self.prefixes[index]
            if candidate in (f"s3://{bucket}", f"s3://{bucket}/"):
                return True
            if not candidate.startswith(f"s3://{bucket}/"):
                return False
            if uri.startswith(candidate):
                return True
        return False


def _uris(value: Any) -> Iterator[str]:
    """Every s3:// string in a step's recorded properties (its inputs, outputs, model data, code)."""
    if isinstance(value, str):
        if value.startswith("s3://"):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _uris(item)
    elif isinstance(value, list):
        for item in value:
            yield from _uris(item)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _registry_references(settings: Settings) -> set[str]:
    """Every S3 URI a registered model version points at."""
    registry = open_registry(settings)
    referenced: set[str] = set()
    try:
        for group in registry.groups():
            for package in registry.list(group["ModelPackageGroupName"]):
                for container in package.request.get("InferenceSpecification", {}).get("Containers", []):
                    referenced.add(str(container.get("ModelDataUrl", "")))
                    referenced.add(str((container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY", "")))
                for reports in package.request.get("ModelMetrics", {}).values():
                    referenced.update(str(r.get("S3Uri", "")) for r in (reports or {}).values())
    finally:
        registry.close()
    return {uri for uri in referenced if uri.startswith("s3://")}
