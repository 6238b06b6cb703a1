"""Requests per second and latency of sagelab's inference server against `mlflow models serve`.

Usage: .venv/bin/python benchmarks/bench_serving.py [--duration 10] [--connections 16] [--threads 2]

Both servers serve the same scikit-learn LogisticRegression (iris) with their defaults (one
worker process each) on 127.0.0.1, and get the same two rows in their own JSON format:
sagelab `[[...], [...]]` (application/json, SageMaker's protocol), MLflow both of its formats,
`{"dataframe_split": ...}` and `{"inputs": ...}`; sagelab is compared with the faster of the two.
Load comes from wrk (`-t2 -c16 -d10s --latency`, a fixed and bounded run), and single-request
latency is the median of 200 sequential requests on one keep-alive connection. MLflow lives in
its own virtualenv (benchmarks/.venvs/mlflow, made on first use) so its dependencies never touch
sagelab's; delete that folder to benchmark a newer MLflow. wrk is Debian's package (installed
with apt-get when missing and running as root).

Targets: sagelab >= 3x MLflow's requests/s, and sagelab's p99 under MLflow's median.
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
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venvs" / "mlflow"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SEQUENTIAL = 200

SAVE_MLFLOW_MODEL = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format="pickle")
"""


@dataclass(frozen=True)
class Target:
    """One server under load: where it listens and what it is sent."""

    label: str
    port: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    single_ms: float
    answer: str


def mlflow_bin() -> Path:
    """The MLflow venv's bin folder, created with the latest mlflow on first use."""
    import sklearn

    bin_dir = MLFLOW_VENV / "bin"
    if not (bin_dir / "mlflow").is_file():
        print(f"creating {MLFLOW_VENV} with the latest mlflow (once)...", file=sys.stderr)
        subprocess.run([BASE_PYTHON, "-m", "venv", "--clear", str(MLFLOW_VENV)], check=True)
        # The same scikit-learn as here, so the one pickled model loads identically in both.
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", "mlflow",
                        f"scikit-learn=={sklearn.__version__}"], check=True)  # fmt: skip
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
        time.sleep(0.2)
    raise SystemExit(f"a server did not answer /ping within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def single_latency_ms(target: Target) -> tuple[float, str]:
    """Median of sequential requests on one keep-alive connection, after a short warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
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
               f"http://127.0.0.1:{target.port}/invocations"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=args.duration + 60).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"{target.label}: wrk saw failed requests, so its numbers would lie:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return rps, p50, p99


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (wrk -d)")
    parser.add_argument("--connections", type=int, default=16, help="open connections (wrk -c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (wrk -t)")
    args = parser.parse_args()
    mlflow = mlflow_bin()
    wrk = wrk_binary()

    import joblib
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-serving-") as tmp:
        root = Path(tmp)
        sagelab_model = root / "sagelab-model"
        sagelab_model.mkdir()
        joblib.dump(model, sagelab_model / "model.joblib")  # a SageMaker scikit-learn model folder
        mlflow_model = root / "mlflow-model"
        saved = subprocess.run([str(mlflow / "python"), "-c", SAVE_MLFLOW_MODEL, str(sagelab_model / "model.joblib"), str(mlflow_model)],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if saved.returncode != 0:
            raise SystemExit(f"saving the MLflow model failed:\n{saved.stderr}")
        sagelab_port, mlflow_port = free_port(), free_port()
        env = {**os.environ, "MLFLOW_TRACKING_URI": str(root / "mlruns")}
        try:
            with open(root / "sagelab.log", "wb") as log:
                processes.append(subprocess.Popen([sys.executable, "-m", "sagelab.serving", str(sagelab_model), "--port", str(sagelab_port)],
                                                  stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))  # fmt: skip
            with open(root / "mlflow.log", "wb") as log:
                processes.append(subprocess.Popen([str(mlflow / "mlflow"), "models", "serve", "-m", str(mlflow_model), "--env-manager", "local",
                                                   "-h", "127.0.0.1", "-p", str(mlflow_port)],
                                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                  env={**env, "PATH": f"{mlflow}{os.pathsep}{env.get('PATH', '')}"}))  # fmt: skip
            wait_until_up(sagelab_port, processes[0], root / "sagelab.log")
            wait_until_up(mlflow_port, processes[1], root / "mlflow.log")
            targets = [
                Target("sagelab", sagelab_port, json.dumps(ROWS).encode()),
                Target("mlflow dataframe_split", mlflow_port, json.dumps({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}).encode()),
                Target("mlflow inputs", mlflow_port, json.dumps({"inputs": ROWS}).encode()),
            ]
            results = []
            for target in targets:
                single, answer = single_latency_ms(target)
                rps, p50, p99 = run_wrk(wrk, target, args, root)
                results.append(Result(target.label, rps, p50, p99, single, answer))
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    mlflow_version = subprocess.run([str(mlflow / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
                                    capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    print(f"sagelab 0.1.0 vs mlflow {mlflow_version} (scikit-learn {sklearn.__version__}, Python {platform.python_version()}); "
          f"{os.cpu_count()} CPUs; one worker each")  # fmt: skip
    print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; single: median of {SEQUENTIAL} sequential requests")
    print()
    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'single ms':>11}  answer")
    for r in results:
        print(f"{r.label:<24}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.single_ms:>11.2f}  {r.answer[:40]}")
    print()
    ours = results[0]
    peer = max(results[1:], key=lambda r: r.rps)
    ratio = ours.rps / peer.rps
    print(f"compared with the faster MLflow format ({peer.label})")
    print(f"sagelab/mlflow requests/s: {ratio:6.2f}x              target >= 3.00x           {verdict(ratio >= 3)}")
    print(f"sagelab p99 vs mlflow p50: {ours.p99_ms:6.2f} ms vs {peer.p50_ms:6.2f} ms  target p99 < mlflow p50   "
          f"{verdict(ours.p99_ms < peer.p50_ms)}")  # fmt: skip
    print(f"single request, median:    {ours.single_ms:6.2f} ms vs {peer.single_ms:6.2f} ms  ({peer.single_ms / ours.single_ms:.1f}x)")


if __name__ == "__main__":
    main()
