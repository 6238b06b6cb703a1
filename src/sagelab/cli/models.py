"""`sagelab models ...`: the model registry the profile names (the project's, or SageMaker's)."""

import json
import time
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from sagelab.api.backends import Backend
    from sagelab.api.registry import Models

models_app = typer.Typer(rich_markup_mode=None, help="The model registry, the project's or SageMaker's: groups, versions, approvals.", no_args_is_help=True)
Reference = Annotated[str, typer.Argument(help="GROUP/VERSION, e.g. diabetes/3")]
Reason = Annotated[Optional[str], typer.Option("--reason", help="Why; kept in the version's history.")]
Profile = Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" uses SageMaker's Model Registry.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON (DescribeModelPackage's shape; ListModelPackageGroups' for groups).")]


def _models(profile: str) -> "Models":
    """The registry the profile's engine names: the project's, or SageMaker's."""
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    return backend_for(load_settings(profile=profile)).models


def _when(value: Any) -> str:
    """A time as registries give it (an ISO string, Unix seconds, or boto3's datetime), for a table."""
    if isinstance(value, float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value or "").replace("T", " ").rstrip("Z")


@models_app.command("groups")
def groups(profile: Profile = "local", as_json: JsonOutput = False) -> None:
    """List model package groups with their latest versions."""
    from sagelab.cli.output import Table, print_json

    found = _models(profile).groups()
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
    from sagelab.cli.output import Table, print_json

    versions = _models(profile).versions(group)
    if as_json:
        return print_json(versions)
    table = Table("Version", "Status", "Registered", "Execution", "Model data", title=group)
    for package in versions:
        execution = package.get("MetadataProperties", {}).get("GeneratedBy", "").rsplit("/", 1)[-1]
        model_data = "\n".join(c.get("ModelDataUrl", "") for c in package.get("InferenceSpecification", {}).get("Containers", []))
        table.add_row(str(package["ModelPackageVersion"]), package["ModelApprovalStatus"], _when(package.get("CreationTime")), execution, model_data)
    table.print()


@models_app.command("show")
def show(reference: Reference, profile: Profile = "local", as_json: JsonOutput = False) -> None:
    """Show a version: status and its history, inference specification, metrics."""
    from sagelab.api.backends import backend_for
    from sagelab.config import load_settings

    backend = backend_for(load_settings(profile=profile))
    package = backend.models.describe(reference)
    if as_json:
        from sagelab.cli.output import print_json

        return print_json(package)
    spec = package.get("InferenceSpecification", {})
    containers = spec.get("Containers", [])
    generated_by = package.get("MetadataProperties", {}).get("GeneratedBy")
    print(f"{package['ModelPackageGroupName']}/{package['ModelPackageVersion']}  {package['ModelApprovalStatus']}  {package['ModelPackageArn']}")
    print(f"  registered  {_when(package.get('CreationTime'))}" + (f" by {generated_by}" if generated_by else ""))
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
    for kind, reports in package.get("ModelMetrics", {}).items():
        for name, report in (reports or {}).items():
            print(f"  metrics     {kind}.{name}: {report.get('S3Uri')}")
            _print_report(backend, report.get("S3Uri"))
    print("  history")
    for entry in package["History"]:
        print(f"    {_when(entry['Time'])}  {entry['ModelApprovalStatus']:<22} {entry['Reason'] or ''}")


def _print_report(backend: "Backend", uri: str | None) -> None:
    """An evaluation report, indented under its line; one that cannot be read is left out."""
    from sagelab.errors import ExecutionError

    if not uri:
        return
    try:
        document = json.loads(backend.get_bytes(uri))
    except (ExecutionError, ValueError):
        return
    for line in json.dumps(document, indent=2).splitlines():
        print(f"      {line}")


def _set(reference: str, status: str, reason: str | None, profile: str) -> None:
    package = _models(profile).set_status(reference, status, reason)
    print(f"{package['ModelPackageGroupName']}/{package['ModelPackageVersion']} is {package['ModelApprovalStatus']}")


@models_app.command("approve")
def approve(reference: Reference, reason: Reason = None, profile: Profile = "local") -> None:
    """Approve a version, so `sagelab deploy GROUP` picks it."""
    _set(reference, "Approved", reason, profile)


@models_app.command("reject")
def reject(reference: Reference, reason: Reason = None, profile: Profile = "local") -> None:
    """Reject a version."""
    _set(reference, "Rejected", reason, profile)
