"""`sagelab api`'s hosting and sagemaker-runtime: models, endpoint configs and endpoints through boto3, InvokeEndpoint, and
`%sagelab local` in a kernel driving the SageMaker SDK's `deploy()` and `predict()`.

Endpoints are real servers on 127.0.0.1 (the ones `sagelab deploy` starts). The `hosted` fixture checks every answer
against botocore's output shape of its operation (SageMaker's and sagemaker-runtime's), and when the test ends deletes
every endpoint it left and checks that no endpoint process outlived it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from sklearn.linear_model import LinearRegression

from conftest import sagelab, surviving_processes
from sagelab.awsapi import ApiServer
from sagelab.awsapi.auth import credentials
from sagelab.awsapi.operations import served
from sagelab.config import load_settings
from test_awsapi import ROLE, ROOT, Api, check_conformance, until

IMAGE = "local/sklearn-serving:1"  # not a SageMaker image: the server serves model.joblib with scikit-learn's default handlers
ACCOUNT = "000000000000"
ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
ROWS = [[1.0, 2.0], [3.0, 4.0]]


def archive(path: Path, model: Any, code: str | None = None) -> Path:
    """A model.tar.gz holding model.joblib (or, given bytes, a model.joblib no one can load), and `code` as code/inference.py."""
    buffer = io.BytesIO()
    if isinstance(model, bytes):
        buffer.write(model)
    else:
        joblib.dump(model, buffer)
    members = {"model.joblib": buffer.getvalue(), **({"code/inference.py": code.encode()} if code is not None else {})}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def linear(weights: tuple[float, float]) -> LinearRegression:
    """A model that answers weights · row exactly."""
    features = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 3.0]])
    return LinearRegression().fit(features, features @ np.array(weights))


@pytest.fixture
def hosted(project: Path) -> Iterator[Api]:
    """The local API over a fresh project; afterwards no endpoint is left running and every answer fits its output shape."""
    from sagelab.api.local_hosting import LocalHosting, wait_for_deployments

    settings = load_settings(project)
    found = Api("", settings, credentials(settings.state_dir))
    server = ApiServer(settings, 0, observers=(lambda *answer: found.responses.append(answer),))
    found.endpoint = server.start()
    try:
        yield found
    finally:
        server.stop()
        assert wait_for_deployments(timeout=180)
        for state in LocalHosting(settings).endpoints():
            LocalHosting(settings).delete_endpoint(state.name)
    assert surviving_processes(settings.state_dir) == []
    check_conformance(found.responses)


def upload(api: Api, path: Path, key: str) -> str:
    api.client("s3").upload_file(str(path), "models", key)
    return f"s3://models/{key}"


def model_and_config(api: Api, name: str, data: str, variant: str = "AllTraffic") -> None:
    sm = api.client()
    sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data}, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": variant, "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])  # fmt: skip


def in_service(sm: Any, name: str) -> dict[str, Any]:
    """DescribeEndpoint once boto3's `endpoint_in_service` waiter (as the SDK waits) has seen it InService."""
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    return sm.describe_endpoint(EndpointName=name)  # type: ignore[no-any-return]


def predictions(runtime: Any, name: str, body: bytes, content_type: str, **extra: str) -> tuple[list[float], dict[str, Any]]:
    answer = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType=content_type, Accept="application/json", **extra)
    return json.loads(answer["Body"].read()), answer


def cli_endpoints(api: Api) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in json.loads(sagelab("endpoints", "--json", cwd=api.settings.root).stdout)}


def port_open(url: str) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) == 0


def test_create_invoke_update_and_delete_an_endpoint_with_boto3(hosted: Api, tmp_path: Path) -> None:
    sm, runtime = hosted.client(), hosted.client("sagemaker-runtime")
    model_and_config(hosted, "adder", upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz"))
    described_model = sm.describe_model(ModelName="adder")
    assert described_model["ModelArn"] == f"{ARN}:model/adder" and described_model["PrimaryContainer"]["Image"] == IMAGE
    assert sm.describe_endpoint_config(EndpointConfigName="adder-config")["ProductionVariants"][0]["ModelName"] == "adder"

    assert sm.create_endpoint(EndpointName="adder", EndpointConfigName="adder-config")["EndpointArn"] == f"{ARN}:endpoint/adder"
    assert sm.describe_endpoint(EndpointName="adder")["EndpointStatus"] == "Creating"  # answered before the endpoint serves
    described = in_service(sm, "adder")
    assert described["EndpointConfigName"] == "adder-config" and described["CreationTime"] <= described["LastModifiedTime"]
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic" and variant["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert variant["CurrentInstanceCount"] == 1 and "FailureReason" not in described

    # sagemaker-runtime, CSV and JSON in; the endpoint's own server answers
    values, answer = predictions(runtime, "adder", b"1,2\n3,4", "text/csv")
    assert np.allclose(values, [5.0, 11.0]) and answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    values, _ = predictions(runtime, "adder", json.dumps(ROWS[:1]).encode(), "application/json", TargetVariant="AllTraffic",
                            CustomAttributes="trace=1")  # fmt: skip
    assert np.allclose(values, [5.0])
    as_csv = runtime.invoke_endpoint(EndpointName="adder", Body=b"1,2", ContentType="text/csv", Accept="text/csv")
    assert as_csv["ContentType"].startswith("text/csv") and np.isclose(float(as_csv["Body"].read().decode().strip()), 5.0)
    with pytest.raises(ClientError) as model_error:  # the model refuses what it cannot read: ModelError, with the model's own answer
        runtime.invoke_endpoint(EndpointName="adder", Body=b"not,numbers", ContentType="text/csv")
    error = model_error.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert 400 <= error["OriginalStatusCode"] < 500 and error["OriginalMessage"]
    assert error["Error"]["Message"].startswith(f"Received client error ({error['OriginalStatusCode']}) from primary with message \"")
    assert error["LogStreamArn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/adder"
    with pytest.raises(ClientError) as no_variant:
        runtime.invoke_endpoint(EndpointName="adder", Body=b"1,2", ContentType="text/csv", TargetVariant="Canary")
    assert no_variant.value.response["Error"]["Code"] == "ValidationError" and "Canary" in str(no_variant.value)

    # the CLI sees the endpoint, and reaches it as `sagelab invoke` always has
    listed = cli_endpoints(hosted)["adder"]
    assert (listed["status"], listed["model"], listed["endpoint_config"]) == ("InService", "adder", "adder-config")
    invoked = sagelab("invoke", "adder", "--body", "3,4", "--content-type", "text/csv", cwd=hosted.settings.root).stdout
    assert np.allclose(json.loads(invoked), [11.0])

    # an update: another model, the same port; the endpoint is Updating, then InService on the new config
    model_and_config(hosted, "doubler", upload(hosted, archive(tmp_path / "d.tar.gz", linear((2, 0))), "doubler/model.tar.gz"), "Doubler")
    assert sm.update_endpoint(EndpointName="adder", EndpointConfigName="doubler-config")["EndpointArn"] == f"{ARN}:endpoint/adder"
    assert sm.describe_endpoint(EndpointName="adder")["EndpointStatus"] == "Updating"
    with pytest.raises(ClientError) as busy:
        sm.update_endpoint(EndpointName="adder", EndpointConfigName="adder-config")
    assert busy.value.response["Error"]["Message"] == f'Cannot update in-progress endpoint "{ARN}:endpoint/adder".'
    assert in_service(sm, "adder")["EndpointConfigName"] == "doubler-config"
    assert np.allclose(predictions(runtime, "adder", b"1,2", "text/csv")[0], [2.0])
    assert cli_endpoints(hosted)["adder"]["url"] == listed["url"]

    # deleting the config and the model in use is allowed, as on SageMaker: the endpoint keeps serving
    sm.delete_endpoint_config(EndpointConfigName="doubler-config")
    sm.delete_model(ModelName="doubler")
    values, answer = predictions(runtime, "adder", b"3,4", "text/csv", TargetVariant="Doubler")
    assert np.allclose(values, [6.0]) and answer["InvokedProductionVariant"] == "Doubler"
    assert sm.describe_endpoint(EndpointName="adder")["ProductionVariants"][0]["VariantName"] == "Doubler"
    sm.delete_endpoint(EndpointName="adder")
    with pytest.raises(ClientError) as gone:
        sm.describe_endpoint(EndpointName="adder")
    assert gone.value.response["Error"] == {"Code": "ValidationException", "Message": f'Could not find endpoint "{ARN}:endpoint/adder".'}
    assert "adder" not in cli_endpoints(hosted) and not port_open(listed["url"])
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["adder"]  # an endpoint's deletion leaves its model


def test_hosting_errors_are_sagemakers(hosted: Api, tmp_path: Path) -> None:
    sm, runtime = hosted.client(), hosted.client("sagemaker-runtime")
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    model_and_config(hosted, "adder", data)

    def refused(call: Any, **request: Any) -> dict[str, str]:
        with pytest.raises(ClientError) as caught:
            call(**request)
        return caught.value.response["Error"]  # type: ignore[no-any-return]

    assert refused(sm.describe_endpoint, EndpointName="nowhere") == {"Code": "ValidationException",
                                                                    "Message": f'Could not find endpoint "{ARN}:endpoint/nowhere".'}  # fmt: skip
    assert refused(sm.describe_model, ModelName="nowhere")["Message"] == f'Could not find model "{ARN}:model/nowhere".'
    assert refused(sm.delete_model, ModelName="nowhere")["Message"] == f'Could not find model "{ARN}:model/nowhere".'
    assert refused(sm.describe_endpoint_config, EndpointConfigName="nowhere")["Message"] == (
        f'Could not find endpoint configuration "{ARN}:endpoint-config/nowhere".')  # fmt: skip
    assert refused(sm.delete_endpoint, EndpointName="nowhere")["Message"] == f'Could not find endpoint "{ARN}:endpoint/nowhere".'
    assert refused(sm.create_model, ModelName="adder", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data})["Message"] == (
        f'Cannot create already existing model "{ARN}:model/adder".')  # fmt: skip
    assert refused(sm.create_model, ModelName="lost", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://models/lost.tar.gz"})[
        "Message"] == "Could not find model data at s3://models/lost.tar.gz."  # fmt: skip
    variants = [{"VariantName": "AllTraffic", "ModelName": "adder", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]
    assert refused(sm.create_endpoint_config, EndpointConfigName="adder-config", ProductionVariants=variants)["Message"] == (
        f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/adder-config".')  # fmt: skip
    assert refused(sm.create_endpoint_config, EndpointConfigName="other", ProductionVariants=[{**variants[0], "ModelName": "nowhere"}])[
        "Message"] == f'Could not find model "{ARN}:model/nowhere".'  # fmt: skip
    assert refused(sm.create_endpoint, EndpointName="e", EndpointConfigName="nowhere")["Message"] == (
        f'Could not find endpoint configuration "{ARN}:endpoint-config/nowhere".')  # fmt: skip
    assert refused(runtime.invoke_endpoint, EndpointName="nowhere", Body=b"1,2", ContentType="text/csv") == {
        "Code": "ValidationError", "Message": f"Endpoint nowhere of account {ACCOUNT} not found."}  # fmt: skip

    # a model its server cannot load: the endpoint is Creating, then Failed with the reason; deleting waits for the end
    sm.create_model(ModelName="broken", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": upload(hosted, archive(
        tmp_path / "b.tar.gz", b"not a joblib file"), "broken/model.tar.gz")})  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="broken-config", ProductionVariants=[{**variants[0], "ModelName": "broken"}])
    sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken-config")
    assert refused(sm.create_endpoint, EndpointName="broken", EndpointConfigName="adder-config")["Message"] == (
        f'Cannot create already existing endpoint "{ARN}:endpoint/broken".')  # fmt: skip
    assert refused(sm.delete_endpoint, EndpointName="broken")["Message"].startswith(f'Cannot delete in-progress endpoint "{ARN}:endpoint/broken"')
    assert "is Creating" in refused(runtime.invoke_endpoint, EndpointName="broken", Body=b"1,2", ContentType="text/csv")["Message"]
    with pytest.raises(WaiterError):  # the waiter's failure state, as for a failed SageMaker endpoint
        in_service(sm, "broken")
    failed = sm.describe_endpoint(EndpointName="broken")
    assert failed["EndpointStatus"] == "Failed" and "did not start broken" in failed["FailureReason"] and "ProductionVariants" not in failed
    assert refused(sm.update_endpoint, EndpointName="broken", EndpointConfigName="adder-config")["Code"] == "ValidationException"
    assert cli_endpoints(hosted)["broken"]["status"] == "Failed"
    sm.delete_endpoint(EndpointName="broken")
    assert sm.list_endpoints()["Endpoints"] == []


def test_production_variants_split_traffic_by_weight_and_answer_a_target_variant(hosted: Api, tmp_path: Path) -> None:
    """Two variants (an adder, weight 3, and a doubler, weight 1), each a server of its own; InvokeEndpoint draws one by weight,
    names it in x-Amzn-Invoked-Production-Variant, and honours TargetVariant."""
    sm, runtime = hosted.client(), hosted.client("sagemaker-runtime")
    model_and_config(hosted, "adder", upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz"))
    model_and_config(hosted, "doubler", upload(hosted, archive(tmp_path / "d.tar.gz", linear((2, 0))), "doubler/model.tar.gz"))
    variants = [{"VariantName": "Main", "ModelName": "adder", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": 3.0},
                {"VariantName": "Canary", "ModelName": "doubler", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                 "InitialVariantWeight": 1.0}]  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="split", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="split", EndpointConfigName="split")
    described = in_service(sm, "split")["ProductionVariants"]
    assert [(v["VariantName"], v["CurrentWeight"]) for v in described] == [("Main", 3.0), ("Canary", 1.0)]
    assert described[1]["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    answered: dict[str, int] = {"Main": 0, "Canary": 0}
    for _ in range(400):
        values, answer = predictions(runtime, "split", b"1,1", "text/csv")
        answered[answer["InvokedProductionVariant"]] += 1
        assert np.allclose(values, [3.0] if answer["InvokedProductionVariant"] == "Main" else [2.0])  # each variant's own model answered
    assert 0.65 < answered["Main"] / 400 < 0.85  # 0.75 expected; binomial sd 0.022
    for _ in range(5):
        values, answer = predictions(runtime, "split", b"1,1", "text/csv", TargetVariant="Canary")
        assert answer["InvokedProductionVariant"] == "Canary" and np.allclose(values, [2.0])
    root = hosted.settings.root
    assert json.loads(sagelab("invoke", "split", "--body", "1,1", "--accept", "application/json", "--target-variant", "Canary", cwd=root).stdout) == [2.0]
    unknown = sagelab("invoke", "split", "--body", "1,1", "--target-variant", "Nope", cwd=root, check=False)
    assert unknown.returncode == 1 and "no production variant 'Nope'; it has Main, Canary" in unknown.stderr and "Traceback" not in unknown.stderr
    sm.delete_endpoint(EndpointName="split")
    assert not any((hosted.settings.state_dir / "endpoints" / "split" / "variants" / "Canary").glob("state.json"))


def async_endpoint(sm: Any, name: str, model: str, output: dict[str, str], client: dict[str, int] | None = None) -> None:
    """An asynchronous endpoint `name` (and its config) serving `model` on one instance, once InService."""
    config = {"OutputConfig": output, **({"ClientConfig": client} if client else {})}
    sm.create_endpoint_config(EndpointConfigName=name, AsyncInferenceConfig=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])  # fmt: skip
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    in_service(sm, name)


def test_an_async_endpoint_reads_its_input_from_s3_and_writes_the_answer_where_it_said(hosted: Api, tmp_path: Path) -> None:
    sm, runtime, s3 = hosted.client(), hosted.client("sagemaker-runtime"), hosted.client("s3")
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    sm.create_model(ModelName="adder", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data}, ExecutionRoleArn=ROLE)
    async_endpoint(sm, "later", "adder", {"S3OutputPath": "s3://models/async-out", "S3FailurePath": "s3://models/async-failed"})
    s3.put_object(Bucket="models", Key="async-in/request.csv", Body=b"3,4")
    started = runtime.invoke_endpoint_async(EndpointName="later", InputLocation="s3://models/async-in/request.csv", ContentType="text/csv",
                                            Accept="application/json", InferenceId="req-1")  # fmt: skip
    assert started["ResponseMetadata"]["HTTPStatusCode"] == 202 and started["InferenceId"] == "req-1"
    assert started["OutputLocation"] == "s3://models/async-out/req-1.out"
    assert started["FailureLocation"] == "s3://models/async-failed/req-1-error.out"
    assert np.allclose(json.loads(outcome(s3, "async-out/req-1.out")), [11.0])
    assert "Endpoint nowhere of account" in refused_async(runtime, "nowhere")
    sm.delete_endpoint(EndpointName="later")


SLEEPY = """
import time


def predict_fn(data, model):
    time.sleep(float(data[0][0]))  # the first value: seconds to think
    return model.predict(data)
"""


def test_an_async_invocation_may_take_longer_than_a_real_time_one_but_not_longer_than_its_timeout(hosted: Api, tmp_path: Path) -> None:
    """InvokeEndpointAsync waits for the model up to InvocationTimeoutSeconds (15 minutes by default, where InvokeEndpoint waits 60 s);
    a model slower than that gets its request's failure written to the failure location."""
    sm, runtime, s3 = hosted.client(), hosted.client("sagemaker-runtime"), hosted.client("s3")
    model = archive(tmp_path / "slow.tar.gz", linear((1, 2)), SLEEPY)
    sm.create_model(ModelName="slow", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": upload(hosted, model, "slow/model.tar.gz")},
                    ExecutionRoleArn=ROLE)  # fmt: skip
    async_endpoint(sm, "slow", "slow", {"S3OutputPath": "s3://models/slow-out", "S3FailurePath": "s3://models/slow-failed"})
    s3.put_object(Bucket="models", Key="slow-in/request.csv", Body=b"3,0")

    runtime.invoke_endpoint_async(EndpointName="slow", InputLocation="s3://models/slow-in/request.csv", ContentType="text/csv",
                                  Accept="application/json", InferenceId="patient")  # fmt: skip
    runtime.invoke_endpoint_async(EndpointName="slow", InputLocation="s3://models/slow-in/request.csv", ContentType="text/csv",
                                  InferenceId="hasty", InvocationTimeoutSeconds=1)  # fmt: skip
    assert b"did not answer within 1 s" in outcome(s3, "slow-failed/hasty-error.out")
    assert np.allclose(json.loads(outcome(s3, "slow-out/patient.out")), [3.0])
    sm.delete_endpoint(EndpointName="slow")


def outcome(s3: Any, key: str) -> bytes:
    """The object at s3://models/`key` once an asynchronous invocation has written it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return s3.get_object(Bucket="models", Key=key)["Body"].read()  # type: ignore[no-any-return]
        except ClientError:
            time.sleep(0.1)
    raise AssertionError(f"nothing at {key}")


PROBE = """
import os
import time
import uuid

import joblib
import numpy as np


def model_fn(model_dir):  # holds LOAD_MB MB for 30 s first, when told to
    if os.environ.get("LOAD_MB"):
        held = np.ones(int(os.environ["LOAD_MB"]) * 2**17)
        time.sleep(30)
        del held
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):  # thinks data[0][0] seconds holding data[0][1] MB, then answers how many invocations were in the model
    folder = os.environ["PROBE_FOLDER"]  # when this one came
    mine = os.path.join(folder, uuid.uuid4().hex)
    open(mine, "w").close()
    try:
        inside = len(os.listdir(folder))
        held = np.ones(int(data[0][1]) * 2**17)  # 2**17 float64 values: 1 MB
        time.sleep(float(data[0][0]))
        del held
        return [inside]
    finally:
        os.remove(mine)
"""


def probe_model(api: Api, tmp_path: Path, name: str, **environment: str) -> Path:
    """A model that tells how many invocations it holds at once, served by two workers; the folder where each leaves a file."""
    folder = tmp_path / f"{name}-inside"
    folder.mkdir()
    data = upload(api, archive(tmp_path / f"{name}.tar.gz", linear((1, 2)), PROBE), f"{name}/model.tar.gz")
    api.client().create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data,
        "Environment": {"PROBE_FOLDER": str(folder), "SAGEMAKER_MODEL_SERVER_WORKERS": "2", **environment}})  # fmt: skip
    return folder


def test_a_serverless_model_too_big_to_load_in_its_memory_size_fails_the_endpoint(hosted: Api, tmp_path: Path) -> None:
    sm = hosted.client()
    probe_model(hosted, tmp_path, "big", LOAD_MB="1200")
    sm.create_endpoint_config(EndpointConfigName="big", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "big", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])  # fmt: skip
    sm.create_endpoint(EndpointName="big", EndpointConfigName="big")
    with pytest.raises(WaiterError):
        in_service(sm, "big")
    described = sm.describe_endpoint(EndpointName="big")
    assert described["EndpointStatus"] == "Failed"
    assert "more than its serverless MemorySizeInMB (1024 MB), and was killed" in described["FailureReason"]
    assert "before it was ready" in described["FailureReason"]


def test_an_async_endpoint_queues_its_requests_and_sends_the_model_at_most_its_concurrency(hosted: Api, tmp_path: Path) -> None:
    """With MaxConcurrentInvocationsPerInstance 1, three requests sent together reach the model one at a time (its two workers
    would take two at once); each still gets its answer."""
    sm, runtime, s3 = hosted.client(), hosted.client("sagemaker-runtime"), hosted.client("s3")
    probe_model(hosted, tmp_path, "queued")
    async_endpoint(sm, "queued", "queued", {"S3OutputPath": "s3://models/queued-out"}, {"MaxConcurrentInvocationsPerInstance": 1})
    s3.put_object(Bucket="models", Key="queued-in/request.csv", Body=b"1,0")
    for index in range(3):
        runtime.invoke_endpoint_async(EndpointName="queued", InputLocation="s3://models/queued-in/request.csv", ContentType="text/csv",
                                      Accept="application/json", InferenceId=f"r{index}", RequestTTLSeconds=60)  # fmt: skip
    assert [json.loads(outcome(s3, f"queued-out/r{index}.out")) for index in range(3)] == [[1], [1], [1]]
    sm.delete_endpoint(EndpointName="queued")


def test_a_serverless_variant_throttles_past_its_max_concurrency_and_is_restarted_past_its_memory_size(hosted: Api, tmp_path: Path) -> None:
    """MaxConcurrency 1: while one invocation is in the model, another gets ThrottlingException (400, which boto3 retries);
    once it has answered, the next one is served. MemorySizeInMB 1024: a request that makes the model hold 1.2 GB fails,
    the server is killed and started again (`sagelab endpoints` says why), and the endpoint serves again."""
    sm, s3 = hosted.client(), hosted.client("s3")
    runtime = hosted.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))  # see the throttle, not boto3's retries
    inside = probe_model(hosted, tmp_path, "lambda")
    sm.create_endpoint_config(EndpointConfigName="lambda", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "lambda", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])  # fmt: skip
    sm.create_endpoint(EndpointName="lambda", EndpointConfigName="lambda")
    in_service(sm, "lambda")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(predictions, runtime, "lambda", b"3,0", "text/csv")
        until(lambda: list(inside.iterdir()) or first.done())
        with pytest.raises(ClientError) as caught:
            predictions(runtime, "lambda", b"0,0", "text/csv")
        assert first.result()[0] == [1]
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException" and error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "MaxConcurrency of 1" in error["Error"]["Message"]
    assert predictions(runtime, "lambda", b"0,0", "text/csv")[0] == [1]

    with pytest.raises(ClientError) as caught:
        predictions(runtime, "lambda", b"30,1200", "text/csv")  # killed long before the 30 s are up
    assert caught.value.response["Error"]["Code"] == "ModelError"
    restarted = until(lambda: cli_endpoints(hosted)["lambda"]["restarts"] and cli_endpoints(hosted)["lambda"]["status"] == "InService")
    assert restarted, cli_endpoints(hosted)["lambda"]
    assert "more than its serverless MemorySizeInMB (1024 MB), and was killed" in cli_endpoints(hosted)["lambda"]["last_restart"]
    for mark in inside.iterdir():  # the killed invocation's, which it never removed
        mark.unlink()
    assert predictions(runtime, "lambda", b"0,10", "text/csv")[0] == [1]
    sm.delete_endpoint(EndpointName="lambda")


def refused_async(runtime: Any, name: str) -> str:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint_async(EndpointName=name, InputLocation="s3://models/x")
    return str(caught.value)


def test_lists_filter_sort_and_page(hosted: Api, tmp_path: Path) -> None:
    sm = hosted.client()
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    for name in ("alpha", "beta", "gamma"):
        model_and_config(hosted, name, data)
    first = sm.list_models(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in first["Models"]] == ["alpha", "beta"] and first["NextToken"]
    assert [m["ModelName"] for m in sm.list_models(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])["Models"]] == ["gamma"]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["gamma", "beta", "alpha"]  # newest first
    pages = sm.get_paginator("list_endpoint_configs").paginate(PaginationConfig={"PageSize": 1})
    assert sorted(c["EndpointConfigName"] for page in pages for c in page["EndpointConfigs"]) == ["alpha-config", "beta-config", "gamma-config"]
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains="mma")["EndpointConfigs"]] == ["gamma-config"]
    for name in ("alpha", "beta"):
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    assert {e["EndpointName"] for e in sm.list_endpoints(StatusEquals="Creating")["Endpoints"]} == {"alpha", "beta"}
    for name in ("alpha", "beta"):
        in_service(sm, name)
    endpoints = sm.list_endpoints(SortBy="Name", SortOrder="Ascending")["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in endpoints] == [("alpha", "InService"), ("beta", "InService")]
    assert [e["EndpointName"] for e in sm.list_endpoints(NameContains="et")["Endpoints"]] == ["beta"]


def test_endpoints_made_by_sagelab_deploy_are_served_too(hosted: Api, tmp_path: Path) -> None:
    """The other way round: a registered version deployed from the CLI is described, listed, invoked and deleted through the API."""
    sm, runtime = hosted.client(), hosted.client("sagemaker-runtime")
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    sm.create_model_package_group(ModelPackageGroupName="adders")
    spec = {"Containers": [{"Image": IMAGE, "ModelDataUrl": data}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]}
    sm.create_model_package(ModelPackageGroupName="adders", InferenceSpecification=spec, ModelApprovalStatus="Approved")
    deployed = sagelab("deploy", "adders", "--name", "from-the-cli", cwd=hosted.settings.root).stdout
    assert "serves adders/1" in deployed
    described = sm.describe_endpoint(EndpointName="from-the-cli")
    assert described["EndpointStatus"] == "InService" and "EndpointConfigName" not in described
    assert described["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["from-the-cli"]
    values, answer = predictions(runtime, "from-the-cli", b"1,2", "text/csv")
    assert np.allclose(values, [5.0]) and answer["InvokedProductionVariant"] == "AllTraffic"
    # a model made from the registered version (ModelPackageName) serves it too
    package = f"{ARN}:model-package/adders/1"
    sm.create_model(ModelName="packaged", Containers=[{"ModelPackageName": package}], ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="packaged", ProductionVariants=[{"VariantName": "Blue", "ModelName": "packaged",
                                                                                   "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])  # fmt: skip
    sm.update_endpoint(EndpointName="from-the-cli", EndpointConfigName="packaged")
    assert in_service(sm, "from-the-cli")["EndpointConfigName"] == "packaged"
    assert predictions(runtime, "from-the-cli", b"3,4", "text/csv")[1]["InvokedProductionVariant"] == "Blue"
    sm.delete_endpoint(EndpointName="from-the-cli")
    assert cli_endpoints(hosted) == {}


def test_every_hosting_operation_is_answered(hosted: Api, tmp_path: Path) -> None:
    """The rest of the family once each (the fixture checks every answer against its output shape)."""
    sm = hosted.client()
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    model_and_config(hosted, "adder", data)
    sm.create_endpoint(EndpointName="adder", EndpointConfigName="adder-config", Tags=[{"Key": "team", "Value": "ml"}])
    in_service(sm, "adder")
    sm.update_endpoint(EndpointName="adder", EndpointConfigName="adder-config", RetainAllVariantProperties=True)
    in_service(sm, "adder")
    hosted.client("sagemaker-runtime").invoke_endpoint(EndpointName="adder", Body=b"1,2", ContentType="text/csv")
    sm.describe_model(ModelName="adder")
    sm.describe_endpoint_config(EndpointConfigName="adder-config")
    sm.list_models(NameContains="add")
    sm.list_endpoint_configs()
    sm.list_endpoints(SortBy="Status")
    sm.delete_endpoint(EndpointName="adder")
    sm.delete_endpoint_config(EndpointConfigName="adder-config")
    sm.delete_model(ModelName="adder")
    family = {name for name, handler in served("sagemaker").items() if handler.__module__ == "sagelab.awsapi.hosting"}
    answered = {name for _, name, status, _ in hosted.responses if status == 200}
    assert family <= answered, sorted(family - answered)
    assert ("sagemaker-runtime", "InvokeEndpoint", 200) in {answer[:3] for answer in hosted.responses}


KERNEL_START = r'''
"""A notebook's kernel: IPython runs each cell as Jupyter would, the SageMaker SDK in it reaching the local API (its port: argv[1])."""
import json, os, sys
from IPython.core.interactiveshell import InteractiveShell

port = sys.argv[1]
shell = InteractiveShell.instance()


def cell(source):
    result = shell.run_cell(source)
    if not result.success:
        raise SystemExit(f"the cell {source!r} failed: {result.error_before_exec or result.error_in_exec!r}")


cell("%load_ext sagelab")
cell(f"%sagelab local --port {port}")
'''


def run_in_kernel(api: Api, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run KERNEL_START + `script` on the SageMaker SDK's Python in the project's folder, with no AWS to reach; it must succeed."""
    python = ROOT / ".cache" / "sdk-venv" / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: scripts/test installs the SageMaker SDK there (tests/fixtures/sdk/requirements.txt)", pytrace=False)
    root = api.settings.root
    (root / "kernel.py").write_text(KERNEL_START + script)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}, "HOME": str(root),
           "AWS_CONFIG_FILE": str(root / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}  # no AWS: nothing but the local API answers  # fmt: skip
    run = subprocess.run([str(python), "kernel.py", api.endpoint.rsplit(":", 1)[1], *args], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


KERNEL = r'''
# The SDK deploys and predicts.
image, role = sys.argv[2:4]
cell(f"""
import boto3, sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer

session = sagemaker.Session()
bucket = session.default_bucket()  # STS's account, answered in the kernel; the bucket made in the local store
account = boto3.client("sts").get_caller_identity()["Account"]
data = session.upload_data("model.tar.gz", bucket=bucket, key_prefix="sdk/adder")
model = Model(image_uri={image!r}, model_data=data, role={role!r}, sagemaker_session=session, predictor_cls=Predictor, name="sdk-adder")
predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-adder", serializer=CSVSerializer(),
                         deserializer=JSONDeserializer(), wait=False)
described = session.wait_for_endpoint("sdk-adder", poll=1)  # what deploy() waits with (it polls every 30 s)
prediction = predictor.predict([[1, 2], [3, 4]])
predictor.delete_endpoint()
model.delete_model()
""")
cell("%sagelab aws")
print(json.dumps({"bucket": shell.user_ns["bucket"], "account": shell.user_ns["account"], "prediction": shell.user_ns["prediction"],
                  "status": shell.user_ns["described"]["EndpointStatus"], "endpoint_url": os.environ.get("AWS_ENDPOINT_URL")}))
'''


def test_sagelab_local_in_a_kernel_lets_the_sdk_deploy_and_predict(hosted: Api, tmp_path: Path) -> None:
    root = hosted.settings.root
    archive(root / "model.tar.gz", linear((1, 2)))
    run = run_in_kernel(hosted, KERNEL, IMAGE, ROLE)
    port = hosted.endpoint.rsplit(":", 1)[1]
    assert f"now reach sagelab's local API at http://127.0.0.1:{port}" in run.stdout
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["bucket"] == f"sagemaker-us-east-1-{ACCOUNT}" and result["account"] == ACCOUNT
    assert result["status"] == "InService" and np.allclose(result["prediction"], [5.0, 11.0])
    assert result["endpoint_url"] is None  # %sagelab aws put the kernel's environment back
    operations = [name for _, name, status, _ in hosted.responses if status == 200]
    for name in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint", "DescribeEndpoint", "InvokeEndpoint", "DeleteEndpoint",
                 "DeleteEndpointConfig", "DeleteModel"):  # fmt: skip
        assert name in operations, name
    assert cli_endpoints(hosted) == {}
    assert (hosted.settings.store / f"sagemaker-us-east-1-{ACCOUNT}" / "sdk" / "adder" / "model.tar.gz").is_file()  # the SDK's upload


def test_monitoring_schedules_run_on_demand_and_on_their_cron_while_the_endpoint_serves(hosted: Api, tmp_path: Path) -> None:
    """A capturing endpoint, a baseline from training-like data, then drifted traffic: a NOW schedule runs at once and reports the drift;
    an every-minute schedule is run by the endpoint's supervisor at the next minute; both runs are monitoring executions."""
    from sagelab.containers.monitor.analyzer import analyze

    sm, runtime, s3 = hosted.client(), hosted.client("sagemaker-runtime"), hosted.client("s3")
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    sm.create_model(ModelName="adder", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data}, ExecutionRoleArn=ROLE)
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://models/capture",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}], "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}}  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="watched", DataCaptureConfig=capture, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "adder", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])  # fmt: skip
    sm.create_endpoint(EndpointName="watched", EndpointConfigName="watched")
    in_service(sm, "watched")
    rng = np.random.default_rng(3)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.csv").write_text("\n".join(f"{a:.3f},{b:.3f}" for a, b in rng.normal(0, 1, size=(1000, 2))) + "\n")
    analyze({"dataset_source": str(tmp_path / "train"), "output_path": str(tmp_path / "baseline"), "dataset_format": '{"csv": {"header": false}}'})
    for name in ("constraints.json", "statistics.json"):
        s3.upload_file(str(tmp_path / "baseline" / name), "models", f"baseline/{name}")
    for a, b in rng.normal(4, 1, size=(60, 2)):
        runtime.invoke_endpoint(EndpointName="watched", Body=f"{a:.3f},{b:.3f}".encode(), ContentType="text/csv")
    time.sleep(1.5)  # the servers write what they captured each second

    def schedule(name: str, expression: str, window: tuple[str, str] | None = None) -> dict[str, Any]:
        when = {"DataAnalysisStartTime": window[0], "DataAnalysisEndTime": window[1]} if window else {}
        return {"MonitoringScheduleName": name, "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": expression, **when}, "MonitoringType": "DataQuality",
            "MonitoringJobDefinition": {
                "BaselineConfig": {"ConstraintsResource": {"S3Uri": "s3://models/baseline/constraints.json"},
                                   "StatisticsResource": {"S3Uri": "s3://models/baseline/statistics.json"}},
                "MonitoringInputs": [{"EndpointInput": {"EndpointName": "watched", "LocalPath": "/opt/ml/processing/input/endpoint"}}],
                "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://models/reports", "LocalPath": "/opt/ml/processing/output"}}]},
                "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
                "MonitoringAppSpecification": {"ImageUri": "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"},
                "RoleArn": ROLE}}}  # fmt: skip

    def executions(name: str, seconds: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]
            if found:
                return found  # type: ignore[no-any-return]
            time.sleep(0.5)
        raise AssertionError(f"no run of {name} within {seconds} s:\n{(hosted.settings.state_dir / 'endpoints' / 'watched' / 'endpoint.log').read_text()[-3000:]}")

    with pytest.raises(ClientError, match="needs DataAnalysisStartTime and DataAnalysisEndTime"):
        sm.create_monitoring_schedule(**schedule("now", "NOW"))
    assert sm.create_monitoring_schedule(**schedule("now", "NOW", ("-PT1H", "PT0H")))["MonitoringScheduleArn"] == f"{ARN}:monitoring-schedule/now"
    sm.create_monitoring_schedule(**schedule("yesterday", "NOW", ("-P1DT1H", "-P1D")))
    gone = executions("yesterday", 60)[0]  # the window held none of what was captured a moment ago
    assert gone["MonitoringExecutionStatus"] == "Failed" and "captured nothing between" in gone["FailureReason"]
    sm.delete_monitoring_schedule(MonitoringScheduleName="yesterday")
    ran = executions("now", 60)[0]
    assert ran["MonitoringExecutionStatus"] == "CompletedWithViolations" and ran["EndpointName"] == "watched"
    reports = list((hosted.settings.store / "models" / "reports" / "watched" / "now").rglob("constraint_violations.json"))
    assert reports and "baseline_drift_check" in reports[0].read_text()
    assert sm.describe_monitoring_schedule(MonitoringScheduleName="now")["LastMonitoringExecutionSummary"]["MonitoringScheduleName"] == "now"

    sm.create_monitoring_schedule(**schedule("every-minute", "cron(* * ? * * *)"))
    assert executions("every-minute", 90)[0]["MonitoringExecutionStatus"] == "CompletedWithViolations"
    listed = sm.list_monitoring_schedules(EndpointName="watched", SortBy="Name", SortOrder="Ascending")["MonitoringScheduleSummaries"]
    assert [s["MonitoringScheduleName"] for s in listed] == ["every-minute", "now"]
    with pytest.raises(ClientError) as bad:
        sm.create_monitoring_schedule(**schedule("broken", "cron(0 25 ? * * *)"))
    assert "outside 0-23" in str(bad.value)
    with pytest.raises(ClientError, match="'-1 hour' is not an ISO 8601 duration"):
        sm.create_monitoring_schedule(**schedule("broken", "cron(0 * ? * * *)", ("-1 hour", "-PT0H")))
    sm.delete_monitoring_schedule(MonitoringScheduleName="every-minute")
    sm.delete_monitoring_schedule(MonitoringScheduleName="now")
    assert json.loads((hosted.settings.state_dir / "endpoints" / "watched" / "monitoring.json").read_text()) == {"schedules": []}
    sm.delete_endpoint(EndpointName="watched")


MONITORS = r'''
# The SDK's DefaultModelMonitor and ModelQualityMonitor schedule checks of an endpoint, as they would on SageMaker:
# a job definition each, then a schedule naming it.
role = sys.argv[2]
cell(f"""
import sagemaker
from sagemaker.model_monitor import DefaultModelMonitor, EndpointInput, ModelQualityMonitor

session = sagemaker.Session()
window = dict(schedule_cron_expression="NOW", data_analysis_start_time="-PT1H", data_analysis_end_time="-PT0H")
data = DefaultModelMonitor(role={role!r}, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
data.create_monitoring_schedule(endpoint_input="watched", output_s3_uri="s3://models/reports", monitor_schedule_name="sdk-data",
                                constraints="s3://models/baseline/constraints.json", statistics="s3://models/baseline/statistics.json", **window)
model = ModelQualityMonitor(role={role!r}, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
model.create_monitoring_schedule(endpoint_input=EndpointInput("watched", "/opt/ml/processing/input_data", inference_attribute="0"),
                                 ground_truth_input="s3://models/ground-truth", problem_type="Regression", output_s3_uri="s3://models/reports",
                                 constraints="s3://models/quality-baseline/constraints.json", monitor_schedule_name="sdk-model", **window)
hourly = ModelQualityMonitor(role={role!r}, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
hourly.create_monitoring_schedule(endpoint_input=EndpointInput("watched", "/opt/ml/processing/input_data"), problem_type="Regression",
                                  ground_truth_input="s3://models/ground-truth", output_s3_uri="s3://models/reports",
                                  constraints="s3://models/quality-baseline/constraints.json", monitor_schedule_name="sdk-hourly",
                                  schedule_cron_expression="cron(0 * ? * * *)")
hourly.stop_monitoring_schedule()
""")
cell("%sagelab aws")
print("scheduled")
'''


def test_the_sdks_model_monitors_schedule_data_and_model_quality_through_job_definitions(hosted: Api, tmp_path: Path) -> None:
    """DefaultModelMonitor and ModelQualityMonitor, run by the SDK in a kernel, each create a job definition and a schedule
    naming it; the NOW runs check the endpoint's captured data (drifted: violations) and its answers against labels matched
    by InferenceId (close: none); a stopped schedule is not handed to the endpoint's supervisor; a definition in use stays."""
    from sagelab.containers.monitor.analyzer import analyze

    sm, runtime, s3 = hosted.client(), hosted.client("sagemaker-runtime"), hosted.client("s3")
    data = upload(hosted, archive(tmp_path / "a.tar.gz", linear((1, 2))), "adder/model.tar.gz")
    sm.create_model(ModelName="adder", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data}, ExecutionRoleArn=ROLE)
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://models/capture",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}], "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}}  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName="watched", DataCaptureConfig=capture, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "adder", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])  # fmt: skip
    sm.create_endpoint(EndpointName="watched", EndpointConfigName="watched")
    in_service(sm, "watched")
    rng = np.random.default_rng(5)
    for folder, text, extra in (
        ("train", "\n".join(f"{a:.3f},{b:.3f}" for a, b in rng.normal(0, 1, size=(1000, 2))), {"dataset_format": '{"csv": {"header": false}}'}),
        ("pairs", "prediction,label\n" + "\n".join(f"{t + rng.normal(0, 0.5):.4f},{t:.4f}" for t in rng.normal(10, 3, size=500)),
         {"analysis_type": "MODEL_QUALITY", "problem_type": "Regression", "inference_attribute": "prediction", "ground_truth_attribute": "label"}),
    ):  # fmt: skip
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.csv").write_text(text + "\n")
        analyze({"dataset_source": str(tmp_path / folder), "output_path": str(tmp_path / f"{folder}-baseline"), **extra})
    for name in ("constraints.json", "statistics.json"):
        s3.upload_file(str(tmp_path / "train-baseline" / name), "models", f"baseline/{name}")
    s3.upload_file(str(tmp_path / "pairs-baseline" / "constraints.json"), "models", "quality-baseline/constraints.json")
    labels = []
    for number, (a, b) in enumerate(rng.normal(4, 1, size=(60, 2))):
        answer = runtime.invoke_endpoint(EndpointName="watched", Body=f"{a:.3f},{b:.3f}".encode(), ContentType="text/csv", Accept="text/csv",
                                         InferenceId=f"req-{number}")
        value = float(answer["Body"].read())
        labels.append(json.dumps({"groundTruthData": {"data": f"{value + rng.normal(0, 0.3):.4f}", "encoding": "CSV"},
                                  "eventMetadata": {"eventId": f"req-{number}"}, "eventVersion": "0"}))  # fmt: skip
    s3.put_object(Bucket="models", Key="ground-truth/2026/12/07/09/labels.jsonl", Body=("\n".join(labels) + "\n").encode())
    time.sleep(1.5)  # the servers write what they captured each second

    assert "scheduled" in run_in_kernel(hosted, MONITORS, ROLE).stdout

    def finished(name: str) -> dict[str, Any]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]
            if found:
                return found[0]  # type: ignore[no-any-return]
            time.sleep(0.5)
        raise AssertionError(f"no run of {name}:\n{(hosted.settings.state_dir / 'endpoints' / 'watched' / 'endpoint.log').read_text()[-3000:]}")

    drifted, scored = finished("sdk-data"), finished("sdk-model")
    assert (drifted["MonitoringExecutionStatus"], drifted["MonitoringType"]) == ("CompletedWithViolations", "DataQuality"), drifted
    assert (scored["MonitoringExecutionStatus"], scored["MonitoringType"]) == ("Completed", "ModelQuality"), scored
    reports = hosted.settings.store / "models" / "reports" / "watched"
    assert "baseline_drift_check" in next((reports / "sdk-data").rglob("constraint_violations.json")).read_text()
    assert '"mae"' in next((reports / "sdk-model").rglob("statistics.json")).read_text()

    described = sm.describe_monitoring_schedule(MonitoringScheduleName="sdk-model")
    definition = described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
    assert described["MonitoringType"] == "ModelQuality" and described["EndpointName"] == "watched"
    quality = sm.describe_model_quality_job_definition(JobDefinitionName=definition)
    assert quality["ModelQualityAppSpecification"]["ProblemType"] == "Regression"
    assert quality["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"] == "s3://models/ground-truth"
    listed = sm.list_data_quality_job_definitions(EndpointName="watched")["JobDefinitionSummaries"]
    assert [d["MonitoringJobDefinitionName"] for d in listed] == [sm.describe_monitoring_schedule(MonitoringScheduleName="sdk-data")[
        "MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]]  # fmt: skip
    assert sm.describe_monitoring_schedule(MonitoringScheduleName="sdk-hourly")["MonitoringScheduleStatus"] == "Stopped"
    assert json.loads((hosted.settings.state_dir / "endpoints" / "watched" / "monitoring.json").read_text()) == {"schedules": []}
    sm.start_monitoring_schedule(MonitoringScheduleName="sdk-hourly")
    assert json.loads((hosted.settings.state_dir / "endpoints" / "watched" / "monitoring.json").read_text()) == {
        "schedules": [{"name": "sdk-hourly", "expression": "cron(0 * ? * * *)"}]}  # fmt: skip
    with pytest.raises(ClientError, match="used by the monitoring schedule"):
        sm.delete_model_quality_job_definition(JobDefinitionName=definition)
    for name in ("sdk-data", "sdk-model", "sdk-hourly"):
        sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    sm.delete_model_quality_job_definition(JobDefinitionName=definition)
    with pytest.raises(ClientError, match="does not exist"):
        sm.describe_model_quality_job_definition(JobDefinitionName=definition)
    sm.delete_endpoint(EndpointName="watched")


def test_job_definitions_and_schedules_that_cannot_run_locally_are_refused_saying_why(hosted: Api) -> None:
    sm = hosted.client()
    output = {"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://models/reports", "LocalPath": "/opt/ml/processing/output"}}]}
    common = {"JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}}, "RoleArn": ROLE}
    endpoint = {"EndpointInput": {"EndpointName": "nowhere", "LocalPath": "/opt/ml/processing/input"}}
    refusals = {
        "ModelQualityAppSpecification.ProblemType: one of Regression, BinaryClassification, MulticlassClassification": lambda: (
            sm.create_model_quality_job_definition(JobDefinitionName="q", ModelQualityAppSpecification={"ImageUri": "monitor"},
                                                   ModelQualityJobInput={**endpoint, "GroundTruthS3Input": {"S3Uri": "s3://models/truth"}},
                                                   ModelQualityJobOutputConfig=output, **common)),  # fmt: skip
        "BatchTransformInput is not served locally": lambda: sm.create_data_quality_job_definition(
            JobDefinitionName="d", DataQualityAppSpecification={"ImageUri": "monitor"}, DataQualityJobOutputConfig=output,
            DataQualityJobInput={"BatchTransformInput": {"DataCapturedDestinationS3Uri": "s3://models/capture", "DatasetFormat": {"Csv": {}},
                                                         "LocalPath": "/opt/ml/processing/input"}}, **common),  # fmt: skip
        "a local run checks the captured data against a baseline's constraints": lambda: sm.create_data_quality_job_definition(
            JobDefinitionName="d", DataQualityAppSpecification={"ImageUri": "monitor"}, DataQualityJobInput=endpoint,
            DataQualityJobOutputConfig=output, **common),  # fmt: skip
        "no DataQuality job definition 'missing': create it with CreateDataQualityJobDefinition first": lambda: sm.create_monitoring_schedule(
            MonitoringScheduleName="s", MonitoringScheduleConfig={"MonitoringJobDefinitionName": "missing", "MonitoringType": "DataQuality"}),
        "MonitoringType ModelBias: local schedules check DataQuality or ModelQuality": lambda: sm.create_monitoring_schedule(
            MonitoringScheduleName="s", MonitoringScheduleConfig={"MonitoringJobDefinitionName": "bias", "MonitoringType": "ModelBias"}),
    }
    for message, call in refusals.items():
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "ValidationException" and message in str(refused.value), refused.value
    with pytest.raises(ClientError, match="does not exist"):
        sm.delete_data_quality_job_definition(JobDefinitionName="missing")
    assert sm.list_model_quality_job_definitions()["JobDefinitionSummaries"] == []
