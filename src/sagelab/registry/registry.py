"""`Registry`: model package groups and their versions in SQLite (`.sagelab/registry.db`)."""

from __future__ import annotations

import builtins
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.database import open_database
from sagelab.errors import RegistryError

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    description TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS packages (
    group_name TEXT NOT NULL REFERENCES groups(name),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    approval_description TEXT,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    request TEXT NOT NULL,
    generated_by TEXT,
    PRIMARY KEY (group_name, version)
);
CREATE TABLE IF NOT EXISTS approvals (
    group_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at REAL NOT NULL
);
"""


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "Z"


@dataclass(frozen=True)
class ModelPackage:
    """One registered version of a model, as the registry keeps it."""

    group: str
    version: int
    status: str
    approval_description: str | None
    created: float
    modified: float
    request: dict[str, Any]  # the CreateModelPackage request, expressions resolved
    generated_by: str | None  # the pipeline execution ARN that registered it
    region: str
    account: str

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{self.group.lower()}/{self.version}"

    @property
    def ref(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def containers(self) -> list[dict[str, Any]]:
        """The inference containers in order (Image, ModelDataUrl, Environment); several make a pipeline model."""
        containers = self.request.get("InferenceSpecification", {}).get("Containers", [])
        if not containers:
            raise RegistryError(f"model package {self.ref} has no inference container")
        return [dict(c) for c in containers]

    @property
    def container(self) -> dict[str, Any]:
        """The first inference container."""
        return self.containers[0]

    def describe(self) -> dict[str, Any]:
        """The DescribeModelPackage response of this version."""
        described: dict[str, Any] = {
            **{k: v for k, v in self.request.items() if k not in ("ModelApprovalStatus", "SkipModelValidation")},
            "ModelPackageName": self.group,
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelPackageArn": self.arn,
            "CreationTime": _iso(self.created),
            "LastModifiedTime": _iso(self.modified),
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "ModelApprovalStatus": self.status,
        }
        if self.approval_description:
            described["ApprovalDescription"] = self.approval_description
        if self.generated_by:
            described["MetadataProperties"] = {"GeneratedBy": self.generated_by}
        return described


class Registry:
    """A project's model packages. Every write is one SQLite transaction."""

    def __init__(self, path: Path, region: str = "us-east-1", account: str = "000000000000") -> None:
        self._db = open_database(path, _SCHEMA)
        self.region, self.account = region, account

    def close(self) -> None:
        self._db.close()

    def create_group(self, name: str, description: str | None = None) -> None:
        """Create a model package group; creating one that exists is a no-op."""
        if not _GROUP.match(name):
            raise RegistryError(f"{name!r} is not a valid model package group name: use up to 63 letters, digits and hyphens")
        self._db.execute("INSERT OR IGNORE INTO groups VALUES (?, ?, ?)", (name, description, time.time()))

    def delete_group(self, name: str) -> bool:
        """Delete a group that has no versions, in one statement (a version registered meanwhile keeps it); False if it had some."""
        self._check_group(name)
        deleted = self._db.execute("DELETE FROM groups WHERE name = ? AND NOT EXISTS (SELECT 1 FROM packages WHERE group_name = ?)", (name, name))
        return deleted.rowcount == 1

    def groups(self) -> list[dict[str, Any]]:
        """Every group with its number of versions and its latest approved version."""
        rows = self._db.execute(
            "SELECT g.name, g.description, g.created, COUNT(p.version), "
            "MAX(CASE WHEN p.status = 'Approved' THEN p.version END), MAX(p.version) "
            "FROM groups g LEFT JOIN packages p ON p.group_name = g.name GROUP BY g.name ORDER BY g.name"
        ).fetchall()
        return [
            {"ModelPackageGroupName": r[0], "Description": r[1], "CreationTime": _iso(r[2]), "Versions": r[3],
             "LatestApproved": r[4], "LatestVersion": r[5]}  # fmt: skip
            for r in rows
        ]

    def register(self, request: dict[str, Any], generated_by: str | None = None) -> ModelPackage:
        """Add a version to the request's ModelPackageGroupName (created if absent), as CreateModelPackage does."""
        group = request.get("ModelPackageGroupName")
        if not isinstance(group, str):
            raise RegistryError("a model package needs ModelPackageGroupName")
        status = request.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"ModelApprovalStatus {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
        self.create_group(group, request.get("ModelPackageGroupDescription"))
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # versions are numbered without gaps or races
            (latest,) = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM packages WHERE group_name = ?", (group,)).fetchone()
            version = latest + 1
            self._db.execute(
                "INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (group, version, status, request.get("ApprovalDescription"), now, now, json.dumps(request), generated_by),
            )
            self._db.execute("INSERT INTO approvals VALUES (?, ?, ?, ?, ?)", (group, version, status, "registered", now))
        return self.get(group, version)

    def registered_by(self, request: dict[str, Any], generated_by: str) -> ModelPackage | None:
        """The version that execution `generated_by` registered with this very request, if any (a retried step reuses it)."""
        row = self._db.execute(
            "SELECT * FROM packages WHERE group_name = ? AND generated_by = ? AND request = ? ORDER BY version LIMIT 1",
            (request.get("ModelPackageGroupName"), generated_by, json.dumps(request)),
        ).fetchone()
        return self._package(row) if row is not None else None

    def get(self, group: str, version: int) -> ModelPackage:
        in_range = 1 <= version < 2**63  # SQLite's integers: a larger number names no version (and cannot be bound)
        row = self._db.execute("SELECT * FROM packages WHERE group_name = ? AND version = ?", (group, version)).fetchone() if in_range else None
        if row is None:
            known = [p.version for p in self.list(group)]
            raise RegistryError(f"{group}/{version} is not registered; versions of {group}: {', '.join(map(str, known)) or 'none'}")
        return self._package(row)

    def list(self, group: str) -> list[ModelPackage]:
        self._check_group(group)
        rows = self._db.execute("SELECT * FROM packages WHERE group_name = ? ORDER BY version", (group,)).fetchall()
        return [self._package(row) for row in rows]

    def latest(self, group: str, status: str | None = "Approved") -> ModelPackage:
        """The newest version of `group` with `status` (any status when None)."""
        candidates = [p for p in self.list(group) if status is None or p.status == status]
        if not candidates:
            raise RegistryError(
                f"{group} has no {status or ''} version".replace("  ", " ")
                + (f"; approve one with `sagelab models approve {group}/VERSION`" if status == "Approved" else "")
            )
        return candidates[-1]

    def by_arn(self, arn: str) -> ModelPackage:
        """The version a versioned model package ARN names (`.../model-package/GROUP/VERSION`; ARNs lower-case GROUP)."""
        _, _, path = arn.partition(":model-package/")
        group, slash, version = path.partition("/")
        if not slash or not version.isdigit():
            raise RegistryError(f"{arn!r} is not a versioned model package ARN such as "
                                f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/GROUP/1")  # fmt: skip
        row = self._db.execute("SELECT name FROM groups WHERE lower(name) = ?", (group.lower(),)).fetchone()
        if row is None:
            self._check_group(group)  # raises, listing the groups
        return self.get(row[0], int(version))

    def resolve(self, reference: str) -> ModelPackage:
        """`GROUP/VERSION`, or `GROUP` for its latest Approved version."""
        group, slash, version = reference.partition("/")
        if not slash:
            return self.latest(group)
        if not version.isdigit():
            raise RegistryError(f"{reference!r}: the version after / must be a number, as in {group}/3")
        return self.get(group, int(version))

    def set_status(self, group: str, version: int, status: str, reason: str | None = None) -> ModelPackage:
        """Approve or reject a version (UpdateModelPackage); every change is kept in the history."""
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
        self.get(group, version)
        now = time.time()
        with self._db:
            self._db.execute(
                "UPDATE packages SET status = ?, approval_description = ?, modified = ? WHERE group_name = ? AND version = ?",
                (status, reason, now, group, version),
            )
            self._db.execute("INSERT INTO approvals VALUES (?, ?, ?, ?, ?)", (group, version, status, reason, now))
        return self.get(group, version)

    def history(self, group: str, version: int) -> builtins.list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT status, reason, at FROM approvals WHERE group_name = ? AND version = ? ORDER BY rowid", (group, version)
        ).fetchall()
        return [{"ModelApprovalStatus": r[0], "Reason": r[1], "Time": _iso(r[2])} for r in rows]

    def _check_group(self, group: str) -> None:
        if self._db.execute("SELECT 1 FROM groups WHERE name = ?", (group,)).fetchone() is None:
            names = [g["ModelPackageGroupName"] for g in self.groups()]
            raise RegistryError(f"no model package group {group!r}; groups: {', '.join(names) or 'none yet'}")

    def _package(self, row: tuple[Any, ...]) -> ModelPackage:
        return ModelPackage(
            group=row[0], version=row[1], status=row[2], approval_description=row[3], created=row[4], modified=row[5],
            request=json.loads(row[6]), generated_by=row[7], region=self.region, account=self.account,
        )  # fmt: skip
