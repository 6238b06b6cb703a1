"""The commands' SageMaker side, for profiles with `engine = "sagemaker"`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.definition.loader import Loaded
    from sagelab.engines.sagemaker import ExecutionSnapshot, SageMakerEngine


@contextmanager
def _announced_upload(uri: str, size: int) -> Iterator[Callable[[int], None] | None]:
    """A line per upload, and a progress bar for a large one."""
    from sagelab.cli.progress import transfer_bar

    print(f"upload: {uri} ({size / 1e6:,.1f} MB)", file=sys.stderr, flush=True)
    with transfer_bar(f"upload {uri.rsplit('/', 1)[-1]}", size) as sent:
        yield sent


def engine(settings: Settings) -> SageMakerEngine:
    from sagelab.engines.sagemaker import SageMakerEngine

    return SageMakerEngine(settings)


def run(settings: Settings, loaded: Loaded, parameters: dict[str, str]) -> str:
    """Upload, upsert, start and follow an execution on SageMaker; returns its final status."""
    from sagelab.api.backends import follow
    from sagelab.cli.view import run_view

    aws = engine(settings)
    definition = json.dumps(loaded.definition.raw)  # the very JSON the local engine runs
    arn = aws.submit(definition, loaded.name, parameters, loaded.artifacts, progress=_announced_upload)
    print(f"started {arn}", flush=True)
    try:
        with run_view(settings) as listener:  # the same view as a local run
            status = aws.watch(arn, follow(listener, loaded.name))
    except KeyboardInterrupt:
        if sys.stdin.isatty() and typer.confirm(f"\nStop execution {arn.rsplit('/', 1)[-1]} on SageMaker?", default=False):
            aws.stop(arn)
            print("stopping; `sagelab status` shows when it has stopped")
        else:
            print(f"\nthe execution goes on; stop it with: sagelab stop {arn} --profile {settings.profile}")
        return "Stopped"
    return status


def _print_changes(seen: dict[str, str]) -> Any:
    def listener(snapshot: ExecutionSnapshot) -> None:
        for step in snapshot.steps:
            if seen.get(step.name) != step.status:
                seen[step.name] = step.status
                print(f"{step.name:<30} {step.status}", flush=True)
                if step.failure_reason:
                    print(f"    {step.failure_reason}", flush=True)

    return listener


def logs(settings: Settings, reference: str, step: str | None) -> None:
    from sagelab.errors import ExecutionError

    if step is None:
        raise ExecutionError("on SageMaker, name the step whose job log to read: sagelab logs EXECUTION STEP --profile ...")
    aws = engine(settings)
    for line in aws.logs(aws.find_execution(reference), step):
        print(line)


def stop(settings: Settings, reference: str) -> None:
    aws = engine(settings)
    arn = aws.find_execution(reference)
    aws.stop(arn)
    print(f"stopping {arn}")


def retry(settings: Settings, reference: str) -> str:
    aws = engine(settings)
    arn = aws.retry(aws.find_execution(reference))
    print(f"retrying {arn}", flush=True)
    return aws.watch(arn, _print_changes({}))


def models(settings: Settings, action: str, reference: str, reason: str | None = None) -> None:
    from sagelab.engines.sagemaker import ModelRegistry

    registry = ModelRegistry(settings)
    if action == "groups":
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



