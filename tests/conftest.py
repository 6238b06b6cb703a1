"""Shared fixtures: small definitions built in code, a project folder per test, and the CLI and pip as tests use them."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diabetes"
SAGELAB = str(Path(sys.executable).parent / "sagelab")
# Step environments are built from uv's cache, which scripts/test fills before the tests run
# (sagelab envs prepare tests/fixtures/images/pipeline.json): no test reaches a package index.
os.environ.setdefault("UV_CACHE_DIR", str(ROOT / ".cache" / "uv"))
os.environ.setdefault("XDG_CACHE_HOME", str(ROOT / ".cache"))  # sagelab's environments too, as scripts/test has them
os.environ["UV_OFFLINE"] = "1"
# A suite started in the background of a non-interactive shell (`cmd &` in a script, `setsid nohup ...`) inherits
# SIGINT ignored, as POSIX has it; the tests that press Ctrl-C (on a run, in a notebook cell) need Python's own
# handler, as in a terminal. Their child processes get the default back when they start (a handler is not inherited).
signal.signal(signal.SIGINT, signal.default_int_handler)


def processing_step(name: str, code: str, *, inputs: dict[str, Any] | None = None, outputs: list[str] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    """A Processing step running `python3 -c code`, with S3 inputs and outputs."""
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": "local/python:3", "ContainerEntrypoint": python_code(code)},
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


def python_code(code: str) -> list[str]:
    """`python3 -c code` as a ContainerEntrypoint, whose items CreateProcessingJob caps at 256 characters:
    longer code goes in pieces that a short loader joins (and takes back out of sys.argv)."""
    if len(code) <= 256:
        return ["python3", "-c", code]
    pieces = [code[i : i + 256] for i in range(0, len(code), 256)]
    return ["python3", "-c", f"import sys;c=''.join(sys.argv[1:{len(pieces) + 1}]);del sys.argv[1:{len(pieces) + 1}];exec(c)", *pieces]


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


def sagelab(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `sagelab` command (the real sandbox, whatever SAGELAB_SANDBOX the test run has), in `env` (default: this process's)."""
    env = {k: v for k, v in (env or os.environ).items() if k != "SAGELAB_SANDBOX"}
    result = subprocess.run([SAGELAB, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def wheel(folder: Path, dist: str, version: str, module: str, source: str = "", requires: tuple[str, ...] = ()) -> None:
    """A pure-Python wheel of one module whose `__version__` is `version`, with its `Requires-Dist` lines."""
    stem = f"{dist.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n{source}",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: sagelab-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text.encode())}")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")


def pip_offline(monkeypatch: pytest.MonkeyPatch, cache: Path, find_links: Path | str = "") -> Path:
    """pip sees only `find_links` (no index, not the machine's pip configuration); environments are cached under `cache`.

    Returns the folder the built environments go to.
    """
    for name in ("PIP_CONSTRAINT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_REQUIRE_VIRTUALENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "sagelab" / "envs"


def surviving_processes(marker: Path) -> list[str]:
    """The ids of processes whose command line still names `marker` (none should outlive a stop)."""
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(marker).encode() in cmdline.read_bytes():
                survivors.append(cmdline.parent.name)
        except OSError:
            continue
    return survivors
