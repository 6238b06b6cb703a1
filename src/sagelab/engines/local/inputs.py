"""Moving data between the object store and a job folder, as SageMaker's agents do."""

from __future__ import annotations

from pathlib import Path

from sagelab.containers.contract import job_path
from sagelab.engines.local.job import Job, StepFailed
from sagelab.errors import StoreError


def download_input(job: Job, uri: str, container_path: str, data_type: str, name: str) -> None:
    """Copy the objects under `uri` to the container path; a step's inputs are copies."""
    if data_type != "S3Prefix":
        raise StepFailed(f"input {name}: S3DataType {data_type} does not run locally yet; use S3Prefix")
    try:
        target = job_path(job.root, container_path)
    except ValueError:
        raise StepFailed(f"input {name}: LocalPath {container_path} must be under /opt/ml to run locally") from None
    try:
        copied = job.store.download_prefix(uri, target)
    except StoreError as exc:
        raise StepFailed(f"input {name}: {exc}") from None
    if not copied:
        raise StepFailed(
            f"ClientError: input {name}: no objects exist under {uri}; upload the data first, "
            f"for example `sagelab s3 cp ./data {uri} --recursive`"
        )
    job.log(f"input {name}: {len(copied)} object(s) from {uri} at {container_path}")


def upload_output(job: Job, folder: Path, uri: str) -> None:
    """Upload every file the step left in `folder` to `uri`."""
    try:
        uploaded = job.store.publish_dir(folder, uri) if folder.is_dir() else []
    except StoreError as exc:
        raise StepFailed(f"cannot upload to {uri}: {exc}") from None
    except OSError as exc:
        raise StepFailed(f"cannot upload to {uri}: {exc.strerror}", fault="SageMaker.RESOURCE_LIMIT") from None
    job.log(f"output: {len(uploaded)} object(s) to {uri}")
