"""`sagelab ui`: the real server (`sagelab ui --port 0`) over a project with real runs, a registry and endpoints,
driven by Debian's headless Chromium through Playwright, and its JSON API checked against its own OpenAPI schema by schemathesis.

Every page a test visits is saved as a screenshot under test-artifacts/ui/ (SAGELAB_TEST_ARTIFACTS names another folder).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import schemathesis
from sklearn.linear_model import LinearRegression

from conftest import ROOT, SAGELAB, definition, processing_step, sagelab, surviving_processes, write
from sagelab.config import load_settings
from sagelab.registry import Registry
from test_sagemaker_engine import REGION, _packages, aws, moto, moto_server  # noqa: F401 - moto's fixtures
from test_sagemaker_engine import ROLE as AWS_ROLE

ARTIFACTS = Path(os.environ.get("SAGELAB_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
SERVING_IMAGE = "local/sklearn-serving:1"  # the server serves model.joblib with scikit-learn's default handlers
# Writes a CSV and an evaluation report after SLEEP seconds: a run to watch, and metrics to compare.
WRITE = ("import os, json, time\nout = '/opt/ml/processing/output/out'\nos.makedirs(out, exist_ok=True)\nn = float(os.environ['N'])\n"
         "print('preparing', flush=True)\ntime.sleep(float(os.environ['SLEEP']))\n"
         "open(out + '/data.csv', 'w').write('a,b\\n1,2\\n3,4\\n')\n"
         "json.dump({'metrics': {'mse': {'value': n * 1.5}}}, open(out + '/evaluation.json', 'w'))\nprint('wrote', n, flush=True)\n")  # fmt: skip


def _definition() -> dict[str, Any]:
    prepare = processing_step("Prepare", WRITE, outputs=["out"])
    prepare["Arguments"]["Environment"] = {"N": {"Get": "Parameters.N"}, "SLEEP": {"Get": "Parameters.Sleep"}}
    prepare["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = {
        "Std:Join": {"On": "/", "Values": ["s3://ui-bucket", {"Get": "Execution.PipelineExecutionId"}, "out"]}}  # fmt: skip
    prepare["PropertyFiles"] = [{"PropertyFileName": "Evaluation", "OutputName": "out", "FilePath": "evaluation.json"}]
    report = processing_step("Report", "print('report')")
    report["DependsOn"] = ["Prepare"]
    return definition(prepare, report, parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1},
                                                   {"Name": "Sleep", "Type": "Float", "DefaultValue": 0.0}])  # fmt: skip


def _register(project: Path) -> None:
    """Two versions of ui-models, each a servable model with an evaluation report and a sample payload."""
    settings = load_settings(project)
    models = settings.store / "models" / "ui"
    models.mkdir(parents=True)
    features = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 3.0]])
    (models / "sample.csv").write_text("1.0,2.0\n")
    from sagelab.engines.local import Records

    newest = Records(settings.state_dir / "sagelab.db").executions(1)[0].id  # version 2's lineage: the run that "registered" it
    registry = Registry(settings.state_dir / "registry.db", settings.region, settings.account)
    registry.create_group("ui-models", "linear models for the UI test")
    for version, (weights, mse) in enumerate((((1.0, 1.0), 0.9), ((2.0, 3.0), 0.4)), start=1):
        buffer = io.BytesIO()
        joblib.dump(LinearRegression().fit(features, features @ np.array(weights)), buffer)
        with tarfile.open(models / f"v{version}.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo("model.joblib")
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
        (models / f"v{version}-evaluation.json").write_text(json.dumps({"regression_metrics": {"mse": {"value": mse}}}))
        registry.register({
            "ModelPackageGroupName": "ui-models", "SamplePayloadUrl": "s3://models/ui/sample.csv",
            "InferenceSpecification": {"Containers": [{"Image": SERVING_IMAGE, "ModelDataUrl": f"s3://models/ui/v{version}.tar.gz"}],
                                       "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://models/ui/v{version}-evaluation.json"}}},
        }, generated_by=f"arn:aws:sagemaker:{settings.region}:{settings.account}:pipeline/demo/execution/{newest}" if version == 2 else None)  # fmt: skip
    registry.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`sagelab ui` over a project with two finished runs of `demo` and two registered versions; its URL and folder."""
    project = tmp_path_factory.mktemp("ui")
    (project / "pyproject.toml").write_text('[project]\nname = "ui"\n\n[tool.sagelab]\nconcurrency = 2\n')
    write(project / "demo.json", _definition())
    for n in (1, 2):
        sagelab("run", "demo.json", "-p", f"N={n}", cwd=project)
    _register(project)
    server = subprocess.Popen([SAGELAB, "ui", "--port", "0", "--no-browser"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    first = server.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+)", first)
    assert found, first + server.stdout.read()
    try:
        yield found.group(1), project
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        server.stdout.close()
        for endpoint in json.loads(sagelab("endpoints", "--json", cwd=project).stdout or "[]"):
            sagelab("endpoints", "delete", endpoint["name"], cwd=project)
    assert surviving_processes(project / ".sagelab") == []


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, one for the module's tests."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("the UI tests drive Debian's Chromium: apt-get install chromium (.ci/run installs it)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh 1280×800 page; a dialog (delete's confirm) is accepted."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"}, method="POST" if body is not None else "GET")  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - the test's own server on 127.0.0.1
        return json.loads(answer.read())


def test_a_run_started_from_the_page_goes_live_and_its_step_log_streams(ui: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    page.goto(url + "/executions")
    expect(page.locator("tbody tr")).to_have_count(2)
    shot(page, "executions")
    page.locator("tbody tr a.mono").first.click()
    expect(page.locator("#execution-status")).to_have_text("Succeeded")
    expect(page.locator("#graph g[data-step]")).to_have_count(2)
    page.get_by_text("Run again…").click()
    page.get_by_label("N", exact=True).fill("5")
    page.get_by_label("Sleep").fill("4")
    shown = page.url
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(lambda now: now != shown and re.search(r"/executions/[a-z0-9]{12}$", now) is not None)
    started = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#execution-status")).to_have_text("Executing", timeout=30_000)
    expect(page.locator('#steps tr[data-step="Prepare"] .status')).to_have_text("Executing", timeout=30_000)
    shot(page, "execution-running")

    log = page.context.new_page()  # the step's live log, opened while the step sleeps
    log.goto(f"{url}/executions/{started}/steps/Prepare")
    expect(log.locator("#log")).to_contain_text("preparing", timeout=30_000)
    expect(log.locator("#log")).to_contain_text("wrote 5.0", timeout=60_000)  # printed after the page opened
    expect(log.locator("#step-status")).to_have_text("Succeeded", timeout=60_000)  # the page reloaded itself when the step ended
    expect(log.locator("#log")).to_have_attribute("data-ended", "true", timeout=30_000)
    shot(log, "step-log")

    expect(page.locator("#execution-status")).to_have_text("Succeeded", timeout=60_000)  # the page followed the run, no reload
    expect(page.locator('#steps tr[data-step="Report"] .status')).to_have_text("Succeeded")
    expect(page.locator('#graph g[data-step="Report"]')).to_contain_text("Succeeded")
    expect(page.get_by_role("region", name="Outputs")).to_contain_text(f"s3://ui-bucket/{started}/out", timeout=30_000)  # shown once it ended
    shot(page, "execution-succeeded")
    assert _api(url, f"/api/executions/{started}")["parameters"] == {"N": 5, "Sleep": 4.0}

    log.get_by_role("button", name="Preview").click()  # the output folder's objects, then a CSV's first rows
    log.locator(".preview-box button.preview").first.click()
    expect(log.locator("table.preview")).to_contain_text("1")
    shot(log, "step-preview")


def test_stop_then_retry_from_the_page(ui: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    started = _api(url, "/api/executions", {"pipeline": "demo", "parameters": {"N": 7, "Sleep": 60}})["execution"]
    page.goto(f"{url}/executions/{started}")
    expect(page.locator('#steps tr[data-step="Prepare"] .status')).to_have_text("Executing", timeout=30_000)
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#execution-status")).to_have_text("Stopped", timeout=60_000)
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    shot(page, "execution-stopped")
    page.get_by_role("button", name="Retry").click()  # the same execution runs its unfinished steps again
    expect(page.locator("#execution-status")).to_have_text("Executing", timeout=30_000)
    _api(url, f"/api/executions/{started}/stop", {})
    expect(page.locator("#execution-status")).to_have_text("Stopped", timeout=60_000)


def test_two_executions_compared_side_by_side_and_charted(ui: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    page.goto(url + "/executions?pipeline=demo")
    succeeded = page.locator("tbody tr", has=page.locator(".status-Succeeded"))
    succeeded.nth(0).locator("input[type=checkbox]").check()
    succeeded.nth(1).locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Compare selected").click()
    table = page.locator("#comparison")
    expect(table).to_contain_text("Prepare.Evaluation.metrics.mse.value")
    expect(table.locator("td.differs")).not_to_have_count(0)  # N differs
    expect(page.locator("svg.chart")).to_have_count(1)
    page.get_by_label("Parameter", exact=True).select_option("N")
    page.get_by_role("button", name="Draw").click()
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.locator("svg.chart circle")).not_to_have_count(0)
    shot(page, "compare")


def test_approve_a_version_deploy_it_and_invoke_it_from_the_form(ui: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    page.goto(url + "/models")
    page.get_by_role("link", name="ui-models").click()
    expect(page.locator("svg.chart")).to_have_count(1)  # the evaluation report's mse across versions
    row = page.locator('#versions tr[data-version="2"]')
    expect(row).to_contain_text("0.4")
    lineage = row.locator("a.mono")  # the execution that registered it
    expect(lineage).to_have_attribute("href", re.compile(r"^/executions/[a-z0-9]{12}$"))
    row.get_by_label("Reason for v2").fill("lower mse")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator("#version-status-2")).to_have_text("Approved", timeout=10_000)
    expect(row).to_contain_text("lower mse")
    shot(page, "model-approved")

    page.goto(url + "/endpoints")
    page.get_by_label("Version", exact=True).select_option("ui-models/2")
    page.get_by_label("Endpoint name", exact=True).fill("ui-adder")
    page.get_by_role("button", name="Deploy").click()
    endpoint = page.locator('article[data-endpoint="ui-adder"]')
    deadline = time.monotonic() + 120
    while "InService" not in (endpoint.text_content() or "") if endpoint.count() else True:
        assert time.monotonic() < deadline, "the endpoint did not come up"
        time.sleep(1)
        page.reload()
    payload = endpoint.get_by_label("Payload")
    expect(payload).to_have_value("1.0,2.0")  # the version's sample payload
    endpoint.get_by_role("button", name="Invoke").click()
    expect(endpoint.locator("output")).to_contain_text("200", timeout=30_000)
    [answer] = json.loads(endpoint.locator("output pre").text_content() or "")
    assert abs(answer - 8.0) < 1e-6  # 2·1 + 3·2
    shot(page, "endpoint-invoked")
    endpoint.get_by_role("button", name="Delete").click()
    expect(page.locator('article[data-endpoint="ui-adder"]')).to_have_count(0, timeout=30_000)


def test_bad_input_is_told_on_the_page(ui: tuple[str, Path], page: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    page.goto(url + "/executions")
    page.locator("tbody tr a.mono").first.click()
    page.get_by_text("Run again…").click()
    page.get_by_label("N", exact=True).fill("not-a-number")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#notice.error")).to_contain_text("N", timeout=30_000)
    assert page.url.rsplit("/", 2)[-2] == "executions"  # stayed on the page
    missing = page.goto(url + "/executions/nosuchexecution")
    assert missing is not None and missing.status == 404


def test_a_narrow_window_and_the_keyboard(ui: tuple[str, Path], browser: Any) -> None:
    from playwright.sync_api import expect

    url, _ = ui
    context = browser.new_context(viewport={"width": 390, "height": 800})
    narrow = context.new_page()
    narrow.goto(url + "/executions")
    assert narrow.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways page scroll
    narrow.keyboard.press("Tab")
    expect(narrow.get_by_text("Skip to content")).to_be_focused()
    narrow.locator("tbody tr a.mono").first.click()
    graph_step = narrow.locator('#graph g[data-step="Prepare"]')
    graph_step.focus()
    narrow.keyboard.press("Enter")
    narrow.wait_for_url(re.compile(r"/steps/Prepare$"))
    shot(narrow, "narrow-step")
    context.close()


def test_the_json_api_answers_within_its_schema_and_never_with_a_server_error(ui: tuple[str, Path]) -> None:
    """schemathesis generates requests for every operation of /api/openapi.json and checks each answer: no 5xx, a documented
    status code, a body in the documented shape."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_url(ui[0] + "/api/openapi.json")
    # The streams follow a run until it ends (the browser tests read them); deploying random names is no test of the schema.
    schema = schema.exclude(path_regex=r"/(events|log/stream)$").exclude(method="POST", path="/api/endpoints")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:

        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def answers_within_schema(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, status_code_conformance], timeout=60)

        answers_within_schema()


def test_executions_come_a_page_at_a_time(ui: tuple[str, Path], page: Any) -> None:
    """The last test of the module: it adds 120 execution records (copies of the newest) to the project."""
    from playwright.sync_api import expect

    from sagelab.engines.local import Records
    from sagelab.engines.local.records import ExecutionRecord

    url, project = ui
    records = Records(project / ".sagelab" / "sagelab.db")
    before = records.executions(1000)
    newest = before[0]
    for number in range(120):
        records.create_execution(ExecutionRecord(f"copy{number:08d}", "copies", "Succeeded", newest.definition, {"N": number},
                                                 1_000_000.0 + number, 1_000_001.0 + number, None))  # fmt: skip
    records.close()
    page.goto(url + "/executions")
    expect(page.locator("tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Older →").click()
    expect(page.locator("tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Older →").click()
    expect(page.locator("tbody tr")).to_have_count(120 + len(before) - 100)
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.goto(url + "/executions?pipeline=copies")
    expect(page.locator("tbody tr").first).to_contain_text("N=119")


def test_an_aws_profile_shows_sagemakers_executions_and_model_packages(moto: str, tmp_path: Path, browser: Any) -> None:
    """moto's SageMaker stands in for AWS (AWS_ENDPOINT_URL): `sagelab ui --profile aws` lists its pipelines' executions and model
    packages, and approves a version there, as it does locally."""
    from playwright.sync_api import expect

    sm = aws(moto, "sagemaker")
    body = json.dumps(definition(processing_step("Prepare", "print(1)"), parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1}]))
    sm.create_pipeline(PipelineName="churn", PipelineDefinition=body, RoleArn=AWS_ROLE)
    started = [sm.start_pipeline_execution(PipelineName="churn", PipelineParameters=[{"Name": "N", "Value": str(n)}])["PipelineExecutionArn"]
               for n in (1, 2)]  # fmt: skip
    _packages(moto)
    (tmp_path / "pyproject.toml").write_text(f'[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "{REGION}"\nrole = "{AWS_ROLE}"\n')
    env = {**os.environ, "AWS_ENDPOINT_URL": moto}
    server = subprocess.Popen([SAGELAB, "ui", "--profile", "aws", "--port", "0", "--no-browser"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert server.stdout is not None
    first = server.stdout.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+)", first)
    try:
        assert found, first + server.stdout.read()
        url = found.group(1)
        assert [p["name"] for p in _api(url, "/api/pipelines")] == ["churn"]
        listed = _api(url, "/api/executions")["items"]
        assert {e["id"] for e in listed} == {arn.rsplit("/", 1)[-1] for arn in started}
        assert {e["parameters"].get("N") for e in listed} <= {"1", "2", None}
        assert [v["ModelApprovalStatus"] for v in _api(url, "/api/models/diabetes")] == ["PendingManualApproval"] * 2
        assert _api(url, "/api/models/diabetes/2/status", {"status": "Approved", "reason": "from the UI"})["ModelApprovalStatus"] == "Approved"
        assert sm.describe_model_package(ModelPackageName=_api(url, "/api/models/diabetes/2")["ModelPackageArn"])["ModelApprovalStatus"] == "Approved"
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(url + "/executions")
        expect(page.locator("tbody tr")).to_have_count(2)
        expect(page.get_by_text("profile aws")).to_be_visible()
        # moto does not implement ListPipelineExecutionSteps, which an execution's page needs: the page says so, as a page
        answer = page.goto(f"{url}/executions/{listed[0]['id']}")
        assert answer is not None and answer.status == 502
        expect(page.get_by_role("alert")).to_contain_text("ListPipelineExecutionSteps")
        shot(page, "aws-execution-moto-gap")
        page.goto(url + "/models/diabetes")
        expect(page.locator("#version-status-2")).to_have_text("Approved")
        shot(page, "aws-models")
        context.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        server.stdout.close()
