"""Cost commands: `sagelab instances [refresh|recommend]`, `sagelab cost`, `sagelab idle`, and the lines other commands print about cost."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.api.model import Execution
    from sagelab.config import Settings
    from sagelab.cost.catalog import Catalog
    from sagelab.cost.estimate import Estimate

Profile = Annotated[str, typer.Option("--profile", help="A profile from [tool.sagelab.profiles] in pyproject.toml.")]
Region = Annotated[Optional[str], typer.Option("--region", help="The AWS region whose prices count (default: the profile's).")]

instances_app = typer.Typer(help="SageMaker's instance types: hardware, uses and prices; refresh prices; recommend one for a task.",
                            invoke_without_command=True, no_args_is_help=False)  # fmt: skip


@instances_app.callback()
def instances(
    ctx: typer.Context,
    gpu: Annotated[bool, typer.Option("--gpu", help="Only types with GPUs.")] = False,
    min_memory: Annotated[float, typer.Option("--min-memory", help="Only types with at least this many GiB of memory.")] = 0,
    use: Annotated[Optional[str], typer.Option("--use", help="training, processing, hosting, transform, notebook or studio.")] = None,
    region: Region = None,
    sort: Annotated[str, typer.Option(help="memory, vcpus, price or name.")] = "memory",
    all_generations: Annotated[bool, typer.Option("--all", help="Also previous generations (t2, m4, c4, p2, p3, m5, c5, r5, g4dn).")] = False,
    profile: Profile = "local",
) -> None:
    """List instance types with vCPUs, memory, GPUs and the hourly price for a use (prices: `sagelab instances refresh`)."""
    if ctx.invoked_subcommand is not None:
        return
    from sagelab.cli.output import Table
    from sagelab.config import load_settings
    from sagelab.cost.catalog import check_use, load_catalog
    from sagelab.errors import ConfigError

    region = region or load_settings(profile=profile).region
    if use is not None:
        check_use(use)
    if sort not in ("memory", "vcpus", "price", "name"):
        raise ConfigError(f"--sort must be memory, vcpus, price or name; got {sort!r}")
    catalog = load_catalog()
    found = catalog.select(use=use, region=region, gpu=gpu, min_memory=min_memory, current_only=not all_generations)
    price_use = use or "training"

    def price(name: str) -> float | None:
        return catalog.price(name, price_use, region)

    if sort == "price":
        found.sort(key=lambda k: (price(k.name) is None, price(k.name) or 0, k.name))
    elif sort == "vcpus":
        found.sort(key=lambda k: (k.specs.vcpus or 0, k.specs.memory_gib or 0, k.name))
    elif sort == "name":
        found.sort(key=lambda k: k.name)
    table = Table("Type", "vCPUs", "Memory", "GPUs", "GPU memory", "Accelerator", "Network", f"$/h {price_use}", "Uses")
    for k in found:
        s = k.specs
        table.add_row(k.name, s.vcpus or "?", _gib(s.memory_gib), s.gpus or "", _gib(s.gpu_memory_gib) if s.gpus else "", s.accelerator or "",
                      s.network or "", _usd(price(k.name)), ",".join(sorted(k.uses)))  # fmt: skip
    table.print()
    print(_prices_line(catalog, region), file=sys.stderr)


@instances_app.command("refresh")
def refresh(
    region: Annotated[Optional[list[str]], typer.Option("--region", help="A region to fetch; repeatable (default: the profile's).")] = None,
    profile: Profile = "local",
) -> None:
    """Fetch SageMaker's on-demand prices: from the Price List API with an AWS profile (--profile aws), else AWS's public price list files (no account)."""
    from sagelab.config import load_settings
    from sagelab.cost import pricing
    from sagelab.cost.catalog import save_prices

    settings = load_settings(profile=profile)
    regions = region or [settings.region]
    if settings.engine == "sagemaker":
        from sagelab.engines.sagemaker.clients import AwsClients

        clients = AwsClients(settings)
        client = clients.client("pricing", region=pricing.api_region(regions[0]))
        with clients.translating("pricing", "GetProducts", "SageMaker prices"):
            fetched = pricing.fetch_api(client, regions, profile)
    else:
        print("Downloading AWS's public price list for SageMaker (no account needed) ...", file=sys.stderr, flush=True)
        fetched = pricing.fetch_public(regions)
    path = save_prices(fetched.regions, fetched.specs)
    for name, prices in fetched.regions.items():
        counts = ", ".join(f"{use} {len(types)}" for use, types in sorted(prices.prices.items()))
        print(f"{name}: prices for {counts} instance types ({prices.source}, published {prices.published or 'undated'})")
    print(f"Saved in {path}")


@instances_app.command("recommend")
def recommend_command(
    task: Annotated[str, typer.Option("--task", help="notebook, pandas, spark-driver, training-cpu, training-gpu or inference.")],
    data_size: Annotated[str, typer.Option("--data-size", help="The data's size on disk (or the model's, for inference): 20GB, 500MB.")] = "1GB",
    budget: Annotated[Optional[float], typer.Option("--budget", help="At most this many USD per hour.")] = None,
    region: Region = None,
    profile: Profile = "local",
) -> None:
    """Current-generation instance types for a task and a data size, with the reason for each."""
    from sagelab.cli.output import Table
    from sagelab.config import load_settings
    from sagelab.cost.catalog import load_catalog
    from sagelab.cost.recommend import parse_size, recommend

    region = region or load_settings(profile=profile).region
    catalog = load_catalog()
    spec, needed, choices = recommend(catalog, task, parse_size(data_size), region, budget)
    print(f"{task} on {data_size}: {spec.memory} = {needed:.0f} GiB; priced for {spec.use} in {region}")
    if not choices:
        within = f" within ${budget:g}/h" if budget is not None else ""
        print(f"No current-generation type fits{within}. Try a smaller --data-size, a larger --budget, or Spark for data beyond one machine.")
        raise typer.Exit(1)
    table = Table("Type", "vCPUs", "Memory", "GPUs", f"$/h {spec.use}", "Why")
    for choice in choices:
        s = choice.instance.specs
        table.add_row(choice.instance.name, s.vcpus or "?", _gib(s.memory_gib), s.gpus or "", _usd(choice.hourly), choice.reason)
    table.print()
    if task == "training-gpu":
        print("A GPU pays only when the framework uses it: PyTorch, TensorFlow, XGBoost with device='cuda'. scikit-learn does not: use --task training-cpu.")
    if task in ("notebook", "pandas") and needed > 256:
        print("That much data is past comfortable pandas: sample it in a notebook, or use Spark (sagelab Spark steps, %%spark).")
    print(_prices_line(catalog, region), file=sys.stderr)


def cost(
    pipeline: Annotated[str, typer.Argument(help="A definition JSON file, or module:attribute naming a pipeline object.")],
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Parameter value as Name=Value; repeatable.")] = None,
    profile: Profile = "local",
    name: Annotated[Optional[str], typer.Option(help="Pipeline name (default: the file or attribute name).")] = None,
    default_minutes: Annotated[float, typer.Option("--default-minutes", min=0, help="Expected minutes for a step no run has timed yet.")] = 10,
) -> None:
    """What one run of a pipeline would cost on SageMaker: per step instance type × count × expected duration × price, and the total."""
    from sagelab.api.costs import pipeline_estimate, unavailable_instances
    from sagelab.api.loading import load_pipeline
    from sagelab.cli.params import parse_params
    from sagelab.config import load_settings
    from sagelab.cost.catalog import load_catalog
    from sagelab.errors import DefinitionError

    settings = load_settings(profile=profile)
    loaded = load_pipeline(pipeline, settings, name=name)
    parameters = parse_params(param or [])
    catalog = load_catalog()
    problems = unavailable_instances(loaded.definition, parameters, settings.region, catalog)
    if problems:
        raise DefinitionError(problems, pipeline)
    found = pipeline_estimate(loaded.definition, loaded.name, parameters, settings, default_minutes * 60, catalog)
    print_estimate(found, f"{loaded.name} on SageMaker in {settings.region}, one run")
    print(_prices_line(catalog, settings.region), file=sys.stderr)


def print_estimate(found: Estimate, title: str) -> None:
    from sagelab.cli.output import Table

    table = Table("Step", "Instance", "Count", "Duration", "$/h", "Cost", "From", title=title)
    for row in found.rows:
        step = row.step
        count = f"{step.count} × {step.jobs} jobs" if step.jobs > 1 else str(step.count)
        label = step.label + (f" ({step.condition})" if step.condition else "")
        table.add_row(label, step.instance_type or "(set at run time)", count, _minutes(row.seconds), _usd(row.hourly), _usd(row.usd), row.basis)
    table.print()
    unpriced = found.unpriced
    total = f"Total: {_usd(found.usd)} for {found.instance_hours:,.2f} instance-hours"
    if unpriced:
        total += f" (without {', '.join(row.step.label for row in unpriced)}: no price)"
    print(total)
    for name, why in found.unbilled:
        print(f"Not counted: {name} ({why})")


def estimate_line(found: Estimate) -> str | None:
    """The run summary's one line: what this local run would cost on SageMaker (None when no step holds instances)."""
    if not found.rows:
        return None
    parts = ", ".join(f"{row.step.label} {_usd(row.usd) if row.usd is not None else f'{row.instance_hours:.2f} inst-h'}" for row in found.rows)
    if found.unpriced and len(found.unpriced) == len(found.rows):
        return (f"On SageMaker (estimate): {found.instance_hours:.2f} instance-hours ({parts}); "
                f"no prices for {found.region} yet: sagelab instances refresh")  # fmt: skip
    return f"On SageMaker this run would cost about {_usd(found.usd)} (estimate, {found.region}, local durations + start-up: {parts})"


def idle(
    profile: Profile = "aws",
    hours: Annotated[float, typer.Option("--hours", min=0.1, help="The window: idle for at least this many hours.")] = 2,
    stop: Annotated[bool, typer.Option("--stop", help="Stop (or delete) each one, asking first.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --stop: do not ask.")] = False,
) -> None:
    """What is billing on SageMaker while idle: endpoints without invocations, Studio apps, notebook instances, long jobs."""
    from sagelab.cli.output import Table
    from sagelab.config import load_settings
    from sagelab.cost.catalog import load_catalog
    from sagelab.cost.idle import audit
    from sagelab.engines.sagemaker.clients import AwsClients
    from sagelab.errors import ConfigError

    settings = load_settings(profile=profile)
    if settings.engine != "sagemaker":
        raise ConfigError(f"profile {profile!r} runs locally: `sagelab idle` audits a SageMaker account (--profile aws, or a profile with engine = \"sagemaker\")")
    clients = AwsClients(settings)
    catalog = load_catalog()
    found, problems = audit(clients, hours)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not found:
        print(f"Nothing idle for {hours:g} h in {settings.region}.")
        return
    table = Table("Kind", "Name", "Instances", "Idle", "$/h", "Saves per day", title=f"Idle for {hours:g} h or more in {settings.region}")
    for item in found:
        hourly = item.hourly(catalog, settings.region)
        instances = ", ".join(f"{count} × {kind}" for kind, count in item.instances)
        table.add_row(item.kind, item.name, instances, item.why, _usd(hourly), _usd(hourly * 24 if hourly is not None else None))
    table.print()
    priced = [item.hourly(catalog, settings.region) for item in found]
    print(f"Together: ${sum(p or 0 for p in priced):,.2f} per hour" + (" (some without a price)" if None in priced else ""))
    print(_prices_line(catalog, settings.region), file=sys.stderr)
    if not stop:
        print("Stop them with: sagelab idle --stop (asks for each)")
        return
    for item in found:
        service, operation, parameters = item.stop
        if not yes and not typer.confirm(f"{operation} {item.kind} {item.name}? It {item.stop_says}.", default=False):
            print(f"kept {item.name}")
            continue
        clients.call(service, operation, item.name, **parameters)
        print(f"{operation}: {item.name}")


def cost_lines(settings: Settings, execution: Execution) -> None:
    """`sagelab status --cost`: what the execution cost on SageMaker (or would have, a local one), step by step."""
    from sagelab.api.costs import execution_cost
    from sagelab.cost.catalog import load_catalog

    catalog = load_catalog()
    local = settings.engine != "sagemaker"
    found = execution_cost(execution, settings.region, local=local, catalog=catalog)
    what = "would have cost on SageMaker (estimate)" if local else "cost on SageMaker"
    print()
    print_estimate(found, f"What execution {execution.id} {what} in {settings.region}")
    print(_prices_line(catalog, settings.region), file=sys.stderr)


def _prices_line(catalog: Catalog, region: str) -> str:
    known = catalog.regions.get(region)
    if known is None:
        return f"No prices for {region} yet: `sagelab instances refresh` (AWS's public price list) or `--profile aws` (the Price List API)."
    published = f", published {known.published}" if known.published else ""
    return f"Prices: {known.source}, fetched {known.fetched[:10]}{published}; on-demand list prices in USD, before savings plans and taxes."


def _gib(value: float | None) -> str:
    return f"{value:g} GiB" if value else ""


def _usd(value: float | None) -> str:
    if value is None:
        return "?"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
