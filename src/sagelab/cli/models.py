"""`sagelab models ...`: the local model registry."""

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.registry import ModelPackage, Registry

models_app = typer.Typer(rich_markup_mode=None, help="The local model registry: groups, versions, approvals.", no_args_is_help=True)
Reference = Annotated[str, typer.Argument(help="GROUP/VERSION, e.g. diabetes/3")]
Reason = Annotated[Optional[str], typer.Option("--reason", help="Why; kept in the version's history.")]
Profile = Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" uses SageMaker's Model Registry.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON (DescribeModelPackage's shape; ListModelPackageGroups' for groups).")]


def _on_aws(profile: str, action: str, reference: str = "", reason: str | None = None, as_json: bool = False) -> bool:
    """Run the command against SageMaker's registry when the profile says so; True if it did."""
    from sagelab.config import load_settings

    settings = load_settings(profile=profile)
    if settings.engine != "sagemaker":
        return False
    from sagelab.cli import aws

    aws.models(settings, action, reference, reason, as_json)
    return True



def open_registry(read_only: bool = False) -> "Registry":
    """The project's registry; for reading, an empty one in memory where the project has none (no file is made)."""
    from sagelab.config import load_settings
    from sagelab.registry import Registry

    settings = load_settings()
    path = settings.state_dir / "registry.db"
    return Registry(Path(":memory:") if read_only and not path.is_file() else path, settings.region, settings.account)


def _when(iso: str | float) -> str:
    if isinstance(iso, float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(iso))
    return iso.replace("T", " ").rstrip("Z")


@models_app.command("groups")
def groups(profile: Profile = "local", as_json: JsonOutput = False) -> None:
    """List model package groups with their latest versions."""
    if _on_aws(profile, "groups", as_json=as_json):
        return
    from sagelab.cli.output import Table, print_json

    found = open_registry(read_only=True).groups()
    if as_json:
        return print_json(found)
    table = Table("Group", "Versions", "Latest", "Latest approved", "Created")
    for group in found:
        table.add_row(group["ModelPackageGroupName"], str(group["Versions"]), str(group["LatestVersion"] or ""),
                      str(group["LatestApproved"] or ""), _when(group["CreationTime"]))  # fmt: skip
    table.print()


@models_app.command("list")
def list_versions(group: Annotated[str, typer.Argument(help="A model package group.")], profile: Profile = "local",
                  as_json: JsonOutput = False) -> None:  # fmt: skip
    """List the versions of a group."""
    if _on_aws(profile, "list", group, as_json=as_json):
        return
    from sagelab.cli.output import Table, print_json

    versions = open_registry(read_only=True).list(group)
    if as_json:
        return print_json([package.describe() for package in versions])
    table = Table("Version", "Status", "Registered", "Execution", "Model data", title=group)
    for package in versions:
        execution = (package.generated_by or "").rsplit("/", 1)[-1]
        model_data = "\n".join(c.get("ModelDataUrl", "") for c in package.containers)
        table.add_row(str(package.version), package.status, _when(package.created), execution, model_data)
    table.print()


@models_app.command("show")
def show(reference: Reference, profile: Profile = "local", as_json: JsonOutput = False) -> None:
    """Show a version: status and its history, inference specification, metrics."""
    if _on_aws(profile, "show", reference, as_json=as_json):
        return
    registry = open_registry(read_only=True)
    package = registry.resolve(reference)
    if as_json:
        from sagelab.cli.output import print_json

        return print_json({**package.describe(), "History": registry.history(package.group, package.version)})
    spec = package.request.get("InferenceSpecification", {})
    containers = package.containers
    print(f"{package.ref}  {package.status}  {package.arn}")
    print(f"  registered  {_when(package.created)}" + (f" by {package.generated_by}" if package.generated_by else ""))
    for index, container in enumerate(containers, 1):
        indent = "  " if len(containers) == 1 else "    "
        if len(containers) > 1:  # a pipeline model: a request runs through the containers in this order
            print(f"  container {index} of {len(containers)}" + (f"  {container['ContainerHostname']}" if container.get("ContainerHostname") else ""))
        print(f"{indent}image       {container.get('Image', '')}")
        print(f"{indent}model data  {container.get('ModelDataUrl', '')}")
        program = (container.get("Environment") or {}).get("SAGEMAKER_PROGRAM")
        if program:
            print(f"{indent}program     {program}")
    for key, label in (("SupportedContentTypes", "content in"), ("SupportedResponseMIMETypes", "content out"),
                       ("SupportedRealtimeInferenceInstanceTypes", "endpoints"), ("SupportedTransformInstanceTypes", "transform")):  # fmt: skip
        if spec.get(key):
            print(f"  {label:<11} {', '.join(spec[key])}")
    for kind, reports in package.request.get("ModelMetrics", {}).items():
        for name, report in (reports or {}).items():
            print(f"  metrics     {kind}.{name}: {report.get('S3Uri')}")
            _print_report(report.get("S3Uri"))
    print("  history")
    for entry in registry.history(package.group, package.version):
        print(f"    {_when(entry['Time'])}  {entry['ModelApprovalStatus']:<22} {entry['Reason'] or ''}")


def _print_report(uri: str | None) -> None:
    from sagelab.config import load_settings
    from sagelab.errors import StoreError
    from sagelab.store import LocalStore

    if not uri:
        return
    try:
        document = json.loads(LocalStore(load_settings().store).get_bytes(uri))
    except (StoreError, ValueError):
        return
    for line in json.dumps(document, indent=2).splitlines():
        print(f"      {line}")


def _set(reference: str, status: str, reason: str | None) -> "ModelPackage":
    registry = open_registry()
    package = registry.resolve(reference) if "/" in reference else None
    if package is None:
        raise typer.BadParameter(f"name the version, e.g. {reference}/1 (`sagelab models list {reference}`)")
    return registry.set_status(package.group, package.version, status, reason)


@models_app.command("approve")
def approve(reference: Reference, reason: Reason = None, profile: Profile = "local") -> None:
    """Approve a version, so `sagelab deploy GROUP` picks it."""
    if _on_aws(profile, "approve", reference, reason):
        return
    package = _set(reference, "Approved", reason)
    print(f"{package.ref} is Approved")


@models_app.command("reject")
def reject(reference: Reference, reason: Reason = None, profile: Profile = "local") -> None:
    """Reject a version."""
    if _on_aws(profile, "reject", reference, reason):
        return
    package = _set(reference, "Rejected", reason)
    print(f"{package.ref} is Rejected")
