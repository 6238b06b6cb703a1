"""`sagelab doctor`: one table of what this machine gives local runs, a fix for each problem, no secret printed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import SAGELAB


def doctor(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "COLUMNS": "200", **env}
    return subprocess.run([SAGELAB, "doctor"], cwd=cwd, capture_output=True, text=True, env=variables, timeout=120)


def test_doctor_reports_each_check(project: Path) -> None:
    result = doctor(project)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("sandbox", "python", "pip", "uv", "images", "disk (project)", "disk (environments)", "java", "aws", "project"):
        assert any(line.startswith(f"{name}  ") for line in result.stdout.splitlines()), name
    assert "GB free under" in result.stdout and "image versions have an environment" in result.stdout


def test_doctor_names_credentials_without_showing_them(project: Path) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-not-a-real-key"
    result = doctor(project, AWS_ACCESS_KEY_ID="AKIANOTAREALKEY12345", AWS_SECRET_ACCESS_KEY=secret)
    assert "AWS_ACCESS_KEY_ID" in result.stdout
    assert secret not in result.stdout and "AKIANOTAREALKEY12345" not in result.stdout


def test_doctor_fails_with_the_fix_for_a_broken_project_or_a_bad_forced_mode(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.sagelab]\nconcurrency = "many"\n')
    result = doctor(project, SAGELAB_SANDBOX="docker")
    assert result.returncode == 1
    assert "fail" in result.stdout and "concurrency" in result.stdout
    assert "SAGELAB_SANDBOX='docker' is not one of namespace, user-namespace, shared, remap" in result.stdout
    assert "To fix:" in result.stdout and "unset SAGELAB_SANDBOX" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
