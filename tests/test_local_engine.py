"""The local engine end to end: real step subprocesses, real store, real S3 endpoint."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import definition, processing_step
from sagelab.config import load_settings
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine
from sagelab.engines.local.job import Job, StepFailed
from sagelab.errors import DefinitionError, ParameterError

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    return LocalEngine(load_settings(project))


def run(engine: LocalEngine, document: dict[str, Any], **parameters: str):  # type: ignore[no-untyped-def]
    return engine.start(parse(document), "test", parameters)


def statuses(execution: Any) -> dict[str, str]:
    return {name: state.status for name, state in execution.steps.items()}


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def training_step(name: str, channels: dict[str, str], hyperparameters: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}, {"Name": "val:acc", "Regex": "val-acc: ([0-9.]+)"}],
            },
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {"ChannelName": ch, "ContentType": "text/csv", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
                for ch, uri in channels.items()
            ],
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "Environment": {"MY_VARIABLE": "from-environment"},
        },
    }


def test_training_contract(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "must-not-leak")
    store = engine.store
    store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", tarball({
        "train.py": (SCRIPTS / "contract_train.py").read_text(), "helper/__init__.py": "", "helper/util.py": "VALUE = 42\n"}))
    store.put_bytes("s3://test-bucket/data/train/part-1.csv", b"1,2\n")
    store.put_bytes("s3://test-bucket/data/validation/v.csv", b"3,4\n")
    step = training_step(
        "Train",
        {"train": "s3://test-bucket/data/train", "validation": "s3://test-bucket/data/validation/"},
        {
            "epochs": "3",
            "learning-rate": "0.1",
            "name": "run one",
            "flag": "true",
            "sagemaker_program": '"train.py"',  # the v2 SDK JSON-encodes values
            "sagemaker_submit_directory": "s3://test-bucket/code/sourcedir.tar.gz",  # v3 writes plain strings
            "sagemaker_container_log_level": "20",
        },
    )
    execution = run(engine, definition(step))
    state = execution.steps["Train"]
    log = Path(state.log_path).read_text()
    assert execution.status == "Succeeded", (state.failure_reason, log)
    assert "contract ok" in log
    model = state.properties["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == f"s3://test-bucket/models/{state.job_name}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(model))) as archive:
        assert sorted(archive.getnames()) == ["model.txt", "sub", "sub/extra.bin"]
        assert archive.extractfile("model.txt").read() == b"trained 42"
    assert store.head(f"s3://test-bucket/models/{state.job_name}/output/output.tar.gz").size > 0
    metrics = {m["MetricName"]: m["Value"] for m in state.properties["FinalMetricDataList"]}
    assert metrics == {"loss": 0.25, "val:acc": 0.9}
    assert state.properties["TrainingJobStatus"] == "Completed"
    assert state.properties["TrainingJobArn"] == f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{state.job_name.lower()}"
    assert state.job_name.startswith(f"pipelines-{execution.id}-Train-") and len(state.job_name) <= 63


def test_processing_contract_and_inputs_are_copies(engine: LocalEngine) -> None:
    store = engine.store
    store.put_bytes("s3://test-bucket/in/a.csv", b"a\n")
    store.put_bytes("s3://test-bucket/in/nested/b.csv", b"b\n")
    store.put_bytes("s3://test-bucket/code/contract_process.py", (SCRIPTS / "contract_process.py").read_bytes())
    step = processing_step("Process", "", inputs={
        "data": "s3://test-bucket/in/", "single": "s3://test-bucket/in/a.csv", "code": "s3://test-bucket/code/contract_process.py"},
        outputs=["result"])
    step["Arguments"]["AppSpecification"] = {
        "ImageUri": "local/python", "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/contract_process.py"],
        "ContainerArguments": ["--mode", "check"]}
    step["Arguments"]["Environment"] = {"STAGE": "test"}
    execution = run(engine, definition(step))
    state = execution.steps["Process"]
    assert execution.status == "Succeeded", (state.failure_reason, Path(state.log_path).read_text())
    assert store.get_bytes("s3://test-bucket/in/a.csv") == b"a\n"  # untouched by the step
    assert json.loads(store.get_bytes("s3://test-bucket/Process/result/report.json")) == {"metrics": {"score": 0.75}}
    assert store.get_bytes("s3://test-bucket/Process/result/deep/er/x.txt") == b"x"
    assert state.outputs == ["s3://test-bucket/Process/result"]
    props = state.properties
    assert props["ProcessingJobStatus"] == "Completed"
    assert props["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://test-bucket/Process/result"


def test_script_processor_conventions_code_input_and_parameters_in_arguments(engine: LocalEngine) -> None:
    """ScriptProcessor: the code input lands at /opt/ml/processing/input/code, `command` runs it, and
    ContainerArguments get the execution's parameter values, as the pipeline service substitutes them."""
    engine.store.put_bytes("s3://test-bucket/code/args.py", b"import json, sys\n"
                           b"open('/opt/ml/processing/output/out/args.json', 'w').write(json.dumps(sys.argv[1:]))\n")
    step = processing_step("Script", "", inputs={"code": "s3://test-bucket/code/args.py"}, outputs=["out"])
    step["Arguments"]["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/opt/ml/processing/input/code"
    step["Arguments"]["AppSpecification"] = {
        "ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/args.py"],
        "ContainerArguments": ["--ratio", {"Get": "Parameters.Ratio"}, "--stage",
                               {"Std:Join": {"On": "-", "Values": [{"Get": "Parameters.Stage"}, "x"]}}]}
    parameters = [{"Name": "Ratio", "Type": "Float", "DefaultValue": 0.7}, {"Name": "Stage", "Type": "String", "DefaultValue": "dev"}]
    execution = run(engine, definition(step, parameters=parameters), Ratio="0.8")
    assert execution.status == "Succeeded", execution.steps["Script"].failure_reason
    assert json.loads(engine.store.get_bytes("s3://test-bucket/Script/out/args.json")) == ["--ratio", "0.8", "--stage", "dev-x"]


def test_concurrent_steps_each_see_their_own_opt_ml(engine: LocalEngine) -> None:
    """Two steps start together, each writes its name under /opt/ml, waits for the other, and checks nothing leaked."""
    code = """
import os, sys, time
name = sys.argv[1]
marker = '/opt/ml/processing/output/out/who.txt'
open(marker, 'w').write(name)
open('/tmp/sagelab-test-' + os.environ['RUN'] + '-' + name, 'w').close()
other = 'B' if name == 'A' else 'A'
deadline = time.time() + 20
while not os.path.exists('/tmp/sagelab-test-' + os.environ['RUN'] + '-' + other):
    assert time.time() < deadline, 'the other step never started: steps did not run in parallel'
    time.sleep(0.01)
time.sleep(0.1)
assert open(marker).read() == name, 'another step wrote into my /opt/ml'
assert os.listdir('/opt/ml/processing/output/out') == ['who.txt']
"""
    run_id = str(id(engine))
    steps = []
    for name in ("A", "B"):
        step = processing_step(name, code, outputs=["out"])
        step["Arguments"]["AppSpecification"]["ContainerArguments"] = [name]
        step["Arguments"]["Environment"] = {"RUN": run_id}
        steps.append(step)
    execution = run(engine, definition(*steps))
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    a, b = execution.steps["A"], execution.steps["B"]
    assert a.started < b.ended and b.started < a.ended  # they overlapped
    assert engine.store.get_bytes("s3://test-bucket/A/out/who.txt") == b"A"
    assert engine.store.get_bytes("s3://test-bucket/B/out/who.txt") == b"B"
    for name in ("A", "B"):
        Path(f"/tmp/sagelab-test-{run_id}-{name}").unlink()


def test_failure_stops_new_steps_but_lets_running_ones_finish(engine: LocalEngine) -> None:
    slow = processing_step("Slow", "import time; time.sleep(0.5); print('slow done')")
    bad = processing_step("Bad", "import sys; print('about to fail'); sys.exit(3)")
    after_bad = processing_step("AfterBad", "pass", DependsOn=["Bad"])
    after_slow = processing_step("AfterSlow", "pass", DependsOn=["Slow"])
    execution = run(engine, definition(slow, bad, after_bad, after_slow))
    assert statuses(execution) == {"Slow": "Succeeded", "Bad": "Failed", "AfterBad": "NotStarted", "AfterSlow": "NotStarted"}
    assert execution.status == "Failed"
    reason = execution.steps["Bad"].failure_reason
    assert "exited with code 3" in reason and "about to fail" in reason
    assert execution.failure_reason.startswith("step Bad failed: AlgorithmError")
    records = engine.records.steps(execution.id)
    assert {r.name: r.status for r in records} == statuses(execution)


def test_a_job_stopped_during_its_setup_never_starts_its_process(engine: LocalEngine, project: Path) -> None:
    """Stopping a step (Ctrl-C, a tuning's limit) while its runner downloads data or installs requirements."""
    marker = project / "started"
    step = parse(definition(processing_step("P", "pass"))).steps[0]
    job = Job(step=step, arguments={}, job_name="job", root=project / "job", log_path=project / "job.log", store=engine.store,
              settings=engine.settings, step_env={})  # fmt: skip
    job.root.mkdir()
    outcome: list[BaseException | int] = []
    setup = threading.Event()

    def runner() -> None:  # a runner's slow setup, then its process
        setup.wait(10)
        try:
            outcome.append(job.run(["python3", "-c", f"open({str(marker)!r}, 'w').close()"], "/opt/ml", {}))
        except StepFailed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=runner)
    thread.start()
    job.terminate()  # no process yet: nothing to signal, but the job is stopped
    setup.set()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], StepFailed) and "stopped" in str(outcome[0]), outcome
    assert not marker.exists()


def test_training_failure_reads_the_failure_file(engine: LocalEngine) -> None:
    script = "open('/opt/ml/output/failure', 'w').write('ValueError: bad input data'); raise SystemExit(1)"
    engine.store.put_bytes("s3://test-bucket/code/fail.tar.gz", tarball({"train.py": script}))
    engine.store.put_bytes("s3://test-bucket/data/x.csv", b"1\n")
    step = training_step("Train", {"train": "s3://test-bucket/data/"},
                         {"sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://test-bucket/code/fail.tar.gz"})
    execution = run(engine, definition(step))
    assert execution.steps["Train"].failure_reason.startswith("AlgorithmError: ValueError: bad input data")


def test_missing_input_data_fails_with_a_hint(engine: LocalEngine) -> None:
    execution = run(engine, definition(processing_step("P", "pass", inputs={"raw": "s3://test-bucket/nothing/"})))
    reason = execution.steps["P"].failure_reason
    assert "no objects exist under s3://test-bucket/nothing/" in reason and "sagelab s3 cp" in reason


def condition_pipeline(threshold: float) -> dict[str, Any]:
    evaluate = processing_step(
        "Evaluate", "import json; json.dump({'metrics': {'mse': 2.5}}, open('/opt/ml/processing/output/report/evaluation.json', 'w'))",
        outputs=["report"], PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "report", "FilePath": "evaluation.json"}])
    metric = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "metrics.mse"}}
    good = processing_step("Good", "print('good')")
    good_next = processing_step("GoodNext", "pass", DependsOn=["Good"])
    fail = {"Name": "TooHigh", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": ["mse", metric, "above", {"Get": "Parameters.Threshold"}]}}}}
    check = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": metric, "RightValue": {"Get": "Parameters.Threshold"}}],
        "IfSteps": [good, good_next], "ElseSteps": [fail]}}
    return definition(evaluate, check, parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": threshold}])


def test_condition_true_runs_if_branch_and_skips_else(engine: LocalEngine) -> None:
    execution = run(engine, condition_pipeline(3.0))
    assert statuses(execution) == {"Evaluate": "Succeeded", "Check": "Succeeded", "Good": "Succeeded", "GoodNext": "Succeeded", "TooHigh": "Skipped"}
    assert execution.steps["Check"].properties == {"Outcome": True}
    assert execution.status == "Succeeded"


def test_condition_false_runs_fail_step(engine: LocalEngine) -> None:
    execution = run(engine, condition_pipeline(3.0), Threshold="1.5")
    assert statuses(execution) == {"Evaluate": "Succeeded", "Check": "Succeeded", "Good": "Skipped", "GoodNext": "Skipped", "TooHigh": "Failed"}
    assert execution.status == "Failed"
    assert execution.failure_reason == "mse 2.5 above 1.5"


def test_properties_flow_between_steps_and_execution_variables(engine: LocalEngine) -> None:
    first = processing_step("First", "open('/opt/ml/processing/output/data/x.txt', 'w').write('hello')", outputs=["data"])
    first["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = {
        "Std:Join": {"On": "/", "Values": ["s3://test-bucket", {"Get": "Execution.PipelineExecutionId"}, "data"]}}
    second = processing_step(
        "Second", "import os; assert open('/opt/ml/processing/input/data/x.txt').read() == 'hello'; assert os.environ['PIPE'] == 'test'",
        inputs={"data": {"Get": "Steps.First.ProcessingOutputConfig.Outputs['data'].S3Output.S3Uri"}})
    second["Arguments"]["Environment"] = {"PIPE": {"Get": "Execution.PipelineName"}}
    execution = run(engine, definition(first, second))
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    assert engine.store.get_bytes(f"s3://test-bucket/{execution.id}/data/x.txt") == b"hello"


def test_step_scripts_reach_the_store_through_boto3(engine: LocalEngine) -> None:
    pytest.importorskip("boto3")
    engine.store.put_bytes("s3://test-bucket/raw/a.csv", b"x,y\n1,2\n")
    code = """
import boto3
s3 = boto3.client('s3')
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='test-bucket', Prefix='raw/')['Contents']]
assert keys == ['raw/a.csv'], keys
body = s3.get_object(Bucket='test-bucket', Key='raw/a.csv')['Body'].read()
s3.put_object(Bucket='sagemaker-us-east-1-000000000000', Key='copied/a.csv', Body=body)
"""
    execution = run(engine, definition(processing_step("Boto", code)))
    assert execution.status == "Succeeded", execution.steps["Boto"].failure_reason
    assert engine.store.get_bytes("s3://sagemaker-us-east-1-000000000000/copied/a.csv") == b"x,y\n1,2\n"


def test_unsupported_step_types_fail_validation(engine: LocalEngine) -> None:
    function = {"Name": "Function", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:us-east-1:111111111111:function:f", "Arguments": {}}
    with pytest.raises(DefinitionError, match="/Steps/1/Type: step Function: Lambda steps do not run locally yet"):
        run(engine, definition(processing_step("P", "pass"), function))
    assert engine.records.executions() == []  # nothing started


def test_parameter_type_mismatch_is_refused_before_running(engine: LocalEngine) -> None:
    with pytest.raises(ParameterError, match="parameter Threshold is Float; got 'high'"):
        run(engine, condition_pipeline(3.0), Threshold="high")
    assert engine.records.executions() == []


def test_unresolvable_expression_fails_the_step(engine: LocalEngine) -> None:
    evaluate = processing_step("Evaluate", "pass", outputs=["report"],
                               PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "report", "FilePath": "missing.json"}])
    check = {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Equals", "RightValue": 1,
             "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "a"}}}]}}
    execution = run(engine, definition(evaluate, check))
    assert execution.steps["Check"].status == "Failed"
    assert "missing.json does not exist" in execution.steps["Check"].failure_reason


@pytest.mark.parametrize("sandbox", ["namespace", "remap"])
def test_unmodified_example_scripts_run_in_both_sandboxes(project: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str) -> None:
    """The example's scripts hard-code /opt/ml paths; they run under either isolation mechanism."""
    from conftest import EXAMPLE
    from sagelab.definition.loader import load

    if sandbox == "remap":
        monkeypatch.setenv("SAGELAB_SANDBOX", "remap")
    engine = LocalEngine(load_settings(project))
    definition, name, artifacts = load(f"{EXAMPLE}/pipeline.py:pipeline")
    execution = engine.start(definition, name, {"NEstimators": "20"}, artifacts=artifacts)
    assert execution.status == "Succeeded", [(s.name, s.failure_reason) for s in execution.steps.values()]
    assert execution.steps["MseTooHigh"].status == "Skipped"
    report = execution.steps["Evaluate"].properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert json.loads(engine.store.get_bytes(f"{report}/evaluation.json"))["regression_metrics"]["mse"]["value"] > 0
    assert not Path("/opt/ml/processing").exists()  # nothing landed in the real /opt/ml


def test_a_long_transfer_says_how_far_it_got(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.engines.local.inputs import TransferLog

    lines: list[str] = []
    log = type("Log", (), {"log": staticmethod(lines.append), "log_path": Path(os.devnull)})()
    monkeypatch.setattr(TransferLog, "EVERY", 0.0)
    progress = TransferLog(log, "input train")
    for _ in range(3):
        progress(2_500_000)
    assert lines[-1].startswith("input train: 7.5 MB so far (")
    assert progress.done(2).startswith("input train: 2 object(s), 7.5 MB in ")


def test_a_bad_value_from_a_parameter_fails_its_step_and_no_other(engine: LocalEngine) -> None:
    """Validation cannot see a parameter's value: the engine checks the resolved request as the step starts, as SageMaker's API would."""
    bad = processing_step("Bad", "import time; time.sleep(30)")
    bad["Arguments"]["StoppingCondition"] = {"MaxRuntimeInSeconds": {"Get": "Parameters.Runtime"}}
    bad["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = {"Get": "Parameters.Count"}
    parameters = [{"Name": "Runtime", "Type": "String", "DefaultValue": "soon"}, {"Name": "Count", "Type": "Integer", "DefaultValue": 1}]
    execution = run(engine, definition(processing_step("Fine", "pass"), bad, parameters=parameters), Count="0")
    assert statuses(execution) == {"Fine": "Succeeded", "Bad": "Failed"}
    assert execution.steps["Bad"].failure_reason == (
        "ValidationException: /Steps/1/Arguments/ProcessingResources/ClusterConfig/InstanceCount: InstanceCount must be at least 1; "
        "got 0 (CreateProcessingJob); /Steps/1/Arguments/StoppingCondition/MaxRuntimeInSeconds: MaxRuntimeInSeconds must be an "
        "integer; got the string 'soon' (CreateProcessingJob)"
    )


def test_a_sagelab_bug_in_one_step_fails_that_step_and_no_other(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.engines.local.runners import RUNNERS

    real = RUNNERS["Processing"].run

    def buggy(job: Job) -> Any:
        if job.step.name == "Oops":
            raise AttributeError("'str' object has no attribute 'get'")
        return real(job)

    monkeypatch.setattr(RUNNERS["Processing"], "run", buggy)
    execution = run(engine, definition(processing_step("Fine", "pass"), processing_step("Oops", "pass")))
    assert statuses(execution) == {"Fine": "Succeeded", "Oops": "Failed"}
    reason = execution.steps["Oops"].failure_reason
    assert reason.startswith("ValidationException: sagelab could not run the step with these arguments (AttributeError")
    assert "Traceback" in Path(execution.steps["Oops"].log_path).read_text()  # for a bug report, in the step's log only


def test_steps_see_none_of_the_users_aws_credentials_settings(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    leaks = {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": "/token", "AWS_PROFILE": "prod",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "secret"}  # fmt: skip
    for name, value in leaks.items():
        monkeypatch.setenv(name, value)
    code = ("import json, os; json.dump({k: v for k, v in os.environ.items() if k.startswith('AWS_')}, "
            "open('/opt/ml/processing/output/env/env.json', 'w'))")
    execution = run(engine, definition(processing_step("Env", code, outputs=["env"])))
    seen = json.loads(engine.store.get_bytes("s3://test-bucket/Env/env/env.json"))
    assert execution.status == "Succeeded" and not set(leaks) & set(seen)
    assert seen["AWS_CONFIG_FILE"] == seen["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull and seen["AWS_EC2_METADATA_DISABLED"] == "true"
    assert seen["AWS_ACCESS_KEY_ID"] != "" and seen["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")  # the run's own


def test_a_manifest_file_input_stages_the_objects_it_lists(engine: LocalEngine) -> None:
    for key in ("a.csv", "sub/b.csv", "unlisted.csv"):
        engine.store.put_bytes(f"s3://test-bucket/data/{key}", key.encode())
    engine.store.put_bytes("s3://test-bucket/manifest.json", json.dumps([{"prefix": "s3://test-bucket/data/"}, "a.csv", "sub/b.csv"]).encode())
    code = ("import os; open('/opt/ml/processing/output/out/seen.txt', 'w')"
            ".write(' '.join(sorted(os.path.relpath(os.path.join(d, f), '/opt/ml/processing/input/m') for d, _, fs in os.walk('/opt/ml/processing/input/m') for f in fs)))")  # fmt: skip
    step = processing_step("M", code, inputs={"m": "s3://test-bucket/manifest.json"}, outputs=["out"])
    step["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3DataType"] = "ManifestFile"
    bad = processing_step("Bad", "pass", inputs={"m": "s3://test-bucket/data/a.csv"})
    bad["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3DataType"] = "ManifestFile"
    execution = run(engine, definition(step))
    assert execution.status == "Succeeded" and engine.store.get_bytes("s3://test-bucket/M/out/seen.txt") == b"a.csv sub/b.csv"
    failed = run(engine, definition(bad))
    assert "the manifest s3://test-bucket/data/a.csv is not JSON" in failed.steps["Bad"].failure_reason


def test_a_step_sees_the_users_aws_files_only_when_it_works_on_real_s3(engine: LocalEngine, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hybrid run's steps use the user's profiles (~/.aws stays visible, HOME stays theirs); a local one's never see them."""
    import subprocess

    from sagelab.containers import sandbox

    launched: list[list[str]] = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **options: launched.append(argv) or real_popen(argv, **options))
    step = parse(definition(processing_step("P", "pass"))).steps[0]
    for name, step_env in (("local", {}), ("hybrid", {sandbox.KEEP_CREDENTIALS: "1"})):
        job = Job(step=step, arguments={}, job_name=name, root=project / name, log_path=project / f"{name}.log", store=engine.store,
                  settings=engine.settings, step_env=step_env)  # fmt: skip
        job.root.mkdir()
        assert job.run(["python3", "-c", "pass"], "/opt/ml", {}) == 0
    local, hybrid = launched
    aws = str(sandbox.aws_folder())
    assert aws in local[local.index("--hide") :] and aws not in hybrid
