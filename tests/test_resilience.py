"""Caching, retry policies, retrying executions, selective execution, and surviving SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import definition, processing_step, write
from sagelab.config import load_settings
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine, Selection
from sagelab.engines.local.cache import expire_after_seconds
from sagelab.errors import ExecutionError

SAGELAB = str(Path(sys.executable).parent / "sagelab")


def chain(folder: Path, transform: str = "x * 2", seconds: float = 0.0) -> dict[str, Any]:
    """Three steps, each reading the previous one's output: A writes numbers, B transforms them, C sums.

    Each step takes `seconds` at least, so a test can kill the engine while one runs.
    """
    wait = f"import time; time.sleep({seconds})\n"
    (folder / "a.py").write_text(wait + "import os\nos.makedirs('/opt/ml/processing/output/out', exist_ok=True)\n"
                                 "open('/opt/ml/processing/output/out/n.txt', 'w').write('1 2 3')\n")  # fmt: skip
    (folder / "b.py").write_text(wait + f"nums = [int(x) for x in open('/opt/ml/processing/input/data/n.txt').read().split()]\n"
                                 f"open('/opt/ml/processing/output/out/n.txt', 'w').write(' '.join(str({transform}) for x in nums))\n")  # fmt: skip
    (folder / "c.py").write_text(wait + "nums = [int(x) for x in open('/opt/ml/processing/input/data/n.txt').read().split()]\n"
                                 "open('/opt/ml/processing/output/out/sum.txt', 'w').write(str(sum(nums)))\n")  # fmt: skip
    steps = []
    for name, script, upstream in (("A", "a.py", None), ("B", "b.py", "A"), ("C", "c.py", "B")):
        inputs = {"data": {"Get": f"Steps.{upstream}.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}} if upstream else {}
        step = processing_step(name, "", inputs={**inputs, "code": f"s3://code-bucket/{script}"}, outputs=["out"])
        step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] = ["python3", f"/opt/ml/processing/input/code/{script}"]
        output = step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
        output["S3Uri"] = {"Std:Join": {"On": "/", "Values": ["s3://test-bucket", {"Get": "Execution.PipelineExecutionId"}, name]}}
        steps.append(step)
    return definition(*steps)


def upload_code(engine: LocalEngine, folder: Path) -> None:
    for script in ("a.py", "b.py", "c.py"):
        engine.store.put_file(f"s3://code-bucket/{script}", folder / script)


def result(engine: LocalEngine, execution: Any) -> str:
    uri = execution.steps["C"].properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return engine.store.get_bytes(f"{uri}/sum.txt").decode()


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    return LocalEngine(load_settings(project))


def test_content_cache_reuses_unchanged_steps_and_reruns_what_changed(engine: LocalEngine, project: Path) -> None:
    document = parse(chain(project))
    upload_code(engine, project)
    first = engine.start(document, "chain", cache="content")
    assert result(engine, first) == "12"
    second = engine.start(document, "chain", cache="content")
    assert all(s.note and s.note.startswith("cached") for s in second.steps.values())
    assert result(engine, second) == "12"  # the reused C's outputs are the first run's
    # change B's script: B and everything downstream of it run again, A is reused
    chain(project, transform="x * 3")
    upload_code(engine, project)
    third = engine.start(document, "chain", cache="content")
    assert third.steps["A"].note.startswith("cached")
    assert third.steps["B"].note == "ran: its code or input data changed since the last run"
    assert not third.steps["C"].note.startswith("cached")
    assert result(engine, third) == "18"


def test_sagemaker_cache_follows_cache_config(engine: LocalEngine, project: Path) -> None:
    cached = processing_step("Cached", "print('ran')", CacheConfig={"Enabled": True, "ExpireAfter": "P1D"})
    plain = processing_step("Plain", "print('ran')")
    document = parse(definition(cached, plain))
    engine.start(document, "p")
    again = engine.start(document, "p")
    assert again.steps["Cached"].note.startswith("cached: reused from execution")
    assert again.steps["Plain"].note is None and again.steps["Plain"].job_name is not None
    off = engine.start(document, "p", cache="off")
    assert off.steps["Cached"].note is None


def test_expired_cache_entries_are_not_reused(engine: LocalEngine) -> None:
    step = processing_step("S", "pass", CacheConfig={"Enabled": True, "ExpireAfter": "PT1S"})
    document = parse(definition(step))
    engine.start(document, "p")
    time.sleep(1.1)
    assert engine.start(document, "p").steps["S"].note == "ran: its earlier run expired or its outputs are gone"


def test_iso_durations() -> None:
    assert expire_after_seconds("P30D") == 30 * 86400
    assert expire_after_seconds("PT1H30M") == 5400
    assert expire_after_seconds("P1DT0.5S") == 86400.5
    with pytest.raises(ExecutionError, match="not an ISO-8601 duration"):
        expire_after_seconds("30 days")


def test_retry_policy_retries_an_internal_error_with_backoff(engine: LocalEngine, project: Path) -> None:
    marker = project / "attempted"
    code = f"import os, signal\nif not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 0.2, "BackoffRate": 2.0, "MaxAttempts": 2}
    execution = engine.start(parse(definition(processing_step("Flaky", code, RetryPolicies=[policy]))), "p")
    state = execution.steps["Flaky"]
    assert execution.status == "Succeeded" and state.attempts == 2


def test_no_policy_or_algorithm_errors_are_not_retried(engine: LocalEngine, project: Path) -> None:
    killed = processing_step("Killed", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 0.1, "MaxAttempts": 3}
    broken = processing_step("Broken", "raise SystemExit(2)", RetryPolicies=[policy])
    execution = engine.start(parse(definition(killed, broken)), "p")
    assert "killed by SIGKILL" in execution.steps["Killed"].failure_reason
    assert execution.steps["Killed"].attempts == 1 and execution.steps["Broken"].attempts == 1


def test_retry_execution_runs_only_what_failed(engine: LocalEngine, project: Path) -> None:
    flag = project / "fixed"
    first = processing_step("First", "print('first ran')")
    second = processing_step("Second", f"import os; assert os.path.exists({str(flag)!r}), 'not fixed yet'", DependsOn=["First"])
    third = processing_step("Third", "pass", DependsOn=["Second"])
    execution = engine.start(parse(definition(first, second, third)), "p")
    assert execution.status == "Failed"
    first_job = execution.steps["First"].job_name
    flag.touch()
    retried = engine.retry(execution.id)
    assert retried.id == execution.id and retried.status == "Succeeded"
    assert retried.steps["First"].job_name == first_job  # not run again
    assert engine.records.execution(execution.id).status == "Succeeded"
    with pytest.raises(ExecutionError, match="is Succeeded; only a failed, stopped or interrupted one"):
        engine.retry(execution.id)


def test_code_changed_in_the_store_is_uploaded_again_and_a_retry_on_it_refused(engine: LocalEngine, project: Path) -> None:
    """Content-addressed code is checked against its SHA-256 before a run uses it, not trusted by its key."""
    (project / "step.py").write_text("import os; assert os.path.exists(os.environ['FLAG']), 'not fixed yet'; print('the real script')\n")
    uri = "s3://test-bucket/p/code/0123/step.py"
    step = processing_step("Step", "", inputs={"code": uri})
    step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] = ["python3", "/opt/ml/processing/input/code/step.py"]
    step["Arguments"]["Environment"] = {"FLAG": str(project / "fixed")}
    document = parse(definition(step))
    failed = engine.start(document, "p", artifacts={uri: project / "step.py"})
    assert failed.status == "Failed"
    engine.store.put_bytes(uri, b"print('a swapped script')\n")  # e.g. a PUT through the run's S3 endpoint
    (project / "fixed").touch()
    with pytest.raises(ExecutionError, match=r"s3://test-bucket/p/code/0123/step.py, which execution .* uploaded, is missing or changed"):
        engine.retry(failed.id)
    again = engine.start(document, "p", artifacts={uri: project / "step.py"})
    assert again.status == "Succeeded"
    assert "the real script" in Path(again.steps["Step"].log_path).read_text()
    assert engine.store.get_bytes(uri) == (project / "step.py").read_bytes()


def test_a_killed_model_download_leaves_nothing_a_later_deploy_takes_for_the_model(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.engines.local.deploy import materialize
    from sagelab.store import LocalStore

    settings = load_settings(project)
    store = LocalStore(settings.store)
    uri = "s3://test-bucket/model/model.tar.gz"
    store.put_bytes(uri, b"v1" * 1000)
    download = LocalStore.download_file

    def killed(self: LocalStore, uri: str, path: Path, progress: Any = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"v1")
        path.with_name(path.name.replace(f".{os.getpid()}.", ".999999999.")).write_bytes(b"v1")  # as a SIGKILLed deploy leaves it
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalStore, "download_file", killed)
    with pytest.raises(KeyboardInterrupt):
        materialize(store, settings, {"ModelDataUrl": uri})
    monkeypatch.setattr(LocalStore, "download_file", download)
    first = materialize(store, settings, {"ModelDataUrl": uri}).model
    assert first.read_bytes() == b"v1" * 1000 and [p.name for p in first.parent.iterdir()] == ["model.tar.gz"]
    store.put_bytes(uri, b"v2" * 10)  # a model written again under the same URI is fetched again
    second = materialize(store, settings, {"ModelDataUrl": uri}).model
    assert second != first and second.read_bytes() == b"v2" * 10


def test_a_run_killed_after_registering_reuses_that_version_on_retry(project: Path) -> None:
    from sagelab.registry import Registry

    register = {"Name": "Register", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "churn", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {"Containers": [{"Image": "local/python", "ModelDataUrl": "s3://test-bucket/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}}}  # fmt: skip
    write(project / "register.json", definition(register))
    env = {**os.environ, "SAGELAB_CRASH_AT": "before-record:Register"}
    killed = subprocess.run([SAGELAB, "run", "register.json"], cwd=project, env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    engine = LocalEngine(load_settings(project))
    crashed = engine.records.executions()[0]
    retried = subprocess.run([SAGELAB, "retry", crashed.id], cwd=project, capture_output=True, text=True, timeout=120)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    registry = Registry(project / ".sagelab" / "registry.db")
    assert [package.version for package in registry.list("churn")] == [1]  # no duplicate version
    [step] = engine.records.steps(crashed.id)
    assert step.properties["ModelPackageArn"].endswith("/churn/1")
    assert "registered by this execution before it was interrupted; reusing it" in Path(step.log_path).read_text()


def test_selective_execution_reuses_the_reference(engine: LocalEngine, project: Path) -> None:
    document = parse(chain(project))
    upload_code(engine, project)
    with pytest.raises(ExecutionError, match="there is none yet"):
        engine.start(document, "chain", select=Selection(from_step="B"))
    full = engine.start(document, "chain")
    partial = engine.start(document, "chain", select=Selection(from_step="B"))
    assert partial.steps["A"].job_name == full.steps["A"].job_name
    assert partial.steps["A"].note == f"reused from execution {full.id} (not selected)"
    assert partial.steps["B"].job_name != full.steps["B"].job_name and result(engine, partial) == "12"
    only = engine.start(document, "chain", select=Selection(steps=("C",), reference=full.id))
    assert only.steps["B"].job_name == full.steps["B"].job_name and only.status == "Succeeded"
    with pytest.raises(ExecutionError, match="no step Z"):
        engine.start(document, "chain", select=Selection(steps=("Z",)))


def test_concurrent_executions_do_not_interfere(project: Path) -> None:
    write(project / "chain.json", chain(project))
    upload_code(LocalEngine(load_settings(project)), project)
    runs = [subprocess.Popen([SAGELAB, "run", "chain.json"], cwd=project, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    engine = LocalEngine(load_settings(project))
    executions = engine.records.executions()
    assert len({e.id for e in executions}) == 3 and all(e.status == "Succeeded" for e in executions)
    for execution in executions:
        uri = next(s for s in engine.records.steps(execution.id) if s.name == "C").outputs[0]
        assert engine.store.get_bytes(f"{uri}/sum.txt") == b"12"


def _outputs(engine: LocalEngine, execution_id: str) -> dict[str, bytes]:
    found = {}
    for step in engine.records.steps(execution_id):
        for uri in step.outputs:
            for info in engine.store.list(uri):
                found[f"{step.name}{info.key[len(uri.split('/', 3)[3]):]}"] = engine.store.get_bytes(info.uri)
    return found


@pytest.mark.parametrize("point", ["staging:B", "step-running", "publishing:B", "before-record", "after-record",
                                   "timer-0.1", "timer-0.6", "timer-1.0"])  # fmt: skip
def test_sigkill_at_any_point_then_retry_completes_identically(project: Path, point: str) -> None:
    """Kill the engine (SIGKILL) at a point of a run (fixed points: engines/local/faults.py), retry it, and compare with a clean run."""
    engine = LocalEngine(load_settings(project))
    write(project / "chain.json", chain(project, seconds=0.4))
    upload_code(engine, project)
    clean = subprocess.run([SAGELAB, "run", "chain.json"], cwd=project, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    clean_id = engine.records.executions()[0].id

    env = {**os.environ}
    if point.startswith("timer-"):
        run = subprocess.Popen([SAGELAB, "run", "chain.json"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The timer starts once the execution exists (on a loaded machine the command alone can take over 0.3 s to start), and
        # ends before the three steps' 1.2 s at least are over.
        deadline = time.monotonic() + 60
        while LocalEngine(load_settings(project)).records.executions()[0].id == clean_id and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(point.split("-")[1]))
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    else:
        env["SAGELAB_CRASH_AT"] = point
        run = subprocess.Popen([SAGELAB, "run", "chain.json"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert run.wait(timeout=60) == -signal.SIGKILL
    crashed = LocalEngine(load_settings(project)).records.executions()[0]
    assert crashed.id != clean_id and crashed.status == "Interrupted"
    # no partial output is visible: each output prefix holds all of its files or none
    for name, files in _outputs(engine, crashed.id).items():
        assert files
    status = subprocess.run([SAGELAB, "status", crashed.id], cwd=project, capture_output=True, text=True)
    assert "Interrupted" in status.stdout
    retried = subprocess.run([SAGELAB, "retry", crashed.id], cwd=project, capture_output=True, text=True, timeout=120)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert _outputs(engine, crashed.id) == _outputs(engine, clean_id)
    leftovers = [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pipelines-" + crashed.id.encode() in _read(p)]
    assert leftovers == []  # no step process outlived the killed engine
    assert list((project / ".sagelab" / "s3" / ".tmp").iterdir()) == []  # half-published outputs were cleaned up


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_gc_removes_old_executions_but_keeps_what_is_referenced(engine: LocalEngine, project: Path) -> None:
    from sagelab.engines.local.gc import collect_garbage, parse_age
    from sagelab.registry import Registry

    document = parse(chain(project))
    upload_code(engine, project)
    old = engine.start(document, "chain")
    kept_by_registry = old.steps["B"].outputs[0]
    registry = Registry(project / ".sagelab" / "registry.db")
    registry.register({"ModelPackageGroupName": "g", "InferenceSpecification": {"Containers": [{"Image": "i", "ModelDataUrl": kept_by_registry}]}})
    time.sleep(1.1)
    recent = engine.start(document, "chain")

    dry = collect_garbage(load_settings(project), parse_age("1s"), dry_run=True)
    assert dry.executions == [old.id] and engine.records.execution(old.id)  # nothing removed yet
    collected = collect_garbage(load_settings(project), parse_age("1s"))
    assert collected.executions == [old.id] and collected.kept_objects == 1
    with pytest.raises(ExecutionError):
        engine.records.execution(old.id)
    assert not list(engine.store.list(old.steps["A"].outputs[0]))  # A's output went
    assert list(engine.store.list(kept_by_registry))  # the registry still points at B's
    assert not list((project / ".sagelab" / "jobs").glob(f"pipelines-{old.id}-*"))
    assert result(engine, recent) == "12"  # the newer execution is untouched
    with pytest.raises(ExecutionError, match="is not an age"):
        parse_age("a week")
