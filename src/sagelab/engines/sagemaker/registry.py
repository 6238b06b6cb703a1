"""SageMaker's model registry: model package groups, their versions, and approvals."""

from __future__ import annotations

from typing import Any

from sagelab.config import Settings
from sagelab.engines.sagemaker.aws_errors import is_not_found
from sagelab.engines.sagemaker.clients import AwsClients, clean
from sagelab.errors import AwsError, RegistryError

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")


class ModelRegistry:
    """Model package groups and versions on SageMaker, named as locally: `GROUP/VERSION`, or a
    version's ARN; a bare `GROUP` means its latest Approved version."""

    def __init__(self, settings: Settings, session: Any | None = None, *, endpoint_url: str | None = None,
                 clients: AwsClients | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.clients = clients or AwsClients(settings, session, endpoint_url=endpoint_url)

    def groups(self) -> list[dict[str, Any]]:
        """ModelPackageGroupSummary dicts (ModelPackageGroupName, ...Arn, CreationTime, ...Status), newest first."""
        pages = self.clients.pages("sagemaker", "ListModelPackageGroups", "model package groups",
                                   SortBy="CreationTime", SortOrder="Descending")  # fmt: skip
        return [group for page in pages for group in page.get("ModelPackageGroupSummaryList", [])]

    def versions(self, group: str, status: str | None = None) -> list[dict[str, Any]]:
        """A group's versions, oldest first: ModelPackageSummary dicts (ModelPackageVersion, ModelPackageArn,
        ModelApprovalStatus, CreationTime, ...), only those with `status` when given."""
        request: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Ascending"}
        if status is not None:
            request["ModelApprovalStatus"] = _checked(status)
        pages = self.clients.pages("sagemaker", "ListModelPackages", f"model package group {group}", **request)
        found = [package for page in pages for package in page.get("ModelPackageSummaryList", [])]
        if not found:
            self._check_group(group)
        return sorted(found, key=lambda package: int(package.get("ModelPackageVersion") or 0))

    def arn(self, reference: str) -> str:
        """The version ARN `reference` names: an ARN, `GROUP/VERSION`, or `GROUP` (its latest Approved version)."""
        if reference.startswith("arn:"):
            return reference
        group, slash, version = reference.partition("/")
        if not slash:
            approved = self.versions(group, "Approved")
            if not approved:
                raise RegistryError(f"{group} has no Approved version; approve one with `sagelab models approve {group}/VERSION`")
            return str(approved[-1]["ModelPackageArn"])
        if not version.isdigit():
            raise RegistryError(f"{reference!r}: the version after / must be a number, as in {group}/3")
        packages = self.versions(group)
        for package in packages:
            if int(package.get("ModelPackageVersion") or 0) == int(version):
                return str(package["ModelPackageArn"])
        known = ", ".join(str(p.get("ModelPackageVersion")) for p in packages) or "none"
        raise RegistryError(f"{reference} is not registered; versions of {group}: {known}")

    def describe(self, reference: str) -> dict[str, Any]:
        """DescribeModelPackage of the version `reference` names."""
        arn = self.arn(reference)
        return clean(self.clients.call("sagemaker", "DescribeModelPackage", arn, ModelPackageName=arn))

    def approve(self, reference: str, description: str | None = None) -> dict[str, Any]:
        """Approve a version (UpdateModelPackage); returns its description afterwards."""
        return self.set_status(reference, "Approved", description)

    def reject(self, reference: str, description: str | None = None) -> dict[str, Any]:
        """Reject a version (UpdateModelPackage); returns its description afterwards."""
        return self.set_status(reference, "Rejected", description)

    def set_status(self, reference: str, status: str, description: str | None = None) -> dict[str, Any]:
        """Set a version's ModelApprovalStatus, with ApprovalDescription saying why."""
        if not reference.startswith("arn:") and "/" not in reference:
            raise RegistryError(f"name the version to change: {reference}/VERSION (see `sagelab models list {reference}`)")
        arn = self.arn(reference)
        request: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": _checked(status)}
        if description is not None:
            request["ApprovalDescription"] = description
        self.clients.call("sagemaker", "UpdateModelPackage", arn, **request)
        return clean(self.clients.call("sagemaker", "DescribeModelPackage", arn, ModelPackageName=arn))

    def _check_group(self, group: str) -> None:
        try:
            self.clients.call("sagemaker", "DescribeModelPackageGroup", f"model package group {group}", ModelPackageGroupName=group)
        except AwsError as exc:
            if not is_not_found(exc):
                raise
            from difflib import get_close_matches

            names = [g["ModelPackageGroupName"] for g in self.groups()]
            close = get_close_matches(group, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise RegistryError(f"no model package group {group!r}{hint}; groups: {', '.join(names) or 'none'}") from None


def _checked(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise RegistryError(f"status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return status
