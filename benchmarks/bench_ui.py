"""First paint of `sagelab ui` on a project with 1,000 executions, against the MLflow UI on 1,000 runs, in one run.

Usage: python benchmarks/bench_ui.py [--executions 1000] [--loads 15]

sagelab: one real `sagelab run` of a two-step pipeline, copied into 1,000 execution records (steps and all)
in a fresh project; `sagelab ui --port 0` serves it. MLflow: the latest mlflow in its own virtualenv
(benchmarks/.venvs/mlflow, shared with bench_serving.py), 1,000 runs with a parameter and a metric each in
a SQLite store, served by `mlflow server` with its default workers (its UI, as its users open it) on 127.0.0.1.

Debian's headless Chromium (Playwright) opens each list page `--loads` times in a fresh browser context
(no cache), alternating between the two, and reports from the browser's own clock:
- first contentful paint (the Paint Timing API), and
- content: when the newest execution's (run's) name is on the page — what the user came to see.
Medians, and the ratio to MLflow. The issue's target: first paint ≤ 300 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAGELAB = str(Path(sys.executable).parent / "sagelab")
TARGET_MS = 300.0
STEP = "import os; os.makedirs('/opt/ml/processing/output/out', exist_ok=True); open('/opt/ml/processing/output/out/n.txt', 'w').write(os.environ['N'])"
MLFLOW_RUNS = """
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.create_experiment("bench")
client = mlflow.MlflowClient()
for number in range(int(sys.argv[2])):
    run = client.create_run(experiment, run_name=f"run-{number:04d}")
    client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("mse", number * 0.5, 0, 0)],
                     params=[mlflow.entities.Param("N", str(number))])
    client.set_terminated(run.info.run_id)
print(experiment)
"""


def sagelab_project(folder: Path, executions: int) -> str:
    """A project with `executions` executions of `bench`; the newest one's id."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import definition, processing_step

    from sagelab.engines.local import Records

    (folder / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.sagelab]\nconcurrency = 2\n')
    step = processing_step("Write", STEP, outputs=["out"])
    step["Arguments"]["Environment"] = {"N": {"Get": "Parameters.N"}}
    report = processing_step("Report", "print('done')")
    report["DependsOn"] = ["Write"]
    (folder / "bench.json").write_text(json.dumps(definition(step, report, parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1}])))
    subprocess.run([SAGELAB, "run", "bench.json"], cwd=folder, check=True, capture_output=True)
    records = Records(folder / ".sagelab" / "sagelab.db")
    [real] = records.executions(1)
    steps = records.steps(real.id)
    for number in range(executions - 1):
        copy = f"c{number:011d}"
        took = (real.ended or real.started) - real.started
        real.id, real.parameters, real.started = copy, {"N": number}, real.started - 60
        real.ended = real.started + took
        records.create_execution(real)
        for saved in steps:
            records.save_step(copy, saved)
    newest = records.executions(1)[0].id
    records.close()
    return newest


def start(command: list[str], cwd: Path, pattern: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """A server started with `command`; its URL, read from its output with `pattern` (or polled, for MLflow)."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:  # keep reading what it prints (MLflow logs every request): a full pipe would stall the server
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, found.group(1)
    process.kill()
    raise SystemExit(f"{command[0]} did not start: {process.stdout.read()[-2000:]}")


def ready(url: str) -> None:
    """Wait until `url` answers 200 (a server with several workers says it runs before they all listen)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - 127.0.0.1
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 120 s")


def measure(browser: object, url: str, wanted: str) -> tuple[float, float]:
    """(first contentful paint, `wanted` on the page) in ms from navigation start, in a fresh context."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(url, wait_until="commit")
    try:
        page.wait_for_function("text => document.body && document.body.innerText.includes(text)", arg=wanted, polling="raf", timeout=60_000)
    except Exception:
        page.screenshot(path=str(HERE / ".data" / "bench_ui-timeout.png"))
        raise SystemExit(f"{url} did not show {wanted!r} within 60 s; the page: benchmarks/.data/bench_ui-timeout.png") from None
    content = page.evaluate("performance.now()")
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=60_000)
    paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
    context.close()
    return float(paint), float(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=15)
    args = parser.parse_args()
    from bench_serving import mlflow_bin
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or sys.exit("needs Debian's chromium: apt-get install chromium")
    mlflow = mlflow_bin()
    version = subprocess.run([str(mlflow / "python"), "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True, check=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (folder / "sagelab").mkdir()
        (folder / "mlflow").mkdir()
        print(f"preparing {args.executions} sagelab executions and {args.executions} MLflow runs...", flush=True)
        newest = sagelab_project(folder / "sagelab", args.executions)
        store = f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}"
        experiment = subprocess.run([str(mlflow / "python"), "-c", MLFLOW_RUNS, store, str(args.executions)], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1]  # fmt: skip
        ui, ui_url = start([SAGELAB, "ui", "--port", "0", "--no-browser"], folder / "sagelab", r"at (http://127\.0\.0\.1:\d+)")
        port = 5000 + (int(time.time()) % 1000)
        peer, _ = start([str(mlflow / "mlflow"), "server", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port)],
                        folder / "mlflow", r"(Uvicorn running|Listening at|Started server)")  # fmt: skip
        ready(f"http://127.0.0.1:{port}/health")
        peer_url = f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs"  # the runs table (the experiment's page opens on an overview)
        results: dict[str, list[tuple[float, float]]] = {"sagelab": [], "mlflow": []}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                measure(browser, ui_url + "/executions", newest[:8])  # warm-up: the servers' first request, the browser's start
                measure(browser, peer_url, f"run-{args.executions - 1:04d}")
                for _ in range(args.loads):
                    results["sagelab"].append(measure(browser, ui_url + "/executions", newest[:8]))
                    results["mlflow"].append(measure(browser, peer_url, f"run-{args.executions - 1:04d}"))
                browser.close()
        finally:
            for process in (ui, peer):
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    print(f"\nsagelab {commit}, MLflow {version}, {args.executions} executions / runs, {args.loads} loads each, Chromium headless, 1280x800")
    print(f"{'UI':<10} {'first paint ms':>15} {'content ms':>12}")
    medians = {}
    for name, found in results.items():
        medians[name] = (statistics.median(p for p, _ in found), statistics.median(c for _, c in found))
        print(f"{name:<10} {medians[name][0]:>15.0f} {medians[name][1]:>12.0f}")
    paint, content = (medians["mlflow"][i] / medians["sagelab"][i] for i in (0, 1))
    print(f"\nsagelab's first paint {paint:.1f}x MLflow's speed, content {content:.1f}x; "
          f"target first paint <= {TARGET_MS:.0f} ms: {'PASS' if medians['sagelab'][0] <= TARGET_MS else 'FAIL'}")


if __name__ == "__main__":
    main()
