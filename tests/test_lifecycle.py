"""After training: register, approve, deploy, invoke, update without downtime, delete; Model,
Endpoint and Transform steps in a pipeline. Real servers on 127.0.0.1, real HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLE, sagelab

ROW = "0.0380759,0.0506801,0.0616962,0.0218724,-0.0442235,-0.0348208,-0.0434008,-0.00259226,0.0199075,-0.0176461"



@pytest.fixture
def example(project: Path) -> Path:
    shutil.copytree(EXAMPLE, project / "diabetes", ignore=shutil.ignore_patterns("__pycache__"))
    yield project
    sagelab("endpoints", "delete", "diabetes-staging", cwd=project, check=False)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_register_approve_deploy_invoke_update_delete(example: Path) -> None:
    sagelab("run", "diabetes/pipeline.py:pipeline", "-p", "NEstimators=20", cwd=example)
    listing = sagelab("models", "list", "diabetes", cwd=example).stdout
    assert "PendingManualApproval" in listing
    refused = sagelab("deploy", "diabetes", "--name", "diabetes-staging", cwd=example, check=False)
    assert refused.returncode == 1 and "diabetes has no Approved version" in refused.stderr

    sagelab("models", "approve", "diabetes/1", "--reason", "good enough", cwd=example)
    deployed = sagelab("deploy", "diabetes", "--name", "diabetes-staging", cwd=example).stdout
    assert "serves diabetes/1" in deployed
    prediction = sagelab("invoke", "diabetes-staging", "--body", ROW, "--content-type", "text/csv", "--accept", "text/csv", cwd=example).stdout
    assert float(prediction.strip()) > 0
    as_json = sagelab("invoke", "diabetes-staging", "--body", json.dumps([[float(x) for x in ROW.split(",")]]),
                      "--content-type", "application/json", "--accept", "application/json", cwd=example).stdout  # fmt: skip
    assert abs(json.loads(as_json)[0] - float(prediction)) < 1e-6
    bad = sagelab("invoke", "diabetes-staging", "--body", "not,numbers", "--content-type", "text/csv", cwd=example, check=False)
    assert bad.returncode == 1
    endpoints = sagelab("endpoints", cwd=example).stdout
    assert "diabetes-staging" in endpoints and "InService" in endpoints and "diabetes/1" in endpoints
    port = int(deployed.split("http://127.0.0.1:")[1].split()[0])

    # a second version, approved and deployed while requests keep coming: none fails
    sagelab("run", "diabetes/pipeline.py:pipeline", "-p", "NEstimators=30", cwd=example)
    sagelab("models", "approve", "diabetes/2", cwd=example)
    failures: list[str] = []
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=ROW.encode(), headers={"Content-Type": "text/csv"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    json.loads(response.read())
            except Exception as exc:  # noqa: BLE001 - any failure during the swap is the bug
                failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    updated = sagelab("deploy", "diabetes", "--name", "diabetes-staging", cwd=example).stdout
    done.set()
    for thread in threads:
        thread.join()
    assert "serves diabetes/2" in updated and f"127.0.0.1:{port}" in updated
    assert failures == []

    sagelab("endpoints", "delete", "diabetes-staging", cwd=example)
    assert not _port_open(port)
    assert "diabetes-staging" not in sagelab("endpoints", cwd=example).stdout


def test_model_endpoint_and_transform_steps_in_a_pipeline(example: Path) -> None:
    """Model → Transform over a local folder, and EndpointConfig → Endpoint, run by the local engine."""
    pipeline = example / "hosting.py"
    pipeline.write_text(
        "from pathlib import Path\n"
        "from sagelab.pipeline import Pipeline, model, training, transform\n"
        "import sys; sys.path.insert(0, str(Path(__file__).parent / 'diabetes'))\n"
        "from pipeline import preprocess, train\n"
        "served = model('ServeModel', train, framework='sklearn:1.2-1', entry_point='diabetes/code/inference.py')\n"
        "scored = transform('Score', served, 'batch', content_type='text/csv', accept='text/csv', split_type='Line')\n"
        "pipeline = Pipeline('hosting', [preprocess, train, served, scored])\n"
    )
    batch = example / "batch"
    batch.mkdir()
    (batch / "part-1.csv").write_text(f"{ROW}\n{ROW}\n")
    (batch / "part-2.csv").write_text(f"{ROW}\n")
    run = sagelab("run", "hosting.py:pipeline", cwd=example)
    assert "Score                          Succeeded" in run.stdout
    execution = run.stdout.split("Execution ")[1].split(" ")[0]
    status = sagelab("status", execution, cwd=example).stdout
    assert "ServeModel" in status and "Score" in status
    output = run.stdout.split("Score: ")[1].split()[0]
    listing = sagelab("s3", "ls", output + "/", cwd=example).stdout
    assert "part-1.csv.out" in listing and "part-2.csv.out" in listing
    lines = sagelab("s3", "cat", f"{output}/part-1.csv.out", cwd=example).stdout.split()
    assert len(lines) == 2 and all(float(v) > 0 for v in lines)


def test_endpoint_steps(example: Path) -> None:
    from sagelab.config import load_settings
    from sagelab.definition.loader import load
    from sagelab.definition import parse
    from sagelab.engines.local import LocalEngine

    definition, name, artifacts = load(f"{example}/diabetes/pipeline.py:pipeline")
    document: dict[str, Any] = json.loads(json.dumps(definition.raw))
    train = next(s for s in document["Steps"] if s["Name"] == "Train")
    register = document["Steps"][3]["Arguments"]["IfSteps"][0]
    container = register["Arguments"]["InferenceSpecification"]["Containers"][0]
    document["Steps"] = [s for s in document["Steps"] if s["Name"] in ("Preprocess", "Train")] + [
        {"Name": "Model", "Type": "Model", "Arguments": {"ExecutionRoleArn": "arn:aws:iam::000000000000:role/R", "PrimaryContainer": container}},
        {"Name": "Config", "Type": "EndpointConfig", "Arguments": {"EndpointConfigName": "diabetes-config", "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": {"Get": "Steps.Model.ModelName"}, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]}},
        {"Name": "Deploy", "Type": "Endpoint", "Arguments": {"EndpointName": "diabetes-staging", "EndpointConfigName": {"Get": "Steps.Config.EndpointConfigName"}}},
    ]
    assert train["Name"] == "Train"
    engine = LocalEngine(load_settings(example))
    execution = engine.start(parse(document), name, {"NEstimators": "10"}, artifacts=artifacts)
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    assert execution.steps["Deploy"].properties["EndpointStatus"] == "InService"
    invoked = sagelab("invoke", "diabetes-staging", "--body", ROW, cwd=example).stdout
    assert json.loads(invoked)[0] > 0  # the scikit-learn container answers JSON unless asked otherwise
