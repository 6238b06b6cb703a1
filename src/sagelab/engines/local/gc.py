"""`collect_garbage`: remove what old executions left behind, keeping what is still referenced.

An execution older than the cut-off (and not running) loses its job folders, its logs, its
records, and the objects its steps wrote — except objects the model registry refers to
(model data, inference code, metrics) and objects a kept execution refers to. Staging
files that a killed run left in the store go too.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field

from sagelab.config import Settings
from sagelab.engines.local.deploy import open_registry
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
    objects: int = 0
    kept_objects: int = 0
    folders: int = 0


def collect_garbage(settings: Settings, older_than: float, dry_run: bool = False) -> Collected:
    records = Records(settings.state_dir / "sagelab.db")
    records.mark_interrupted()
    store = LocalStore(settings.store)
    cutoff = time.time() - older_than
    executions = records.executions(limit=1_000_000)
    old = [e for e in executions if e.started < cutoff and e.status != "Executing"]
    kept_ids = {e.id for e in executions} - {e.id for e in old}
    referenced = _registry_references(settings)
    for execution_id in kept_ids:
        referenced.update(uri for step in records.steps(execution_id) for uri in step.outputs)
    collected = Collected()
    for execution in old:
        for step in records.steps(execution.id):
            for uri in step.outputs:
                if not uri.startswith("s3://"):
                    continue
                if any(ref.startswith(uri) or uri.startswith(ref) for ref in referenced):
                    collected.kept_objects += 1
                    continue
                try:
                    objects = list(store.list(uri))
                except StoreError:
                    continue
                collected.objects += len(objects)
                if not dry_run:
                    for info in objects:
                        store.delete(info.uri)
        folders = [*settings.state_dir.joinpath("jobs").glob(f"pipelines-{execution.id}-*"), settings.state_dir / "executions" / execution.id]
        for folder in (f for f in folders if f.exists()):
            collected.folders += 1
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
        if not dry_run:
            records.delete_execution(execution.id)
        collected.executions.append(execution.id)
    for leftover in (settings.store / ".tmp", settings.store / ".multipart"):
        for path in leftover.glob("*") if leftover.is_dir() else []:
            if path.stat().st_mtime < time.time() - 3600 and not dry_run:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    records.close()
    return collected


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
