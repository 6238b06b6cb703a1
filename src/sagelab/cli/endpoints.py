"""`sagelab serve`, `deploy`, `invoke` and `endpoints`: models served on this machine."""

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.serving.endpoints import Hosting

endpoints_app = typer.Typer(rich_markup_mode=None, help="Local endpoints: list them, or delete one.", invoke_without_command=True)


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
def endpoints(context: typer.Context) -> None:
    """List local endpoints: status, port, model version, uptime."""
    if context.invoked_subcommand is not None:
        return
    from sagelab.cli.output import Table
    from sagelab.config import load_settings

    table = Table("Endpoint", "Status", "URL", "Model", "Uptime")

    listed = _hosting().endpoints() if (load_settings().state_dir / "hosting.db").is_file() else []  # listing creates no file
    for info in listed:
        uptime = f"{time.time() - info.started:.0f}s" if info.started and info.status == "InService" else ""
        table.add_row(info.name, info.status, info.url if info.port else "", info.model, uptime)
    table.print()


@endpoints_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The endpoint's name.")]) -> None:
    """Stop an endpoint (requests in flight finish) and free its port."""
    _hosting().delete(name)
    print(f"endpoint {name} deleted")
