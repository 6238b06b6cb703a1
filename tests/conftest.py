"""Shared fixtures: small definitions built in code, and a project folder per test."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diabetes"


def processing_step(name: str, code: str, *, inputs: dict[str, Any] | None = None, outputs: list[str] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """A Processing step running `python3 -c code`, with S3 inputs and outputs."""
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": "local/python:3", "ContainerEntrypoint": ["python3", "-c", code]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "ProcessingInputs": [
                {"InputName": key, "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{key}", "S3DataType": "S3Prefix", "S3InputMode": "File"}}
                for key, uri in (inputs or {}).items()
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {"OutputName": out, "S3Output": {"S3Uri": f"s3://test-bucket/{name}/{out}", "LocalPath": f"/opt/ml/processing/output/{out}", "S3UploadMode": "EndOfJob"}}
                    for out in outputs
                ]
            },
        },
        **extra,
    }


def definition(*steps: dict[str, Any], parameters: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": list(parameters), "Steps": [copy.deepcopy(s) for s in steps]}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (with pyproject.toml) as the working directory."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.sagelab]\nconcurrency = 2\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=1))
    return path
