"""The model registry's operations over the project's registry (`.sagelab/registry.db`, what `sagelab models` shows).

CreateModelPackageGroup, DescribeModelPackageGroup, ListModelPackageGroups, DeleteModelPackageGroup,
CreateModelPackage, DescribeModelPackage, ListModelPackages and UpdateModelPackage. Where sagelab
differs from SageMaker:
- packages are versioned (in a group); an unversioned CreateModelPackage (a ModelPackageName alone)
  is refused, and ListModelPackages lists no unversioned ones;
- UpdateModelPackage changes ModelApprovalStatus and ApprovalDescription; any other change is refused,
  naming it;
- Tags and ClientToken are accepted and not kept (no tagging operation is served yet; a retried
  CreateModelPackage registers another version); DeleteModelPackageGroup deletes empty groups only
  (DeleteModelPackage is not served yet); no model validation or image scan runs (status Completed).
Errors are ValidationExceptions, as SageMaker answers these operations (they model no ResourceNotFound).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.awsapi.errors import ConflictException, ValidationException
from sagelab.awsapi.operations import Context, created_between, newest_first, operation, page
from sagelab.awsapi.shapes import epoch
from sagelab.errors import RegistryError

if TYPE_CHECKING:
    from sagelab.registry import ModelPackage, Registry

_APPROVAL_ONLY = ("ModelPackageArn", "ModelApprovalStatus", "ApprovalDescription", "ClientToken")


def _registry(context: Context, writing: bool = False) -> Registry:
    """The project's registry; reading a project that has none makes no file (as `sagelab models` reads it)."""
    from sagelab.registry import Registry

    path = context.settings.state_dir / "registry.db"
    return Registry(path if writing or path.is_file() else Path(":memory:"), context.settings.region, context.settings.account)


def _group_arn(context: Context, name: str) -> str:
    return context.arn(f"model-package-group/{name.lower()}")


def _group(context: Context, registry: Registry, name_or_arn: str) -> dict[str, Any]:
    """The group a name or ARN names, as `Registry.groups()` describes it.

    Raises:
        ValidationException: there is none.
    """
    wanted = name_or_arn.rsplit("/", 1)[-1].lower() if name_or_arn.startswith("arn:") else None
    for group in registry.groups():
        if group["ModelPackageGroupName"] == name_or_arn or (wanted and group["ModelPackageGroupName"].lower() == wanted):
            return group
    shown = name_or_arn if name_or_arn.startswith("arn:") else _group_arn(context, name_or_arn)
    raise ValidationException(f"ModelPackageGroup {shown} does not exist.")


@operation("CreateModelPackageGroup")
def create_model_package_group(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    name = request["ModelPackageGroupName"]
    registry = _registry(context, writing=True)
    try:
        if any(g["ModelPackageGroupName"] == name for g in registry.groups()):
            raise ValidationException(f"Model Package Group already exists: {_group_arn(context, name)}")
        registry.create_group(name, request.get("ModelPackageGroupDescription"))
    finally:
        registry.close()
    return {"ModelPackageGroupArn": _group_arn(context, name)}


def _group_summary(context: Context, group: dict[str, Any]) -> dict[str, Any]:
    return {"ModelPackageGroupName": group["ModelPackageGroupName"], "ModelPackageGroupArn": _group_arn(context, group["ModelPackageGroupName"]),
            "ModelPackageGroupDescription": group.get("Description"), "CreationTime": group["CreationTime"],
            "ModelPackageGroupStatus": "Completed"}  # fmt: skip


@operation("DescribeModelPackageGroup")
def describe_model_package_group(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    registry = _registry(context)
    try:
        return {**_group_summary(context, _group(context, registry, request["ModelPackageGroupName"])), "CreatedBy": {}}
    finally:
        registry.close()


@operation("ListModelPackageGroups")
def list_model_package_groups(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Groups, oldest first by default (SortBy Name or CreationTime), 10 a page; CrossAccountFilterOption is ignored."""
    registry = _registry(context)
    try:
        groups = registry.groups()
    finally:
        registry.close()
    contains = request.get("NameContains", "")
    chosen = [g for g in groups if contains in g["ModelPackageGroupName"]
              and created_between(epoch(g["CreationTime"]), request, "CreationTimeAfter", "CreationTimeBefore")]  # fmt: skip
    if request.get("SortBy") == "Name":
        chosen.sort(key=lambda g: str(g["ModelPackageGroupName"]), reverse=newest_first(request, "Ascending"))
    else:
        chosen.sort(key=lambda g: epoch(g["CreationTime"]), reverse=newest_first(request, "Ascending"))
    shown, following = page(chosen, request)
    return {"ModelPackageGroupSummaryList": [_group_summary(context, g) for g in shown], "NextToken": following}


@operation("DeleteModelPackageGroup")
def delete_model_package_group(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Delete an empty group (a group with versions is a ConflictException: DeleteModelPackage is not served yet)."""
    registry = _registry(context)
    try:
        group = _group(context, registry, request["ModelPackageGroupName"])
        name = group["ModelPackageGroupName"]
        if group["Versions"] or not registry.delete_group(name):
            raise ConflictException(f"Model Package Group {name} has model package versions; delete them first "
                                    "(sagelab's local API does not serve DeleteModelPackage yet)")  # fmt: skip
    finally:
        registry.close()
    return {}


@operation("CreateModelPackage")
def create_model_package(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Register the next version of a group (which must exist), PendingManualApproval unless ModelApprovalStatus says otherwise."""
    group = request.get("ModelPackageGroupName")
    if group is None:
        raise ValidationException("sagelab's local registry keeps versioned model packages only: give ModelPackageGroupName "
                                  "(unversioned packages, a ModelPackageName alone, are not served yet)")  # fmt: skip
    registry = _registry(context, writing=True)
    try:
        name = _group(context, registry, group)["ModelPackageGroupName"]
        package = registry.register({**_plain(request), "ModelPackageGroupName": name})
    finally:
        registry.close()
    return {"ModelPackageArn": package.arn}


def _plain(value: Any) -> Any:
    """A request as JSON holds it (the registry keeps the request as JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if key not in ("ClientToken", "Tags")}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _package(context: Context, registry: Registry, reference: str) -> ModelPackage:
    """The version an ARN (`.../model-package/GROUP/VERSION`) or `GROUP/VERSION` names."""
    try:
        return registry.by_arn(reference) if reference.startswith("arn:") else registry.resolve(reference)
    except RegistryError as exc:
        raise ValidationException(f"ModelPackage {reference} does not exist: {exc}") from None


@operation("DescribeModelPackage")
def describe_model_package(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """A version as it was registered, with its approval status and description (IncludedData is ignored)."""
    registry = _registry(context)
    try:
        package = _package(context, registry, request["ModelPackageName"])
        return {**package.describe(), "CreationTime": package.created, "LastModifiedTime": package.modified}  # to the millisecond
    finally:
        registry.close()


@operation("ListModelPackages")
def list_model_packages(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Versions of a group (or of every group, with ModelPackageType Versioned or Both), oldest first by default, 10 a page."""
    registry = _registry(context)
    try:
        if "ModelPackageGroupName" in request:
            try:
                names = [_group(context, registry, request["ModelPackageGroupName"])["ModelPackageGroupName"]]
            except ValidationException:
                names = []
        elif request.get("ModelPackageType") in ("Versioned", "Both"):
            names = [g["ModelPackageGroupName"] for g in registry.groups()]
        else:
            names = []  # SageMaker's default type is Unversioned, of which the local registry has none
        if request.get("ModelPackageType") == "Unversioned":
            names = []
        packages = [p for name in names for p in registry.list(name)]
    finally:
        registry.close()
    status, contains = request.get("ModelApprovalStatus"), request.get("NameContains", "")
    chosen = [p for p in packages if (status is None or p.status == status) and contains in p.group
              and created_between(p.created, request, "CreationTimeAfter", "CreationTimeBefore")]  # fmt: skip
    if request.get("SortBy") == "Name":
        chosen.sort(key=lambda p: (p.group, p.version), reverse=newest_first(request, "Ascending"))
    else:
        chosen.sort(key=lambda p: (p.created, p.version), reverse=newest_first(request, "Ascending"))
    shown, following = page(chosen, request)
    summaries = [{"ModelPackageName": p.group, "ModelPackageGroupName": p.group, "ModelPackageVersion": p.version, "ModelPackageArn": p.arn,
                  "ModelPackageDescription": p.request.get("ModelPackageDescription"), "CreationTime": p.created,
                  "ModelPackageStatus": "Completed", "ModelApprovalStatus": p.status} for p in shown]  # fmt: skip
    return {"ModelPackageSummaryList": summaries, "NextToken": following}


@operation("UpdateModelPackage")
def update_model_package(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Approve or reject a version, or change its ApprovalDescription; every change joins its approval history."""
    other = sorted(set(request) - set(_APPROVAL_ONLY))
    if other:
        raise ValidationException(f"sagelab's local registry changes ModelApprovalStatus and ApprovalDescription only; "
                                  f"not served yet: {', '.join(other)}")  # fmt: skip
    registry = _registry(context, writing=True)
    try:
        package = _package(context, registry, request["ModelPackageArn"])
        status = request.get("ModelApprovalStatus", package.status)
        registry.set_status(package.group, package.version, status, request.get("ApprovalDescription", package.approval_description))
    finally:
        registry.close()
    return {"ModelPackageArn": package.arn}
