"""sagelab.docs on the diabetes example: graph layout, SVG and PNG, Mermaid, the pages, and the
commands that write them (`sagelab graph --out`, `sagelab docs build`)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from sagelab.definition.loader import Loaded, load
from sagelab.docs import Execution, graph_png, graph_svg, layout, mermaid, page_names, write_pipeline_docs
from sagelab.docs.describe import text
from sagelab.engines.local import ExecutionRecord, Records, StepRecord

ROOT = Path(__file__).resolve().parents[1]
SPEC = f"{ROOT / 'examples' / 'diabetes' / 'pipeline.py'}:pipeline"
SAGELAB = str(Path(sys.executable).parent / "sagelab")
STEPS = ["Preprocess", "Train", "Evaluate", "CheckMse", "Register", "MseTooHigh"]
SVG = "{http://www.w3.org/2000/svg}"
# The Markdown extensions the project template's mkdocs.yml turns on, which the pages use.
MKDOCS_YML = """site_name: docs test
theme:
  name: material
markdown_extensions:
  - admonition
  - attr_list
  - md_in_html
  - tables
  - pymdownx.details
  - pymdownx.highlight
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
  - pymdownx.tabbed:
      alternate_style: true
"""


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    return load(SPEC)


def test_exports() -> None:
    for name in ("sagelab.docs", "sagelab.templates"):
        module = importlib.import_module(name)
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, exported) for exported in module.__all__)


def test_layout_puts_every_step_after_what_it_waits_for(loaded: Loaded) -> None:
    placed = layout(loaded.definition)
    boxes = placed.boxes
    assert list(boxes) == STEPS
    columns = sorted({box.x for box in boxes.values()})
    assert [columns.index(boxes[name].x) for name in STEPS] == [0, 1, 2, 3, 4, 4]
    for route in placed.routes:
        assert boxes[route.source].x < boxes[route.target].x
        assert route.points[0][0] == boxes[route.source].x + boxes[route.source].width
        assert route.points[-1][0] == boxes[route.target].x
    register, fail = boxes["Register"], boxes["MseTooHigh"]
    assert abs(register.y - fail.y) >= register.height  # the two branches do not overlap
    assert all(0 <= box.x and box.x + box.width <= placed.width and 0 <= box.y and box.y + box.height <= placed.height for box in boxes.values())


def test_top_to_bottom_puts_every_step_below_what_it_waits_for(loaded: Loaded) -> None:
    placed = layout(loaded.definition, "TB")
    boxes = placed.boxes
    for route in placed.routes:
        assert boxes[route.source].y + boxes[route.source].height <= boxes[route.target].y
        assert route.points[0] == (boxes[route.source].x + boxes[route.source].width / 2, boxes[route.source].y + boxes[route.source].height)
        assert route.points[-1] == (boxes[route.target].x + boxes[route.target].width / 2, boxes[route.target].y)
    assert placed.height > placed.width  # narrow enough for a page's column
    assert all(box.x >= 0 and box.x + box.width <= placed.width for box in boxes.values())


@pytest.mark.parametrize("direction", ["LR", "TB"])
def test_routes_skipping_a_column_pass_beside_its_steps(loaded: Loaded, direction: str) -> None:
    placed = layout(loaded.definition, direction)
    flip = direction == "TB"
    for route in placed.routes:
        points = [(y, x) if flip else (x, y) for x, y in route.points]
        for (a1, c1), (a2, c2) in zip(points, points[1:]):
            if c1 != c2:
                continue  # curves bend between columns only; straight runs cross a column
            for box in placed.boxes.values():
                start, extent = (box.y, box.height) if flip else (box.x, box.width)
                side, breadth = (box.x, box.width) if flip else (box.y, box.height)
                if box.name not in (route.source, route.target) and start < (a1 + a2) / 2 < start + extent:
                    assert not side <= c1 <= side + breadth, (route, box)


def test_boxes_fit_their_captions(loaded: Loaded) -> None:
    statuses = dict.fromkeys(STEPS, "NotStarted")
    narrow = layout(loaded.definition).boxes["Register"].width
    wide = layout(loaded.definition, captions={"Register": "RegisterModel · – NotStarted"}).boxes["Register"].width
    assert wide > narrow and wide >= 7.0 * len("RegisterModel · – NotStarted")
    assert "NotStarted" in graph_svg(loaded.definition, "d", statuses)


def test_edge_kinds(loaded: Loaded) -> None:
    kinds = {(r.source, r.target): r.kind for r in layout(loaded.definition).routes}
    assert kinds[("CheckMse", "Register")] == "if"
    assert kinds[("CheckMse", "MseTooHigh")] == "else"
    assert kinds[("Preprocess", "Train")] == "needs"
    assert kinds[("Preprocess", "Evaluate")] == "implied"  # Preprocess → Train → Evaluate orders them already
    assert kinds[("Train", "Evaluate")] == "needs"


def test_svg_is_well_formed_with_a_box_per_step(loaded: Loaded) -> None:
    svg = graph_svg(loaded.definition, loaded.name)
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Pipeline diabetes: steps and what each waits for"  # type: ignore[union-attr]
    names = [t.text for t in root.iter(f"{SVG}text") if t.get("font-weight") == "600"]
    assert names == STEPS
    assert len([p for p in root.iter(f"{SVG}path") if p.get("marker-end")]) == len(layout(loaded.definition).routes)
    assert graph_svg(loaded.definition, loaded.name) == svg  # deterministic


def test_svg_overlays_statuses(loaded: Loaded) -> None:
    statuses = dict.fromkeys(STEPS[:-1], "Succeeded") | {"MseTooHigh": "Skipped"}
    svg = graph_svg(loaded.definition, loaded.name, statuses)
    assert svg.count("✓ Succeeded") == 5 and "– Skipped" in svg
    assert svg.count('fill="#e6f4ea"') == 5


def test_names_are_escaped() -> None:
    from sagelab.pipeline import Pipeline, fail

    from sagelab.definition import parse

    pipeline = Pipeline("odd", [fail("Stop", "x", description='say "hi" & <bye>')], bucket="my-bucket", region="us-east-1")
    svg = graph_svg(parse(pipeline.definition()), "<odd> & co")
    ElementTree.fromstring(svg)
    assert "&amp; &lt;bye&gt;" in svg and "Pipeline &lt;odd&gt; &amp; co" in svg


def test_png_renders(loaded: Loaded) -> None:
    png = graph_png(graph_svg(loaded.definition, loaded.name))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_mermaid(loaded: Loaded) -> None:
    text_ = mermaid(loaded.definition)
    lines = text_.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    s0["Preprocess<br/><small>Processing</small>"]' in lines
    assert '    s3{{"CheckMse<br/><small>Condition</small>"}}' in lines
    assert "    s3 -- if --> s4" in lines and "    s3 -. else .-> s5" in lines and "    s0 --> s1" in lines
    with_status = mermaid(loaded.definition, {"Preprocess": "Failed"})
    assert "classDef failed" in with_status and "class s0 failed" in with_status


def test_expressions_read_as_text() -> None:
    join = {"Std:Join": {"On": "/", "Values": ["s3:/", "b", {"Get": "Execution.PipelineExecutionId"}, "out"]}}
    assert text(join) == "s3://b/{Execution.PipelineExecutionId}/out"
    json_get = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.evaluation"}, "Path": "a.b"}}
    condition = {"Type": "LessThanOrEqualTo", "LeftValue": json_get, "RightValue": {"Get": "Parameters.T"}}
    assert text(condition) == "JsonGet(Steps.Evaluate.PropertyFiles.evaluation, a.b) <= Parameters.T"
    assert text({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}) == "not (1 == 2)"


@pytest.fixture(scope="module")
def pages(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("site") / "docs"
    written = write_pipeline_docs(loaded, docs, "examples/diabetes/pipeline.py:pipeline")
    assert {p.name for p in written} == {"graph.svg", "index.md", *page_names(loaded.definition).values()}
    return docs / "pipeline"


def test_overview_page(pages: Path) -> None:
    index = (pages / "index.md").read_text()
    assert "# Pipeline diabetes" in index
    assert "![The steps of diabetes and what each waits for](graph.svg)" in index
    assert "    ```mermaid\n    flowchart LR\n" in index
    assert "| [Preprocess](01-preprocess.md) | Processing | Split the raw table into train and test sets. | — |" in index
    assert "| `MseThreshold` | Float | `3500.0` | [CheckMse](04-checkmse.md), [MseTooHigh](06-msetoohigh.md) |" in index
    assert "| `InstanceType` | String | `ml.m5.large` | [Preprocess](01-preprocess.md), [Train](02-train.md), [Evaluate](03-evaluate.md) |" in index


def test_every_link_leads_to_a_page(pages: Path) -> None:
    for page in pages.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            assert (pages / target).is_file(), (page.name, target)


def test_processing_page_shows_purpose_ports_resources_and_code(pages: Path) -> None:
    page = (pages / "01-preprocess.md").read_text()
    assert "> Split the raw table into train and test sets." in page
    assert "| Instance | parameter `InstanceType` (default `ml.m5.large`) |" in page
    assert "| Image | `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3` |" in page
    assert "| Command | `python3 /opt/ml/processing/input/code/preprocess.py --test-size 0.2` |" in page
    assert "examples/diabetes/data/diabetes.csv` (local, uploaded as `s3://sagemaker-us-east-1-000000000000/diabetes/data/" in page
    assert "| train | `s3://sagemaker-us-east-1-000000000000/diabetes/{Execution.PipelineExecutionId}/Preprocess/output/train` | `/opt/ml/processing/output/train` |" in page
    code = (ROOT / "examples" / "diabetes" / "code" / "preprocess.py").read_text()
    assert f'```python title="preprocess.py"\n{code.rstrip()}\n```' in page


def test_training_page_shows_the_entry_point_from_its_source_archive(pages: Path) -> None:
    page = (pages / "02-train.md").read_text()
    assert "| train | output train of [Preprocess](01-preprocess.md) (`Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`) | `/opt/ml/input/data/train` |" in page
    assert "## Hyperparameters\n\n| Name | Value |\n| --- | --- |\n| `n_estimators` | parameter `NEstimators` (default `150`) |\n| `learning_rate` | `0.05` |\n" in page
    assert "| `train:mse` | `log lines matching train_mse=([0-9\\.]+)` |" in page
    assert (ROOT / "examples" / "diabetes" / "code" / "train.py").read_text().rstrip() in page


def test_condition_register_and_fail_pages(pages: Path) -> None:
    check = (pages / "04-checkmse.md").read_text()
    assert "- `JsonGet(Steps.Evaluate.PropertyFiles.evaluation, regression_metrics.mse.value) <= Parameters.MseThreshold`" in check
    assert "When every condition holds: [Register](05-register.md)." in check and "Otherwise: [MseTooHigh](06-msetoohigh.md)." in check
    register = (pages / "05-register.md").read_text()
    assert "| Runs | when [CheckMse](04-checkmse.md) is true |" in register
    assert "| model | model of [Train](02-train.md)" in register
    assert "| metrics | from [Evaluate](03-evaluate.md)" in register
    assert "def model_fn(model_dir):" in register  # code/inference.py, from the model's source archive
    fail = (pages / "06-msetoohigh.md").read_text()
    assert "| Runs | when [CheckMse](04-checkmse.md) is false |" in fail
    assert "| Error message | `Test MSE {JsonGet(Steps.Evaluate.PropertyFiles.evaluation, regression_metrics.mse.value)} is above the threshold {Parameters.MseThreshold}` |" in fail


def test_stale_pages_are_removed(loaded: Loaded, tmp_path: Path) -> None:
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "07-gone.md").write_text("old")
    (tmp_path / "pipeline" / "notes.txt").write_text("mine")
    write_pipeline_docs(loaded, tmp_path)
    assert not (tmp_path / "pipeline" / "07-gone.md").exists()
    assert (tmp_path / "pipeline" / "notes.txt").read_text() == "mine"


def test_execution_statuses_on_the_pages(loaded: Loaded, tmp_path: Path) -> None:
    shown = Execution("abc123", "Failed", {"Preprocess": "Succeeded", "Train": "Failed"})
    write_pipeline_docs(loaded, tmp_path, execution=shown)
    index = (tmp_path / "pipeline" / "index.md").read_text()
    assert '!!! info "Execution abc123: Failed"' in index
    assert "| [Train](02-train.md) | Training | Fit a gradient-boosting regressor in scikit-learn script mode. | [Preprocess](01-preprocess.md) | Failed |" in index
    assert '!!! failure "Failed in execution abc123"' in (tmp_path / "pipeline" / "02-train.md").read_text()
    assert '!!! note "not run in execution abc123"' in (tmp_path / "pipeline" / "03-evaluate.md").read_text()


# -- the commands, as users run them --------------------------------------------------------------


def sagelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([SAGELAB, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_graph_out_writes_svg_and_png(tmp_path: Path) -> None:
    svg = sagelab("graph", SPEC, "--out", "graph.svg", cwd=tmp_path)
    assert svg.returncode == 0, svg.stderr
    assert "wrote graph.svg (pipeline diabetes, 6 steps)" in svg.stderr and svg.stdout == ""
    ElementTree.parse(tmp_path / "graph.svg")
    png = sagelab("graph", SPEC, "-o", "graph.png", cwd=tmp_path)
    assert png.returncode == 0, png.stderr
    assert (tmp_path / "graph.png").read_bytes().startswith(b"\x89PNG")
    wrong = sagelab("graph", SPEC, "--out", "graph.gif", cwd=tmp_path)
    assert wrong.returncode == 1 and "can be written as .svg or .png" in wrong.stderr and "Traceback" not in wrong.stderr


def test_graph_without_out_prints_text(tmp_path: Path) -> None:
    result = sagelab("graph", SPEC, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "diabetes: 6 steps, 3 parameters"
    assert not list(tmp_path.iterdir())


def test_docs_build_writes_pages_and_builds_strictly_with_an_execution(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "site"\n')
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Docs test\n")
    records = Records(tmp_path / ".sagelab" / "sagelab.db")  # the records a local run writes
    now = time.time()
    records.create_execution(ExecutionRecord("run1", "diabetes", "Succeeded", {}, {}, now, now + 5, None))
    for name in STEPS:
        records.save_step("run1", StepRecord(name, "Processing", "Skipped" if name == "MseTooHigh" else "Succeeded"))
    records.close()
    result = sagelab("docs", "build", SPEC, "--execution", "latest", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 8 files" in result.stderr
    assert (tmp_path / "site" / "pipeline" / "05-register" / "index.html").is_file()
    assert (tmp_path / "site" / "pipeline" / "graph.svg").read_text().count("✓ Succeeded") == 5
    html = (tmp_path / "site" / "pipeline" / "index.html").read_text()
    assert '<pre class="mermaid"><code>flowchart LR' in html


def test_docs_build_needs_mkdocs_yml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "site"\n')
    result = sagelab("docs", "build", SPEC, cwd=tmp_path)
    assert result.returncode == 1 and "has no mkdocs.yml" in result.stderr and "Traceback" not in result.stderr


def test_docs_serve_serves_the_pages_on_loopback(tmp_path: Path) -> None:
    import socket
    import urllib.request

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "site"\n')
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Docs test\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    server = subprocess.Popen([SAGELAB, "docs", "serve", SPEC, "-a", f"127.0.0.1:{port}"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/pipeline/02-train/", timeout=2) as response:
                    assert b"train.py" in response.read()
                    break
            except OSError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
    finally:
        server.terminate()  # the command became mkdocs (exec), so this stops the server itself
        assert server.wait(timeout=20) is not None
