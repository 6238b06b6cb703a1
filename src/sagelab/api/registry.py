"""Model package groups and versions, in the project's registry (`LocalModels`) or SageMaker's (`SageMakerModels`).

Both answer in SageMaker's shapes (ListModelPackageGroups, DescribeModelPackage), so a front end
shows them one way whichever engine the profile names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.errors import RegistryError

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.engines.sagemaker import ModelRegistry
    from sagelab.registry import Registry


class Models(Protocol):
    """What the front ends ask of a model registry."""

    def groups(self) -> list[dict[str, Any]]:
        """Each group (ModelPackageGroupName, CreationTime, ...) with `Versions`, `LatestVersion` and `LatestApproved`."""
        ...

    def versions(self, group: str) -> list[dict[str, Any]]:
        """A group's versions, oldest first, each in DescribeModelPackage's shape (or a subset of it)."""
        ...

    def describe(self, reference: str) -> dict[str, Any]:
        """DescribeModelPackage of `GROUP/VERSION` (or `GROUP`: its latest Approved version), with the approval `History`."""
        ...

    def set_status(self, reference: str, status: str, reason: str | None) -> dict[str, Any]:
        """Approve or reject `GROUP/VERSION`, keeping the reason; returns its description afterwards."""
        ...


def _named_version(reference: str) -> None:
    """Refuse a bare GROUP where a change needs its version (SageMaker's ModelRegistry.set_status says the same)."""
    if "/" not in reference:
        raise RegistryError(f"name the version to change: {reference}/VERSION (see `sagelab models list {reference}`)")


class LocalModels:
    """The project's registry, `.sagelab/registry.db`; reading a project that has none makes no file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _registry(self, writing: bool = False) -> Registry:
        from sagelab.registry import Registry

        path = self.settings.state_dir / "registry.db"
        return Registry(path if writing or path.is_file() else Path(":memory:"), self.settings.region, self.settings.account)

    def groups(self) -> list[dict[str, Any]]:
        return self._registry().groups()

    def versions(self, group: str) -> list[dict[str, Any]]:
        return [package.describe() for package in self._registry().list(group)]

    def describe(self, reference: str) -> dict[str, Any]:
        registry = self._registry()
        package = registry.resolve(reference)
        return {**package.describe(), "History": registry.history(package.group, package.version)}

    def set_status(self, reference: str, status: str, reason: str | None) -> dict[str, Any]:
        _named_version(reference)
        registry = self._registry(writing=True)
        package = registry.resolve(reference)
        return registry.set_status(package.group, package.version, status, reason).describe()


class SageMakerModels:
    """SageMaker's Model Registry, with the profile's credentials."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def groups(self) -> list[dict[str, Any]]:
        """ListModelPackageGroups, and each group's versions (one call a group) for the counts the local registry gives."""
        found = []
        for group in self.registry.groups():
            versions = self.registry.versions(group["ModelPackageGroupName"])
            approved = [v for v in versions if v.get("ModelApprovalStatus") == "Approved"]
            found.append({**group, "Versions": len(versions), "LatestVersion": versions[-1].get("ModelPackageVersion") if versions else None,
                          "LatestApproved": approved[-1].get("ModelPackageVersion") if approved else None})  # fmt: skip
        return found

    def versions(self, group: str) -> list[dict[str, Any]]:
        """ListModelPackages' summaries (no containers: a DescribeModelPackage a version would be a call each)."""
        return self.registry.versions(group)

    def describe(self, reference: str) -> dict[str, Any]:
        """DescribeModelPackage; SageMaker keeps no approval history, so `History` holds the current status only."""
        described = self.registry.describe(reference)
        current = {"ModelApprovalStatus": described.get("ModelApprovalStatus"), "Reason": described.get("ApprovalDescription"),
                   "Time": described.get("LastModifiedTime") or described.get("CreationTime")}  # fmt: skip
        return {**described, "History": [current]}

    def set_status(self, reference: str, status: str, reason: str | None) -> dict[str, Any]:
        return self.registry.set_status(reference, status, reason)  # it refuses a bare GROUP itself
