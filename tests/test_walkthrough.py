"""docs/notebooks/local-sagemaker.ipynb, run as its reader runs it: `sagelab api` in the project's folder, then every cell
in a Jupyter kernel that has the SageMaker SDK (.cache/sdk-venv), through nbclient, with no AWS to reach.

The executed notebook is saved beside the project (`walkthrough.ipynb`) to be looked at when a cell fails.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SAGELAB, sagelab

NOTEBOOK = ROOT / "docs" / "notebooks" / "local-sagemaker.ipynb"
SDK_PYTHON = ROOT / ".cache" / "sdk-venv" / "bin" / "python"


@pytest.fixture
def served(project: Path) -> Iterator[subprocess.Popen[str]]:
    """`sagelab api` on a free port in the project's folder, as the notebook asks its reader to start it."""
    server = subprocess.Popen([SAGELAB, "api", "--port", "0"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    first = server.stdout.readline()
    assert "sagelab's local SageMaker API" in first, first + server.stdout.read()
    try:
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        server.stdout.close()


def _kernel(folder: Path) -> str:
    """A kernelspec running the SDK's venv (JUPYTER_PATH names its folder)."""
    spec = folder / "kernels" / "sagelab-sdk"
    spec.mkdir(parents=True)
    argv = [str(SDK_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "SageMaker SDK", "language": "python"}))
    return "sagelab-sdk"


def _text(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append("\n".join(output.traceback))
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def test_the_walkthrough_notebook_runs_every_cell_locally(project: Path, served: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:  # fmt: skip
    import nbformat
    from nbclient import NotebookClient

    if not SDK_PYTHON.is_file():
        pytest.fail(f"{SDK_PYTHON} is missing: scripts/test installs the SageMaker SDK there (tests/fixtures/sdk/requirements.txt)", pytrace=False)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    sdk_config = project / ".config" / "sagemaker" / "config.yaml"  # as docs/local-api.md advises: the SDK's telemetry off
    sdk_config.parent.mkdir(parents=True)
    sdk_config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    kernel = _kernel(tmp_path / "jupyter")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}, "HOME": str(project),
           "AWS_CONFIG_FILE": str(project / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(project / "none"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # no AWS: nothing but the local API answers  # fmt: skip
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name=kernel, allow_errors=True, resources={"metadata": {"path": str(project)}})
    try:
        client.execute(env=env)
    finally:
        nbformat.write(notebook, project / "walkthrough.ipynb")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    out = [_text(cell) for cell in code]
    failed = [text for cell, text in zip(code, out) if any(o.output_type == "error" for o in cell.outputs)]
    assert not failed, failed[0][-3000:]

    assert "now reach sagelab's local API at http://127.0.0.1:" in out[0]
    assert "walkthrough/data/train/train.csv" in out[1]
    assert re.search(r"\('Completed',\s+'s3://sagemaker-us-east-1-000000000000/walkthrough/models/walkthrough-ridge-1/output/model.tar.gz'\)", out[4])
    assert "alpha=0.5 train_r2=" in out[5]
    assert "alpha=0.25 train_r2=" in out[6] and "model.tar.gz" in out[6]  # fit() printed the job's log
    assert re.search(r"model-package/walkthrough-ridge/1',\s+'Approved'\)", out[7]), out[7]
    predictions = json.loads(out[8].strip().splitlines()[-1])
    assert abs(predictions[0] - 0.0) < 0.2 and abs(predictions[1] - 4.5) < 0.2, predictions  # y = 3a - 2b + 1
    assert abs(json.loads(ast.literal_eval(out[9].strip().splitlines()[-1]))[0] - 0.0) < 0.2, out[9]  # the Body, as JSON
    assert "('Succeeded', [('Summarize', 'Succeeded')])" in out[11]
    assert "from now on reach AWS" in out[12], out[12]

    # The same state through the CLI: the jobs and the pipeline's execution, the approved version, no endpoint left.
    executions = sagelab("executions", cwd=project).stdout
    assert "WalkthroughSummary" in executions and "training-job/walkthrough-ridge-1" in executions, executions
    assert "Approved" in sagelab("models", "list", "walkthrough-ridge", cwd=project).stdout
    assert "walkthrough-ridge" not in sagelab("endpoints", cwd=project).stdout
    summary = project / ".sagelab" / "s3" / "sagemaker-us-east-1-000000000000"
    assert list(summary.rglob("summary.csv")), "the pipeline's step wrote no summary"
