"""A SageMaker SDK `Pipeline` object runs locally unchanged, with no AWS account, credentials or network.

The SDK (tests/fixtures/sdk/requirements.txt) is installed beside sagelab in .cache/sdk-venv by
scripts/test (the one step that downloads it). The pipeline is written as the AWS model-build
templates write theirs: a bare `PipelineSession()` (its default bucket found through STS), code
and data uploaded by the SDK while it builds the definition.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "fixtures" / "sdk" / "scripts"

PIPELINE = """
from sagemaker.inputs import TrainingInput
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.estimator import SKLearn
from sagemaker.sklearn.processing import SKLearnProcessor
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import ProcessingStep, TrainingStep

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
session = PipelineSession()
processor = SKLearnProcessor(framework_version="1.2-1", instance_type="ml.m5.xlarge", instance_count=1, role=ROLE,
                             sagemaker_session=session)
preprocess = ProcessingStep(name="Preprocess", step_args=processor.run(
    inputs=[ProcessingInput(source="data", destination="/opt/ml/processing/input")],
    outputs=[ProcessingOutput(output_name=name, source=f"/opt/ml/processing/{name}") for name in ("train", "validation", "test")],
    code="scripts/preprocess.py", arguments=["--train-ratio", "0.7"]))
estimator = SKLearn(entry_point="train.py", source_dir="scripts", framework_version="1.2-1", instance_type="ml.m5.xlarge",
                    role=ROLE, sagemaker_session=session, hyperparameters={"n-estimators": 5})
train = TrainingStep(name="Train", step_args=estimator.fit(
    {"train": TrainingInput(preprocess.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri, content_type="text/csv")}))
pipeline = Pipeline(name="SdkOffline", steps=[preprocess, train], sagemaker_session=session)
"""


@pytest.fixture(scope="module")
def sdk_sagelab() -> Path:
    """The `sagelab` command of a venv holding sagelab (this checkout, editable) and the SageMaker SDK."""
    command = ROOT / ".cache" / "sdk-venv" / "bin" / "sagelab"
    if not command.is_file():
        pytest.fail(f"{command} is missing: scripts/test installs the SDK there (tests/fixtures/sdk/requirements.txt)", pytrace=False)
    return command


def _laptop(home: Path) -> dict[str, str]:
    """An environment with no AWS configuration at all: no credentials, no region, no profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_")) and k != "SAGELAB_SANDBOX"}
    return {**env, "HOME": str(home), "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none")}


def _project(tmp_path: Path, pipeline: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(SCRIPTS, project / "scripts")
    (project / "data").mkdir()
    (project / "data" / "rows.csv").write_text("".join(f"{i * 0.5},{i},{i % 3}\n" for i in range(40)))
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (project / "pipeline.py").write_text(pipeline)
    return project


def test_an_sdk_pipeline_builds_and_runs_locally_without_aws(sdk_sagelab: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, PIPELINE)
    env = _laptop(tmp_path)
    run = subprocess.run([str(sdk_sagelab), "run", "pipeline.py:pipeline"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    status = json.loads(subprocess.run([str(sdk_sagelab), "status", "latest", "--json"], cwd=project, env=env, capture_output=True,
                                       text=True, check=True).stdout)  # fmt: skip
    assert status["pipeline"] == "SdkOffline" and status["status"] == "Succeeded"
    # What the SDK uploaded while building the definition is in the project's store, under the default bucket
    # the local account names (sagemaker-<region>-<account>), where the run read it.
    bucket = project / ".sagelab" / "s3" / "sagemaker-us-east-1-000000000000"
    assert list(bucket.glob("SdkOffline/code/*/preprocess.py")) and list(bucket.glob("**/sourcedir.tar.gz"))
    assert list(bucket.glob("**/input/**/rows.csv"))  # the Processing input's local folder, uploaded
    [train] = [s for s in status["steps"] if s["name"] == "Train"]
    assert train["outputs"]["model"].startswith("s3://sagemaker-us-east-1-000000000000/")


def test_a_call_to_sagemaker_while_building_is_a_clear_error(sdk_sagelab: Path, tmp_path: Path) -> None:
    """Only S3 and STS stand in while a definition is built; any other call fails naming itself, and nothing runs."""
    asking = PIPELINE.replace("session = PipelineSession()",
                              'session = PipelineSession()\nsession.sagemaker_client.describe_training_job(TrainingJobName="earlier")')  # fmt: skip
    project = _project(tmp_path, asking)
    run = subprocess.run([str(sdk_sagelab), "run", "pipeline.py:pipeline"], cwd=project, env=_laptop(tmp_path), capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "sagemaker DescribeTrainingJob is not available while sagelab builds a pipeline definition" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (project / ".sagelab" / "sagelab.db").exists()


def test_while_a_definition_builds_sts_answers_locally_at_any_endpoint_and_nothing_else_goes_out(project: Path) -> None:
    """What the SDK does during definition(), without the SDK: STS at its explicit regional endpoint, an S3 upload, a
    telemetry GET (the SDK's goes through requests, which reads the proxy variables on each request); then everything
    is as before."""
    import urllib.error
    import urllib.request

    import boto3

    from sagelab.config import load_settings
    from sagelab.engines.local.offline_aws import offline_aws
    from sagelab.store import LocalStore

    settings = load_settings(project)
    before = dict(os.environ)
    with offline_aws(settings, LocalStore(settings.store)):
        session = boto3.Session()
        sts = session.client("sts", endpoint_url="https://sts.us-east-1.amazonaws.com")
        assert sts.get_caller_identity()["Account"] == settings.account
        session.client("s3").put_object(Bucket="sagemaker-us-east-1-000000000000", Key="code/x.py", Body=b"print(1)\n")
        with pytest.raises(urllib.error.URLError, match="403"):  # a new opener reads the proxy variables (urlopen's global one, once)
            urllib.request.build_opener().open("https://sm-pysdk-t-us-east-1.s3.us-east-1.amazonaws.com/telemetry", timeout=10)
        with pytest.raises(Exception, match="sagemaker ListPipelines is not available while sagelab builds a pipeline definition"):
            session.client("sagemaker").list_pipelines()
    assert dict(os.environ) == before
    assert (settings.store / "sagemaker-us-east-1-000000000000" / "code" / "x.py").read_bytes() == b"print(1)\n"
