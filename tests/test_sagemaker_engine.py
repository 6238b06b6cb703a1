"""The SageMaker engine, registry and endpoints against AWS's control plane stood in for by fakes.

Where moto implements an API, the engine talks to a real moto server (server mode, HTTP on
127.0.0.1) through its ordinary boto3 clients: S3, CreatePipeline/UpdatePipeline/DescribePipeline,
StartPipelineExecution, ListPipelineExecutions, model packages and approvals, models, endpoint
configs, endpoints, InvokeEndpoint (a canned body), CloudWatch Logs. Where moto does not
(ListPipelineExecutionSteps, Stop/RetryPipelineExecution, UpdateEndpoint, AWS's error answers),
botocore's Stubber answers on a real client, after validating every request — and every canned
response — against the service model. Each test's docstring says which calls are fakes.
Credentials are fake, and only in this process's environment.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sagelab.config import Settings
from sagelab.definition.loader import Loaded, load
from sagelab.engines.sagemaker import Deployment, ExecutionSnapshot, SageMakerEngine
from sagelab.errors import AwsError, ConfigError, EndpointError, ExecutionError, ParameterError, RegistryError

ROOT = Path(__file__).resolve().parents[1]
REGION, ACCOUNT = "us-east-1", "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
BUCKET = "sagelab-test"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/diabetes/execution/abc123def456"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh moto, and an environment with fake credentials and no AWS config files."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).close()
    return moto_server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(root=tmp_path, store=tmp_path / ".sagelab" / "s3", region=REGION, account=ACCOUNT, role=ROLE,
                    bucket=BUCKET, engine="sagemaker", tags=(("team", "ml"),), profile="aws")  # fmt: skip


@pytest.fixture
def engine(settings: Settings, moto: str) -> SageMakerEngine:
    return SageMakerEngine(settings, endpoint_url=moto)


def aws(moto: str, service: str) -> Any:
    """A plain boto3 client on moto, for the test's own setup and checks."""
    return boto3.client(service, endpoint_url=moto, region_name=REGION)


@pytest.fixture(scope="module")
def example() -> Loaded:
    return load(str(ROOT / "examples" / "diabetes" / "pipeline.py") + ":pipeline")


def test_package_imports_without_boto3_or_the_local_engine() -> None:
    code = "import sys, sagelab.engines.sagemaker as m; print(' '.join(sorted(sys.modules))); print(' '.join(m.__all__))"
    modules, exported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    for heavy in ("boto3", "botocore", "sagelab.engines.local", "sagelab.cli"):
        assert heavy not in modules.split(), heavy
    import sagelab.engines.sagemaker as package

    assert exported.split() == sorted(package.__all__) and all(hasattr(package, name) for name in package.__all__)


def test_upload_puts_every_artifact_once(engine: SageMakerEngine, example: Loaded, moto: str) -> None:
    """Moto S3: HeadObject, PutObject (and the transfer manager's calls)."""
    s3 = aws(moto, "s3")
    for bucket in {uri.split("/")[2] for uri in example.artifacts}:
        s3.create_bucket(Bucket=bucket)
    announced: dict[str, int] = {}
    sent: dict[str, int] = {}

    @contextmanager
    def progress(uri: str, size: int) -> Iterator[Callable[[int], None]]:
        announced[uri] = size
        yield lambda moved: sent.update({uri: sent.get(uri, 0) + moved})

    uploaded = engine.upload(example.artifacts, progress)
    assert sorted(uploaded) == sorted(example.artifacts) == sorted(announced)
    files = {uri: source.stat().st_size for uri, source in example.artifacts.items() if not isinstance(source, bytes)}
    assert files and sent == files and all(announced[uri] == size for uri, size in files.items())  # boto3 reported every byte
    for uri, source in example.artifacts.items():
        bucket, key = uri[5:].split("/", 1)
        expected = source if isinstance(source, bytes) else source.read_bytes()
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == expected
        assert "/code/" in key or "/data/" in key  # content-addressed: <pipeline>/<code|data>/<sha256>/<file>
    assert engine.upload(example.artifacts) == []


def test_upload_into_a_missing_bucket_says_how_to_fix(engine: SageMakerEngine) -> None:
    """Moto S3: HeadObject answers 404, PutObject NoSuchBucket."""
    with pytest.raises(AwsError) as caught:
        engine.upload({"s3://no-such-bucket/p/code/abc/x.py": b"print(1)"})
    assert caught.value.code == "NoSuchBucket" and caught.value.operation == "PutObject"
    assert "aws s3 mb s3://no-such-bucket" in str(caught.value) and "[tool.sagelab]" in str(caught.value)


def test_upsert_creates_then_updates(engine: SageMakerEngine, moto: str) -> None:
    """Moto SageMaker: CreatePipeline, its ValidationException for an existing name, UpdatePipeline, DescribePipeline, ListTags."""
    first = json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []})
    second = json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": []}, indent=2)
    arn = engine.upsert(first, "demo")
    sagemaker = aws(moto, "sagemaker")
    described = sagemaker.describe_pipeline(PipelineName="demo")
    assert described["PipelineDefinition"] == first and described["RoleArn"] == ROLE
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert engine.upsert(second, "demo", description="the second version") == arn
    described = sagemaker.describe_pipeline(PipelineName="demo")
    assert described["PipelineDefinition"] == second and described["PipelineDescription"] == "the second version"
    with pytest.raises(ExecutionError, match="'my-pipeline'"):
        engine.upsert(first, "my_pipeline")


def test_sagemaker_receives_byte_for_byte_what_the_local_engine_runs(engine: SageMakerEngine, example: Loaded, moto: str) -> None:
    """Moto SageMaker: CreatePipeline, DescribePipeline, StartPipelineExecution, DescribePipelineDefinitionForExecution."""
    body = json.dumps(example.definition.raw, indent=2) + "\n"  # serialised once; the local engine runs .raw
    engine.upsert(body, example.name)
    stored = aws(moto, "sagemaker").describe_pipeline(PipelineName=example.name)["PipelineDefinition"]
    assert stored.encode() == body.encode()
    assert json.loads(stored) == example.definition.raw
    execution = engine.start(example.name, {"MseThreshold": "2500"})
    ran = aws(moto, "sagemaker").describe_pipeline_definition_for_execution(PipelineExecutionArn=execution)
    assert ran["PipelineDefinition"] == body


def test_start_sends_parameters_as_strings_and_lists_executions(engine: SageMakerEngine, example: Loaded, moto: str) -> None:
    """Moto SageMaker: CreatePipeline, StartPipelineExecution, ListPipelineParametersForExecution,
    ListPipelines, ListPipelineExecutions, DescribePipelineExecution; moto S3 for the upload."""
    s3 = aws(moto, "s3")
    for bucket in {uri.split("/")[2] for uri in example.artifacts}:
        s3.create_bucket(Bucket=bucket)
    body = json.dumps(example.definition.raw)
    first = engine.submit(body, example.name, {"MseThreshold": 2500.0, "NEstimators": 10}, example.artifacts)
    parameters = aws(moto, "sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=first)["PipelineParameters"]
    assert parameters == [{"Name": "MseThreshold", "Value": "2500.0"}, {"Name": "NEstimators", "Value": "10"}]
    second = engine.start(example.name, {"InstanceType": "ml.m5.xlarge"}, display_name="second")
    engine.upsert(json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}), "other")
    third = engine.start("other")

    assert {e["PipelineExecutionArn"] for e in engine.executions(example.name)} == {first, second}
    everything = engine.executions()
    assert {(e["PipelineName"], e["PipelineExecutionArn"]) for e in everything} == {(example.name, first), (example.name, second), ("other", third)}
    assert len(engine.executions(limit=2)) == 2
    assert engine.find_execution(first.rsplit("/", 1)[-1]) == first
    assert engine.find_execution("latest", "other") == third
    described = engine.describe(second)
    assert described["PipelineExecutionDisplayName"] == "second" and "ResponseMetadata" not in described
    with pytest.raises(ParameterError, match="did you mean MseThreshold"):
        engine.submit(body, example.name, {"MseTreshold": "1"})


def _packages(moto: str, group: str = "diabetes", count: int = 2) -> list[str]:
    sagemaker = aws(moto, "sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="test")
    spec = {"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                            "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip
    return [
        sagemaker.create_model_package(ModelPackageGroupName=group, InferenceSpecification=spec,
                                       ModelApprovalStatus="PendingManualApproval")["ModelPackageArn"]  # fmt: skip
        for _ in range(count)
    ]


def test_registry_lists_and_approves_versions(engine: SageMakerEngine, moto: str) -> None:
    """Moto SageMaker: ListModelPackageGroups, ListModelPackages, DescribeModelPackage(Group), UpdateModelPackage."""
    first, second = _packages(moto)
    registry = engine.registry
    assert [g["ModelPackageGroupName"] for g in registry.groups()] == ["diabetes"]
    assert [(p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in registry.versions("diabetes")] == [
        (1, "PendingManualApproval"), (2, "PendingManualApproval")]  # fmt: skip
    with pytest.raises(RegistryError, match="no Approved version"):
        registry.arn("diabetes")
    approved = registry.approve("diabetes/1", "MSE 2400 on the test set")
    assert approved["ModelApprovalStatus"] == "Approved" and approved["ApprovalDescription"] == "MSE 2400 on the test set"
    assert registry.arn("diabetes") == first
    registry.approve(second)
    assert registry.arn("diabetes") == second
    assert registry.reject("diabetes/2", "drifted")["ModelApprovalStatus"] == "Rejected"
    assert registry.arn("diabetes") == first
    assert [p["ModelPackageArn"] for p in registry.versions("diabetes", "Rejected")] == [second]
    with pytest.raises(RegistryError, match="versions of diabetes: 1, 2"):
        registry.arn("diabetes/7")
    with pytest.raises(RegistryError, match=r"did you mean diabetes\?"):
        registry.versions("diabetis")
    with pytest.raises(RegistryError, match="diabetes/VERSION"):
        registry.approve("diabetes")


def test_the_models_commands_read_and_approve_on_sagemaker_as_locally(moto: str, tmp_path: Path) -> None:
    """Moto SageMaker through AWS_ENDPOINT_URL: `sagelab models ... --profile aws` answers in the local registry's shapes."""
    import os

    _packages(moto)
    (tmp_path / "pyproject.toml").write_text(f'[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "{REGION}"\nrole = "{ROLE}"\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": moto}

    def models(*args: str) -> str:
        cli = [str(Path(sys.executable).parent / "sagelab"), "models", *args, "--profile", "aws"]
        return subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout

    [group] = json.loads(models("groups", "--json"))
    assert (group["ModelPackageGroupName"], group["Versions"], group["LatestVersion"], group["LatestApproved"]) == ("diabetes", 2, 2, None)
    assert models("approve", "diabetes/2", "--reason", "MSE 2400").strip() == "diabetes/2 is Approved"
    assert "diabetes" in models("groups") and "PendingManualApproval" in models("list", "diabetes")
    shown = models("show", "diabetes")  # the latest Approved version
    assert shown.startswith("diabetes/2  Approved  arn:aws:sagemaker:") and "sagemaker-scikit-learn:1.2-1" in shown and "MSE 2400" in shown
    assert json.loads(models("show", "diabetes/2", "--json"))["History"][0]["ModelApprovalStatus"] == "Approved"


def test_deploy_creates_model_config_and_endpoint_then_invokes(engine: SageMakerEngine, moto: str) -> None:
    """Moto SageMaker: model packages, CreateModel, CreateEndpointConfig, DescribeEndpoint (absent, then
    InService at once), CreateEndpoint; moto's sagemaker-runtime InvokeEndpoint answers a canned body."""
    first, second = _packages(moto)
    engine.registry.approve("diabetes/1")
    engine.registry.reject("diabetes/2")
    messages: list[str] = []
    deployment = engine.endpoints.deploy("diabetes", "diabetes-prod", instance_type="ml.m5.xlarge", instance_count=2,
                                         progress=messages.append, poll=0)  # fmt: skip
    assert isinstance(deployment, Deployment)
    assert (deployment.endpoint, deployment.status, deployment.updated, deployment.model_package_arn) == ("diabetes-prod", "InService", False, first)
    sagemaker = aws(moto, "sagemaker")
    model = sagemaker.describe_model(ModelName=deployment.model)
    assert model["Containers"] == [{"ModelPackageName": first}] and model["ExecutionRoleArn"] == ROLE
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=deployment.endpoint_config)["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (deployment.model, "ml.m5.xlarge", 2)
    assert sagemaker.describe_endpoint(EndpointName="diabetes-prod")["EndpointConfigName"] == deployment.endpoint_config
    assert messages[-1] == "endpoint diabetes-prod: InService"
    with pytest.raises(EndpointError, match="Rejected"):
        engine.endpoints.deploy("diabetes/2", "diabetes-canary", poll=0)
    with pytest.raises(EndpointError, match="not valid on SageMaker"):
        engine.endpoints.deploy("diabetes", "diabetes_prod")

    canned = {"results": [{"Body": "[[151.2]]", "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic",
                           "CustomAttributes": ""}], "region": REGION, "account_id": ACCOUNT}  # fmt: skip
    request = urllib.request.Request(f"{moto}/moto-api/static/sagemaker/endpoint-results", data=json.dumps(canned).encode(), method="POST")
    urllib.request.urlopen(request).close()
    answer = engine.endpoints.invoke("diabetes-prod", b"0.03,0.05,0.06", "text/csv", "application/json")
    assert (answer.status, answer.content_type, answer.body) == (200, "application/json", b"[[151.2]]")


ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/prod"


def _endpoint(status: str, config: str, reason: str | None = None) -> dict[str, Any]:
    described = {"EndpointName": "prod", "EndpointArn": ENDPOINT_ARN,
                 "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": T0, "LastModifiedTime": T0}  # fmt: skip
    return {**described, "FailureReason": reason} if reason else described


def _stub_model_and_config(stub: Stubber, package: str) -> None:
    details = {"ModelPackageName": "diabetes", "ModelPackageArn": package, "CreationTime": T0, "ModelPackageStatus": "Completed",
               "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": "Approved"}  # fmt: skip
    stub.add_response("describe_model_package", details, {"ModelPackageName": package})
    stub.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/m"},
                      {"ModelName": ANY, "Containers": [{"ModelPackageName": package}], "ExecutionRoleArn": ROLE, "Tags": ANY})  # fmt: skip
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/c"},
                      {"EndpointConfigName": ANY, "ProductionVariants": ANY, "Tags": ANY})  # fmt: skip


def test_deploy_updates_an_existing_endpoint_and_reports_a_rollback(engine: SageMakerEngine) -> None:
    """Stubbed (moto has no UpdateEndpoint): DescribeModelPackage, CreateModel, CreateEndpointConfig,
    DescribeEndpoint, UpdateEndpoint, then DescribeEndpoint polls through Updating to InService."""
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/diabetes/3"
    endpoints = engine.endpoints
    with Stubber(engine.sagemaker) as stub:
        _stub_model_and_config(stub, package)
        stub.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": "prod"})
        stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": "prod", "EndpointConfigName": ANY})
        stub.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": "prod"})
        stub.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": "prod"})
        messages: list[str] = []

        def progress(message: str) -> None:
            messages.append(message)
            if message.startswith("endpoint prod: updating to "):  # the new config's name is known now: answer InService on it
                stub.add_response("describe_endpoint", _endpoint("InService", message.rsplit(" ", 1)[-1]), {"EndpointName": "prod"})

        deployment = endpoints.deploy(package, "prod", progress=progress, poll=0)
        stub.assert_no_pending_responses()
    assert deployment.updated and deployment.status == "InService"
    assert messages[-2:] == ["endpoint prod: Updating", "endpoint prod: InService"]

    with Stubber(engine.sagemaker) as stub:
        _stub_model_and_config(stub, package)
        stub.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": "prod"})
        stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": "prod", "EndpointConfigName": ANY})
        stub.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": "prod"})
        stub.add_response("describe_endpoint", _endpoint("RollingBack", "old"), {"EndpointName": "prod"})
        reason = "The primary container for production variant AllTraffic did not pass the ping health check."
        stub.add_response("describe_endpoint", _endpoint("InService", "old", reason), {"EndpointName": "prod"})
        with pytest.raises(EndpointError, match="rolled back to old: The primary container") as caught:
            endpoints.deploy(package, "prod", poll=0)
    assert "/aws/sagemaker/Endpoints/prod" in str(caught.value)


def test_deploy_raises_the_failure_reason_of_a_failed_endpoint(engine: SageMakerEngine) -> None:
    """Stubbed (moto's endpoints are InService at once): DescribeModelPackage, CreateModel, CreateEndpointConfig,
    DescribeEndpoint (a not-found ValidationException), CreateEndpoint, DescribeEndpoint Creating → Failed."""
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/diabetes/3"
    with Stubber(engine.sagemaker) as stub:
        _stub_model_and_config(stub, package)
        stub.add_client_error("describe_endpoint", "ValidationException", f"Could not find endpoint \"{ENDPOINT_ARN}\".")
        stub.add_response("create_endpoint", {"EndpointArn": ENDPOINT_ARN},
                          {"EndpointName": "prod", "EndpointConfigName": ANY, "Tags": [{"Key": "team", "Value": "ml"}]})  # fmt: skip
        stub.add_response("describe_endpoint", _endpoint("Creating", "new"), {"EndpointName": "prod"})
        stub.add_response("describe_endpoint", _endpoint("Failed", "new", "Image does not exist."), {"EndpointName": "prod"})
        with pytest.raises(EndpointError, match="endpoint prod is Failed: Image does not exist"):
            engine.endpoints.deploy(package, "prod", poll=0)
        stub.assert_no_pending_responses()


def _step(name: str, status: str, kind: str | None = None, job: str | None = None, start: int = 0, end: int | None = None,
          reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    step: dict[str, Any] = {"StepName": name, "StepStatus": status, "StartTime": T0 + timedelta(seconds=start), "AttemptCount": 1}
    if kind:
        step["Metadata"] = {kind: {"Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{job}"}} if job else {kind: {"Outcome": "True"}}
    if end is not None:
        step["EndTime"] = T0 + timedelta(seconds=end)
    if reason:
        step["FailureReason"] = reason
    return step


def _execution(status: str, reason: str | None = None, modified: int = 0) -> dict[str, Any]:
    described = {"PipelineArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/diabetes", "PipelineExecutionArn": EXECUTION,
                 "PipelineExecutionStatus": status, "CreationTime": T0, "LastModifiedTime": T0 + timedelta(seconds=modified)}  # fmt: skip
    return {**described, "FailureReason": reason} if reason else described


def _poll(stub: Stubber, execution: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    stub.add_response("describe_pipeline_execution", execution, {"PipelineExecutionArn": EXECUTION})
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps},
                      {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})  # fmt: skip


PRE = "processing-job/pipelines-abc123def456-preprocess-aaaa"
TRAIN = "training-job/pipelines-abc123def456-train-bbbb"


def test_steps_follow_list_pipeline_execution_steps_pages(engine: SageMakerEngine) -> None:
    """Stubbed (moto has no ListPipelineExecutionSteps): two pages joined by NextToken."""
    with Stubber(engine.sagemaker) as stub:
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [_step("Preprocess", "Succeeded", "ProcessingJob", PRE, 0, 60)],
                          "NextToken": "page-2"}, {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})  # fmt: skip
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [_step("Train", "Executing", "TrainingJob", TRAIN, 61)]},
                          {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending", "NextToken": "page-2"})  # fmt: skip
        steps = engine.steps(EXECUTION)
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("Preprocess", "Succeeded"), ("Train", "Executing")]
    assert steps[0]["Metadata"]["ProcessingJob"]["Arn"].endswith(PRE)
    assert steps[1]["EndTime"] is None and steps[1]["FailureReason"] is None


def test_watch_reports_each_change_until_succeeded(engine: SageMakerEngine) -> None:
    """Stubbed (moto finishes executions at once and has no ListPipelineExecutionSteps):
    DescribePipelineExecution and ListPipelineExecutionSteps, polled five times."""
    snapshots: list[ExecutionSnapshot] = []
    with Stubber(engine.sagemaker) as stub:
        _poll(stub, _execution("Executing"), [])
        _poll(stub, _execution("Executing"), [_step("Preprocess", "Executing", "ProcessingJob", PRE)])
        _poll(stub, _execution("Executing"), [_step("Preprocess", "Executing", "ProcessingJob", PRE)])  # nothing changed
        _poll(stub, _execution("Executing"), [_step("Preprocess", "Succeeded", "ProcessingJob", PRE, 0, 60),
                                              _step("Train", "Executing", "TrainingJob", TRAIN, 61)])  # fmt: skip
        _poll(stub, _execution("Succeeded", modified=300), [_step("Preprocess", "Succeeded", "ProcessingJob", PRE, 0, 60),
                                                            _step("Train", "Succeeded", "TrainingJob", TRAIN, 61, 290),
                                                            _step("CheckMse", "Succeeded", "Condition", None, 291, 292)])  # fmt: skip
        assert engine.watch(EXECUTION, snapshots.append, poll=0) == "Succeeded"
        stub.assert_no_pending_responses()
    assert [(s.status, [(step.name, step.status) for step in s.steps]) for s in snapshots] == [
        ("Executing", []),
        ("Executing", [("Preprocess", "Executing")]),
        ("Executing", [("Preprocess", "Succeeded"), ("Train", "Executing")]),
        ("Succeeded", [("Preprocess", "Succeeded"), ("Train", "Succeeded"), ("CheckMse", "Succeeded")]),
    ]
    final = snapshots[-1]
    assert (final.id, final.pipeline, final.started, final.ended) == ("abc123def456", "diabetes", T0.timestamp(), T0.timestamp() + 300)
    assert final.finished and not snapshots[0].finished
    train = final.step("Train")
    assert (train.type, train.started, train.ended, train.attempts) == ("Training", T0.timestamp() + 61, T0.timestamp() + 290, 1)
    assert train.job_arn is not None and train.job_arn.endswith(TRAIN)
    assert final.step("CheckMse").type == "Condition" and final.step("CheckMse").job_arn is None


def test_watch_ends_with_the_failure_reason(engine: SageMakerEngine) -> None:
    """Stubbed: DescribePipelineExecution and ListPipelineExecutionSteps, ending Failed."""
    reason = "AlgorithmError: ExecuteUserScriptError: Command \"/usr/bin/python3 train.py\" exit 1"
    snapshots: list[ExecutionSnapshot] = []
    with Stubber(engine.sagemaker) as stub:
        _poll(stub, _execution("Executing"), [_step("Train", "Executing", "TrainingJob", TRAIN)])
        _poll(stub, _execution("Failed", f"Step failure: One or multiple steps failed. {reason}", 120),
              [_step("Train", "Failed", "TrainingJob", TRAIN, 0, 110, reason)])  # fmt: skip
        assert engine.watch(EXECUTION, snapshots.append, poll=0) == "Failed"
    assert snapshots[-1].failure_reason is not None and reason in snapshots[-1].failure_reason
    assert snapshots[-1].step("Train").failure_reason == reason
    with pytest.raises(ExecutionError, match="no step 'Evaluate'; its steps: Train"):
        snapshots[-1].step("Evaluate")


def test_ctrl_c_reaches_the_caller_which_may_stop_then_retry(engine: SageMakerEngine) -> None:
    """Stubbed (moto has none of them): DescribePipelineExecution, ListPipelineExecutionSteps,
    StopPipelineExecution and RetryPipelineExecution, each with its ClientRequestToken."""

    def interrupted(snapshot: ExecutionSnapshot) -> None:
        raise KeyboardInterrupt

    with Stubber(engine.sagemaker) as stub:
        _poll(stub, _execution("Executing"), [_step("Train", "Executing", "TrainingJob", TRAIN)])
        stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": EXECUTION},
                          {"PipelineExecutionArn": EXECUTION, "ClientRequestToken": ANY})  # fmt: skip
        stub.add_response("retry_pipeline_execution", {"PipelineExecutionArn": EXECUTION},
                          {"PipelineExecutionArn": EXECUTION, "ClientRequestToken": ANY})  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            engine.watch(EXECUTION, interrupted, poll=0)
        engine.stop(EXECUTION)
        assert engine.retry(EXECUTION) == EXECUTION
        stub.assert_no_pending_responses()


def test_logs_read_the_step_jobs_streams_from_cloudwatch(engine: SageMakerEngine, moto: str) -> None:
    """Stubbed (moto has no ListPipelineExecutionSteps): ListPipelineExecutionSteps and DescribeTrainingJob
    (found, then a not-found ValidationException). Moto CloudWatch Logs: DescribeLogStreams and GetLogEvents,
    two events a page."""
    job = "pipelines-abc123def456-Train-BbBb"  # SageMaker's ARNs are lowercase; stream names keep the case
    logs = aws(moto, "logs")
    group = "/aws/sagemaker/TrainingJobs"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)  # CloudWatch (and moto) reject events older than 14 days
    for stream, count in ((f"{job}/algo-1-1700000000", 5), (f"{job}/algo-2-1700000000", 1), (f"{job}-other/algo-1-1700000000", 1)):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now + i, "message": f"{stream.split('/')[1][:6]} line {i}\n"} for i in range(count)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    trained = {"TrainingJobName": job, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{TRAIN}",
               "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/model.tar.gz"}, "TrainingJobStatus": "Completed",
               "SecondaryStatus": "Completed", "StoppingCondition": {"MaxRuntimeInSeconds": 86400}, "CreationTime": T0}  # fmt: skip
    steps = [_step("Preprocess", "Succeeded", "ProcessingJob", PRE, 0, 60), _step("Train", "Succeeded", "TrainingJob", TRAIN, 61, 200),
             _step("CheckMse", "Succeeded", "Condition", None, 201, 202)]  # fmt: skip
    with Stubber(engine.sagemaker) as stub:
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})
        stub.add_response("describe_training_job", trained, {"TrainingJobName": "pipelines-abc123def456-train-bbbb"})
        lines = list(engine.logs(EXECUTION, "train", page_size=2))
        # Describe*Job not finding the lowercase name: the streams are matched without case within the execution
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})
        stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
        assert list(engine.logs(EXECUTION, "Train")) == lines
        for _ in range(2):
            stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": EXECUTION, "SortOrder": "Ascending"})
        with pytest.raises(ExecutionError, match="Condition.*no job log"):
            engine.logs(EXECUTION, "CheckMse")
        with pytest.raises(ExecutionError, match=r"did you mean Train\?"):
            engine.logs(EXECUTION, "Trian")
        stub.assert_no_pending_responses()
    assert lines == [f"[algo-1-1700000000] algo-1 line {i}" for i in range(5)] + ["[algo-2-1700000000] algo-2 line 0"]


def test_access_denied_names_the_iam_action(engine: SageMakerEngine) -> None:
    """Stubbed: AWS's AccessDeniedException for CreatePipeline (bare, and naming iam:PassRole) and S3's bare 403 for HeadObject."""
    with Stubber(engine.sagemaker) as stub:
        stub.add_client_error("create_pipeline", "AccessDeniedException", "Access denied", 400)
        with pytest.raises(AwsError) as caught:
            engine.upsert("{}", "demo")
        denied = caught.value
        assert (denied.operation, denied.action, denied.code) == ("CreatePipeline", "sagemaker:CreatePipeline", "AccessDeniedException")
        assert "CreatePipeline on pipeline demo was denied" in str(denied) and "allow sagemaker:CreatePipeline" in str(denied)
        assert f"iam:PassRole on the execution role {ROLE}" in str(denied) and "docs/aws.md" in str(denied)

        message = (f"User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: iam:PassRole on resource: {ROLE} "
                   "because no identity-based policy allows the iam:PassRole action")  # fmt: skip
        stub.add_client_error("create_pipeline", "AccessDeniedException", message, 400)
        with pytest.raises(AwsError, match=f"allow iam:PassRole on the execution role {ROLE}") as caught:
            engine.upsert("{}", "demo")
        assert caught.value.action == "iam:PassRole"
    with Stubber(engine.s3) as stub:
        stub.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(AwsError, match="allow s3:GetObject on arn:aws:s3:::b/k and s3:ListBucket on arn:aws:s3:::b ") as caught:
            engine.upload({"s3://b/k": b"x"})
        assert caught.value.action == "s3:GetObject"


def test_missing_credentials_say_how_to_configure_them(settings: Settings, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fake: botocore's own credential chain finds nothing (environment cleared, no config files, no IMDS)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AwsError) as caught:
        SageMakerEngine(settings, endpoint_url=moto).upsert("{}", "demo")
    assert caught.value.code == "NoCredentialsError" and caught.value.operation == "CreatePipeline"
    assert "no AWS credentials found" in str(caught.value) and "aws configure" in str(caught.value)

    from dataclasses import replace

    with pytest.raises(AwsError, match="aws configure --profile ml-dev"):
        SageMakerEngine(replace(settings, aws_profile="ml-dev"), endpoint_url=moto).describe(EXECUTION)


def test_an_unreachable_endpoint_is_named(settings: Settings, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fake: a closed port on 127.0.0.1 (one attempt, through AWS_MAX_ATTEMPTS)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AwsError, match=f"could not reach http://127.0.0.1:{port}"):
        SageMakerEngine(settings, endpoint_url=f"http://127.0.0.1:{port}").start("demo")


def test_a_profile_without_role_is_refused_before_any_call(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path, store=tmp_path, engine="sagemaker", profile="aws")
    with pytest.raises(ConfigError, match=r"\[tool.sagelab.profiles.aws\]"):
        SageMakerEngine(settings, session=object()).upsert("{}", "demo")


def test_the_policy_in_docs_allows_every_call_the_package_makes() -> None:
    """No AWS: the minimal policy in docs/aws.md, against the API calls written in the package's source."""
    import re

    from sagelab.engines.sagemaker import iam_action
    from sagelab.engines.sagemaker.logs import LOG_SOURCES

    text = (ROOT / "docs" / "aws.md").read_text()
    policy = json.loads(re.search(r"```json\n(.*?)```", text, re.DOTALL).group(1))  # type: ignore[union-attr]
    allowed = {action for statement in policy["Statement"] for action in
               ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}  # fmt: skip
    package = ROOT / "src" / "sagelab"
    source = "".join(path.read_text() for folder in (package / "engines" / "sagemaker", package / "api") for path in folder.glob("*.py"))
    calls = set(re.findall(r'(?:call|pages|translating)\("([a-z0-9-]+)",\s*"([A-Za-z0-9]+)"', source))
    calls |= {("sagemaker", describe) for _group, describe, _field in LOG_SOURCES.values()}  # logs finds a step's job
    needed = {iam_action(service, operation) for service, operation in calls if operation != "Session"}
    assert len(needed) > 25 and "sagemaker:DescribeTrainingJob" in needed
    assert needed - allowed == set()
    for action in needed:
        assert action in text.split("## A minimal policy")[0], f"{action} is missing from the per-command table"


def test_the_python_api_reads_an_execution_on_sagemaker(engine: SageMakerEngine, settings: Settings) -> None:
    """Stubbed (moto has no ListPipelineExecutionSteps, and stubs give the job's description exactly):
    DescribePipelineExecution, ListPipelineExecutionSteps, ListPipelineParametersForExecution,
    DescribePipelineDefinitionForExecution; DescribeTrainingJob only when the step's properties are read."""
    from sagelab.api.backends import SageMakerBackend

    backend = SageMakerBackend(settings)
    backend._engine = engine
    definition = {"Version": "2020-12-01", "Steps": [{"Name": "Train", "Type": "Training", "Arguments": {}}]}
    job = "pipelines-abc123def456-train-bbbb"
    with Stubber(engine.sagemaker) as stub:
        _poll(stub, _execution("Succeeded", modified=300), [_step("Train", "Succeeded", "TrainingJob", TRAIN, 0, 290)])
        stub.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": [{"Name": "Epochs", "Value": "3"}]},
                          {"PipelineExecutionArn": EXECUTION})  # fmt: skip
        stub.add_response("describe_pipeline_definition_for_execution", {"PipelineDefinition": json.dumps(definition), "CreationTime": T0},
                          {"PipelineExecutionArn": EXECUTION})  # fmt: skip
        execution = backend.execution(EXECUTION)
        stub.assert_no_pending_responses()  # nothing about the job yet
        stub.add_response("describe_training_job", {
            "TrainingJobName": job, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{TRAIN}", "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{job}/output/model.tar.gz"},
            "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "xgboost"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "CreationTime": T0,
            "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 0.25, "Timestamp": T0}],
        }, {"TrainingJobName": job})  # fmt: skip
        assert execution.outputs == {"Train": {"model": f"s3://{BUCKET}/{job}/output/model.tar.gz"}}
        assert execution.metrics == {"Train.validation:rmse": 0.25}
        stub.assert_no_pending_responses()
    assert (execution.id, execution.pipeline, execution.status, execution.duration) == ("abc123def456", "diabetes", "Succeeded", 300)
    assert execution.parameters == {"Epochs": "3"} and execution.steps["Train"].job_name == job
    assert execution.to_dict()["steps"][0]["outputs"]["model"].endswith("model.tar.gz")


def test_endpoints_on_sagemaker_are_listed_with_their_instances_and_deleted(engine: SageMakerEngine, moto: str, tmp_path: Path) -> None:
    """Moto SageMaker: ListEndpoints, DescribeEndpoint, DescribeEndpointConfig, DeleteEndpoint; the CLI against it through AWS_ENDPOINT_URL."""
    import os

    _packages(moto)
    engine.registry.approve("diabetes/1")
    engine.endpoints.deploy("diabetes", "diabetes-prod", instance_type="ml.m5.xlarge", instance_count=2, poll=0)
    [endpoint] = engine.endpoints.overview()
    assert (endpoint["EndpointName"], endpoint["EndpointStatus"], endpoint["Instances"]) == ("diabetes-prod", "InService", ["2 × ml.m5.xlarge"])
    (tmp_path / "pyproject.toml").write_text(f'[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "{REGION}"\nrole = "{ROLE}"\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": moto}
    cli = [str(Path(sys.executable).parent / "sagelab"), "endpoints"]
    listed = subprocess.run([*cli, "--profile", "aws", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert [(e["name"], e["instances"]) for e in json.loads(listed.stdout)] == [("diabetes-prod", ["2 × ml.m5.xlarge"])]
    refused = subprocess.run([*cli, "delete", "diabetes-prod", "--profile", "aws"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)  # fmt: skip
    assert refused.returncode == 1 and "needs a yes: add --yes" in refused.stderr
    subprocess.run([*cli, "delete", "diabetes-prod", "--profile", "aws", "--yes"], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert engine.endpoints.overview() == []


def test_a_call_an_emulator_does_not_implement_says_the_endpoint_is_not_aws(engine: SageMakerEngine) -> None:
    """Moto SageMaker, which has no ListPipelineExecutionSteps (SageMaker has): the error names the endpoint and the operation."""
    with pytest.raises(AwsError) as caught:
        engine.steps(EXECUTION)
    message = str(caught.value)
    assert "ListPipelineExecutionSteps" in message and "which is not AWS" in message and "127.0.0.1" in message, message


def test_a_run_on_sagemaker_reports_its_start_and_asks_before_stopping_on_ctrl_c(settings: Settings, example: Loaded) -> None:
    """No AWS: a stand-in engine records what the backend asks of it (the calls themselves are tested above)."""
    from sagelab.api.backends import RunHooks, SageMakerBackend
    from sagelab.engines.local import Selection

    asked: list[str] = []

    class Engine:
        def submit(self, definition: str, name: str, parameters: Any, artifacts: Any, progress: Any = None) -> str:
            asked.append(f"submit {name}")
            return EXECUTION

        def watch(self, arn: str, listener: Any) -> str:
            raise KeyboardInterrupt

        def stop(self, arn: str) -> None:
            asked.append(f"stop {arn}")

    backend = SageMakerBackend(settings)
    backend._engine = Engine()  # type: ignore[assignment]
    backend.execution = lambda reference: reference  # type: ignore[assignment, method-assign, return-value]
    hooks = RunHooks(started=lambda arn: asked.append(f"started {arn}"), interrupted=lambda arn: asked.append("asked") or True)  # type: ignore[func-returns-value]
    assert backend.start(example, {}, hooks=hooks) == EXECUTION  # type: ignore[comparison-overlap]
    assert asked == [f"submit {example.name}", f"started {EXECUTION}", "asked", f"stop {EXECUTION}"]
    with pytest.raises(KeyboardInterrupt):  # no one to ask: the interrupt goes on
        backend.start(example, {})
    with pytest.raises(ConfigError, match="run locally"):
        backend.start(example, {}, select=Selection(from_step="Train"))
