"""Moving data between the object store and a job folder, as SageMaker's agents do."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from sagelab.containers import sandbox
from sagelab.containers.contract import job_path
from sagelab.containers.drivers import MODEL_TRAINER_CODE, MODEL_TRAINER_DRIVERS
from sagelab.containers.environments import StepLog
from sagelab.engines.local.faults import crash_point
from sagelab.engines.local.job import Job, StepFailed, remove_job_folder
from sagelab.errors import StoreError
from sagelab.store import LocalStore
from sagelab.store.base import Progress


class TransferLog:
    """A transfer's progress in the step log: a line every few seconds while it lasts, and one when done.

    The live view shows each step's last log line, so a long download or upload is never silent.
    The store calls it with the bytes moved, from several threads at once (S3's parallel transfers).
    """

    EVERY = 5.0

    def __init__(self, log: StepLog, label: str) -> None:
        self.log, self.label = log, label
        self.moved = 0
        self.started = self.said = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, moved: int) -> None:
        with self._lock:
            self.moved += moved
            now = time.monotonic()
            if now - self.said < self.EVERY:
                return
            self.said = now
        self.log.log(f"{self.label}: {self.moved / 1e6:,.1f} MB so far ({now - self.started:.0f} s)")

    def done(self, objects: int) -> str:
        return f"{self.label}: {objects} object(s), {self.moved / 1e6:,.1f} MB in {time.monotonic() - self.started:.1f} s"


# Inputs sagelab itself reads from the job folder before the step starts (requirements.txt, driver
# scripts): always copied, as a copy-on-write mount shows its files to the step's process alone.
_READ_BY_SAGELAB = frozenset({MODEL_TRAINER_CODE, MODEL_TRAINER_DRIVERS})
MOUNT_FROM_BYTES = 8 * 1024 * 1024  # smaller inputs are copied: a copy of a few files costs less than a mount


def download_input(job: Job, uri: str, container_path: str, data_type: str, name: str) -> None:
    """Give the step the objects under `uri` at the container path, as files of its own: the step may
    change them, never the store's objects. A large input of the local store is shown copy-on-write
    where the sandbox allows (no byte copied); anything else is copied (a reflink where the
    filesystem has them, else a copy inside the kernel)."""
    if data_type not in ("S3Prefix", "ManifestFile"):
        raise StepFailed(f"input {name}: S3DataType {data_type} does not run locally yet; use S3Prefix or ManifestFile")
    try:
        target = job_path(job.root, container_path)
    except ValueError:
        raise StepFailed(f"input {name}: LocalPath {container_path} must be under /opt/ml to run locally") from None
    if data_type == "ManifestFile":
        _download_manifest(job, uri, target, name)
        job.copied_inputs.append(target)
        job.log(f"input {name}: the objects {uri} lists, at {container_path}")
        return
    mounted = _mountable(job, uri, name)
    if mounted is not None:
        folder, count, size = mounted
        target.mkdir(parents=True, exist_ok=True)
        job.mounted_inputs.append((folder, container_path))
        job.log(f"input {name}: {count} object(s), {size / 1e6:,.1f} MB from {uri} at {container_path}, shown copy-on-write (nothing copied)")
        return
    progress = TransferLog(job, f"input {name}")
    try:
        copied = job.store.download_prefix(uri, target, _with_crash_point(progress, "staging", job))
    except StoreError as exc:
        raise StepFailed(f"input {name}: {exc}") from None
    if not copied:
        raise StepFailed(
            f"ClientError: input {name}: no objects exist under {uri}; upload the data first, "
            f"for example `sagelab s3 cp ./data {uri} --recursive`"
        )
    job.copied_inputs.append(target)
    job.log(f"{progress.done(len(copied))} from {uri} at {container_path}")


def discard_inputs(job: Job) -> None:
    """Drop a succeeded job's copies of its inputs and what it wrote over its mounted ones, as SageMaker drops the
    instance's volume: the job folder keeps its outputs' record and config, and no second copy of any data."""
    for folder in [*job.copied_inputs, job.companion("overlay")]:
        remove_job_folder(folder)


def upload_output(job: Job, folder: Path, uri: str) -> None:
    """Upload every file the step left in `folder` to `uri`."""
    progress = TransferLog(job, "output")
    try:
        uploaded = job.store.publish_dir(folder, uri, _with_crash_point(progress, "publishing", job)) if folder.is_dir() else []
    except StoreError as exc:
        raise StepFailed(f"cannot upload to {uri}: {exc}") from None
    except OSError as exc:
        raise StepFailed(f"cannot upload to {uri}: {exc.strerror}", fault="SageMaker.RESOURCE_LIMIT") from None
    job.log(f"{progress.done(len(uploaded))} to {uri}")


def _with_crash_point(progress: TransferLog, point: str, job: Job) -> Progress:
    """`progress`, with a fault-injection kill point after the first file moved."""

    def moved(count: int) -> None:
        progress(count)
        crash_point(point, job.step.name)

    return moved


def _mountable(job: Job, uri: str, name: str) -> tuple[Path, int, int] | None:
    """The store folder an input can be shown from copy-on-write, with its object count and bytes; None to copy it."""
    if not isinstance(job.store, LocalStore) or name in _READ_BY_SAGELAB or not sandbox.mounts_inputs(sandbox.current().mode):
        return None
    try:
        folder = job.store.path_of(uri.rstrip("/"))
    except StoreError:
        return None
    if not folder.is_dir() or folder.is_symlink() or set(str(folder)) & {",", ":", "\\"}:  # overlay options cannot name it
        return None
    count = size = 0
    for parent, _, files in os.walk(folder):
        for file in files:
            count, size = count + 1, size + os.stat(os.path.join(parent, file)).st_size
    return (folder, count, size) if size >= MOUNT_FROM_BYTES else None


def _download_manifest(job: Job, uri: str, target: Path, name: str) -> None:
    """The objects a manifest file lists, each at its key relative to the manifest's prefix, as SageMaker stages them."""
    for source, relative in manifest_objects(job, uri, name):
        try:
            job.store.download_file(source, target.joinpath(*relative.split("/")))
        except StoreError as exc:
            raise StepFailed(f"ClientError: input {name}: {source}, listed in the manifest {uri}: {exc}") from None


def manifest_objects(job: Job, uri: str, name: str) -> list[tuple[str, str]]:
    """The objects a manifest file lists, in its order: (their URI, their key relative to the manifest's prefix).

    A manifest is a JSON list: `{"prefix": "s3://bucket/prefix/"}`, then keys relative to that prefix.
    """
    try:
        manifest = json.loads(job.store.get_bytes(uri))
    except StoreError as exc:
        raise StepFailed(f"ClientError: input {name}: cannot read the manifest {uri}: {exc}") from None
    except ValueError as exc:
        raise StepFailed(f"ClientError: input {name}: the manifest {uri} is not JSON ({exc})") from None
    shape = '[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]'
    if not (isinstance(manifest, list) and manifest and isinstance(manifest[0], dict) and isinstance(manifest[0].get("prefix"), str)):
        raise StepFailed(f"ClientError: input {name}: the manifest {uri} must be a JSON list {shape}")
    prefix = manifest[0]["prefix"]
    listed = []
    for index, key in enumerate(manifest[1:], 1):
        parts = key.split("/") if isinstance(key, str) else [""]
        if any(part in ("", ".", "..") for part in parts):
            raise StepFailed(f"ClientError: input {name}: item {index} of the manifest {uri} is not a relative key: {key!r}; the manifest is {shape}")
        listed.append((f"{prefix}{key}", key))
    return listed
