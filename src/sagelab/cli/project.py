"""`sagelab init` and `sagelab docs build|serve`: new projects from the template, and their docs site."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.docs import Execution

DEFAULT_PIPELINE = "production/pipeline.py:pipeline"

docs_app = typer.Typer(rich_markup_mode=None, help="The project's docs site: pages for the pipeline and its steps, built with mkdocs.", no_args_is_help=True)

PipelineSpec = Annotated[
    Optional[str],
    typer.Argument(help=f"module:attribute or file.py:attribute naming the pipeline (default: {DEFAULT_PIPELINE} in the project)."),
]


def init(
    name: Annotated[Optional[str], typer.Argument(help="The new project's folder; its name is the project's name.")] = None,
    data: Annotated[Optional[list[str]], typer.Option("--data", "-d", help="Answer a template question as KEY=VALUE; repeatable.")] = None,
    defaults: Annotated[bool, typer.Option("--defaults", help="Take the default answer to every question not given with --data.")] = False,
    update: Annotated[bool, typer.Option("--update", help="Bring the project in NAME (default: here) up to this sagelab's template.")] = False,
) -> None:
    """Create a project from sagelab's template: package, notebook, pipeline, tests, CI and docs.

    Questions are asked on the terminal unless --defaults is given (or there is no terminal).
    With --update, apply what changed in the template since the project was made; commit first.
    """
    from sagelab.templates import create_project, parse_data, update_project

    answers = parse_data(data or [])
    if update:
        version = update_project(Path(name or "."), answers, defaults=defaults)
        print(f"updated {Path(name or '.').absolute()} to template {version}; review with git diff", file=sys.stderr)
        return
    if name is None:
        raise typer.BadParameter("name the new project's folder, e.g. sagelab init churn-model", param_hint="NAME")
    version = create_project(Path(name), answers, defaults=defaults)
    print(f"created {name} from template {version}", file=sys.stderr)


@docs_app.command("build")
def build(
    pipeline: PipelineSpec = None,
    execution: Annotated[Optional[str], typer.Option(help="Colour the steps by how they went in this execution (id, prefix or 'latest').")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on any mkdocs warning (mkdocs build --strict).")] = True,
) -> None:
    """Write docs/pipeline/ (the graph, the parameters, a page per step) and build the site with mkdocs."""
    from sagelab.docs import build_site

    root = _write_pages(pipeline, execution)
    site = build_site(root, strict=strict)
    print(f"built {site}", file=sys.stderr)


@docs_app.command("serve")
def serve(
    pipeline: PipelineSpec = None,
    address: Annotated[str, typer.Option("--address", "-a", help="Where to serve; keep it on 127.0.0.1 unless you mean to share.")] = "127.0.0.1:8000",
) -> None:
    """Write the pipeline pages, then serve the site with live reload (mkdocs serve)."""
    from sagelab.docs import serve_site

    serve_site(_write_pages(pipeline, None), address)


def _write_pages(pipeline: Optional[str], execution: Optional[str]) -> Path:
    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings
    from sagelab.docs import write_pipeline_docs

    settings = load_settings()
    spec = pipeline or f"{settings.root / DEFAULT_PIPELINE.partition(':')[0]}:{DEFAULT_PIPELINE.partition(':')[2]}"
    loaded = load_pipeline(spec, settings)
    shown = _execution(settings.state_dir, execution) if execution else None
    pages = write_pipeline_docs(loaded, settings.root / "docs", pipeline or DEFAULT_PIPELINE, shown)
    print(f"wrote {len(pages)} files to {settings.root / 'docs' / 'pipeline'}", file=sys.stderr)
    return settings.root


def _execution(state_dir: Path, reference: str) -> "Execution":
    from sagelab.docs import Execution
    from sagelab.engines.local import Records

    records = Records(state_dir / "sagelab.db")
    record = records.execution(reference)
    return Execution(record.id, record.status, {step.name: step.status for step in records.steps(record.id)})
