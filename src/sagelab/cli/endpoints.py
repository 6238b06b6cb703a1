"""`sagelab serve`, `deploy`, `invoke` and `endpoints`: models served on this machine."""

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.serving.endpoints import Hosting

endpoints_app = typer.Typer(rich_markup_mode=None, help="Endpoints, local or on SageMaker: list them, or delete one.", invoke_without_command=True)


def _hosting() -> "Hosting":
    from sagelab.config import load_settings
    from sagelab.serving.endpoints import Hosting

    settings = load_settings()
    return Hosting(settings.state_dir, settings.region, settings.account)


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
) -> None:
    """Start a named endpoint for a registered model, or move an endpoint to it without downtime."""
    from sagelab.config import load_settings
    from sagelab.engines.local.deploy import deploy_package

    settings = load_settings(profile=profile)
    if settings.engine == "sagemaker":
        from sagelab.cli import aws

        return aws.deploy(settings, model, name, instance)
    package, info = deploy_package(settings, model, name, port)
    print(f"endpoint {info.name} serves {package.ref} at {info.url} ({info.status})")


def invoke(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    body: Annotated[str, typer.Option(help="The request body, or @FILE to send a file's bytes.")],
    content_type: Annotated[str, typer.Option("--content-type", help="The body's content type.")] = "text/csv",
    accept: Annotated[Optional[str], typer.Option(help="The content type to ask for.")] = None,
    profile: Annotated[str, typer.Option(help="A profile; one with engine = \"sagemaker\" calls sagemaker-runtime.")] = "local",
    target_container: Annotated[Optional[str], typer.Option(help="The container that answers, in a Direct-mode pipeline model.")] = None,
) -> None:
    """Send one request to an endpoint and print the response body."""
    from sagelab.config import load_settings
    from sagelab.errors import EndpointError

    if body.startswith("@"):
        try:
            data = Path(body[1:]).read_bytes()
        except OSError as exc:
            raise EndpointError(f"cannot read {body[1:]}: {exc.strerror}") from None
    else:
        data = body.encode()
    settings = load_settings(profile=profile)
    if settings.engine == "sagemaker":
        from sagelab.cli import aws

        if target_container:
            raise typer.BadParameter("--target-container is for local endpoints; sagelab's SageMaker invoke sends none")
        result = aws.invoke(settings, name, data, content_type, accept)
    else:
        result = _hosting().invoke(name, data, content_type, accept, target_container=target_container)
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
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    if settings.engine == "sagemaker":
        from sagelab.engines.sagemaker import SageMakerEngine

        listed = SageMakerEngine(settings).endpoints.overview()
        if as_json:
            return print_json([{"name": e["EndpointName"], "status": e["EndpointStatus"], "created": e.get("CreationTime"),
                                 "endpoint_config": e["EndpointConfigName"], "instances": e["Instances"]} for e in listed])  # fmt: skip
        table = Table("Endpoint", "Status", "Instances", "Created")
        for endpoint in listed:
            table.add_row(endpoint["EndpointName"], endpoint["EndpointStatus"], ", ".join(endpoint["Instances"]), str(endpoint.get("CreationTime", "")))
        table.print()
        return None
    local = _hosting().endpoints() if (settings.state_dir / "hosting.db").is_file() else []  # listing creates no file
    if as_json:
        return print_json([{"name": info.name, "status": info.status, "url": info.url if info.port else None, "model": info.model,
                             "started": info.started} for info in local])  # fmt: skip
    table = Table("Endpoint", "Status", "URL", "Model", "Uptime")
    for info in local:
        uptime = f"{time.time() - info.started:.0f}s" if info.started and info.status == "InService" else ""
        table.add_row(info.name, info.status, info.url if info.port else "", info.model, uptime)
    table.print()



@endpoints_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    profile: Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" deletes a SageMaker endpoint.")] = "local",
    yes: Annotated[bool, typer.Option("--yes", help="Delete a SageMaker endpoint without asking.")] = False,
) -> None:
    """Stop an endpoint: a local one (requests in flight finish, its port is freed), or a SageMaker one with --profile."""
    from sagelab.config import load_settings
    from sagelab.errors import EndpointError

    settings = load_settings(profile=profile)
    if settings.engine != "sagemaker":
        _hosting().delete(name)
        print(f"endpoint {name} deleted")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise EndpointError(f"deleting SageMaker endpoint {name} needs a yes: add --yes")
        typer.confirm(f"Delete SageMaker endpoint {name} (profile {profile})? It stops serving at once", abort=True)
    from sagelab.engines.sagemaker import SageMakerEngine

    SageMakerEngine(settings).endpoints.delete(name)
    print(f"SageMaker endpoint {name} is being deleted (its models and endpoint configs stay)")
