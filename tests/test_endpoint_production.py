"""Local endpoints as in production: bounded logs, self-healing servers, startup health checks.

Every endpoint here is real: the supervisor process, its inference servers (uvicorn workers) and
HTTP on 127.0.0.1, started through `Hosting` as `sagelab deploy` starts them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import sagelab
from test_serving import model_with_code

from sagelab.serving.capped_log import CappedLog, tail
from sagelab.serving.endpoints import Hosting

PICKY = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, input_data, content_type, accept):
        numbers = [float(x) for x in input_data.split(",")]   # raises ValueError on anything else
        return str(sum(numbers)), "text/csv"
"""


@pytest.fixture
def hosting(tmp_path: Path) -> Iterator[Hosting]:
    hosting = Hosting(tmp_path / ".sagelab")
    yield hosting
    for endpoint in hosting.endpoints():
        hosting.delete(endpoint.name)
    hosting.close()


def test_a_flood_of_bad_requests_logs_each_error_once_then_counts(hosting: Hosting, tmp_path: Path) -> None:
    model = model_with_code(tmp_path / "model", PICKY)
    hosting.deploy("picky", model, "picky", environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    bad = [f"row {i},not a number {i}".encode() for i in range(600)]  # numbers differ: the same error all the same
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: hosting.invoke("picky", body, "text/csv"), bad))
    assert all(a.status == 500 and b"ValueError: could not convert string to float" in a.body for a in answers)  # the client still hears why
    assert hosting.invoke("picky", b"1,2", "text/csv").body == b"3.0"
    hosting.delete("picky")  # the workers sum up their repeats as they stop
    log = (hosting.folder / "picky" / "endpoint.log").read_text()
    assert 1 <= log.count("Traceback") <= 2  # once per worker that met it
    counted = sum(int(n.replace(",", "")) for n in re.findall(r"the model raised ValueError ([\d,]+) more times? in the last minute", log))
    assert counted + log.count("Traceback") == 600
    assert len(log) < 20_000


def test_the_log_is_rotated_past_its_cap(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "endpoint.log", max_bytes=4096)
    for number in range(1000):
        log.write(f"line {number:04d} {'x' * 40}\n".encode())
    log.close()
    current, older = (tmp_path / "endpoint.log").stat().st_size, (tmp_path / "endpoint.log.1").stat().st_size
    assert current <= 4096 and older <= 4096 and not (tmp_path / "endpoint.log.2").exists()
    assert tail(tmp_path / "endpoint.log", 2).splitlines()[-1].startswith("line 0999")


def test_a_killed_server_is_replaced_and_the_restart_shown(hosting: Hosting, tmp_path: Path) -> None:
    model = model_with_code(tmp_path / "model", PICKY)
    info = hosting.deploy("healing", model, "healing", environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    os.kill(json.loads((hosting.folder / "healing" / "state.json").read_text())["server_pid"], signal.SIGKILL)
    killed = time.monotonic()
    answered = hosting.invoke("healing", b"2,3", "text/csv", timeout=10)  # waits on the endpoint's socket for the new server
    assert answered.body == b"5.0" and time.monotonic() - killed < 10
    deadline = time.monotonic() + 10
    while hosting.endpoint("healing").restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = hosting.endpoint("healing")
    assert after.status == "InService" and after.restarts == 1 and after.port == info.port
    assert "was killed by SIGKILL" in (after.last_restart or "")


def test_a_model_that_never_answers_ping_fails_the_deployment_with_its_log(hosting: Hosting, tmp_path: Path) -> None:
    model = model_with_code(tmp_path / "model", """
        import time

        def model_fn(model_dir):
            print("loading a very large model", flush=True)
            time.sleep(60)

        def transform_fn(model, input_data, content_type, accept):
            return "", "text/csv"
    """)  # fmt: skip
    with pytest.raises(Exception, match=r"did not answer /ping within 2 s \(ContainerStartupHealthCheckTimeoutInSeconds\)") as failed:
        hosting.deploy("slow", model, "slow", timeout=2)
    assert "loading a very large model" in str(failed.value)
    assert hosting.endpoint("slow").status == "Failed"


ROWS = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, input_data, content_type, accept):
        return str(len(input_data.splitlines())), "text/csv"
"""


def _batch(rng: Any, shift: float) -> bytes:
    return "\n".join(f"{rng.normal(shift, 1):.4f},{rng.normal(5 + shift, 1):.4f}" for _ in range(5)).encode()


def test_captured_requests_follow_sagemakers_layout_and_a_monitoring_run_finds_drift(project: Path) -> None:
    """Two real endpoints capture every request; `sagelab monitor run` checks each against a baseline of the training data's kind."""
    import numpy as np

    from sagelab.config import load_settings
    from sagelab.containers.monitor.analyzer import analyze
    from sagelab.serving.capture import capture_environment, quick_config
    from sagelab.store import LocalStore

    settings = load_settings()
    store = LocalStore(settings.store)
    rng = np.random.default_rng(7)
    training = project / "training"
    training.mkdir()
    (training / "train.csv").write_text("\n".join(f"{rng.normal(0, 1):.4f},{rng.normal(5, 1):.4f}" for _ in range(2000)) + "\n")
    analyze({"dataset_source": str(training), "output_path": str(store.path_of("s3://team/baseline/")), "dataset_format": '{"csv": {"header": false}}'})
    model = model_with_code(project / "model", ROWS)
    hosting = Hosting(settings.state_dir)
    try:
        for name, shift in (("steady", 0.0), ("drifted", 3.0)):
            env = capture_environment(quick_config(100, "s3://team/datacapture"), name, "AllTraffic", store.path_of("s3://team/datacapture/"))
            hosting.deploy(name, model, name, environment={**env, "SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
            for number in range(200):
                answer = hosting.invoke(name, _batch(rng, shift), "text/csv", inference_id=f"{name}-{number}")
                assert answer.body == b"5"
        assert hosting.invoke("steady", b"not,a,row\n", "application/x-custom").status == 200  # captured as base64: not CSV data
    finally:
        for endpoint in ("steady", "drifted"):
            hosting.delete(endpoint)  # the servers write what they gathered as they stop
        hosting.close()
    files = sorted(store.path_of("s3://team/datacapture/").rglob("*.jsonl"))
    layout = re.compile(r"(steady|drifted)/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl")
    assert files and all(layout.fullmatch(str(f.relative_to(store.path_of("s3://team/datacapture/")))) for f in files)
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == 401 and not list(store.path_of("s3://team/datacapture/").rglob(".*.partial"))
    first = next(r for r in records if r["eventMetadata"].get("inferenceId") == "steady-0")
    assert first["eventVersion"] == "0" and set(first["eventMetadata"]) == {"eventId", "inferenceTime", "inferenceId"}
    assert first["captureData"]["endpointInput"]["encoding"] == "CSV" and first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert first["captureData"]["endpointOutput"] == {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "5", "encoding": "CSV"}
    assert any(r["captureData"]["endpointInput"]["encoding"] == "BASE64" for r in records)

    steady = sagelab("monitor", "run", "steady", "--baseline", "s3://team/baseline/", cwd=project)
    assert "steady: 201 captured requests, 1000 rows (1 unreadable as CSV or JSON, left out)" in steady.stdout
    assert "Completed: 0 violation(s)" in steady.stdout
    drifted = sagelab("monitor", "run", "drifted", "--baseline", "s3://team/baseline/", cwd=project)
    assert "CompletedWithViolations" in drifted.stdout and "baseline_drift_check" in drifted.stdout
    report = drifted.stdout.rsplit("reports in ", 1)[1].strip()
    assert re.fullmatch(r"s3://sagemaker-us-east-1-000000000000/monitoring/drifted/on-demand/\d{4}/\d{2}/\d{2}/\d{2}/", report)
    assert {p.name for p in store.path_of(report).iterdir()} >= {"constraint_violations.json", "statistics.json"}
    nothing = sagelab("monitor", "run", "nowhere", "--baseline", "s3://team/baseline/", cwd=project, check=False)
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr


def test_cron_expressions_match_the_minutes_they_name() -> None:
    from datetime import datetime, timezone

    from sagelab.cron import check_expression, cron_matches
    from sagelab.errors import EndpointError

    monday_nine = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)  # a Monday
    assert cron_matches("cron(0 * ? * * *)", monday_nine) and not cron_matches("cron(0 * ? * * *)", monday_nine.replace(minute=1))
    assert cron_matches("cron(0 0/3 ? * * *)", monday_nine) and not cron_matches("cron(0 0/4 ? * * *)", monday_nine)
    assert cron_matches("cron(0 9 ? * MON-FRI *)", monday_nine) and not cron_matches("cron(0 9 ? * SAT,SUN *)", monday_nine)
    assert cron_matches("cron(0 9 7 DEC ? 2026)", monday_nine) and cron_matches("cron(* * ? * * *)", monday_nine)
    assert check_expression("NOW") == "NOW"
    for bad, says in (("cron(0 * * *)", "six fields"), ("cron(0 24 ? * * *)", "outside 0-23"), ("rate(1 hour)", "must be cron")):
        with pytest.raises(EndpointError, match=says.replace("(", r"\(")):
            check_expression(bad)


def test_model_quality_matches_captured_answers_with_uploaded_labels(project: Path) -> None:
    """A regression endpoint's captured answers, each matched by its InferenceId with a label uploaded as Model Monitor takes them:
    labels close to the answers pass the baseline's thresholds, labels far from them break the mae one."""
    import numpy as np

    from sagelab.config import load_settings
    from sagelab.containers.monitor.analyzer import analyze
    from sagelab.serving.capture import capture_environment, quick_config
    from sagelab.store import LocalStore

    settings = load_settings()
    store = LocalStore(settings.store)
    rng = np.random.default_rng(11)
    pairs = project / "pairs"
    pairs.mkdir()
    truth = rng.normal(10, 3, size=500)
    (pairs / "validation.csv").write_text("prediction,label\n" + "\n".join(f"{t + rng.normal(0, 0.5):.4f},{t:.4f}" for t in truth) + "\n")
    analyze({"dataset_source": str(pairs), "output_path": str(store.path_of("s3://team/mq-baseline/")), "analysis_type": "MODEL_QUALITY",
             "problem_type": "Regression", "inference_attribute": "prediction", "ground_truth_attribute": "label"})  # fmt: skip
    hosting = Hosting(settings.state_dir)
    try:
        env = capture_environment(quick_config(100, "s3://team/datacapture"), "scored", "AllTraffic", store.path_of("s3://team/datacapture/"))
        hosting.deploy("scored", model_with_code(project / "model", PICKY), "scored", environment={**env, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
        answers = {}
        for number in range(120):
            a, b = rng.normal(5, 1.5, size=2)
            answers[f"req-{number}"] = float(hosting.invoke("scored", f"{a:.4f},{b:.4f}".encode(), "text/csv", inference_id=f"req-{number}").body)
    finally:
        hosting.delete("scored")
        hosting.close()

    def labels(prefix: str, noise: float) -> None:
        lines = [json.dumps({"groundTruthData": {"data": f"{value + rng.normal(0, noise):.4f}", "encoding": "CSV"},
                             "eventMetadata": {"eventId": event}, "eventVersion": "0"}) for event, value in answers.items()]  # fmt: skip
        store.put_bytes(f"s3://team/{prefix}/2026/12/07/09/labels.jsonl", ("\n".join(lines) + "\n").encode())

    labels("truth-close", 0.3)
    labels("truth-far", 6.0)
    close = sagelab("monitor", "run", "scored", "--baseline", "s3://team/mq-baseline/", "--ground-truth", "s3://team/truth-close/",
                    "--problem-type", "Regression", cwd=project)  # fmt: skip
    assert "scored: 120 captured requests, 120 rows" in close.stdout and "Completed: 0 violation(s)" in close.stdout
    far = sagelab("monitor", "run", "scored", "--baseline", "s3://team/mq-baseline/", "--ground-truth", "s3://team/truth-far/",
                  "--problem-type", "Regression", cwd=project)  # fmt: skip
    assert "CompletedWithViolations" in far.stdout and "mae" in far.stdout
    untyped = sagelab("monitor", "run", "scored", "--baseline", "s3://team/mq-baseline/", "--ground-truth", "s3://team/truth-far/", cwd=project, check=False)
    assert untyped.returncode == 1 and "needs the problem type" in untyped.stderr
