"""boto3 clients for one sagelab profile, and the one place AWS calls are made and their errors translated.

boto3 is an optional dependency (`pip install sagelab[aws]`): it is imported when the first
client is built, never when this package is imported.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.engines.sagemaker.aws_errors import Call, translate
from sagelab.errors import AwsError, ConfigError

SERVICES = ("sagemaker", "s3", "logs", "sagemaker-runtime")


def token() -> str:
    """A fresh ClientRequestToken: botocore's standard retries resend the same one, so a retry is idempotent."""
    return str(uuid.uuid4())


def clean(response: dict[str, Any]) -> dict[str, Any]:
    """A response without botocore's ResponseMetadata."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


class AwsClients:
    """The boto3 session and clients (sagemaker, s3, logs, sagemaker-runtime) of one profile.

    Credentials come only from boto3's chain: `boto3.Session(profile_name=settings.aws_profile,
    region_name=settings.region)`, or the `session` given. `endpoint_url` points every client at
    another endpoint (tests use moto); S3 otherwise uses `settings.s3_endpoint_url` when set.
    Every client retries in botocore's "standard" mode.
    """

    def __init__(self, settings: Settings, session: Any | None = None, *, endpoint_url: str | None = None) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self._session = session
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        if self._session is None:
            try:
                import boto3
            except ModuleNotFoundError:
                raise ConfigError("running on SageMaker needs boto3: pip install 'sagelab[aws]'") from None
            with self.translating("sagemaker", "Session", f"AWS profile {self.settings.aws_profile}"):
                self._session = boto3.Session(profile_name=self.settings.aws_profile, region_name=self.settings.region)
        return self._session

    def client(self, service: str, region: str | None = None) -> Any:
        """The boto3 client for `service` (in `region`, default the profile's: the Price List API is served in three), built once."""
        key = f"{service}@{region}" if region else service
        if key not in self._clients:
            from botocore.config import Config

            config = Config(retries={"mode": "standard"}, user_agent_extra="sagelab")
            url = self.endpoint_url or (self.settings.s3_endpoint_url if service == "s3" else None)
            with self.translating(service, "Session", service):
                self._clients[key] = self.session.client(service, region_name=region or self.settings.region, endpoint_url=url, config=config)
        return self._clients[key]

    def call(self, service: str, operation: str, resource: str | None = None, **params: Any) -> dict[str, Any]:
        """Call `operation` (CreatePipeline, ...) with `params`; an AWS failure raises `AwsError`."""
        from botocore import xform_name

        method = getattr(self.client(service), xform_name(operation))
        with self.translating(service, operation, resource):
            response: dict[str, Any] = method(**params)
        return response

    def pages(self, service: str, operation: str, resource: str | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paginated `operation`, through botocore's paginator."""
        from botocore import xform_name

        paginator = self.client(service).get_paginator(xform_name(operation))
        with self.translating(service, operation, resource):
            iterator = iter(paginator.paginate(**params))
        while True:
            with self.translating(service, operation, resource):
                page = next(iterator, None)
            if page is None:
                return
            yield page

    def upload_file(self, path: Path, bucket: str, key: str, progress: Callable[[int], None] | None = None) -> None:
        """Upload a file to s3://bucket/key (multipart when large, as boto3's transfer manager does); `progress` gets the bytes sent."""
        client = self.client("s3")
        with self.translating("s3", "PutObject", f"s3://{bucket}/{key}"):
            client.upload_file(str(path), bucket, key, Callback=progress)

    def _emulator(self, service: str) -> str | None:
        """The endpoint `service`'s client talks to when it is not AWS (an emulator, a proxy), else None."""
        client = self._clients.get(service)
        url = str(client.meta.endpoint_url) if client is not None else ""
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return url if url and not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")) else None

    @contextmanager
    def translating(self, service: str, operation: str, resource: str | None = None) -> Iterator[None]:
        """Turn botocore's exceptions raised inside into `AwsError`, naming the call and the resource."""
        try:
            yield
        except AwsError:
            raise
        except Exception as exc:
            call = Call(service, operation, resource, self.settings.aws_profile, self.settings.region, self.settings.role_arn, self._emulator(service))
            error = translate(exc, call)
            if error is None:
                raise
            raise error from exc
