"""`sagelab ui`: the project's pipelines, executions, models and endpoints in a browser."""

from typing import Annotated

import typer


def ui(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8766,
    profile: Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles]: local runs, or SageMaker's.")] = "local",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser; only print the address.")] = False,
) -> None:
    """Serve the web UI on 127.0.0.1 until Ctrl-C: executions with their live graph and logs, comparisons, the model registry, endpoints."""
    from sagelab.config import load_settings
    from sagelab.errors import ConfigError

    settings = load_settings(profile=profile)
    try:
        from sagelab.ui.app import serve
    except ImportError as exc:
        raise ConfigError(f"`sagelab ui` needs {exc.name}: pip install 'sagelab[ui]'") from None

    def ready(url: str) -> None:
        print(f"sagelab ui for {settings.root} (profile {settings.profile}) at {url}; Ctrl-C stops it", flush=True)

    serve(settings, port, open_browser=not no_browser, ready=ready)
