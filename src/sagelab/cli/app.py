"""The top-level commands: validate, run, executions, status, logs."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from sagelab.api.backends import RunHooks
    from sagelab.config import Settings
    from sagelab.store import ObjectStore

from sagelab.cli.cost import cost, idle, instances_app
from sagelab.cli.endpoints import deploy, endpoints_app, invoke, serve
from sagelab.cli.envs import envs_app
from sagelab.cli.local_api import api, env
from sagelab.cli.ui import ui
from sagelab.cli.machine import doctor, setup
from sagelab.cli.models import models_app
from sagelab.cli.monitor import monitor_app
from sagelab.cli.params import parse_params
from sagelab.cli.project import docs_app, init
from sagelab.cli.s3 import s3_app

app = typer.Typer(
    name="sagelab",
    help="Run SageMaker pipelines locally in seconds, and the same definition on SageMaker.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    pretty_exceptions_enable=False,  # a traceback is for our bugs; never print locals
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs every --help ~60 ms of imports (markdown-it)
    context_settings={"max_content_width": 120},  # help uses a wide terminal's width (click stops at 80 otherwise)
)


def _print_version(value: bool) -> None:
    if value:
        import platform

        import sagelab

        print(f"sagelab {sagelab.__version__} (Python {platform.python_version()}, {sagelab.__file__.rsplit('/', 2)[0]})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print sagelab's version and exit.")] = False,
) -> None:
    """Run SageMaker pipelines locally in seconds, and the same definition on SageMaker."""


app.add_typer(s3_app, name="s3")
app.add_typer(models_app, name="models")

Pipeline = Annotated[str, typer.Argument(help="A definition JSON file, or module:attribute naming a pipeline object.")]
Profile = Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles] in pyproject.toml.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (its shape: docs/python-api.md).")]


@app.command()
def validate(pipeline: Pipeline, profile: Profile = "local") -> None:
    """Check a pipeline definition and report every problem with its JSON location, and imports the steps' images lack."""
    from sagelab.api.backends import backend_for
    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings
    from sagelab.engines.local import check
    from sagelab.engines.local.imports import missing_imports
    from sagelab.errors import DefinitionError, SagelabError

    settings = load_settings(profile=profile)
    definition, name, artifacts = load_pipeline(pipeline, settings)
    check(definition, pipeline)
    backend = backend_for(settings)

    def fetch(uri: str) -> "bytes | None":
        try:
            return backend.get_bytes(uri)
        except SagelabError:
            return None

    problems, notes = missing_imports(definition, artifacts, fetch)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if settings.engine == "sagemaker":  # instance types SageMaker would refuse for the use or the region, before upsert
        from sagelab.api.costs import unavailable_instances

        problems += unavailable_instances(definition, {}, settings.region)
    if problems:
        raise DefinitionError(problems, pipeline)
    steps = sum(1 for _ in definition.all_steps())
    print(f"{pipeline}: pipeline {name} is valid ({_count(steps, 'step')}, {_count(len(definition.parameters), 'parameter')})")


@app.command()
def run(
    pipeline: Pipeline,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Parameter value as Name=Value; repeatable.")] = None,
    profile: Profile = "local",
    name: Annotated[Optional[str], typer.Option(help="Pipeline name (default: the file or attribute name).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Steps run at once (default: the CPU count).")] = None,
    cache: Annotated[Optional[str], typer.Option(help="sagemaker (honour CacheConfig), content (reuse any step whose code and data are unchanged) or off.")] = None,
    from_step: Annotated[Optional[str], typer.Option("--from", help="Run this step and everything after it; reuse the rest from --reference.")] = None,
    only: Annotated[Optional[str], typer.Option(help="Run only these steps (comma-separated); reuse the rest from --reference.")] = None,
    reference: Annotated[Optional[str], typer.Option(help="The execution whose results --from/--only reuse (default: the latest Succeeded).")] = None,
    store: Annotated[Optional[str], typer.Option(help="local (the project's folder) or s3 (the profile's S3: steps run here on real data); default s3 when the profile sets s3_endpoint_url.")] = None,
    env: Annotated[Optional[str], typer.Option("--env", help="image (each step on its image's packages) or host (on sagelab's own); default: [tool.sagelab] environment.")] = None,
) -> None:
    """Run a pipeline locally, showing each step live, and print where its outputs and logs are."""
    from dataclasses import replace

    from sagelab.api.backends import backend_for
    from sagelab.api.loading import load_pipeline
    from sagelab.cli.view import run_view
    from sagelab.config import load_settings
    from sagelab.engines.local import Selection
    from sagelab.errors import ConfigError

    settings = load_settings(profile=profile)
    if concurrency:
        settings = replace(settings, concurrency=concurrency)
    if env is not None:
        if env not in ("image", "host"):
            raise ConfigError(f"--env must be image (each step on its image's packages) or host (on sagelab's own); got {env!r}")
        settings = replace(settings, environment=env)
    parameters = parse_params(param or [])
    backend = backend_for(settings, None if settings.engine == "sagemaker" else _store(settings, store or ("s3" if settings.s3_endpoint_url else "local")))
    loaded = load_pipeline(pipeline, settings, name=name, store=backend.store if settings.engine == "local" else None)
    selection = None
    if from_step or only or reference:
        selection = Selection(tuple(s for s in (only or "").split(",") if s), from_step, reference)
    with run_view(settings) as listener:
        execution = backend.start(loaded, parameters, cache=cache, listener=listener, select=selection, hooks=_sagemaker_hooks(settings))
    if settings.engine == "local" and execution.status == "Succeeded":
        _print_estimate(settings, execution.id)
    raise typer.Exit(_exit_code(execution.status))


def _print_estimate(settings: "Settings", execution_id: str) -> None:
    """The run summary's line on what the run would cost on SageMaker; a problem reading it never fails the run."""
    from sagelab.api.backends import LocalBackend
    from sagelab.api.costs import execution_cost
    from sagelab.cli.cost import estimate_line
    from sagelab.errors import SagelabError

    try:
        line = estimate_line(execution_cost(LocalBackend(settings).execution(execution_id), settings.region, local=True))
    except SagelabError as exc:
        line = f"On SageMaker: no estimate ({exc})"
    if line:
        print(line)


def _sagemaker_hooks(settings: "Settings") -> "RunHooks":
    """What the terminal shows around a run on SageMaker: each upload, the execution's ARN, and a question on Ctrl-C."""
    from sagelab.api.backends import RunHooks
    from sagelab.cli.progress import announced_upload

    def started(arn: str) -> None:
        print(f"started {arn}", flush=True)

    def interrupted(arn: str) -> bool:
        if sys.stdin.isatty() and typer.confirm(f"\nStop execution {arn.rsplit('/', 1)[-1]} on SageMaker?", default=False):
            print("stopping; `sagelab status` shows when it has stopped")
            return True
        print(f"\nthe execution goes on; stop it with: sagelab stop {arn} --profile {settings.profile}")
        return False

    return RunHooks(announced_upload, started, interrupted)


def _store(settings: "Settings", kind: str) -> "ObjectStore | None":
    """The store a local run uses: None for the project folder, or the profile's S3."""
    from sagelab.errors import ConfigError
    from sagelab.store import S3Store

    if kind == "local":
        return None
    if kind != "s3":
        raise ConfigError(f"--store must be local or s3; got {kind!r}")
    return S3Store(settings.region, settings.s3_endpoint_url, settings.aws_profile)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _exit_code(status: str) -> int:
    return 0 if status == "Succeeded" else 130 if status == "Stopped" else 1


@app.command()
def retry(
    execution: Annotated[str, typer.Argument(help="A failed, stopped or interrupted execution (id, prefix, or 'latest').")],
    cache: Annotated[Optional[str], typer.Option(help="sagemaker, content or off (default: [tool.sagelab] cache).")] = None,
    profile: Profile = "local",
) -> None:
    """Run an execution's failed, stopped or interrupted steps again, as RetryPipelineExecution does."""
    from sagelab.api.backends import backend_for
    from sagelab.cli.view import run_view
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    with run_view(settings) as listener:
        finished = backend_for(settings).retry(execution, cache=cache, listener=listener)
    raise typer.Exit(_exit_code(finished.status))


@app.command()
def stop(
    execution: Annotated[str, typer.Argument(help="An execution ARN, id, or 'latest'.")],
    profile: Profile = "aws",
) -> None:
    """Stop an execution on SageMaker (a local run stops with Ctrl-C)."""
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    print(f"stopping {backend_for(load_settings(profile=profile)).stop(execution)}")


@app.command()
def gc(
    older_than: Annotated[str, typer.Option("--older-than", help="Age of the executions to remove, e.g. 7d, 12h.")] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
) -> None:
    """Remove old executions' job folders, logs, records and the objects they wrote, keeping what the registry and newer executions use."""
    from sagelab.config import load_settings
    from sagelab.engines.local.gc import collect_garbage, parse_age

    collected = collect_garbage(load_settings(), parse_age(older_than), dry_run)
    verb = "would remove" if dry_run else "removed"
    if dry_run:
        for what, size in [*collected.objects, *collected.folders]:
            print(f"{verb} {what} ({_megabytes(size)})")
    freed = sum(size for _, size in [*collected.objects, *collected.folders])
    print(f"{verb} {_count(len(collected.executions), 'execution')}, {_count(len(collected.objects), 'object')}, "
          f"{_count(len(collected.folders), 'folder')} ({_megabytes(freed)}); kept {collected.kept_objects} "
          "objects still referenced")  # fmt: skip
    if collected.unrecorded:
        print(f"left the objects of {_count(len(collected.unrecorded), 'execution')} recorded before sagelab tracked what each "
              "execution wrote; remove them with `sagelab s3 ls` and your own judgement")  # fmt: skip


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@app.command()
def executions(
    limit: Annotated[int, typer.Option(help="How many to show, newest first.")] = 20,
    pipeline: Annotated[Optional[str], typer.Option(help="Only executions of this pipeline.")] = None,
    profile: Profile = "local",
    as_json: JsonOutput = False,
) -> None:
    """List the project's executions, newest first."""
    from sagelab.api.backends import backend_for
    from sagelab.cli.output import print_json
    from sagelab.cli.tables import executions_table
    from sagelab.config import load_settings
    from sagelab.errors import ExecutionError

    try:
        found = backend_for(load_settings(profile=profile)).executions(pipeline, limit, detail=False)
    except ExecutionError as nothing_yet:  # an empty list, not an error
        if as_json:
            return print_json([])
        print(nothing_yet)
        return None
    if as_json:
        return print_json([execution.summary() for execution in found])
    executions_table(found).print()


@app.command()
def status(
    execution: Annotated[str, typer.Argument(help="An execution id, a unique prefix of one, or 'latest'.")],
    profile: Profile = "local",
    as_json: JsonOutput = False,
    with_cost: Annotated[bool, typer.Option("--cost", help="Also what each step cost on SageMaker (a local execution: would have cost).")] = False,
) -> None:
    """Show an execution's steps: status, start, duration and failure reason."""
    from sagelab.api.backends import backend_for
    from sagelab.cli.output import print_json
    from sagelab.cli.tables import environment_lines, steps_table
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    found = backend_for(settings).execution(execution)
    if as_json:
        return print_json(found.to_dict())
    steps_table(found).print()
    for line in environment_lines(found.steps.values()):
        print(line)
    if with_cost:
        from sagelab.cli.cost import cost_lines

        cost_lines(settings, found)



@app.command()
def logs(
    execution: Annotated[str, typer.Argument(help="An execution id, a unique prefix of one, or 'latest'.")],
    step: Annotated[Optional[str], typer.Argument(help="One step's log (default: every step's).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")] = False,
    profile: Profile = "local",
) -> None:
    """Print the logs of an execution's steps (on SageMaker: the step's job log in CloudWatch)."""
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    shown = None
    for name, chunk in backend_for(load_settings(profile=profile)).log_chunks(execution, step, follow):
        if step is None and name != shown:
            sys.stdout.buffer.write(f"==> {name} <==\n".encode())
            shown = name
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


@app.command()
def definition(
    pipeline: Pipeline,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the JSON to this file instead of printing it.")] = None,
    profile: Profile = "local",
) -> None:
    """Print (or write) the definition JSON of a pipeline, as SageMaker receives it (built for the profile)."""
    import json

    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings

    loaded = load_pipeline(pipeline, load_settings(profile=profile))
    text = json.dumps(loaded.definition.raw, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(out)  # never a half-written file where the old one was
    print(f"wrote {out} (pipeline {loaded.name}, {sum(1 for _ in loaded.definition.all_steps())} steps)", file=sys.stderr)


@app.command()
def graph(
    pipeline: Pipeline,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the graph as an image instead: graph.svg, or graph.png (needs cairosvg).")] = None,
) -> None:
    """Print the step graph of a pipeline: each step with what it waits for (or draw it with --out)."""
    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings
    from sagelab.definition import dependencies

    loaded = load_pipeline(pipeline, load_settings())
    if out is not None:
        from sagelab.docs import write_graph

        write_graph(loaded.definition, out, loaded.name)
        print(f"wrote {out} (pipeline {loaded.name}, {sum(1 for _ in loaded.definition.all_steps())} steps)", file=sys.stderr)
        return
    needs = dependencies(loaded.definition)
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            level[name] = 1 + max((depth(n) for n in needs[name]), default=-1)
        return level[name]

    steps = sorted(loaded.definition.all_steps(), key=lambda s: depth(s.name))
    width = max(2 * depth(s.name) + len(s.name) for s in steps)
    print(f"{loaded.name}: {_count(len(steps), 'step')}, {_count(len(loaded.definition.parameters), 'parameter')}")
    for step in steps:
        where = f"  [{step.branch[-1].replace(':', ' ')}]" if step.branch else ""
        after = f"  ← {', '.join(sorted(needs[step.name]))}" if needs[step.name] else ""
        print(f"{'  ' * depth(step.name) + step.name:<{width}}  {step.type:<10}{after}{where}")


app.add_typer(instances_app, name="instances")
app.command()(cost)
app.command()(idle)
app.command()(serve)
app.command()(deploy)
app.command()(invoke)
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(monitor_app, name="monitor")
app.add_typer(envs_app, name="envs")

app.command()(api)
app.command()(env)
app.command()(ui)
app.command()(init)
app.command()(doctor)
app.command()(setup)
app.add_typer(docs_app, name="docs")
