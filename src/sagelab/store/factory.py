"""`open_store`: the object store a project's settings name."""

from __future__ import annotations

from sagelab.config import Settings
from sagelab.store.base import ObjectStore
from sagelab.store.local import LocalStore
from sagelab.store.s3 import S3Store


def open_store(settings: Settings) -> ObjectStore:
    """S3 for the SageMaker engine or a configured S3 endpoint, else the project's local folder.

    Making an `S3Store` neither imports boto3 nor makes a request; both wait for the first use.

    Example:
        >>> from sagelab.config import load_settings
        >>> open_store(load_settings(tmp_path))  # doctest: +SKIP
        LocalStore('.../.sagelab/s3')
    """
    if settings.engine == "sagemaker" or settings.s3_endpoint_url:
        return S3Store(settings.region, settings.s3_endpoint_url, settings.aws_profile)
    return LocalStore(settings.store)
