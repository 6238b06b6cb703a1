"""`sagelab envs`: the cached step environments (each image's packages, requirements.txt), listed, prepared and deleted."""

import time
from typing import Annotated, Optional

import typer

envs_app = typer.Typer(rich_markup_mode=None, help="Cached step environments: list them, or delete some.", invoke_without_command=True)


@envs_app.callback()
def envs(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the environments steps and endpoints run in: what each was built for, its size and age."""
    if context.invoked_subcommand is not None:
        return
    from sagelab.cli.output import Table, print_json
    from sagelab.containers.environments import cache_dir, cached

    found = cached()
    if as_json:
        return print_json([{"key": env.key, "built_for": env.built_for, "created": env.created, "size": env.size, "path": str(env.path)}
                           for env in found])  # fmt: skip
    table = Table("Environment", "Built for", "Built", "Size", title=str(cache_dir()))
    for env in found:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(env.created))
        table.add_row(env.key, env.built_for, built, f"{env.size / 1e6:.1f} MB")
    table.print()


@envs_app.command("delete")
def delete(
    key: Annotated[Optional[str], typer.Argument(help="The environment (its hash, or the start of it).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Delete every cached environment.")] = False,
) -> None:
    """Delete cached environments; the next step that needs one builds it again (a running endpoint on one breaks: deploy it again)."""
    from sagelab.containers.environments import keys, remove
    from sagelab.errors import ConfigError

    if every == (key is not None):
        raise ConfigError("name one environment (sagelab envs lists them), or give --all")
    removed = [remove(name) for name in keys()] if every else [remove(str(key))]
    freed = sum(env.size for env in removed)
    print(f"deleted {len(removed)} environment{'s' if len(removed) != 1 else ''} ({freed / 1e6:.1f} MB)")


@envs_app.command("prepare")
def prepare(
    pipeline: Annotated[str, typer.Argument(help="A definition JSON file, or module:attribute naming a pipeline object.")],
    profile: Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles] in pyproject.toml.")] = "local",
) -> None:
    """Build the environment of every image the pipeline's steps run on, so later runs start at once and work offline."""
    from sagelab.api.loading import load_pipeline
    from sagelab.config import load_settings
    from sagelab.engines.local.deploy import ConsoleLog
    from sagelab.engines.local.environments import prepare_environments

    settings = load_settings(profile=profile)
    definition = load_pipeline(pipeline, settings).definition
    for done in prepare_environments(definition, settings.environment, ConsoleLog()):
        print(f"{done.image} ({', '.join(done.steps)}): {done.environment}", flush=True)

