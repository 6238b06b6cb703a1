"""`sagelab serve`, `deploy`, `invoke` and `endpoints`: models served on this machine."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.api.hosting import Endpoints

endpoints_app = typer.Typer(rich_markup_mode=None, help="Endpoints, local or on SageMaker: list them, or delete one.", invoke_without_command=True)


def _endpoints(profile: str) -> "Endpoints":
    """The endpoints the profile's engine names: this machine's, or SageMaker's."""
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    return backend_for(load_settings(profile=profile)).endpoints


def serve(
    model: Annotated[str, typer.Argument(help="A model.tar.gz, a model folder, GROUP/VERSION, or GROUP (its latest Approved version).")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (default: SAGEMAKER_BIND_TO_PORT or 8080).")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Serve a model in the foreground with SageMaker's inference protocol (GET /ping, POST /invocations)."""
    import os

    from sagelab.config import load_settings
    from sagelab.engines.local.deploy import package_model
    from sagelab.serving import serve as run_server

    path = Path(model)
    if not path.exists():
        package, path, env = package_model(load_settings(), model)
        os.environ.update(env)
        print(f"serving {package.ref} ({package.status})", file=sys.stderr)
    port = port or int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    run_server(path, host="127.0.0.1", port=port, workers=workers)


def deploy(
    model: Annotated[str, typer.Argument(help="GROUP/VERSION, or GROUP for its latest Approved version.")],
    name: Annotated[str, typer.Option("--name", help="The endpoint's name.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 for a new endpoint (default: a free one).")] = 0,
    profile: Annotated[str, typer.Option(help="A profile; one with engine = \"sagemaker\" deploys on SageMaker.")] = "local",
    instance: Annotated[str, typer.Option(help="On SageMaker: the endpoint's instance type.")] = "ml.m5.large",
    capture: Annotated[Optional[float], typer.Option(help="Capture this percentage of requests and answers (DataCaptureConfig), "
                                                          "under s3://BUCKET/datacapture/NAME/AllTraffic/.")] = None,
) -> None:
    """Start a named endpoint for a registered model, or move an endpoint to it without downtime."""
    deployed = _endpoints(profile).deploy(model, name, port=port, instance_type=instance, capture=capture,
                                          progress=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    print(f"endpoint {deployed.endpoint} serves {deployed.model} at {deployed.where} ({deployed.status})")


def invoke(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    body: Annotated[str, typer.Option(help="The request body, or @FILE to send a file's bytes.")],
    content_type: Annotated[str, typer.Option("--content-type", help="The body's content type.")] = "text/csv",
    accept: Annotated[Optional[str], typer.Option(help="The content type to ask for.")] = None,
    profile: Annotated[str, typer.Option(help="A profile; one with engine = \"sagemaker\" calls sagemaker-runtime.")] = "local",
    target_container: Annotated[Optional[str], typer.Option(help="The container that answers, in a Direct-mode pipeline model.")] = None,
    target_variant: Annotated[Optional[str], typer.Option(help="The production variant that answers (else one drawn by weight).")] = None,
) -> None:
    """Send one request to an endpoint and print the response body."""
    from sagelab.errors import EndpointError

    if body.startswith("@"):
        try:
            data = Path(body[1:]).read_bytes()
        except OSError as exc:
            raise EndpointError(f"cannot read {body[1:]}: {exc.strerror}") from None
    else:
        data = body.encode()
    result = _endpoints(profile).invoke(name, data, content_type, accept, target_container=target_container, target_variant=target_variant)
    sys.stdout.buffer.write(result.body)
    if not result.body.endswith(b"\n"):
        sys.stdout.write("\n")
    if result.status >= 400:
        raise typer.Exit(1)


@endpoints_app.callback()
def endpoints(
    context: typer.Context,
    profile: Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" lists SageMaker's endpoints.")] = "local",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List endpoints: local ones (status, URL, model version, uptime), or SageMaker's with --profile (status, instances)."""
    if context.invoked_subcommand is not None:
        return
    from sagelab.cli.output import Table, print_json

    listed = _endpoints(profile).list()
    if as_json:
        return print_json([endpoint.to_dict() for endpoint in listed])
    table = Table("Endpoint", "Status", "Model", "Serves at", "Up since", "Restarts")
    for endpoint in listed:
        uptime = endpoint.uptime
        since = f"{uptime:.0f}s" if uptime is not None else (endpoint.created or "")
        restarts = f"{endpoint.restarts} (last {endpoint.last_restart})" if endpoint.restarts else ""
        table.add_row(endpoint.name, endpoint.status, endpoint.model or endpoint.endpoint_config or "", endpoint.url or ", ".join(endpoint.instances),
                      since, restarts)  # fmt: skip
    table.print()


@endpoints_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    profile: Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" deletes a SageMaker endpoint.")] = "local",
    yes: Annotated[bool, typer.Option("--yes", help="Delete a SageMaker endpoint without asking.")] = False,
) -> None:
    """Stop an endpoint: a local one (requests in flight finish, its port is freed), or a SageMaker one with --profile."""
    from sagelab.errors import EndpointError

    endpoints = _endpoints(profile)
    if endpoints.billed and not yes:
        if not sys.stdin.isatty():
            raise EndpointError(f"deleting SageMaker endpoint {name} needs a yes: add --yes")
        typer.confirm(f"Delete SageMaker endpoint {name} (profile {profile})? It stops serving at once", abort=True)
    print(endpoints.delete(name))
