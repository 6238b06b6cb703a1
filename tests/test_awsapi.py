"""`sagelab api`: boto3 (and the SageMaker SDK) against the real server on 127.0.0.1, over a temporary project.

Every response the handlers give during a test is checked against botocore's output shape of its
operation (the `api` fixture's teardown), and one test drives every served operation once.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from conftest import SAGELAB, definition, processing_step, sagelab, write
from sagelab.awsapi import ApiServer
from sagelab.awsapi.auth import Credentials, Headers, authenticate, credentials
from sagelab.awsapi.errors import AuthError
from sagelab.awsapi.operations import served
from sagelab.awsapi.shapes import output_problems, service_model
from sagelab.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::000000000000:role/R"
# Writes the parameter N into the output "out", so a test sees the value the execution ran with.
WRITE_N = "import os; os.makedirs('/opt/ml/processing/output/out', exist_ok=True); open('/opt/ml/processing/output/out/n.txt', 'w').write(os.environ['N'])"


@dataclass
class Api:
    """A running local API for the test's project."""

    endpoint: str
    settings: Settings
    credentials: Credentials
    responses: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)

    def client(self, service: str = "sagemaker", **overrides: str) -> Any:
        keys = {"aws_access_key_id": self.credentials.access_key, "aws_secret_access_key": self.credentials.secret_key, **overrides}
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.settings.region, **keys)  # type: ignore[call-overload]

    def raw(self, target: str, body: bytes, *, sign: bool = True) -> tuple[int, dict[str, Any]]:
        """POST an AWS JSON request as written (boto3 would refuse to send a malformed one), signed by botocore's signer."""
        request = AWSRequest(method="POST", url=f"{self.endpoint}/", data=body,
                             headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
        if sign:
            SigV4Auth(BotoCredentials(self.credentials.access_key, self.credentials.secret_key), "sagemaker", self.settings.region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=body, headers=dict(request.headers.items()), method="POST")
        try:
            with urllib.request.urlopen(prepared, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def check_conformance(responses: list[tuple[str, str, int, dict[str, Any]]]) -> None:
    """Every answer fits botocore's model: a success its operation's output shape, an error the AWS JSON error shape."""
    problems = []
    for service, name, status, body in responses:
        if status in (200, 202):  # 202: InvokeEndpointAsync's success
            shape = service_model(service).operation_model(name).output_shape
            problems += [f"{name}: {p}" for p in (output_problems(shape, body) if shape is not None else ([] if body == {} else ["not empty"]))]
        elif set(body) != {"__type", "message"} or not all(isinstance(v, str) and v for v in body.values()):
            problems.append(f"{name} {status}: not an AWS JSON error: {body}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def api(project: Path) -> Iterator[Api]:
    settings = load_settings(project)
    found = Api("", settings, credentials(settings.state_dir))
    server = ApiServer(settings, 0, observers=(lambda *answer: found.responses.append(answer),))
    found.endpoint = server.start()
    try:
        yield found
    finally:
        server.stop()
    check_conformance(found.responses)


def until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """`check()`'s first true value, asked every 50 ms."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"still {value!r} after {timeout} s"
            return value
        time.sleep(0.05)


def pipeline_json(*steps: dict[str, Any]) -> str:
    step = processing_step("Write", WRITE_N, outputs=["out"])
    step["Arguments"]["Environment"] = {"N": {"Get": "Parameters.N"}}
    step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = {
        "Std:Join": {"On": "/", "Values": ["s3://test-bucket", {"Get": "Execution.PipelineExecutionId"}, "out"]}}  # fmt: skip
    return json.dumps(definition(step, *steps, parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1}]))


def finished(sm: Any, arn: str) -> dict[str, Any]:
    return until(lambda: (d := sm.describe_pipeline_execution(PipelineExecutionArn=arn))["PipelineExecutionStatus"] not in ("Executing", "Stopping") and d)  # type: ignore[no-any-return]


def test_a_pipeline_created_and_started_through_boto3_runs_locally_and_the_cli_sees_it(api: Api) -> None:
    sm, s3 = api.client(), api.client("s3")
    created = sm.create_pipeline(PipelineName="demo", PipelineDefinition=pipeline_json(), RoleArn=ROLE, PipelineDescription="a demo")
    assert created["PipelineArn"] == "arn:aws:sagemaker:us-east-1:000000000000:pipeline/demo"
    described = sm.describe_pipeline(PipelineName="demo")
    assert json.loads(described["PipelineDefinition"])["Parameters"][0]["Name"] == "N"
    assert described["PipelineStatus"] == "Active" and described["PipelineDescription"] == "a demo" and described["RoleArn"] == ROLE

    started = time.monotonic()
    arn = sm.start_pipeline_execution(PipelineName="demo", PipelineParameters=[{"Name": "N", "Value": "7"}],
                                      PipelineExecutionDisplayName="seven")["PipelineExecutionArn"]  # fmt: skip
    assert time.monotonic() - started < 10  # answered once the execution exists, not when it ends
    execution_id = arn.rsplit("/", 1)[1]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/demo/execution/{execution_id}"
    done = finished(sm, arn)
    assert done["PipelineExecutionStatus"] == "Succeeded" and done["PipelineExecutionDisplayName"] == "seven"
    assert done["CreationTime"] <= done["LastModifiedTime"] and done["PipelineArn"] == created["PipelineArn"]
    assert s3.get_object(Bucket="test-bucket", Key=f"{execution_id}/out/n.txt")["Body"].read() == b"7"  # the parameter was honoured

    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert step["StepName"] == "Write" and step["StepStatus"] == "Succeeded" and step["AttemptCount"] == 1
    assert step["StartTime"] <= step["EndTime"] and "FailureReason" not in step
    job = step["Metadata"]["ProcessingJob"]["Arn"]
    assert job.startswith(f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/pipelines-{execution_id}-write-")
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"] == [{"Name": "N", "Value": "7"}]
    (summary,) = sm.list_pipeline_executions(PipelineName="demo")["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] == arn and summary["PipelineExecutionStatus"] == "Succeeded"
    assert sm.describe_pipeline(PipelineName="demo")["LastRunTime"] == done["CreationTime"]
    # a retried request (the same ClientRequestToken) starts nothing new
    token = "retried-request-token-0123456789abcdef"
    again = [sm.start_pipeline_execution(PipelineName="demo", ClientRequestToken=token)["PipelineExecutionArn"] for _ in range(2)]
    assert again[0] == again[1] != arn
    finished(sm, again[0])

    listed = json.loads(sagelab("executions", "--json", cwd=api.settings.root).stdout)
    assert [(e["id"], e["pipeline"], e["status"]) for e in listed][-1] == (execution_id, "demo", "Succeeded") and len(listed) == 2
    status = json.loads(sagelab("status", execution_id, "--json", cwd=api.settings.root).stdout)
    assert status["parameters"] == {"N": 7}


def test_an_execution_started_by_sagelab_run_is_listed_through_the_api(api: Api) -> None:
    write(api.settings.root / "nightly.json", json.loads(pipeline_json()))
    sagelab("run", "nightly.json", "-p", "N=3", cwd=api.settings.root)
    sm = api.client()
    (summary,) = sm.list_pipelines()["PipelineSummaries"]
    assert summary["PipelineName"] == "nightly" and summary["LastExecutionTime"] is not None
    assert json.loads(sm.describe_pipeline(PipelineName="nightly")["PipelineDefinition"]) == json.loads(pipeline_json())
    (execution,) = sm.list_pipeline_executions(PipelineName="nightly")["PipelineExecutionSummaries"]
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"] == [
        {"Name": "N", "Value": "3"}]  # fmt: skip
    # Through the API it is a pipeline like any: it can be started, updated and deleted.
    arn = sm.start_pipeline_execution(PipelineName="nightly")["PipelineExecutionArn"]
    assert finished(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    assert sm.update_pipeline(PipelineName="nightly", PipelineDisplayName="Nightly")["PipelineVersionId"] == 1
    assert sm.describe_pipeline(PipelineName="nightly")["PipelineDisplayName"] == "Nightly"
    sm.delete_pipeline(PipelineName="nightly")
    assert sm.list_pipelines()["PipelineSummaries"] == []


def test_update_keeps_each_definition_version_and_delete_forgets_the_pipeline(api: Api) -> None:
    sm = api.client()
    sm.create_pipeline(PipelineName="versions", PipelineDefinition=pipeline_json(), RoleArn=ROLE)
    second = pipeline_json(processing_step("After", "pass", DependsOn=["Write"]))
    assert sm.update_pipeline(PipelineName="versions", PipelineDefinition=second)["PipelineVersionId"] == 2
    assert len(json.loads(sm.describe_pipeline(PipelineName="versions")["PipelineDefinition"])["Steps"]) == 2
    assert len(json.loads(sm.describe_pipeline(PipelineName="versions", PipelineVersionId=1)["PipelineDefinition"])["Steps"]) == 1
    arn = sm.start_pipeline_execution(PipelineName="versions", PipelineVersionId=1)["PipelineExecutionArn"]
    assert finished(sm, arn)["PipelineVersionId"] == 1
    assert [s["StepName"] for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]] == ["Write"]
    whole = sm.start_pipeline_execution(PipelineName="versions", PipelineParameters=[{"Name": "N", "Value": "4"}])["PipelineExecutionArn"]
    assert finished(sm, whole)["PipelineExecutionStatus"] == "Succeeded"
    selective = sm.start_pipeline_execution(PipelineName="versions", SelectiveExecutionConfig={
        "SourcePipelineExecutionArn": whole, "SelectedSteps": [{"StepName": "After"}]})["PipelineExecutionArn"]  # fmt: skip
    assert finished(sm, selective)["PipelineExecutionStatus"] == "Succeeded"
    steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=selective)["PipelineExecutionSteps"]}
    assert steps["Write"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": whole} and "SelectiveExecutionResult" not in steps["After"]
    # A definition in the store, by S3 location
    api.client("s3").put_object(Bucket="definitions", Key="v3.json", Body=pipeline_json().encode())
    assert sm.update_pipeline(PipelineName="versions", PipelineDefinitionS3Location={"Bucket": "definitions", "ObjectKey": "v3.json"})["PipelineVersionId"] == 3
    sm.delete_pipeline(PipelineName="versions")
    with pytest.raises(ClientError) as missing:
        sm.describe_pipeline(PipelineName="versions")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
    # its executions stay readable by ARN
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"


def test_stop_then_retry_an_execution(api: Api) -> None:
    marker = api.settings.root / "first-attempt"
    slow = processing_step("Slow", f"import os, time\np = {str(marker)!r}\nfirst = not os.path.exists(p)\nopen(p, 'a').close()\ntime.sleep(60 if first else 0)")
    sm = api.client()
    sm.create_pipeline(PipelineName="slow", PipelineDefinition=json.dumps(definition(slow, processing_step("Next", "pass", DependsOn=["Slow"]))), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="slow")["PipelineExecutionArn"]
    until(marker.exists)
    with pytest.raises(ClientError) as running:
        sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    assert running.value.response["Error"]["Code"] == "ConflictException"
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    stopped = finished(sm, arn)
    assert stopped["PipelineExecutionStatus"] == "Stopped" and stopped["FailureReason"]
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]  # Next never started
    assert step["StepName"] == "Slow" and step["StepStatus"] == "Stopped"

    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    assert finished(sm, arn)["PipelineExecutionStatus"] == "Succeeded"
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("Slow", "Succeeded"), ("Next", "Succeeded")]
    for done in (sm.retry_pipeline_execution, sm.stop_pipeline_execution):
        with pytest.raises(ClientError) as refused:
            done(PipelineExecutionArn=arn)
        assert refused.value.response["Error"]["Code"] == "ValidationException" and "Succeeded" in str(refused.value)


def test_a_failed_step_and_a_refused_start(api: Api) -> None:
    sm = api.client()
    broken = processing_step("Broken", "raise SystemExit('the data is bad')")
    sm.create_pipeline(PipelineName="broken", PipelineDefinition=json.dumps(definition(broken)), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="broken")["PipelineExecutionArn"]
    failed = finished(sm, arn)
    assert failed["PipelineExecutionStatus"] == "Failed" and "Broken" in failed["FailureReason"]
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert step["StepStatus"] == "Failed" and step["FailureReason"]
    # parameters the definition does not declare are refused before anything runs
    with pytest.raises(ClientError) as refused:
        sm.start_pipeline_execution(PipelineName="broken", PipelineParameters=[{"Name": "Nope", "Value": "1"}])
    assert refused.value.response["Error"]["Code"] == "ValidationException" and "Nope" in str(refused.value)
    # a definition that does not validate is refused at creation, naming where
    bad = definition(processing_step("A", "pass", inputs={"x": {"Get": "Steps.Missing.ProcessingJobName"}}))
    with pytest.raises(ClientError) as invalid:
        sm.create_pipeline(PipelineName="bad", PipelineDefinition=json.dumps(bad), RoleArn=ROLE)
    assert invalid.value.response["Error"]["Code"] == "ValidationException" and "Steps.Missing" in str(invalid.value)


def test_the_model_registry_through_boto3_and_the_cli(api: Api) -> None:
    sm = api.client()
    group = sm.create_model_package_group(ModelPackageGroupName="churn", ModelPackageGroupDescription="churn models")
    assert group["ModelPackageGroupArn"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package-group/churn"
    spec = {"Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://models/churn/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip
    first = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=spec, ModelPackageDescription="v1")["ModelPackageArn"]
    second = sm.create_model_package(ModelPackageGroupName="churn", InferenceSpecification=spec)["ModelPackageArn"]
    assert (first, second) == ("arn:aws:sagemaker:us-east-1:000000000000:model-package/churn/1",
                               "arn:aws:sagemaker:us-east-1:000000000000:model-package/churn/2")  # fmt: skip
    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved", ApprovalDescription="AUC 0.91")
    described = sm.describe_model_package(ModelPackageName=second)
    assert described["ModelApprovalStatus"] == "Approved" and described["ApprovalDescription"] == "AUC 0.91"
    assert described["InferenceSpecification"] == spec and described["ModelPackageVersion"] == 2
    listed = sm.list_model_packages(ModelPackageGroupName="churn")["ModelPackageSummaryList"]
    assert [(p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in listed] == [(1, "PendingManualApproval"), (2, "Approved")]
    approved = sm.list_model_packages(ModelPackageGroupName="churn", ModelApprovalStatus="Approved", SortOrder="Descending")
    assert [p["ModelPackageArn"] for p in approved["ModelPackageSummaryList"]] == [second]
    assert sm.describe_model_package_group(ModelPackageGroupName="churn")["ModelPackageGroupDescription"] == "churn models"

    models = sagelab("models", "list", "churn", cwd=api.settings.root).stdout
    assert "Approved" in models and "PendingManualApproval" in models
    shown = json.loads(sagelab("models", "show", "churn/2", "--json", cwd=api.settings.root).stdout)
    assert shown["ModelApprovalStatus"] == "Approved" and shown["History"][-1]["Reason"] == "AUC 0.91"
    sagelab("models", "reject", "churn/2", "--reason", "drifted", cwd=api.settings.root)  # and the reverse: a CLI change seen through the API
    assert sm.describe_model_package(ModelPackageName=second)["ModelApprovalStatus"] == "Rejected"

    for call, code in [(lambda: sm.create_model_package_group(ModelPackageGroupName="churn"), "ValidationException"),
                       (lambda: sm.describe_model_package_group(ModelPackageGroupName="nope"), "ValidationException"),
                       (lambda: sm.create_model_package(ModelPackageGroupName="nope", InferenceSpecification=spec), "ValidationException"),
                       (lambda: sm.create_model_package(ModelPackageName="unversioned", InferenceSpecification=spec), "ValidationException"),
                       (lambda: sm.update_model_package(ModelPackageArn=second, CustomerMetadataProperties={"a": "b"}), "ValidationException"),
                       (lambda: sm.delete_model_package_group(ModelPackageGroupName="churn"), "ConflictException")]:  # fmt: skip
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == code
    sm.create_model_package_group(ModelPackageGroupName="empty")
    sm.delete_model_package_group(ModelPackageGroupName="empty")
    assert [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]] == ["churn"]


def test_errors_come_back_as_the_client_errors_aws_gives(api: Api) -> None:
    sm = api.client()
    with pytest.raises(ClientError) as missing:
        sm.describe_pipeline(PipelineName="nowhere")
    assert missing.value.response["Error"] == {"Code": "ResourceNotFound", "Message": "Pipeline 'arn:aws:sagemaker:us-east-1:000000000000:pipeline/nowhere' does not exist."}
    with pytest.raises(ClientError) as no_execution:
        sm.describe_pipeline_execution(PipelineExecutionArn="arn:aws:sagemaker:us-east-1:000000000000:pipeline/nowhere/execution/abc123def456")
    assert no_execution.value.response["Error"]["Code"] == "ResourceNotFound"
    # boto3 validates before sending, so malformed requests are sent raw, signed as boto3 signs
    status, body = api.raw("SageMaker.DescribePipeline", b"{}")
    assert (status, body) == (400, {"__type": "ValidationException", "message": 'Parameter validation failed:\nMissing required parameter in input: "PipelineName"'})
    status, body = api.raw("SageMaker.ListPipelines", json.dumps({"SortOrder": "Sideways", "MaxResults": 500}).encode())
    assert status == 400 and body["message"] == ("2 validation errors detected: Value 'Sideways' at 'sortOrder' failed to satisfy constraint: Member must "
                                                 "satisfy enum value set: [Ascending, Descending]; Value '500' at 'maxResults' failed to satisfy "
                                                 "constraint: Member must have value less than or equal to 100")  # fmt: skip
    status, body = api.raw("SageMaker.CreatePipeline", json.dumps({"PipelineName": "under_score", "ClientRequestToken": "t" * 32,
                                                                   "RoleArn": ROLE, "PipelineDefinition": "{}"}).encode())  # fmt: skip
    assert status == 400 and "Member must satisfy regular expression pattern" in body["message"] and "pipelineName" in body["message"]
    assert api.raw("SageMaker.ListPipelines", b"{not json")[1]["__type"] == "SerializationException"
    assert api.raw("SageMaker.ListPipelines", b"{}", sign=False) == (403, {"__type": "MissingAuthenticationTokenException", "message":
                   "Missing Authentication Token: sign requests with the credentials `sagelab env` prints"})  # fmt: skip
    assert api.raw("SageMaker.NoSuchOperation", b"{}")[1] == {"__type": "UnknownOperationException", "message": "SageMaker has no operation 'NoSuchOperation'"}
    with pytest.raises(ClientError) as unserved:
        sm.list_experiments()
    assert unserved.value.response["Error"]["Code"] == "UnknownOperationException"
    assert unserved.value.response["Error"]["Message"].startswith("sagelab's local API does not serve ListExperiments yet; it serves ")

    stranger = api.client(aws_access_key_id="AKIAIOSFODNN7EXAMPLE")
    with pytest.raises(ClientError) as refused:
        stranger.list_pipelines()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as forged:
        api.client(aws_secret_access_key="not-the-secret").list_pipelines()
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as elsewhere:
        boto3.client("sagemaker", endpoint_url=api.endpoint, region_name="eu-west-1", aws_access_key_id=api.credentials.access_key,
                     aws_secret_access_key=api.credentials.secret_key).list_pipelines()  # fmt: skip
    assert elsewhere.value.response["Error"]["Code"] == "InvalidSignatureException" and "us-east-1" in str(elsewhere.value)
    stale = AWSRequest(method="POST", url=f"{api.endpoint}/", data=b"{}", headers={"X-Amz-Target": "SageMaker.ListPipelines"})
    SigV4Auth(BotoCredentials(api.credentials.access_key, api.credentials.secret_key), "sagemaker", "us-east-1").add_auth(stale)
    with pytest.raises(AuthError) as expired:
        authenticate(api.credentials, region="us-east-1", service="sagemaker", method="POST", path="/", query="", body=b"{}",
                     headers=Headers((k.lower().encode(), v.encode()) for k, v in stale.headers.items()), now=time.time() + 3600)  # fmt: skip
    assert expired.value.code == "InvalidSignatureException" and "Signature expired" in expired.value.message
    with pytest.raises(ClientError) as s3_refused:
        api.client("s3", aws_access_key_id="AKIAIOSFODNN7EXAMPLE").list_buckets()
    assert s3_refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert api.client("sts").get_caller_identity()["Account"] == "000000000000"  # the project's account, as `aws sts` asks it
    with pytest.raises(ClientError) as sts:
        api.client("sts", aws_access_key_id="AKIAIOSFODNN7EXAMPLE").get_caller_identity()
    assert sts.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as assume:
        api.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="session")
    assert assume.value.response["Error"]["Code"] == "UnknownOperationException" and "sts AssumeRole" in str(assume.value)
    with pytest.raises(ClientError) as logs:
        api.client("logs").get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName="x")
    assert logs.value.response["Error"] == {"Code": "ResourceNotFoundException", "Message": "The specified log group does not exist."}  # no job yet
    with pytest.raises(ClientError) as runtime:
        api.client("sagemaker-runtime").invoke_endpoint(EndpointName="e", Body=b"1", ContentType="text/csv")
    assert runtime.value.response["Error"] == {"Code": "ValidationError", "Message": "Endpoint e of account 000000000000 not found."}  # served: test_awsapi_hosting.py


def test_a_cached_step_says_where_its_results_come_from(api: Api) -> None:
    sm = api.client()
    write_out = "import os; os.makedirs('/opt/ml/processing/output/out', exist_ok=True); open('/opt/ml/processing/output/out/x', 'w').write('x')"
    cached = processing_step("Cached", write_out, outputs=["out"], CacheConfig={"Enabled": True, "ExpireAfter": "P1D"})
    sm.create_pipeline(PipelineName="cached", PipelineDefinition=json.dumps(definition(cached)), RoleArn=ROLE)
    first, second = (finished(sm, sm.start_pipeline_execution(PipelineName="cached")["PipelineExecutionArn"])["PipelineExecutionArn"]
                     for _ in range(2))  # fmt: skip
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=second)["PipelineExecutionSteps"]
    assert step["StepStatus"] == "Succeeded" and step["CacheHitResult"] == {"SourcePipelineExecutionArn": first}
    assert "CacheHitResult" not in sm.list_pipeline_execution_steps(PipelineExecutionArn=first)["PipelineExecutionSteps"][0]


def test_s3_on_the_same_port_is_the_project_store(api: Api, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = api.client("s3")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    small_parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(big), "data", "raw/big.bin", Config=small_parts)  # a multipart upload
    assert (api.settings.store / "data" / "raw" / "big.bin").read_bytes() == big.read_bytes()
    s3.download_file("data", "raw/big.bin", str(tmp_path / "back.bin"), Config=small_parts)  # ranged GETs
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    assert s3.head_object(Bucket="data", Key="raw/big.bin")["ContentLength"] == big.stat().st_size
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "raw/big.bin"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=30) as presigned:
        assert presigned.read(4) == big.read_bytes()[:4]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="raw/")["Contents"]] == ["raw/big.bin"]
    s3.delete_object(Bucket="data", Key="raw/big.bin")
    assert "Contents" not in s3.list_objects_v2(Bucket="data")
    assert sagelab("s3", "ls", "s3://data/", cwd=api.settings.root).stdout == ""  # the CLI's store, the same one


def test_the_package_exports_what_it_names() -> None:
    import sagelab.awsapi

    assert sagelab.awsapi.__all__ == sorted(sagelab.awsapi.__all__)
    assert all(hasattr(sagelab.awsapi, name) for name in sagelab.awsapi.__all__)


def test_list_operations_paginate(api: Api) -> None:
    sm = api.client()
    for name in ("alpha", "beta", "gamma"):
        sm.create_pipeline(PipelineName=name, PipelineDefinition=pipeline_json(), RoleArn=ROLE)
    first = sm.list_pipelines(MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [p["PipelineName"] for p in first["PipelineSummaries"]] == ["alpha", "beta"] and first["NextToken"]
    rest = sm.list_pipelines(MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert [p["PipelineName"] for p in rest["PipelineSummaries"]] == ["gamma"] and "NextToken" not in rest
    pages = sm.get_paginator("list_pipelines").paginate(PaginationConfig={"PageSize": 1})
    assert sorted(p["PipelineName"] for page in pages for p in page["PipelineSummaries"]) == ["alpha", "beta", "gamma"]
    assert [p["PipelineName"] for p in sm.list_pipelines(PipelineNamePrefix="g")["PipelineSummaries"]] == ["gamma"]
    with pytest.raises(ClientError) as bad:
        sm.list_pipelines(NextToken="not-a-token")
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_every_served_operation_answers_in_its_output_shape(api: Api) -> None:
    """Drive each served operation once; the fixture checks every response against botocore's output shape."""
    sm = api.client()
    api.client("s3").put_object(Bucket="definitions", Key="p.json", Body=pipeline_json().encode())
    sm.create_pipeline(PipelineName="shapes", PipelineDefinitionS3Location={"Bucket": "definitions", "ObjectKey": "p.json"}, RoleArn=ROLE,
                       PipelineDisplayName="Shapes", ParallelismConfiguration={"MaxParallelExecutionSteps": 2},
                       Tags=[{"Key": "team", "Value": "ml"}])  # fmt: skip
    sm.update_pipeline(PipelineName="shapes", PipelineDescription="all of them")
    sm.describe_pipeline(PipelineName="arn:aws:sagemaker:us-east-1:000000000000:pipeline/shapes")
    sm.list_pipelines()
    arn = sm.start_pipeline_execution(PipelineName="shapes", PipelineParameters=[{"Name": "N", "Value": "2"}])["PipelineExecutionArn"]
    finished(sm, arn)
    sm.list_pipeline_executions(PipelineName="shapes")
    sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)
    sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
    marker = api.settings.root / "started"
    slow = processing_step("Slow", f"import time; open({str(marker)!r}, 'w').close(); time.sleep(60)")
    sm.create_pipeline(PipelineName="slow", PipelineDefinition=json.dumps(definition(slow)), RoleArn=ROLE)
    slow_arn = sm.start_pipeline_execution(PipelineName="slow")["PipelineExecutionArn"]
    until(marker.exists)
    sm.stop_pipeline_execution(PipelineExecutionArn=slow_arn)
    finished(sm, slow_arn)
    marker.unlink()
    sm.retry_pipeline_execution(PipelineExecutionArn=slow_arn)
    until(marker.exists)
    sm.stop_pipeline_execution(PipelineExecutionArn=slow_arn)
    finished(sm, slow_arn)
    sm.delete_pipeline(PipelineName="slow")
    sm.create_model_package_group(ModelPackageGroupName="shapes")
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://m/model.tar.gz"}], "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip
    package = sm.create_model_package(ModelPackageGroupName="shapes", InferenceSpecification=spec, CustomerMetadataProperties={"k": "v"},
                                      MetadataProperties={"GeneratedBy": arn}, ModelMetrics={})["ModelPackageArn"]  # fmt: skip
    sm.describe_model_package_group(ModelPackageGroupName="shapes")
    sm.list_model_package_groups()
    sm.describe_model_package(ModelPackageName=package)
    sm.list_model_packages(ModelPackageGroupName="shapes")
    sm.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    sm.create_model_package_group(ModelPackageGroupName="gone")
    sm.delete_model_package_group(ModelPackageGroupName="gone")
    answered = {name for _, name, status, _ in api.responses if status == 200}
    families = ("sagelab.awsapi.pipelines", "sagelab.awsapi.executions", "sagelab.awsapi.registry")  # jobs: test_awsapi_jobs.py
    mine = {name for name, handler in served("sagemaker").items() if handler.__module__ in families}
    assert mine <= answered, sorted(mine - answered)
    check_conformance(api.responses)


def test_env_prints_the_variables_and_keeps_the_credentials_private(project: Path) -> None:
    line = sagelab("env", "--port", "9999", cwd=project).stdout
    saved = json.loads((project / ".sagelab" / "api-credentials.json").read_text())
    assert stat.S_IMODE((project / ".sagelab" / "api-credentials.json").stat().st_mode) == 0o600
    assert line == (f"export AWS_ENDPOINT_URL=http://127.0.0.1:9999 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 "
                    f"AWS_ACCESS_KEY_ID={saved['aws_access_key_id']} AWS_SECRET_ACCESS_KEY={saved['aws_secret_access_key']}\n")  # fmt: skip
    assert sagelab("env", cwd=project).stdout.replace("8765", "9999") == line  # made once per project
    assert sagelab("env", "--unset", cwd=project).stdout.startswith("unset AWS_ENDPOINT_URL ")
    assert "secret_key='**********'" in repr(credentials(project / ".sagelab"))
    imported = subprocess.run([sys.executable, "-X", "importtime", "-m", "sagelab.cli", "--help"], cwd=project, capture_output=True, text=True)
    assert "api " in imported.stdout and "env " in imported.stdout
    assert "sagelab.awsapi" not in imported.stderr  # the command imports it when it runs, never `sagelab --help`


def test_the_sagelab_api_command_serves_until_ctrl_c_and_stops_its_executions(project: Path) -> None:
    server = subprocess.Popen([SAGELAB, "api", "--port", "0"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = project / "started"
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert "sagelab's local SageMaker API for" in first, first
        endpoint = first.split(" at ", 1)[1].split()[0]
        assert endpoint.startswith("http://127.0.0.1:") and 'eval "$(sagelab env --port' in server.stdout.readline()
        port = int(endpoint.rsplit(":", 1)[1])
        exported = dict(item.split("=", 1) for item in sagelab("env", cwd=project).stdout.split()[1:])  # the running server's port
        assert exported["AWS_ENDPOINT_URL"] == endpoint
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **exported}
        listed = subprocess.run([sys.executable, "-c", "import boto3; print(boto3.client('sagemaker').list_pipelines()['PipelineSummaries'])"],
                                env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert listed.stdout.strip() == "[]", listed.stderr
        assert server.stdout.readline().strip() == "ListPipelines 200"
        busy = sagelab("api", "--port", str(port), cwd=project, check=False)
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        sm = boto3.client("sagemaker", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        slow = processing_step("Slow", f"import time; open({str(marker)!r}, 'w').close(); time.sleep(60)")
        sm.create_pipeline(PipelineName="slow", PipelineDefinition=json.dumps(definition(slow)), RoleArn=ROLE)
        sm.start_pipeline_execution(PipelineName="slow")
        until(marker.exists)
    finally:
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors
    assert not (project / ".sagelab" / "api.json").exists()
    (execution,) = json.loads(sagelab("executions", "--json", cwd=project).stdout)
    assert execution["status"] == "Stopped"  # the server stopped what it started, once, cleanly


SDK_SCRIPT = """
import json, sys
from sagemaker.session import Session
from sagemaker.workflow.parameters import ParameterInteger
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.steps import ProcessingStep
from sagemaker.processing import ProcessingOutput, ScriptProcessor

session = Session(default_bucket="sdk-bucket")  # the SDK asks STS for its default bucket at an endpoint nothing redirects
n = ParameterInteger(name="N", default_value=1)
processor = ScriptProcessor(image_uri="local/python:3", command=["python3"], role=sys.argv[1], instance_type="ml.m5.large",
                            instance_count=1, sagemaker_session=session, env={"N": n.to_string()})
step = ProcessingStep(name="Write", processor=processor, code="write.py",
                      outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/output/out")])
pipeline = Pipeline(name="SdkPipeline", parameters=[n], steps=[step], sagemaker_session=session)
pipeline.upsert(role_arn=sys.argv[1])
pipeline.upsert(role_arn=sys.argv[1])  # again: the SDK updates a pipeline that exists
execution = pipeline.start(parameters={"N": 5})
execution.wait(delay=1, max_attempts=120)
print(json.dumps({"status": execution.describe()["PipelineExecutionStatus"], "steps": execution.list_steps(),
                  "output": step.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri.expr}, default=str))
"""


def test_the_sagemaker_sdk_upserts_starts_and_waits_against_the_local_api(api: Api) -> None:
    python = ROOT / ".cache" / "sdk-venv" / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: scripts/test installs the SageMaker SDK there (tests/fixtures/sdk/requirements.txt)", pytrace=False)
    root = api.settings.root
    (root / "sdk.py").write_text(SDK_SCRIPT)
    (root / "write.py").write_text("import os\nos.makedirs('/opt/ml/processing/output/out', exist_ok=True)\n"
                                   "open('/opt/ml/processing/output/out/n.txt', 'w').write(os.environ['N'])\n")  # fmt: skip
    exported = dict(item.split("=", 1) for item in sagelab("env", "--port", api.endpoint.rsplit(":", 1)[1], cwd=root).stdout.split()[1:])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}, **exported, "HOME": str(root),
           "AWS_CONFIG_FILE": str(root / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}  # the SDK's telemetry must not reach out  # fmt: skip
    run = subprocess.run([str(python), "sdk.py", ROLE], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "Succeeded"
    (step,) = result["steps"]
    assert step["StepName"] == "Write" and step["StepStatus"] == "Succeeded" and "ProcessingJob" in step["Metadata"]
    (execution,) = json.loads(sagelab("executions", "--json", cwd=root).stdout)
    assert execution["pipeline"] == "SdkPipeline" and execution["status"] == "Succeeded"
    assert json.loads(sagelab("status", "latest", "--json", cwd=root).stdout)["parameters"] == {"N": 5}
    operations = [name for _, name, _, _ in api.responses]
    assert operations.count("CreatePipeline") == 2 and "UpdatePipeline" in operations  # upsert's second call updated
