"""The local model registry, on its own and as the RegisterModel step and `sagelab models` use it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sagelab.errors import RegistryError
from sagelab.registry import Registry


def package_request(group: str = "churn", status: str | None = None) -> dict:  # type: ignore[type-arg]
    request = {
        "ModelPackageGroupName": group,
        "InferenceSpecification": {
            "Containers": [{"Image": "img:1", "ModelDataUrl": "s3://b/model.tar.gz", "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/evaluation.json"}}},
    }
    if status:
        request["ModelApprovalStatus"] = status
    return request


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry.db", "eu-west-1", "123456789012")


def test_versions_are_numbered_per_group(registry: Registry) -> None:
    first = registry.register(package_request(), generated_by="arn:exec/1")
    second = registry.register(package_request())
    other = registry.register(package_request("fraud"))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.status == "PendingManualApproval"
    assert first.arn == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/1"
    described = first.describe()
    assert described["ModelPackageGroupName"] == "churn" and described["ModelPackageVersion"] == 1
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["MetadataProperties"] == {"GeneratedBy": "arn:exec/1"}
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == "img:1"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/evaluation.json"
    groups = {g["ModelPackageGroupName"]: g for g in registry.groups()}
    assert groups["churn"]["Versions"] == 2 and groups["churn"]["LatestApproved"] is None


def test_concurrent_registrations_never_share_a_version(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    Registry(path).create_group("churn")
    versions: list[int] = []

    def register() -> None:
        versions.append(Registry(path).register(package_request()).version)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))


def test_approval_history_and_latest_approved(registry: Registry) -> None:
    for _ in range(3):
        registry.register(package_request())
    with pytest.raises(RegistryError, match="churn has no Approved version; approve one with `sagelab models approve churn/VERSION`"):
        registry.latest("churn")
    registry.set_status("churn", 1, "Approved", "first good one")
    registry.set_status("churn", 2, "Approved")
    registry.set_status("churn", 2, "Rejected", "drifted")
    assert registry.resolve("churn").version == 1
    assert registry.resolve("churn/3").status == "PendingManualApproval"
    assert [h["ModelApprovalStatus"] for h in registry.history("churn", 2)] == ["PendingManualApproval", "Approved", "Rejected"]
    assert registry.history("churn", 2)[-1]["Reason"] == "drifted"
    assert registry.get("churn", 2).describe()["ApprovalDescription"] == "drifted"


def test_clear_errors(registry: Registry) -> None:
    registry.register(package_request())
    with pytest.raises(RegistryError, match="churn/9 is not registered; versions of churn: 1"):
        registry.get("churn", 9)
    with pytest.raises(RegistryError, match="churn/100000000000000000000 is not registered"):  # past SQLite's integers
        registry.get("churn", 10**20)
    with pytest.raises(RegistryError, match="no model package group 'nope'; groups: churn"):
        registry.list("nope")
    with pytest.raises(RegistryError, match="must be a number"):
        registry.resolve("churn/latest")
    with pytest.raises(RegistryError, match="is not one of"):
        registry.set_status("churn", 1, "Maybe")
    with pytest.raises(RegistryError, match="not a valid model package group name"):
        registry.register(package_request("bad name"))
    with pytest.raises(RegistryError, match="ModelApprovalStatus 'Sure'"):
        registry.register(package_request(status="Sure"))


def test_steps_opening_a_new_registry_at_once_do_not_collide(tmp_path: Path) -> None:
    """Two check or register steps may create the registry together; switching to WAL must not fail either."""
    import threading

    for attempt in range(20):
        path = tmp_path / f"r{attempt}" / "registry.db"
        barrier, errors = threading.Barrier(6), []

        def open_it() -> None:
            barrier.wait()
            try:
                Registry(path).close()
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
