"""Requests per second and latency of sagelab's inference server against `mlflow models serve`.

Usage: .venv/bin/python benchmarks/bench_serving.py [--pipeline-model | --asgi-peer [--rounds 3]] [--duration 10] [--connections 16] [--threads 2]

Both servers serve the same scikit-learn LogisticRegression (iris) with one worker process each
(MLflow's default; sagelab's is one per CPU, as SageMaker's images, so it is set to 1 here) on 127.0.0.1, and get the same two rows in their own JSON format:
sagelab `[[...], [...]]` (application/json, SageMaker's protocol), MLflow both of its formats,
`{"dataframe_split": ...}` and `{"inputs": ...}`; sagelab is compared with the faster of the two.
Load comes from wrk (`-t2 -c16 -d10s --latency`, a fixed and bounded run), and single-request
latency is the median of 200 sequential requests on one keep-alive connection. Servers start one
at a time; "start s" is from launch to the first 200 on /ping, "MB" the resident memory of the
server's processes after the load. MLflow lives in its own virtualenv (benchmarks/.venvs/mlflow,
made on first use) so its dependencies never touch sagelab's; delete that folder to benchmark a
newer MLflow. wrk is Debian's package (installed with apt-get when missing and running as root).

Targets: sagelab >= 3x MLflow's requests/s, and sagelab's p99 under MLflow's median.

--asgi-peer measures how close the model server comes to its own HTTP stack's ceiling: sagelab
serving the iris model with SAGEMAKER_MODEL_SERVER_WORKERS = the CPU count (its default) against a
hello-world ASGI app (answers every request with two bytes, reading none of its body) on the same
stack, `uvicorn --workers <CPU count> --http httptools --loop uvloop --no-access-log`, as uvicorn's
users run it, under the same wrk load. sagelab serves the model twice: as `sagelab deploy` serves a
model of the newest SageMaker scikit-learn image (on that image's packages, built with uv on first
use; the model fitted there, as that image's training job would), and on this environment's
scikit-learn, whose newer releases validate input at a higher cost a call. The three servers take
turns for --rounds rounds and medians are reported, as this machine's figures drift from minute to
minute. Target: sagelab >= 0.6x the hello-world's requests/s.

--pipeline-model measures what a pipeline model's processes cost instead: a scikit-learn
preprocessing container (StandardScaler, its own inference.py) alone, the built-in XGBoost
algorithm's container (8 trees) alone, and the two as a pipeline model (a front process and one
server per container, as `sagelab deploy` runs it), one CSV row a request; the peer is `mlflow
models serve` of the same XGBoost booster, sent the scaled row in its JSON formats.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venvs" / "mlflow"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SEQUENTIAL = 200
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
NEWEST_SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"

SAVE_MLFLOW_MODEL = """
import sys, mlflow
flavor, source, destination = sys.argv[1:]
if flavor == "sklearn":
    import joblib
    mlflow.sklearn.save_model(joblib.load(source), destination, serialization_format="pickle")
else:
    import xgboost
    mlflow.xgboost.save_model(xgboost.Booster(model_file=source), destination)
"""
TRAIN_IRIS = """
import sys, joblib, sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sys.argv[1])
print(sklearn.__version__)
"""
MODEL_FN = """
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""
PREPROCESS = """
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):  # the container's default input_fn and output_fn around it
    return model.transform(data)
"""


@dataclass(frozen=True)
class Server:
    """One server process: where it listens, and how long it took to answer /ping."""

    port: int
    pid: int
    start_s: float


@dataclass(frozen=True)
class Target:
    """One server under load, and what it is sent."""

    label: str
    server: Server
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    single_ms: float
    start_s: float
    rss_mb: float
    answer: str


def mlflow_bin() -> Path:
    """The MLflow venv's bin folder, created with the latest mlflow on first use."""
    import sklearn
    import xgboost

    bin_dir = MLFLOW_VENV / "bin"
    if not (bin_dir / "mlflow").is_file():
        print(f"creating {MLFLOW_VENV} with the latest mlflow (once)...", file=sys.stderr)
        subprocess.run([BASE_PYTHON, "-m", "venv", "--clear", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    if subprocess.run([str(bin_dir / "python"), "-c", "import mlflow, sklearn, xgboost"], capture_output=True, check=False).returncode != 0:
        # The same scikit-learn and XGBoost as here, so the one saved model loads identically in both.
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "mlflow", f"scikit-learn=={sklearn.__version__}",
                        f"xgboost=={xgboost.__version__}"], check=True)  # fmt: skip
    return bin_dir


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        print("installing wrk with apt-get (once)...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(connection: http.client.HTTPConnection, target: Target) -> tuple[int, bytes]:
    connection.request("POST", "/invocations", body=target.body, headers={"Content-Type": target.content_type})
    response = connection.getresponse()
    return response.status, response.read()


def wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"a server did not answer /ping within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class Servers(AbstractContextManager["Servers"]):
    """Server processes started one at a time, so none shares the CPUs while starting; all stopped on exit."""

    def __init__(self, root: Path) -> None:
        self.root, self.processes = root, list[subprocess.Popen[bytes]]()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Server:
        """Run `argv`, which ends with its port option (the port is appended), until it answers /ping."""
        port, log = free_port(), self.root / f"{name}.log"
        began = time.perf_counter()
        with open(log, "wb") as out:
            process = subprocess.Popen([*argv, str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.processes.append(process)
        wait_until_up(port, process, log)
        return Server(port, process.pid, time.perf_counter() - began)

    def sagelab(self, name: str, model: Path, env: dict[str, str]) -> Server:
        """`python -m sagelab.serving MODEL`, as `sagelab deploy` runs a model folder or a pipeline model's description
        (on the environment SAGELAB_SERVING_PYTHON names, when `env` has one)."""
        from sagelab.serving.spawn import interpreter

        python, environment = interpreter({**os.environ, **env})
        return self.start(name, [python, "-m", "sagelab.serving", str(model), "--port"], environment)

    def mlflow(self, mlflow: Path, model: Path, env: dict[str, str]) -> Server:
        return self.start("mlflow", [str(mlflow / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local", "-h", "127.0.0.1", "-p"],
                          {**os.environ, **env, "PATH": f"{mlflow}{os.pathsep}{os.environ.get('PATH', '')}"})  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def save_mlflow_model(mlflow: Path, flavor: str, source: Path, destination: Path) -> Path:
    saved = subprocess.run([str(mlflow / "python"), "-c", SAVE_MLFLOW_MODEL, flavor, str(source), str(destination)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if saved.returncode != 0:
        raise SystemExit(f"saving the MLflow model failed:\n{saved.stderr}")
    return destination


def mlflow_targets(server: Server, rows: list[list[float]], columns: list[str]) -> list[Target]:
    """MLflow's two JSON formats for the same rows."""
    return [
        Target("mlflow dataframe_split", server, json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()),
        Target("mlflow inputs", server, json.dumps({"inputs": rows}).encode()),
    ]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), summed."""
    stats: dict[int, tuple[int, int]] = {}  # pid: (parent, resident pages)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[21]))
    tree = {pid}
    while more := {p for p, (parent, _) in stats.items() if parent in tree} - tree:
        tree |= more
    return sum(stats[p][1] for p in tree if p in stats) * os.sysconf("SC_PAGE_SIZE") / 2**20


def single_latency_ms(target: Target) -> tuple[float, str]:
    """Median of sequential requests on one keep-alive connection, after a short warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", target.server.port, timeout=30)
    try:
        for _ in range(20):
            status, body = post(connection, target)
            if status != 200:
                raise SystemExit(f"{target.label} answered {status}: {body[:300]!r}")
        samples = []
        for _ in range(SEQUENTIAL):
            start = time.perf_counter()
            post(connection, target)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples), body.decode(errors="replace").strip()
    finally:
        connection.close()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(wrk: str, target: Target, args: argparse.Namespace, workdir: Path) -> tuple[float, float, float]:
    script = workdir / f"{target.label.replace(' ', '_')}.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(target.body.decode())}\n'
                      f'wrk.headers["Content-Type"] = "{target.content_type}"\n')  # fmt: skip
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-s", str(script),
               f"http://127.0.0.1:{target.server.port}/invocations"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=args.duration + 60).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"{target.label}: wrk saw failed requests, so its numbers would lie:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return rps, p50, p99


def measure(targets: list[Target], args: argparse.Namespace, workdir: Path) -> list[Result]:
    """Single-request latency, then wrk's load, then the server's memory, one target at a time."""
    wrk, results = wrk_binary(), []
    for target in targets:
        single, answer = single_latency_ms(target)
        rps, p50, p99 = run_wrk(wrk, target, args, workdir)
        results.append(Result(target.label, rps, p50, p99, single, target.server.start_s, tree_rss_mb(target.server.pid), answer))
    return results


def report(mlflow: Path, packages: str, args: argparse.Namespace, results: list[Result]) -> None:
    mlflow_version = subprocess.run([str(mlflow / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
                                    capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    print(f"sagelab 0.1.0 vs mlflow {mlflow_version} ({packages}, Python {platform.python_version()}); "
          f"{os.cpu_count()} CPUs; one worker each")  # fmt: skip
    print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; single: median of {SEQUENTIAL} sequential requests")
    print()
    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'single ms':>11}{'start s':>9}{'MB':>7}  answer")
    for r in results:
        print(f"{r.label:<24}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.single_ms:>11.2f}{r.start_s:>9.2f}{r.rss_mb:>7.0f}  {r.answer[:40]}")
    print()


def faster_mlflow(results: list[Result]) -> Result:
    peer = max((r for r in results if r.label.startswith("mlflow")), key=lambda r: r.rps)
    print(f"compared with the faster MLflow format ({peer.label})")
    return peer


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def single_model(args: argparse.Namespace, mlflow: Path, root: Path) -> None:
    """The iris LogisticRegression in sagelab and in MLflow (the default scenario)."""
    import joblib
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    sagelab_model = root / "sagelab-model"
    sagelab_model.mkdir()
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sagelab_model / "model.joblib")  # a SageMaker scikit-learn model folder
    mlflow_model = save_mlflow_model(mlflow, "sklearn", sagelab_model / "model.joblib", root / "mlflow-model")
    env = {"MLFLOW_TRACKING_URI": str(root / "mlruns")}
    with Servers(root) as servers:
        targets = [Target("sagelab", servers.sagelab("sagelab", sagelab_model, {**env, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), json.dumps(ROWS).encode()),
                   *mlflow_targets(servers.mlflow(mlflow, mlflow_model, env), ROWS, COLUMNS)]  # fmt: skip
        results = measure(targets, args, root)

    report(mlflow, f"scikit-learn {sklearn.__version__}", args, results)
    ours, peer = results[0], faster_mlflow(results)
    ratio = ours.rps / peer.rps
    print(f"sagelab/mlflow requests/s: {ratio:6.2f}x              target >= 3.00x           {verdict(ratio >= 3)}")
    print(f"sagelab p99 vs mlflow p50: {ours.p99_ms:6.2f} ms vs {peer.p50_ms:6.2f} ms  target p99 < mlflow p50   "
          f"{verdict(ours.p99_ms < peer.p50_ms)}")  # fmt: skip
    print(f"single request, median:    {ours.single_ms:6.2f} ms vs {peer.single_ms:6.2f} ms  ({peer.single_ms / ours.single_ms:.1f}x)")


HELLO = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def deployed_environment(image: str, model: Path) -> dict[str, str]:
    """What `sagelab deploy` gives a model of `image`: the image's packages with sagelab's model server (built once, then reused)."""
    from sagelab.engines.local.deploy import ConsoleLog, LocalContainer, serving_environment, with_environments

    container = LocalContainer("model", image, "", model, serving_environment({"Image": image, "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}))
    [prepared] = with_environments([container], ConsoleLog(), [model])
    return prepared.environment


def train_iris(python: str, model: Path) -> str:
    """Fit the iris model with `python`'s scikit-learn into model/model.joblib, as a training job on that image would, with
    the model_fn the scikit-learn container needs (the default input, predict and output functions serve it); its version."""
    (model / "code").mkdir(parents=True, exist_ok=True)
    (model / "code" / "inference.py").write_text(MODEL_FN)
    return subprocess.run([python, "-c", TRAIN_IRIS, str(model / "model.joblib")], capture_output=True, text=True, check=True).stdout.strip()


def asgi_peer(args: argparse.Namespace, root: Path) -> None:
    """sagelab with a worker per CPU, on the image's environment and on this one, against a hello-world ASGI app on uvicorn with as many workers."""
    import uvicorn

    from sagelab.serving.protocol import PYTHON_ENV

    workers = str(os.cpu_count() or 1)
    image_model, host_model = root / "image-model", root / "host-model"
    image_env = deployed_environment(NEWEST_SKLEARN_IMAGE, image_model)
    image_sklearn, host_sklearn = train_iris(image_env[PYTHON_ENV], image_model), train_iris(sys.executable, host_model)
    (root / "hello.py").write_text(HELLO)
    body = json.dumps(ROWS).encode()
    with Servers(root) as servers:
        hello = servers.start("hello", [sys.executable, "-m", "uvicorn", "hello:app", "--app-dir", str(root), "--workers", workers, "--http",
                                        "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1",
                                        "--port"], dict(os.environ))  # fmt: skip
        # SAGEMAKER_MODEL_SERVER_WORKERS: its default, the CPU count
        host_env = {k: v for k, v in image_env.items() if k != PYTHON_ENV}  # the same settings, on this interpreter
        targets = [Target(f"sagelab, scikit-learn {image_sklearn}", servers.sagelab("sagelab-image", image_model, image_env), body),
                   Target(f"sagelab, scikit-learn {host_sklearn}", servers.sagelab("sagelab-host", host_model, host_env), body),
                   Target("hello-world", hello, body)]  # fmt: skip
        rounds = []  # interleaved, each round starting with the next server, so a slow spell of the machine hits all three alike
        for turn in range(args.rounds):
            order = targets[turn % 3 :] + targets[: turn % 3]
            measured = dict(zip((t.label for t in order), measure(order, args, root)))
            rounds.append([measured[t.label] for t in targets])
    print(f"sagelab 0.1.0 vs a hello-world ASGI app, both on uvicorn {uvicorn.__version__} with httptools and uvloop, {workers} workers each; "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}")  # fmt: skip
    print(f"sagelab serves the iris model as `sagelab deploy` does for {NEWEST_SKLEARN_IMAGE.rsplit('/', 1)[-1]} (on the image's packages), "
          f"and on this environment's")  # fmt: skip
    print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, {args.rounds} interleaved round(s); medians")
    print()
    print(f"{'server':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'single ms':>11}{'MB':>7}  answer")
    for column, target in enumerate(targets):
        runs = [results[column] for results in rounds]
        print(f"{target.label:<34}{statistics.median(r.rps for r in runs):>10.0f}{statistics.median(r.p50_ms for r in runs):>9.2f}"
              f"{statistics.median(r.p99_ms for r in runs):>9.2f}{statistics.median(r.single_ms for r in runs):>11.2f}"
              f"{max(r.rss_mb for r in runs):>7.0f}  {runs[0].answer[:40]}")  # fmt: skip
    print()
    for column, target in enumerate(targets[:2]):
        ratios = [results[column].rps / results[2].rps for results in rounds]
        each = " / ".join(f"{r:.2f}" for r in ratios)
        ok = statistics.median(ratios) >= 0.6
        print(f"{target.label}: {statistics.median(ratios):.2f}x the hello-world's requests/s (rounds: {each})   target >= 0.60x   {verdict(ok)}")


def pipeline_model(args: argparse.Namespace, mlflow: Path, root: Path) -> None:
    """A preprocessing container, the XGBoost container, the two chained, and MLflow serving the booster."""
    import joblib
    import numpy as np
    import sklearn
    import xgboost
    from sklearn.preprocessing import StandardScaler

    from sagelab.engines.local.deploy import serving_environment
    from sagelab.serving.pipeline_model import ContainerModel, PipelineModel

    rng = np.random.default_rng(7)
    features = rng.normal(size=(300, 4)) * [10, 2, 5, 1] + [50, 0, 20, 3]
    scaler = StandardScaler().fit(features)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3},
                            xgboost.DMatrix(scaler.transform(features), label=(features[:, 0] + 5 * features[:, 1] > 50)), 8)  # fmt: skip
    row, scaled = features[:1].round(4), scaler.transform(features[:1].round(4))
    (root / "preprocess" / "code").mkdir(parents=True)
    joblib.dump(scaler, root / "preprocess" / "model.joblib")
    (root / "preprocess" / "code" / "inference.py").write_text(PREPROCESS)
    (root / "score").mkdir()
    (root / "score" / "xgboost-model").write_bytes(booster.save_raw("ubj"))
    # Each container's environment as `sagelab deploy` gives it: its own, plus the defaults its image implies.
    preprocess = ContainerModel("preprocess", str(root / "preprocess"), serving_environment({"Image": SKLEARN_IMAGE, "Environment": {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}}), SKLEARN_IMAGE)  # fmt: skip
    score = ContainerModel("score", str(root / "score"), serving_environment({"Image": XGBOOST_IMAGE}), XGBOOST_IMAGE)
    description = PipelineModel((preprocess, score)).save(root / "pipeline.json")
    mlflow_model = save_mlflow_model(mlflow, "xgboost", root / "score" / "xgboost-model", root / "mlflow-model")

    def csv(values: Any) -> bytes:
        return "\n".join(",".join(repr(float(v)) for v in line) for line in values).encode()

    env = {"MLFLOW_TRACKING_URI": str(root / "mlruns")}
    with Servers(root) as servers:
        targets = [
            Target("preprocess alone", servers.sagelab("preprocess", Path(preprocess.model), {**env, **preprocess.environment}), csv(row), "text/csv"),
            Target("xgboost alone", servers.sagelab("score", Path(score.model), {**env, **score.environment}), csv(scaled), "text/csv"),
            Target("pipeline model", servers.sagelab("pipeline", description, env), csv(row), "text/csv"),
            *mlflow_targets(servers.mlflow(mlflow, mlflow_model, env), scaled.tolist(), [f"f{i}" for i in range(4)]),
        ]  # fmt: skip
        results = measure(targets, args, root)

    report(mlflow, f"scikit-learn {sklearn.__version__}, XGBoost {xgboost.__version__}", args, results)
    alone, chain, peer = results[:2], results[2], faster_mlflow(results)
    for r in [*alone, peer]:
        print(f"pipeline model vs {r.label + ':':<24} {chain.rps / r.rps:5.2f}x the requests/s, {chain.single_ms / r.single_ms:5.2f}x the single-request time")
    hop = chain.single_ms - sum(r.single_ms for r in alone)
    print(f"the front's two hops add {hop:.2f} ms to a single request (pipeline model minus the two containers alone)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline-model", action="store_true", help="measure a pipeline model's processes instead (see above)")
    parser.add_argument("--asgi-peer", action="store_true", help="sagelab with a worker per CPU against a hello-world ASGI app (see above)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (wrk -d)")
    parser.add_argument("--connections", type=int, default=16, help="open connections (wrk -c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (wrk -t)")
    parser.add_argument("--rounds", type=int, default=3, help="--asgi-peer: interleaved rounds over the servers, medians reported")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-serving-") as tmp:
        if args.asgi_peer:
            asgi_peer(args, Path(tmp))
        else:
            (pipeline_model if args.pipeline_model else single_model)(args, mlflow_bin(), Path(tmp))


if __name__ == "__main__":
    main()
