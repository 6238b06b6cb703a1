"""The commands' SageMaker side, for profiles with `engine = "sagemaker"`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.config import Settings


@contextmanager
def announced_upload(uri: str, size: int) -> Iterator[Callable[[int], None] | None]:
    """A line per upload, and a progress bar for a large one."""
    from sagelab.cli.progress import transfer_bar

    print(f"upload: {uri} ({size / 1e6:,.1f} MB)", file=sys.stderr, flush=True)
    with transfer_bar(f"upload {uri.rsplit('/', 1)[-1]}", size) as sent:
        yield sent


def models(settings: Settings, action: str, reference: str, reason: str | None = None, as_json: bool = False) -> None:
    from sagelab.engines.sagemaker import ModelRegistry

    registry = ModelRegistry(settings)
    if as_json and action in ("groups", "list"):
        print(json.dumps(registry.groups() if action == "groups" else registry.versions(reference), indent=2, default=str))
    elif action == "groups":
        for group in registry.groups():
            print(group.get("ModelPackageGroupName"))
    elif action == "list":
        for package in registry.versions(reference):
            print(f"{package.get('ModelPackageVersion')}  {package.get('ModelApprovalStatus')}  {package.get('ModelPackageArn')}")
    elif action == "show":
        print(json.dumps(registry.describe(reference), indent=2, default=str))
    else:
        described = registry.approve(reference, reason) if action == "approve" else registry.reject(reference, reason)
        print(f"{described.get('ModelPackageArn')} is {described.get('ModelApprovalStatus')}")


def deploy(settings: Settings, reference: str, name: str, instance: str) -> None:
    from sagelab.engines.sagemaker import Endpoints

    deployment = Endpoints(settings).deploy(reference, name, instance_type=instance, progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(f"endpoint {deployment.endpoint} is {deployment.status} ({deployment.model_package_arn})")


def invoke(settings: Settings, name: str, body: bytes, content_type: str, accept: str | None) -> Any:
    from sagelab.engines.sagemaker import Endpoints

    return Endpoints(settings).invoke(name, body, content_type, accept)



