"""Moving data between the object store and a job folder, as SageMaker's agents do."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sagelab.containers.contract import job_path
from sagelab.containers.environments import StepLog
from sagelab.engines.local.faults import crash_point
from sagelab.engines.local.job import Job, StepFailed
from sagelab.errors import StoreError
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


def download_input(job: Job, uri: str, container_path: str, data_type: str, name: str) -> None:
    """Copy the objects under `uri` to the container path; a step's inputs are copies."""
    if data_type != "S3Prefix":
        raise StepFailed(f"input {name}: S3DataType {data_type} does not run locally yet; use S3Prefix")
    try:
        target = job_path(job.root, container_path)
    except ValueError:
        raise StepFailed(f"input {name}: LocalPath {container_path} must be under /opt/ml to run locally") from None
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
    job.log(f"{progress.done(len(copied))} from {uri} at {container_path}")


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
