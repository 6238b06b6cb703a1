"""A served model's code/requirements.txt is installed, as the framework containers pip-install it at start.

The model's inference.py imports a package only its requirements.txt names: a wheel these tests
build, which pip finds in a folder of the test's own (PIP_NO_INDEX, PIP_FIND_LINKS, the machine's
pip configuration switched off: no network). Endpoints, `sagelab serve`, pipeline-model
containers and batch transform each run on the environment built with it; sagelab's own
environment never gets the package. Servers are real processes on 127.0.0.1, invoked over HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import SAGELAB, definition, pip_offline, sagelab, wheel
from test_environments import tarball

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "s3://sagemaker-us-east-1-000000000000"
ROLE = "arn:aws:iam::000000000000:role/R"
PACKAGE = "sagelab_serving_probe"
REQUIREMENTS = "sagelab-serving-probe==1.0\n"
SHOUTING = '''
    """Answers the request shouted by the package its requirements.txt installs, and where that package lives."""
    import sagelab_serving_probe


    def model_fn(model_dir):
        return None


    def transform_fn(model, data, content_type, accept):
        return f"{sagelab_serving_probe.shout(data)}|{sagelab_serving_probe.__file__}\\n", "text/csv"
'''
LOOKING = '''
    """A container without requirements.txt: says what it got, and whether it could import the package."""
    import importlib.util
    import json


    def model_fn(model_dir):
        return None


    def transform_fn(model, data, content_type, accept):
        found = importlib.util.find_spec("sagelab_serving_probe") is not None
        return json.dumps({"got": data.strip(), "probe_importable": found}), "application/json"
'''


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    wheel(folder, "sagelab-serving-probe", "1.0", PACKAGE, "def shout(text):\n    return text.strip().upper() + '!'\n")
    return folder


@pytest.fixture(autouse=True)
def offline(wheels: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only `wheels`; environments and extracted models are cached in the test's own folder.

    The models run on sagelab's own packages (environment = "host"): these tests are about a
    requirements.txt beside them; the images' environments serve in test_corpus.py.
    """
    monkeypatch.delenv("SAGELAB_MODEL_CACHE", raising=False)
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + 'environment = "host"\n')
    return pip_offline(monkeypatch, project / "cache", wheels)


@pytest.fixture
def endpoints(project: Path) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        sagelab("endpoints", "delete", name, cwd=project, check=False)



def settings(project: Path) -> Any:
    from sagelab.config import load_settings

    return load_settings(project)


def store(project: Path) -> Any:
    from sagelab.store import LocalStore

    local = LocalStore(settings(project).store)
    local.create_bucket(BUCKET.removeprefix("s3://"))
    return local


def code(source: str) -> str:
    return textwrap.dedent(source).lstrip()


def upload_model(project: Path, key: str, files: dict[str, str]) -> str:
    uri = f"{BUCKET}/{key}/model.tar.gz"
    store(project).put_bytes(uri, tarball(files))
    return uri


def register(project: Path, requirements: str = REQUIREMENTS) -> str:
    """A version of group `probe` whose model.tar.gz holds code/inference.py and code/requirements.txt."""
    from sagelab.engines.local.deploy import open_registry

    key = f"probe-{hashlib.sha256(requirements.encode()).hexdigest()[:12]}"
    uri = upload_model(project, key, {"code/inference.py": code(SHOUTING), "code/requirements.txt": requirements})
    registry = open_registry(settings(project))
    try:
        package = registry.register({
            "ModelPackageGroupName": "probe",
            "InferenceSpecification": {"Containers": [{"Image": SKLEARN_IMAGE, "ModelDataUrl": uri}],
                                       "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            "ModelApprovalStatus": "Approved",
        })  # fmt: skip
    finally:
        registry.close()
    return str(package.ref)


def post(port: int, body: bytes, content_type: str = "text/csv") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def endpoint_port(project: Path, name: str) -> int:
    from sagelab.serving.endpoints import Hosting

    hosting = Hosting(settings(project).state_dir)
    try:
        info = hosting.endpoint(name)
    finally:
        hosting.close()
    assert info.status == "InService" and info.port
    return int(info.port)


def shouted(answer: str, envs: Path) -> str:
    """The shouted text, after checking the package was imported from an environment under `envs`."""
    text, _, module = answer.strip().partition("|")
    assert module.startswith(str(envs) + os.sep), module
    return text


def built(envs: Path) -> list[Path]:
    """The environments' folders (not the links that publish them, nor lock files)."""
    return sorted(p for p in envs.iterdir() if p.is_dir() and not p.is_symlink()) if envs.is_dir() else []


def assert_sagelab_never_got_it() -> None:
    assert importlib.util.find_spec(PACKAGE) is None
    probe = subprocess.run([sys.executable, "-c", f"import {PACKAGE}"], capture_output=True, text=True, check=False)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


# -- sagelab deploy: installed once, reused, refused with pip's reason ---------------------------


def test_deploy_installs_requirements_once_and_serves_with_them(project: Path, offline: Path, endpoints: list[str]) -> None:
    ref = register(project)
    endpoints.append("probe")
    assert "serves probe/1" in sagelab("deploy", ref, "--name", "probe", cwd=project).stdout
    log = settings(project).state_dir / "endpoints" / "probe" / "endpoint.log"
    assert "[sagelab] the model: its code has a requirements.txt" in log.read_text()
    assert "[sagelab] installing requirements.txt (hash " in log.read_text()
    status, answer = post(endpoint_port(project, "probe"), b"hello")
    assert status == 200 and shouted(answer, offline) == "HELLO!"
    assert "is not installed by sagelab" not in log.read_text()  # the server knows it runs on the environment

    # deployed again (an update in place): the environment is reused, not rebuilt
    sagelab("deploy", ref, "--name", "probe", cwd=project)
    text = log.read_text()
    assert text.count("installing requirements.txt") == 1 and "[sagelab] reusing environment " in text
    assert len(built(offline)) == 1
    status, answer = post(endpoint_port(project, "probe"), b"again")
    assert status == 200 and shouted(answer, offline) == "AGAIN!"
    assert_sagelab_never_got_it()


def test_a_requirement_pip_cannot_install_fails_the_deploy(project: Path, offline: Path, endpoints: list[str]) -> None:
    good = register(project)
    endpoints.append("probe")
    sagelab("deploy", good, "--name", "probe", cwd=project)
    bad = register(project, "sagelab-serving-probe==9\n")
    failed = sagelab("deploy", bad, "--name", "probe", cwd=project, check=False)
    assert failed.returncode == 1
    assert "probe/2: the model: requirements.txt: pip could not install it (exit code 1), so the model server did not start" in failed.stderr
    assert "No matching distribution found for sagelab-serving-probe==9" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert len(built(offline)) == 1 and not list(offline.glob("*.new"))  # nothing half-built kept
    # the endpoint still serves the version it had
    status, answer = post(endpoint_port(project, "probe"), b"still")
    assert status == 200 and shouted(answer, offline) == "STILL!"
    # a new endpoint is not created at all
    fresh = sagelab("deploy", bad, "--name", "fresh", cwd=project, check=False)
    assert fresh.returncode == 1 and "No matching distribution found" in fresh.stderr
    assert "fresh" not in sagelab("endpoints", cwd=project).stdout
    assert_sagelab_never_got_it()


# -- sagelab serve in the foreground ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sagelab_serve_runs_on_the_environment(project: Path, offline: Path) -> None:
    ref = register(project)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    process = subprocess.Popen([SAGELAB, "serve", ref, "--port", str(port)], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            assert process.poll() is None and time.time() < deadline, process.stdout.read() if process.stdout else ""
            try:
                status, answer = post(port, b"foreground")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200 and shouted(answer, offline) == "FOREGROUND!"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert "[sagelab] installing requirements.txt (hash " in output
    assert "Successfully installed sagelab-serving-probe-1.0" in output  # pip's own output, on the terminal
    assert_sagelab_never_got_it()


# -- pipeline models: each container on its own environment; Endpoint and Transform steps ----------


def pipeline_containers(project: Path) -> list[dict[str, Any]]:
    """Container 1 has its code (and requirements.txt) in a SAGEMAKER_SUBMIT_DIRECTORY sourcedir; container 2 has none."""
    local = store(project)
    sourcedir = f"{BUCKET}/shout/sourcedir.tar.gz"
    local.put_bytes(sourcedir, tarball({"inference.py": code(SHOUTING), "requirements.txt": REQUIREMENTS}))
    shout = {"Image": SKLEARN_IMAGE, "ModelDataUrl": upload_model(project, "shout", {"README": "code in the sourcedir\n"}),
             "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": sourcedir}}  # fmt: skip
    look = {"Image": SKLEARN_IMAGE, "ModelDataUrl": upload_model(project, "look", {"code/inference.py": code(LOOKING)})}
    return [shout, look]


def run_steps(project: Path, *steps: dict[str, Any]) -> Any:
    from sagelab.definition import parse
    from sagelab.engines.local import LocalEngine

    execution = LocalEngine(settings(project)).start(parse(definition(*steps)), "requirements", {})
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    return execution


def test_a_pipeline_model_container_runs_on_its_own_environment(project: Path, offline: Path, endpoints: list[str]) -> None:
    steps = [
        {"Name": "Model", "Type": "Model", "Arguments": {"ModelName": "chain", "ExecutionRoleArn": ROLE,
                                                          "Containers": pipeline_containers(project)}},
        {"Name": "Config", "Type": "EndpointConfig", "Arguments": {"EndpointConfigName": "chain", "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": {"Get": "Steps.Model.ModelName"}, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]}},
        {"Name": "Deploy", "Type": "Endpoint", "Arguments": {"EndpointName": "chain", "EndpointConfigName": {"Get": "Steps.Config.EndpointConfigName"}}},
    ]  # fmt: skip
    endpoints.append("chain")
    execution = run_steps(project, *steps)
    step_log = Path(execution.steps["Deploy"].log_path).read_text()
    assert "[sagelab] container 1 (container-1): its code has a requirements.txt" in step_log
    assert "[sagelab] installing requirements.txt (hash " in step_log
    assert "container 2" not in step_log  # no requirements.txt: sagelab's own environment
    endpoint_log = (settings(project).state_dir / "endpoints" / "chain" / "endpoint.log").read_text()
    assert "Successfully installed sagelab-serving-probe-1.0" in endpoint_log
    assert "is not installed by sagelab" not in endpoint_log

    status, answer = post(endpoint_port(project, "chain"), b"chained")
    assert status == 200, answer
    looked = json.loads(answer)
    assert shouted(looked["got"], offline) == "CHAINED!"
    assert looked["probe_importable"] is False  # the second container does not share the first one's environment
    assert_sagelab_never_got_it()


def test_batch_transform_runs_on_the_environment(project: Path, offline: Path) -> None:
    local = store(project)
    local.put_bytes(f"{BUCKET}/batch/words.csv", b"one\ntwo\n")
    single = {"Image": SKLEARN_IMAGE, "ModelDataUrl": upload_model(project, "single", {"code/inference.py": code(SHOUTING),
                                                                                       "code/requirements.txt": REQUIREMENTS})}  # fmt: skip

    def transform(name: str, model_step: str) -> dict[str, Any]:
        return {"Name": name, "Type": "Transform", "Arguments": {
            "ModelName": {"Get": f"Steps.{model_step}.ModelName"},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{BUCKET}/batch/"}},
                               "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": f"{BUCKET}/{name}", "AssembleWith": "Line"},
            "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
            "BatchStrategy": "SingleRecord"}}  # fmt: skip

    steps = [
        {"Name": "Single", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": single}},
        {"Name": "Chain", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "Containers": pipeline_containers(project)}},
        transform("ScoreSingle", "Single"),
        transform("ScoreChain", "Chain"),
    ]
    execution = run_steps(project, *steps)
    lines = local.get_bytes(f"{BUCKET}/ScoreSingle/words.csv.out").decode().splitlines()
    assert [shouted(line, offline) for line in lines] == ["ONE!", "TWO!"]
    chained = [json.loads(line) for line in local.get_bytes(f"{BUCKET}/ScoreChain/words.csv.out").decode().splitlines()]
    assert [shouted(c["got"], offline) for c in chained] == ["ONE!", "TWO!"]
    assert not any(c["probe_importable"] for c in chained)
    logs = "".join(Path(execution.steps[name].log_path).read_text() for name in ("ScoreSingle", "ScoreChain"))
    assert logs.count("installing requirements.txt (hash ") + logs.count("reusing environment ") == 2
    assert "is not installed by sagelab" not in logs
    assert len(built(offline)) == 1  # the same requirements: one environment for both jobs
    assert_sagelab_never_got_it()


def test_a_bad_requirement_fails_the_transform_job(project: Path, offline: Path) -> None:
    local = store(project)
    local.put_bytes(f"{BUCKET}/batch/words.csv", b"one\n")
    model = {"Image": SKLEARN_IMAGE, "ModelDataUrl": upload_model(project, "bad", {"code/inference.py": code(SHOUTING),
                                                                                   "code/requirements.txt": "no-such-probe==1\n"})}  # fmt: skip
    from sagelab.definition import parse
    from sagelab.engines.local import LocalEngine

    steps = [
        {"Name": "Model", "Type": "Model", "Arguments": {"ExecutionRoleArn": ROLE, "PrimaryContainer": model}},
        {"Name": "Score", "Type": "Transform", "Arguments": {
            "ModelName": {"Get": "Steps.Model.ModelName"},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{BUCKET}/batch/"}}},
            "TransformOutput": {"S3OutputPath": f"{BUCKET}/scored"},
            "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"}}},
    ]  # fmt: skip
    execution = LocalEngine(settings(project)).start(parse(definition(*steps)), "requirements", {})
    reason = str(execution.steps["Score"].failure_reason)
    assert execution.status == "Failed" and "requirements.txt: pip could not install it" in reason, reason
    assert "No matching distribution found for no-such-probe==1" in reason
    assert built(offline) == []
