"""The local API a run lends its steps: a step calls SageMaker as it would on SageMaker, with the run's AWS_ENDPOINT_URL.

The steps are real processes of a real `sagelab run`; the API they reach is the run's `python -m sagelab.awsapi.for_steps`.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import definition, processing_step, sagelab, surviving_processes, write
from sagelab.config import load_settings
from sagelab.engines.local import step_api
from sagelab.engines.local.step_api import LOG, StepApi
from sagelab.local_aws import credentials

# A step that reads its own job and registers a model package, with boto3's defaults: the run's variables.
CALLS_SAGEMAKER = """
import json, os, boto3
sm = boto3.client('sagemaker')
name = json.load(open('/opt/ml/config/processingjobconfig.json'))['ProcessingJobName']
own = sm.describe_processing_job(ProcessingJobName=name)
sm.create_model_package_group(ModelPackageGroupName='from-a-step')
arn = sm.create_model_package(ModelPackageGroupName='from-a-step', ModelApprovalStatus='PendingManualApproval',
    InferenceSpecification={'Containers': [{'Image': 'local/python:3', 'ModelDataUrl': 's3://test-bucket/model.tar.gz'}],
                            'SupportedContentTypes': ['text/csv'], 'SupportedResponseMIMETypes': ['text/csv']})['ModelPackageArn']
os.makedirs('/opt/ml/processing/output/out', exist_ok=True)
json.dump({'name': name, 'status': own['ProcessingJobStatus'], 'package': arn, 'endpoint': os.environ['AWS_ENDPOINT_URL'],
           'account': boto3.client('sts').get_caller_identity()['Account']},
          open('/opt/ml/processing/output/out/seen.json', 'w'))
"""


def test_a_step_reads_its_own_job_and_registers_a_model_package(project: Path) -> None:
    write(project / "pipeline.json", definition(processing_step("Register", CALLS_SAGEMAKER, outputs=["out"])))
    result = sagelab("run", "pipeline.json", cwd=project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    seen = json.loads((project / ".sagelab/s3/test-bucket/Register/out/seen.json").read_text())
    assert seen["status"] == "InProgress"
    assert seen["endpoint"].startswith("http://127.0.0.1:")
    assert seen["package"].endswith(":model-package/from-a-step/1") and seen["account"] == "000000000000"
    listed = sagelab("models", "list", "from-a-step", cwd=project)
    assert "PendingManualApproval" in listed.stdout
    log = (project / ".sagelab" / LOG).read_text()
    assert "DescribeProcessingJob 200" in log and "CreateModelPackage 200" in log, log
    assert surviving_processes(project) == []  # the API went with the run


def test_a_run_whose_steps_do_not_call_sagemaker_starts_no_api(project: Path) -> None:
    write(project / "pipeline.json", definition(processing_step("Plain", "print('no AWS here')")))
    sagelab("run", "pipeline.json", cwd=project)
    assert not (project / ".sagelab" / LOG).exists()


def test_without_the_api_packages_a_call_is_told_what_to_install(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_api, "NEEDS", ("uvicorn", "sagelab_no_such_package"))
    settings = load_settings(project)
    keys = credentials(settings.state_dir)
    with StepApi(settings) as api:
        client = boto3.client("sagemaker", endpoint_url=api.endpoint, region_name=settings.region,
                              aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key)  # fmt: skip
        with pytest.raises(ClientError) as raised:
            client.list_pipelines()
    error = raised.value.response["Error"]
    assert error["Code"] == "UnavailableLocally"
    assert "ListPipelines" in error["Message"] and "sagelab_no_such_package" in error["Message"]
    assert "pip install 'sagelab[serve,aws]'" in error["Message"]
    assert api.process is None
