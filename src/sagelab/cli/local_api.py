"""`sagelab api` and `sagelab env`: SageMaker's API served on this machine, and the shell line that points AWS clients at it."""

import sys
from typing import Annotated, Any, Optional

import typer

Profile = Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles] that runs locally.")]


def api(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8765,
    profile: Profile = "local",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print a line per request.")] = False,
) -> None:
    """Serve SageMaker's API (pipelines, jobs, the model registry, endpoints, the runtime, job logs) and S3 on 127.0.0.1, until Ctrl-C."""
    from sagelab.awsapi import ApiServer, request_line
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)

    def ready(endpoint: str) -> None:
        chosen = f" --port {endpoint.rsplit(':', 1)[1]}" if endpoint.rsplit(":", 1)[1] != "8765" else ""
        print(f"sagelab's local SageMaker API for {settings.root} at {endpoint} (region {settings.region}); Ctrl-C stops it", flush=True)
        print(f'point boto3, the AWS CLI and the SageMaker SDK at it:  eval "$(sagelab env{chosen})"', flush=True)

    def said(service: str, operation: str, status: int, body: dict[str, Any]) -> None:
        print(request_line(operation, status, body), flush=True)

    ApiServer(settings, port, observers=() if quiet else (said,)).serve(ready)


def env(
    port: Annotated[Optional[int], typer.Option(help="The API's port (default: the running `sagelab api`'s, else 8765).")] = None,
    profile: Profile = "local",
    unset: Annotated[bool, typer.Option("--unset", help="Print the line that removes the variables again.")] = False,
) -> None:
    """Print the line that points boto3, the AWS CLI and the SageMaker SDK at `sagelab api`: eval "$(sagelab env)"."""
    from sagelab.awsapi import exports, unsets
    from sagelab.config import load_settings

    sys.stdout.write((unsets() if unset else exports(load_settings(profile=profile), port)) + "\n")
