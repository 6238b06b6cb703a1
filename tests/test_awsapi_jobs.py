"""`sagelab api`'s jobs and their logs: boto3 and the SageMaker SDK against the real server, jobs run by the local engine.

The `api` fixture (tests/test_awsapi.py) checks every answer against botocore's output shape of its operation, SageMaker's
and CloudWatch Logs' alike; one test here drives every jobs and logs operation once.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from conftest import python_code, sagelab
from sagelab.awsapi.operations import served
from test_awsapi import ROLE, ROOT, Api, api, until  # noqa: F401 - api is the fixture

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "jobs-bucket"
# A scikit-learn script-mode entry point: trains when run, serves (model_fn, predict_fn) when the container imports it.
TRAIN = '''
import argparse, json, os, pickle, time
import numpy as np


def model_fn(model_dir):
    return pickle.load(open(os.path.join(model_dir, "model.pkl"), "rb"))


def predict_fn(data, model):
    if os.environ.get("SLOW_MARKER"):  # a transform job to stop while it runs
        open(os.environ["SLOW_MARKER"], "w").close()
        time.sleep(120)
    return model.predict(np.asarray(data, dtype=float))


if __name__ == "__main__":
    from sklearn.linear_model import Ridge

    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--marker", default="")  # a file to create once training has started
    args, _ = parser.parse_known_args()
    if args.marker:
        open(args.marker, "w").close()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
    model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
    print(f"alpha={args.alpha} train_r2={model.score(data[:, 1:], data[:, 0]):.4f}", flush=True)
    time.sleep(args.sleep)
    print("training done", flush=True)
    pickle.dump(model, open(os.path.join(os.environ["SM_MODEL_DIR"], "model.pkl"), "wb"))
    json.dump({"alpha": args.alpha, "coef": list(model.coef_)}, open(os.path.join(os.environ["SM_MODEL_DIR"], "coef.json"), "w"))
'''


def rows(n: int = 60) -> np.ndarray:
    """CSV rows: the label first (a linear function of the two features), as SageMaker's algorithms take them."""
    features = np.random.default_rng(0).normal(size=(n, 2))
    return np.column_stack([features @ [3.0, -2.0] + 1.0, features])


def upload_code_and_data(api: Api) -> tuple[str, str]:
    """sourcedir.tar.gz with train.py and the training CSV in the API's S3; their URIs."""
    s3 = api.client("s3")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(TRAIN.encode())
        tar.addfile(info, io.BytesIO(TRAIN.encode()))
    s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=archive.getvalue())
    buffer = io.StringIO()
    np.savetxt(buffer, rows(), delimiter=",", fmt="%.6f")
    s3.put_object(Bucket=BUCKET, Key="data/train/train.csv", Body=buffer.getvalue().encode())
    return f"s3://{BUCKET}/code/sourcedir.tar.gz", f"s3://{BUCKET}/data/train"


def training_request(name: str, code: str, data: str, **hyperparameters: str) -> dict[str, Any]:
    """CreateTrainingJob as the AWS documentation writes a script-mode job on a framework image."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN, "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py", "sagemaker_submit_directory": code, **hyperparameters},
        "RoleArn": ROLE,
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }  # fmt: skip


def processing_request(name: str, code: str, *, outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    """CreateProcessingJob running `python3 -c code`."""
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "local/python:3", "ContainerEntrypoint": python_code(code)},
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": out, "S3Output": {"S3Uri": f"s3://{BUCKET}/{name}/{out}", "S3UploadMode": "EndOfJob",
                                                                                 "LocalPath": f"/opt/ml/processing/output/{out}"}} for out in outputs]},
    }  # fmt: skip


def transform_request(name: str, **environment: str) -> dict[str, Any]:
    """CreateTransformJob scoring the CSV lines under batch/ with the model `ridge`, into scored/<name>/."""
    return {
        "TransformJobName": name, "ModelName": "ridge", "Environment": environment,
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/scored/{name}", "Accept": "text/csv", "AssembleWith": "Line"},
    }  # fmt: skip


def ended(describe: Any, status: str = "") -> dict[str, Any]:
    """The job's Describe answer once it has ended (`status` is its status member)."""
    return until(lambda: (d := describe())[status] not in ("InProgress", "Stopping") and d, timeout=300)  # type: ignore[no-any-return]


def stream_of(api: Api, group: str, job: str) -> str:
    (stream,) = api.client("logs").describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
    return str(stream["logStreamName"])


def test_a_training_job_created_with_boto3_runs_its_script_and_leaves_its_model(api: Api, tmp_path: Path) -> None:
    sm, s3, logs = api.client(), api.client("s3"), api.client("logs")
    code, data = upload_code_and_data(api)
    started = time.monotonic()
    arn = sm.create_training_job(**training_request("ridge-1", code, data, alpha="0.5"))["TrainingJobArn"]
    assert time.monotonic() - started < 10  # answered once the job exists, not when it ends
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:training-job/ridge-1"
    first = sm.describe_training_job(TrainingJobName="ridge-1")
    assert first["TrainingJobStatus"] in ("InProgress", "Completed") and first["AlgorithmSpecification"]["TrainingImage"] == SKLEARN

    done = ended(lambda: sm.describe_training_job(TrainingJobName="ridge-1"), "TrainingJobStatus")
    assert done["TrainingJobStatus"] == "Completed" and done["SecondaryStatus"] == "Completed", done.get("FailureReason")
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/models/ridge-1/output/model.tar.gz"
    assert done["HyperParameters"]["alpha"] == "0.5" and done["CreationTime"] <= done["TrainingStartTime"] <= done["TrainingEndTime"]
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == ["Starting", "Training", "Completed"]
    packed = s3.get_object(Bucket=BUCKET, Key="models/ridge-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        model = json.loads(tar.extractfile("coef.json").read())  # type: ignore[union-attr]
        assert sorted(tar.getnames()) == ["coef.json", "model.pkl"]
    assert model["alpha"] == 0.5 and abs(model["coef"][0] - 3.0) < 0.1

    (summary,) = sm.list_training_jobs()["TrainingJobSummaries"]
    assert summary["TrainingJobName"] == "ridge-1" and summary["TrainingJobStatus"] == "Completed"
    # its log, as CloudWatch holds a training job's
    stream = stream_of(api, "/aws/sagemaker/TrainingJobs", "ridge-1")
    assert stream.startswith("ridge-1/algo-1-")
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream, startFromHead=True)["events"]
    assert any(e["message"].startswith("alpha=0.5 train_r2=0.9") for e in events)
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in events)
    # the CLI sees the job as a one-step execution
    (execution,) = json.loads(sagelab("executions", "--json", cwd=api.settings.root).stdout)
    assert (execution["pipeline"], execution["status"]) == ("training-job/ridge-1", "Succeeded")
    assert "train_r2" in sagelab("logs", execution["id"], cwd=api.settings.root).stdout
    # ... and it is no pipeline
    assert sm.list_pipelines()["PipelineSummaries"] == []

    with pytest.raises(ClientError) as again:
        sm.create_training_job(**training_request("Ridge-1", code, data))
    assert again.value.response["Error"] == {"Code": "ResourceInUse", "Message": (
        "Training job names must be unique within an AWS account and region, and a training job with this name already exists "
        "(arn:aws:sagemaker:us-east-1:000000000000:training-job/ridge-1)")}  # fmt: skip


def test_a_processing_job_its_output_and_its_log_events(api: Api) -> None:
    sm, s3, logs = api.client(), api.client("s3"), api.client("logs")
    code = ("import os, time\nfor i in range(5):\n    print(f'step {i}', 'ERROR' if i == 3 else 'ok', flush=True)\n    time.sleep(0.3)\n"
            "os.makedirs('/opt/ml/processing/output/out', exist_ok=True)\nopen('/opt/ml/processing/output/out/x.txt', 'w').write('done')")  # fmt: skip
    sm.create_processing_job(**processing_request("count", code, outputs=("out",)))
    group = "/aws/sagemaker/ProcessingJobs"

    def events() -> list[dict[str, Any]]:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="count/")["logStreams"]
        return logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"] if streams else []

    early = until(lambda: (found := events()) and any(e["message"] == "step 1 ok" for e in found) and found)  # read while it runs
    done = ended(lambda: sm.describe_processing_job(ProcessingJobName="count"), "ProcessingJobStatus")
    assert done["ProcessingJobStatus"] == "Completed" and done["ProcessingJobArn"].endswith(":processing-job/count")
    assert done["ProcessingStartTime"] <= done["ProcessingEndTime"] and done["AppSpecification"]["ImageUri"] == "local/python:3"
    assert s3.get_object(Bucket=BUCKET, Key="count/out/x.txt")["Body"].read() == b"done"

    stream = stream_of(api, group, "count")
    head = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    lines = [e["message"] for e in head["events"] if e["message"].startswith("step ")]
    assert lines == ["step 0 ok", "step 1 ok", "step 2 ok", "step 3 ERROR", "step 4 ok"]
    stamps = [e["timestamp"] for e in head["events"]]
    assert stamps == sorted(stamps) and stamps[0] < stamps[-1]  # stamped as they came
    assert head["events"][: len(early)] == early  # an event keeps its stamp
    # at the end of the stream the forward token comes back unchanged (the SDK's loop stops on an empty page)
    end = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, nextToken=head["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == head["nextForwardToken"]
    # without startFromHead: the stream's last events, then backward
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert tail["events"] == head["events"][-2:] and head["events"][-1]["message"].startswith("[sagelab] output: ")
    before = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2, nextToken=tail["nextBackwardToken"])
    assert before["events"] == head["events"][-4:-2]
    # the SDK's way: from a timestamp, skipping what it printed
    since = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, startTime=stamps[len(early)])["events"]
    assert since == [e for e in head["events"] if e["timestamp"] >= stamps[len(early)]] and since[-1] == head["events"][-1]

    filtered = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="count/", filterPattern="ERROR")
    assert [(e["logStreamName"], e["message"]) for e in filtered["events"]] == [(stream, "step 3 ERROR")]
    assert filtered["searchedLogStreams"] == [{"logStreamName": stream, "searchedCompletely": True}]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern='"step 1" ?ok ?nothing')["events"]] == ["step 1 ok"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern="%step [24]%")["events"]] == ["step 2 ok", "step 4 ok"]
    assert len(logs.filter_log_events(logGroupName=group, filterPattern='"step " -ERROR -sagelab')["events"]) == 4
    for call, code_ in [(lambda: logs.filter_log_events(logGroupName=group, filterPattern="{ $.level = 1 }"), "InvalidParameterException"),
                        (lambda: logs.get_log_events(logGroupName=group, logStreamName="nope"), "ResourceNotFoundException"),
                        (lambda: logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken="f/999"), "InvalidParameterException"),
                        (lambda: logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs"), "ResourceNotFoundException")]:  # fmt: skip
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == code_


def test_a_failed_job_a_stopped_job_names_and_lists(api: Api) -> None:
    sm = api.client()
    sm.create_processing_job(**processing_request("broken", "raise SystemExit('the data is bad')"))
    failed = ended(lambda: sm.describe_processing_job(ProcessingJobName="broken"), "ProcessingJobStatus")
    assert failed["ProcessingJobStatus"] == "Failed" and "the data is bad" in failed["FailureReason"]

    marker = api.settings.root / "slow-started"
    sm.create_processing_job(**processing_request("slow", f"import time; open({str(marker)!r}, 'w').close(); time.sleep(120)"))
    until(marker.exists)
    assert sm.describe_processing_job(ProcessingJobName="slow")["ProcessingJobStatus"] == "InProgress"
    sm.stop_processing_job(ProcessingJobName="slow")
    assert sm.describe_processing_job(ProcessingJobName="slow")["ProcessingJobStatus"] in ("Stopping", "Stopped")
    stopped = ended(lambda: sm.describe_processing_job(ProcessingJobName="slow"), "ProcessingJobStatus")
    assert stopped["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as again:
        sm.stop_processing_job(ProcessingJobName="slow")
    assert again.value.response["Error"] == {"Code": "ValidationException", "Message": "The request was rejected because the processing job is in status Stopped."}
    (execution,) = [e for e in json.loads(sagelab("executions", "--json", cwd=api.settings.root).stdout) if e["pipeline"] == "processing-job/slow"]
    assert execution["status"] == "Stopped"
    refused = sagelab("retry", execution["id"], cwd=api.settings.root, check=False)
    assert refused.returncode == 1 and "a job is not retried" in refused.stderr

    # names: in use, and unknown, in each type's words
    with pytest.raises(ClientError) as in_use:
        sm.create_processing_job(**processing_request("broken", "pass"))
    assert in_use.value.response["Error"]["Code"] == "ResourceInUse"
    for call, error in [(lambda: sm.describe_training_job(TrainingJobName="nope"), ("ValidationException", "Requested resource not found.")),
                        (lambda: sm.stop_training_job(TrainingJobName="nope"), ("ValidationException", "Requested resource not found.")),
                        (lambda: sm.describe_processing_job(ProcessingJobName="nope"), ("ValidationException", "Could not find requested job with name nope")),
                        (lambda: sm.describe_transform_job(TransformJobName="nope"), ("ValidationException", "Could not find requested job with name nope")),
                        (lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope"),
                         ("ResourceNotFound", "Amazon SageMaker can't find a tuning job called nope. Type another name."))]:  # fmt: skip
        with pytest.raises(ClientError) as missing:
            call()
        assert (missing.value.response["Error"]["Code"], missing.value.response["Error"]["Message"]) == error

    # lists: filters, sorting and pages
    time.sleep(1.1)  # botocore sends timestamps to the second
    between = datetime.now(timezone.utc)
    sm.create_processing_job(**processing_request("fine", "print('fine')"))
    ended(lambda: sm.describe_processing_job(ProcessingJobName="fine"), "ProcessingJobStatus")
    names = [j["ProcessingJobName"] for j in sm.list_processing_jobs()["ProcessingJobSummaries"]]
    assert names == ["broken", "slow", "fine"]  # oldest first, as SageMaker's default
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs(SortBy="Name", SortOrder="Descending")["ProcessingJobSummaries"]] == ["slow", "fine", "broken"]
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs(StatusEquals="Failed")["ProcessingJobSummaries"]] == ["broken"]
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs(NameContains="IN")["ProcessingJobSummaries"]] == ["fine"]
    first = sm.list_processing_jobs(MaxResults=2)
    assert len(first["ProcessingJobSummaries"]) == 2 and first["NextToken"]
    rest = sm.list_processing_jobs(MaxResults=2, NextToken=first["NextToken"])
    assert [j["ProcessingJobName"] for j in rest["ProcessingJobSummaries"]] == ["fine"] and "NextToken" not in rest
    paged = sm.get_paginator("list_processing_jobs").paginate(PaginationConfig={"PageSize": 1})
    assert sorted(j["ProcessingJobName"] for page in paged for j in page["ProcessingJobSummaries"]) == ["broken", "fine", "slow"]
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs(CreationTimeAfter=between)["ProcessingJobSummaries"]] == ["fine"]
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs(CreationTimeBefore=between, SortOrder="Descending")["ProcessingJobSummaries"]] == ["slow", "broken"]


def test_a_pipelines_jobs_are_jobs_too(api: Api) -> None:
    """SageMaker lists and describes the jobs a pipeline's steps ran; so does the local API."""
    from conftest import definition, processing_step

    sm = api.client()
    sm.create_pipeline(PipelineName="p", PipelineDefinition=json.dumps(definition(processing_step("Work", "print('in a pipeline')"))), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="p")["PipelineExecutionArn"]
    until(lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded")
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    job = step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    described = sm.describe_processing_job(ProcessingJobName=job)
    assert described["ProcessingJobStatus"] == "Completed" and described["ProcessingJobArn"] == step["Metadata"]["ProcessingJob"]["Arn"]
    assert [j["ProcessingJobName"] for j in sm.list_processing_jobs()["ProcessingJobSummaries"]] == [described["ProcessingJobName"]]
    events = api.client("logs").get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs", startFromHead=True,
                                               logStreamName=stream_of(api, "/aws/sagemaker/ProcessingJobs", described["ProcessingJobName"]))["events"]  # fmt: skip
    assert "in a pipeline" in [e["message"] for e in events]


def test_every_jobs_and_logs_operation_answers_in_its_output_shape(api: Api) -> None:
    """A training job, a tuning job over it, a transform job with the model it made, a processing job; each operation once."""
    sm, logs = api.client(), api.client("logs")
    code, data = upload_code_and_data(api)
    sm.create_training_job(**training_request("base", code, data))
    sm.describe_training_job(TrainingJobName="base")  # while it runs
    trained = ended(lambda: sm.describe_training_job(TrainingJobName="base"), "TrainingJobStatus")
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")

    definition = {key: value for key, value in training_request("x", code, data).items() if key not in ("TrainingJobName", "HyperParameters")}
    definition["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "train:r2", "Regex": "train_r2=([0-9.]+)"}]
    definition["StaticHyperParameters"] = {"sagemaker_program": "train.py", "sagemaker_submit_directory": code}
    sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune", TrainingJobDefinition=definition, HyperParameterTuningJobConfig={
        "Strategy": "Grid", "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "train:r2"},
        "ResourceLimits": {"MaxParallelTrainingJobs": 1},
        "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "alpha", "Values": ["0.1", "100"]}]}})  # fmt: skip
    sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune")
    tuned = ended(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune"), "HyperParameterTuningJobStatus")
    assert tuned["HyperParameterTuningJobStatus"] == "Completed", tuned.get("FailureReason")
    assert tuned["TrainingJobStatusCounters"]["Completed"] == 2 and tuned["BestTrainingJob"]["TunedHyperParameters"] == {"alpha": "0.1"}
    best = tuned["BestTrainingJob"]["TrainingJobName"]
    assert best.startswith("tune-001-") or best.startswith("tune-002-")
    children = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune", SortBy="FinalObjectiveMetricValue",
                                                                     SortOrder="Descending")["TrainingJobSummaries"]  # fmt: skip
    assert [c["TrainingJobName"] for c in children][0] == best and len(children) == 2
    child = sm.describe_training_job(TrainingJobName=best)  # as the SDK's tuner.best_estimator() reads it
    assert child["TuningJobArn"] == tuned["HyperParameterTuningJobArn"] and child["HyperParameters"]["alpha"] == "0.1"
    assert api.client("s3").head_object(Bucket=BUCKET, Key=f"models/{best}/output/model.tar.gz")["ContentLength"] > 0
    assert {j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]} == {"base", *(c["TrainingJobName"] for c in children)}
    sm.list_hyper_parameter_tuning_jobs()
    assert any(e["message"].startswith("alpha=0.1 ") for e in logs.filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{best}/")["events"])  # fmt: skip

    # the model, recorded as a pipeline's Model step records it, scores a batch
    container = {"Image": SKLEARN, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"],
                 "Environment": {"SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": code}}  # fmt: skip
    model_step = {"Name": "Model", "Type": "Model", "Arguments": {"ModelName": "ridge", "ExecutionRoleArn": ROLE, "PrimaryContainer": container}}
    sm.create_pipeline(PipelineName="model", RoleArn=ROLE, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [model_step]}))  # fmt: skip
    execution = sm.start_pipeline_execution(PipelineName="model")["PipelineExecutionArn"]
    until(lambda: sm.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"] == "Succeeded")
    api.client("s3").put_object(Bucket=BUCKET, Key="batch/in.csv", Body=b"1.0,0.0\n0.0,1.0\n")
    sm.create_transform_job(**transform_request("score"))
    scored = ended(lambda: sm.describe_transform_job(TransformJobName="score"), "TransformJobStatus")
    assert scored["TransformJobStatus"] == "Completed", scored.get("FailureReason")
    predictions = [float(v) for v in api.client("s3").get_object(Bucket=BUCKET, Key="scored/score/in.csv.out")["Body"].read().split()]
    assert abs(predictions[0] - 4.0) < 0.3 and abs(predictions[1] + 1.0) < 0.3  # 3·1 − 2·0 + 1, 3·0 − 2·1 + 1
    sm.list_transform_jobs()
    logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs", orderBy="LastEventTime", descending=True)

    # each type of job stopped while it runs (its program says when it has started)
    marker = api.settings.root / "started"
    sleeper = ["python3", "-c", f"import time; open({str(marker)!r}, 'w').close(); time.sleep(120)"]
    slow_training = training_request("slow-training", code, data)
    slow_training["AlgorithmSpecification"]["ContainerEntrypoint"] = sleeper
    slow_definition = {**definition, "StaticHyperParameters": {**definition["StaticHyperParameters"], "sleep": "120", "marker": str(marker)}}
    starts = [("training_job", "slow-training", lambda: sm.create_training_job(**slow_training)),
              ("processing_job", "slow-processing", lambda: sm.create_processing_job(**processing_request("slow-processing", sleeper[2]))),
              ("transform_job", "slow-transform", lambda: sm.create_transform_job(**transform_request("slow-transform", SLOW_MARKER=str(marker)))),
              ("hyper_parameter_tuning_job", "slow-tuning", lambda: sm.create_hyper_parameter_tuning_job(
                  HyperParameterTuningJobName="slow-tuning", TrainingJobDefinition=slow_definition,
                  HyperParameterTuningJobConfig=tuned["HyperParameterTuningJobConfig"]))]  # fmt: skip
    for kind, name, start in starts:
        marker.unlink(missing_ok=True)
        start()
        until(marker.exists)
        member = "".join(part.capitalize() for part in kind.split("_"))  # hyper_parameter_tuning_job: HyperParameterTuningJob
        getattr(sm, f"stop_{kind}")(**{f"{member}Name": name})
        assert ended(lambda: getattr(sm, f"describe_{kind}")(**{f"{member}Name": name}), f"{member}Status")[f"{member}Status"] == "Stopped"
    sm.list_processing_jobs()
    group = "/aws/sagemaker/ProcessingJobs"
    logs.get_log_events(logGroupName=group, logStreamName=stream_of(api, group, "slow-processing"))
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]] == [
        "/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TransformJobs"]  # fmt: skip
    answered = {name for _, name, status, _ in api.responses if status == 200}
    mine = {name for name, handler in served("sagemaker").items() if handler.__module__ == "sagelab.awsapi.jobs"} | set(served("logs"))
    assert mine <= answered, sorted(mine - answered)


SDK_SCRIPT = """
import json, sys
from sagemaker.session import Session
from sagemaker.sklearn import SKLearn, SKLearnProcessor
from sagemaker.processing import ProcessingOutput

session = Session(default_bucket="sdk-bucket")  # the SDK asks STS for its default bucket at an endpoint nothing redirects
estimator = SKLearn(entry_point="train.py", source_dir="code", framework_version="1.2-1", role=sys.argv[1], instance_count=1,
                    instance_type="ml.m5.large", hyperparameters={"alpha": 0.25, "sleep": 12}, sagemaker_session=session)
estimator.fit({"train": sys.argv[2]}, wait=True, logs=True)
processor = SKLearnProcessor(framework_version="1.2-1", role=sys.argv[1], instance_count=1, instance_type="ml.m5.large",
                             sagemaker_session=session)
processor.run(code="process.py", outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/output")], logs=False)
described = processor.latest_job.describe()
print()
print(json.dumps({"model": estimator.model_data, "job": estimator.latest_training_job.name, "processing": described["ProcessingJobStatus"],
                  "output": described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]}))
"""


def test_the_sagemaker_sdk_fits_an_estimator_with_logs_and_runs_a_processor(api: Api) -> None:
    python = ROOT / ".cache" / "sdk-venv" / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: scripts/test installs the SageMaker SDK there (tests/fixtures/sdk/requirements.txt)", pytrace=False)
    root = api.settings.root
    _, data = upload_code_and_data(api)
    (root / "code").mkdir()
    (root / "code" / "train.py").write_text(TRAIN)
    (root / "process.py").write_text(textwrap.dedent("""
        import os, sklearn
        os.makedirs("/opt/ml/processing/output", exist_ok=True)
        open("/opt/ml/processing/output/version.txt", "w").write(sklearn.__version__)
    """))
    (root / "sdk.py").write_text(SDK_SCRIPT)
    exported = dict(item.split("=", 1) for item in sagelab("env", "--port", api.endpoint.rsplit(":", 1)[1], cwd=root).stdout.split()[1:])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}, **exported, "HOME": str(root),
           "AWS_CONFIG_FILE": str(root / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}  # the SDK's telemetry must not reach out  # fmt: skip
    run = subprocess.run([str(python), "sdk.py", ROLE, data], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # fit(logs=True) printed the job's log as it came, each line once, read from CloudWatch Logs here while the job ran
    assert run.stdout.count("alpha=0.25 train_r2=") == 1 and run.stdout.count("training done") == 1, run.stdout
    assert "Training - Training image download completed. Training in progress." in run.stdout
    assert result["model"] == f"s3://sdk-bucket/{result['job']}/output/model.tar.gz" and result["processing"] == "Completed"
    bucket, key = result["output"].removeprefix("s3://").split("/", 1)
    assert api.client("s3").get_object(Bucket=bucket, Key=f"{key}/version.txt")["Body"].read() == b"1.2.1"
    operations = {name for _, name, _, _ in api.responses}
    assert {"CreateTrainingJob", "DescribeTrainingJob", "DescribeLogStreams", "GetLogEvents", "CreateProcessingJob"} <= operations
