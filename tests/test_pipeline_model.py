"""Pipeline models (several containers a request runs through) and the containers' default handlers.

A scikit-learn preprocessing container with its own inference.py, then the built-in XGBoost
algorithm's container with its default handlers: registered by a RegisterModel step, served
with `sagelab deploy`/`invoke`/`serve` and batch-transformed by Model and Transform steps, each
answer compared with the same chain computed by hand. Servers are real processes on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from conftest import SAGELAB, definition, sagelab
from sagelab.errors import EndpointError, ModelError
from sagelab.serving.handlers import InferenceHandler
from sagelab.serving.pipeline_model import ContainerModel, PipelineModel
from sagelab.serving.protocol import ServingSettings

xgb = pytest.importorskip("xgboost")

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"
BUCKET = "s3://sagemaker-us-east-1-000000000000"
ROLE = "arn:aws:iam::000000000000:role/R"
PREPROCESS = '''
    """The preprocessing container: CSV rows in, scaled rows out (as SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT asks)."""
    import os

    import joblib
    import numpy as np

    from helpers import parse_rows


    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))


    def input_fn(input_data, content_type):
        if content_type != "text/csv":
            raise ValueError(f"{content_type} is not supported: send text/csv")
        return parse_rows(input_data)


    def predict_fn(data, model):
        return model.transform(data)
'''
HELPERS = '''
    import numpy as np


    def parse_rows(text):
        return np.array([[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()])
'''


# -- models made here: a scaler and a booster -------------------------------------------------


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def joblib_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    return buffer.getvalue()


class Models:
    """The two models of the chain, and what the chain answers for some rows."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        features = rng.normal(size=(300, 4)) * [10, 2, 5, 1] + [50, 0, 20, 3]
        labels = (features[:, 0] + 5 * features[:, 1] > 50).astype(float)
        self.scaler = StandardScaler().fit(features)
        self.booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(self.scaler.transform(features), label=labels), 8)
        self.rows = features[:5].round(4)

    def expected(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.booster.predict(xgb.DMatrix(self.scaler.transform(rows))))

    def booster_bytes(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))

    @staticmethod
    def csv(rows: np.ndarray[Any, Any]) -> str:
        return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


@pytest.fixture(scope="module")
def models() -> Models:
    return Models()


@pytest.fixture
def uploaded(project: Path, models: Models) -> dict[str, Any]:
    """The two containers, their model data and code uploaded to the project's store.

    The models are made here, with sagelab's own packages (numpy 2, scikit-learn 1.9), so they are
    served with those (environment = "host"), not the scikit-learn 1.2-1 image's, which cannot
    unpickle them (nor could the image on SageMaker).
    """
    from sagelab.config import load_settings
    from sagelab.store import LocalStore

    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + 'environment = "host"\n')

    store = LocalStore(load_settings(project).store)
    store.create_bucket(BUCKET.removeprefix("s3://"))
    store.put_bytes(f"{BUCKET}/pre/model.tar.gz", tar_gz({"model.joblib": joblib_bytes(models.scaler)}))
    code = {"inference.py": textwrap.dedent(PREPROCESS).encode(), "helpers.py": textwrap.dedent(HELPERS).encode()}
    store.put_bytes(f"{BUCKET}/pre/sourcedir.tar.gz", tar_gz(code))
    store.put_bytes(f"{BUCKET}/xgb/model.tar.gz", tar_gz({"xgboost-model": models.booster_bytes()}))
    preprocess = {
        "Image": SKLEARN_IMAGE,
        "ModelDataUrl": f"{BUCKET}/pre/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"{BUCKET}/pre/sourcedir.tar.gz",
                        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},
    }  # fmt: skip
    model = {"Image": XGBOOST_IMAGE, "ModelDataUrl": f"{BUCKET}/xgb/model.tar.gz"}
    return {"store": store, "containers": [preprocess, model]}



def run_steps(project: Path, *steps: dict[str, Any]) -> Any:
    from sagelab.config import load_settings
    from sagelab.definition import parse
    from sagelab.engines.local import LocalEngine

    execution = LocalEngine(load_settings(project)).start(parse(definition(*steps)), "chain", {})
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    return execution


def register_step(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Name": "Register", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "churn",
        "InferenceSpecification": {"Containers": containers, "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["text/csv", "application/json"],
                                   "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
                                   "SupportedTransformInstanceTypes": ["ml.m5.large"]},
        "ModelApprovalStatus": "Approved"}}  # fmt: skip


@pytest.fixture
def endpoints(project: Path) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        sagelab("endpoints", "delete", name, cwd=project, check=False)


# -- a registered pipeline model: register, show, deploy, invoke, serve -------------------------


def test_a_registered_pipeline_model_serves_the_chain(project: Path, uploaded: dict[str, Any], models: Models,
                                                       endpoints: list[str]) -> None:  # fmt: skip
    run_steps(project, register_step(uploaded["containers"]))
    shown = sagelab("models", "show", "churn/1", cwd=project).stdout
    assert "container 1 of 2" in shown and "container 2 of 2" in shown
    assert "sagemaker-scikit-learn:1.2-1" in shown and "sagemaker-xgboost:1.7-1" in shown and "program     inference.py" in shown

    endpoints.append("churn")
    deployed = sagelab("deploy", "churn", "--name", "churn", cwd=project).stdout
    assert "serves churn/1" in deployed
    expected = models.expected(models.rows)
    as_csv = sagelab("invoke", "churn", "--body", models.csv(models.rows), cwd=project).stdout  # Accept: none, so XGBoost's text/csv
    assert np.allclose([float(v) for v in as_csv.split()], expected, atol=1e-6)
    as_json = sagelab("invoke", "churn", "--body", models.csv(models.rows[:1]), "--accept", "application/json", cwd=project).stdout
    assert np.allclose(json.loads(as_json), expected[:1], atol=1e-6)

    # the first container refuses JSON: its status, naming the container
    refused = sagelab("invoke", "churn", "--body", "[[1, 2, 3, 4]]", "--content-type", "application/json", cwd=project, check=False)
    assert refused.returncode == 1
    assert "container 1 of 2, container-1 (sagemaker-scikit-learn:1.2-1-cpu-py3) answered 500" in refused.stdout
    assert "application/json is not supported: send text/csv" in refused.stdout

    # `sagelab serve GROUP/VERSION` in the foreground: the same chain
    with ForegroundServer(project, "churn/1") as port:
        status, content_type, body = post(port, models.csv(models.rows[:2]).encode(), "text/csv")
        assert status == 200 and content_type == "text/csv"
        assert np.allclose([float(v) for v in body.split()], expected[:2], atol=1e-6)


def test_a_failing_container_answers_its_status_and_is_named(project: Path, uploaded: dict[str, Any], models: Models,
                                                              endpoints: list[str]) -> None:  # fmt: skip
    """Without SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT the preprocessor answers JSON, which the XGBoost container refuses."""
    preprocess, model = uploaded["containers"]
    preprocess = {**preprocess, "Environment": {k: v for k, v in preprocess["Environment"].items() if k != "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"}}
    preprocess["ContainerHostname"], model = "scale", {**model, "ContainerHostname": "score"}
    run_steps(project, register_step([preprocess, model]))
    with ForegroundServer(project, "churn/1") as port:
        status, _, body = post(port, models.csv(models.rows[:1]).encode(), "text/csv")
    assert status == 415
    assert body.decode().startswith("container 2 of 2, score (sagemaker-xgboost:1.7-1) answered 415: content type application/json")


# -- Model and Transform steps: batch transform through the chain, and Direct mode -----------


def test_model_and_transform_steps_run_the_chain(project: Path, uploaded: dict[str, Any], models: Models) -> None:
    store = uploaded["store"]
    store.put_bytes(f"{BUCKET}/batch/part-1.csv", (models.csv(models.rows[:3]) + "\n").encode())
    store.put_bytes(f"{BUCKET}/batch/part-2.csv", (models.csv(models.rows[3:]) + "\n").encode())
    model = {"Name": "Model", "Type": "Model", "Arguments": {
        "ExecutionRoleArn": ROLE, "Containers": uploaded["containers"], "InferenceExecutionConfig": {"Mode": "Serial"}}}
    transform = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": {"Get": "Steps.Model.ModelName"},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{BUCKET}/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"{BUCKET}/scored", "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        "BatchStrategy": "MultiRecord"}}  # fmt: skip
    run_steps(project, model, transform)
    scored = [float(v) for part in ("part-1", "part-2") for v in store.get_bytes(f"{BUCKET}/scored/{part}.csv.out").split()]
    assert np.allclose(scored, models.expected(models.rows), atol=1e-6)


def test_direct_mode_invokes_the_named_container(project: Path, uploaded: dict[str, Any], models: Models, endpoints: list[str]) -> None:
    preprocess, model = ({**c, "ContainerHostname": name} for c, name in zip(uploaded["containers"], ("scale", "score")))
    steps = [
        {"Name": "Model", "Type": "Model", "Arguments": {"ModelName": "churn-direct", "ExecutionRoleArn": ROLE,
                                                          "Containers": [preprocess, model], "InferenceExecutionConfig": {"Mode": "Direct"}}},
        {"Name": "Config", "Type": "EndpointConfig", "Arguments": {"EndpointConfigName": "churn-direct", "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": {"Get": "Steps.Model.ModelName"}, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]}},
        {"Name": "Deploy", "Type": "Endpoint", "Arguments": {"EndpointName": "churn-direct", "EndpointConfigName": {"Get": "Steps.Config.EndpointConfigName"}}},
    ]  # fmt: skip
    endpoints.append("churn-direct")
    run_steps(project, *steps)
    scaled = sagelab("invoke", "churn-direct", "--body", models.csv(models.rows[:1]), "--target-container", "scale", cwd=project).stdout
    assert np.allclose([float(v) for v in scaled.split(",")], models.scaler.transform(models.rows[:1])[0], atol=1e-9)
    scored = sagelab("invoke", "churn-direct", "--body", scaled.strip(), "--target-container", "score", cwd=project).stdout
    assert np.allclose(float(scored), models.expected(models.rows[:1])[0], atol=1e-6)
    unnamed = sagelab("invoke", "churn-direct", "--body", "1,2,3,4", cwd=project, check=False)
    assert unnamed.returncode == 1 and "Direct mode" in unnamed.stdout and "scale, score" in unnamed.stdout


def test_a_model_made_from_a_registered_version_has_its_containers(project: Path, uploaded: dict[str, Any]) -> None:
    """CreateModel Containers=[{"ModelPackageName": ARN}] (the SDK's ModelPackage) stands for the version's containers."""
    from sagelab.config import load_settings
    from sagelab.engines.local.deploy import expand_packages, open_registry

    settings = load_settings(project)
    registry = open_registry(settings)
    package = registry.register({**register_step(uploaded["containers"])["Arguments"], "ModelPackageGroupName": "Churn-Model"})
    registry.close()
    expanded = expand_packages(settings, [{"ModelPackageName": package.arn, "Environment": {"EXTRA": "1"}}])
    assert [c["Image"] for c in expanded] == [SKLEARN_IMAGE, XGBOOST_IMAGE]  # the ARN lower-cases the group's name
    assert all(c["Environment"]["EXTRA"] == "1" for c in expanded)
    with pytest.raises(EndpointError, match="no model package group 'nope'"):
        expand_packages(settings, [{"ModelPackageName": "arn:aws:sagemaker:us-east-1:000000000000:model-package/nope/1"}])


def test_the_image_picks_the_default_handlers(project: Path) -> None:
    from sagelab.engines.local.deploy import serving_environment

    sklearn = serving_environment({"Image": SKLEARN_IMAGE})
    assert sklearn.pop("PYTHONPATH").endswith("containers_toolkit")  # the image's helper packages, for inference.py
    assert sklearn == {"SAGELAB_SERVING_FRAMEWORK": "sklearn", "SAGELAB_SERVING_IMAGE": SKLEARN_IMAGE}
    assert serving_environment({"Image": PYTORCH_IMAGE})["SAGELAB_SERVING_FRAMEWORK"] == "pytorch"
    assert serving_environment({"Image": "my-registry.example.com/team/server:1", "Environment": {"A": "1"}}) == {"A": "1"}
    with pytest.raises(EndpointError, match="tensorflow-inference:2.13.0 is a tensorflow image, whose inference container sagelab does not emulate"):
        serving_environment({"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.13.0-cpu"})


# -- containers keep their own module namespace and environment ------------------------------


def test_each_container_has_its_own_inference_py_helpers_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two containers whose inference.py import a `helpers` of their own and read their own variable."""
    monkeypatch.setenv("SAGELAB_MODEL_CACHE", str(tmp_path / "cache"))
    code = '''
        import os

        from helpers import step


        def model_fn(model_dir):
            return float(os.environ["FACTOR"])


        def transform_fn(factor, data, content_type, accept):
            return f"{step(float(data), factor)}\\n", "text/csv"
    '''
    containers = []
    for name, operation in (("add", "value + factor"), ("times", "value * factor")):
        folder = tmp_path / name
        (folder / "code").mkdir(parents=True)
        (folder / "code" / "inference.py").write_text(textwrap.dedent(code))
        (folder / "code" / "helpers.py").write_text(f"def step(value, factor):\n    return {operation}\n")
        containers.append(ContainerModel(name, str(folder), {"FACTOR": "3" if name == "add" else "10"}))
    description = PipelineModel(tuple(containers)).save(tmp_path / "pipeline.json")
    server = ModelServer(description, tmp_path, env={"SAGEMAKER_PROGRAM": "elsewhere.py"})  # the front's, not theirs
    with server as port:
        assert post(port, b"1", "text/csv") == (200, "text/csv", b"40.0\n")  # (1 + 3) * 10
        # a container whose server dies takes the model down: the front stops, saying which
        log = server.running.log.read_text()
        os.kill(int(log.split("container times: pid ")[1].split()[0]), signal.SIGKILL)
        assert server.running.process.wait(30) == 1
    assert "the server of container times exited with code -9" in server.running.log.read_text()


# -- default handlers chosen by the image ----------------------------------------------------


def test_the_scikit_learn_container_has_no_default_model_fn(tmp_path: Path, models: Models) -> None:
    joblib.dump(models.scaler, tmp_path / "model.joblib")
    InferenceHandler(tmp_path, ServingSettings(framework="sklearn")).load()  # a bare folder: the local convenience loads it
    with pytest.raises(ModelError, match="the sklearn container .*sagemaker-scikit-learn:1.2-1.* has no default model_fn"):
        InferenceHandler(tmp_path, ServingSettings(framework="sklearn", image=SKLEARN_IMAGE))


def test_xgboost_framework_mode_uses_the_users_model_fn_and_the_container_defaults(tmp_path: Path, models: Models,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    (tmp_path / "booster.ubj").write_bytes(models.booster_bytes())
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "serve.py").write_text(
        "import os\nimport xgboost\n\ndef model_fn(model_dir):\n"
        "    booster = xgboost.Booster()\n    booster.load_model(os.path.join(model_dir, 'booster.ubj'))\n    return booster\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading the module puts code/ on sys.path and `serve` in sys.modules
    monkeypatch.setitem(sys.modules, "serve", None)
    settings = ServingSettings(program="serve.py", framework="xgboost", image=XGBOOST_IMAGE)
    handler = InferenceHandler(tmp_path, settings).load()
    scaled = models.scaler.transform(models.rows[:2])
    reply = handler.invoke(Models.csv(scaled).encode(), "text/csv", None)
    assert reply.content_type == "application/json"  # framework mode answers JSON unless asked otherwise
    assert np.allclose(json.loads(reply.body), models.expected(models.rows[:2]), atol=1e-6)
    assert handler.handle(Models.csv(scaled).encode(), "text/csv", "text/libsvm").status == 406  # JSON, CSV or NPY only
    (tmp_path / "code" / "serve.py").write_text("def input_fn(data, content_type):\n    return data\n")
    with pytest.raises(ModelError, match="has no default model_fn"):
        InferenceHandler(tmp_path, settings)


def test_pytorch_default_handlers_serve_a_torchscript_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=-1))
    with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript, which the PyTorch container loads
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(network).save(str(tmp_path / "model.pt"))
    rows = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]
    with torch.no_grad():
        expected = network(torch.tensor(rows)).numpy()
    env = {"SAGELAB_SERVING_FRAMEWORK": "pytorch", "SAGELAB_SERVING_IMAGE": PYTORCH_IMAGE}
    with ModelServer(tmp_path, tmp_path, env=env) as port:
        status, content_type, body = post(port, json.dumps(rows).encode(), "application/json")
        assert (status, content_type) == (200, "application/json") and np.allclose(json.loads(body), expected, atol=1e-6)
        status, content_type, body = post(port, b"0.5,-1.0,2.0\n1.5,0.0,-0.5", "text/csv", "text/csv")
        assert status == 200 and np.allclose(np.loadtxt(io.StringIO(body.decode()), delimiter=","), expected, atol=1e-6)
        array = io.BytesIO()
        np.save(array, np.asarray(rows, dtype=np.float32))
        status, content_type, body = post(port, array.getvalue(), "application/x-npy", "application/x-npy")
        assert content_type == "application/x-npy" and np.allclose(np.load(io.BytesIO(body)), expected, atol=1e-6)
        assert post(port, b"0 1:1", "text/libsvm")[0] == 415
    (tmp_path / "model.pt").rename(tmp_path / "weights.bin")
    with pytest.raises(ModelError, match=r"Exactly one \.pth or \.pt file is required"):
        InferenceHandler(tmp_path, ServingSettings(framework="pytorch", image=PYTORCH_IMAGE)).load()


# -- helpers: real servers -------------------------------------------------------------------


def post(port: int, body: bytes, content_type: str, accept: str | None = None) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


class _Running:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def __enter__(self) -> _Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with code {process.returncode}:\n{log.read_text()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    process.kill()
    raise AssertionError(f"the server did not answer /ping:\n{log.read_text()}")


class ForegroundServer:
    """`sagelab serve REFERENCE --port P` in the project; yields P once /ping answers."""

    def __init__(self, project: Path, reference: str) -> None:
        self.project, self.reference = project, reference

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = self.project / "serve.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([SAGELAB, "serve", self.reference, "--port", str(port)], cwd=self.project,
                                       stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.running = _Running(process, log)
        _wait_for_ping(port, process, log)
        return port

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)


class ModelServer:
    """`python -m sagelab.serving MODEL --port 0`; yields its port once it is ready."""

    def __init__(self, model: Path, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.model, self.tmp_path, self.env = model, tmp_path, env or {}

    def __enter__(self) -> int:
        ready, log = self.tmp_path / "server.ready", self.tmp_path / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "sagelab.serving", str(self.model), "--port", "0", "--ready-file", str(ready)],
                                       stdout=out, stderr=subprocess.STDOUT,
                                       env={**os.environ, "SAGELAB_MODEL_CACHE": str(self.tmp_path / "cache"), **self.env})  # fmt: skip
        self.running = _Running(process, log)
        deadline = time.time() + 90
        while not ready.exists():
            if process.poll() is not None or time.time() > deadline:
                self.running.__exit__()
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.02)
        return int(json.loads(ready.read_text())["port"])

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)


@pytest.mark.parametrize(("hostnames", "reason"), [
    (["../../escape", "score"], "ContainerHostname '../../escape' is not a valid hostname"),
    (["same", "same"], "ContainerHostname 'same' is used by two containers"),
])  # fmt: skip
def test_container_hostnames_are_checked_before_anything_is_fetched(project: Path, hostnames: list[str], reason: str) -> None:
    from sagelab.config import load_settings
    from sagelab.engines.local.deploy import materialize_all
    from sagelab.store import LocalStore

    settings = load_settings(project)
    containers = [{"Image": SKLEARN_IMAGE, "ContainerHostname": name, "ModelDataUrl": "s3://test-bucket/missing.tar.gz"} for name in hostnames]
    with pytest.raises(EndpointError, match=re.escape(reason)):
        materialize_all(LocalStore(settings.store), settings, containers)
