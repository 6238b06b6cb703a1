"""Cached requirements environments and local tuning, each against what it replaces, on this machine.

Usage: python benchmarks/bench_containers.py [--runs 5] [--warmup 1]

a) A Training step (script mode, scikit-learn image) whose code holds a requirements.txt naming
   two tiny wheels in a folder made here (pip reads only that folder, never an index): `sagelab
   run` building the step's environment (an empty cache each time) and reusing it, against what
   a framework container does on every job: a fresh venv, `pip install -r requirements.txt`, the
   script. The venv is made without pip, as the image has pip already.
b) A Tuning step, Random search, 8 training jobs of the built-in XGBoost 1.7-1, 2 at a time, run
   by `sagelab run` (each job a process in its sandbox), against the same search by hand in one
   process: optuna's RandomSampler and xgboost.train, 2 trials at a time (same data, ranges,
   rounds, watchlist and 1 xgboost thread per trial on both sides).

Every case is timed from process start to exit, the cases alternating within each round.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.config import load_settings
from sagelab.store import LocalStore

SAGELAB = Path(sys.executable).parent / "sagelab"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CODE = "s3://bench-bucket/code/sourcedir.tar.gz"
JOBS, PARALLEL = 8, 2
PACKAGES = ("benchpkg-a", "benchpkg-b")
# Both sides' pip: only the wheel folder (PIP_FIND_LINKS, set per run), no pip.conf, no cache.
PIP_ENV = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
TRAIN_PY = """import os, benchpkg_a, benchpkg_b
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as model:
    model.write(benchpkg_a.NAME + benchpkg_b.NAME)
"""
STATIC = {"objective": "reg:squarederror", "eval_metric": "rmse", "num_round": "30", "nthread": "1"}
RANGES = {
    "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
                                  {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"}],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8", "ScalingType": "Linear"}],
    "CategoricalParameterRanges": [],
}  # fmt: skip
# The peer of (b): the built-in algorithm's training (its 1.7-1 defaults base_score 0.5 and tree_method
# exact, train and validation in the watchlist) for each trial optuna draws from RANGES.
OPTUNA_XGBOOST = """
import json, sys
import numpy as np, optuna, xgboost as xgb
jobs, parallel, static, ranges = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
data = {name: np.loadtxt(f"{name}.csv", delimiter=",") for name in ("train", "validation")}
params = {**{k: v for k, v in static.items() if k != "num_round"}, "base_score": 0.5, "tree_method": "exact"}

def objective(trial):
    tuned = {r["Name"]: trial.suggest_float(r["Name"], float(r["MinValue"]), float(r["MaxValue"]), log=r["ScalingType"] == "Logarithmic")
             for r in ranges["ContinuousParameterRanges"]}
    tuned.update({r["Name"]: trial.suggest_int(r["Name"], int(r["MinValue"]), int(r["MaxValue"])) for r in ranges["IntegerParameterRanges"]})
    # A DMatrix per trial: two threads training on one DMatrix crash xgboost 3.x (SIGSEGV).
    watchlist = [(xgb.DMatrix(rows[:, 1:], label=rows[:, 0]), name) for name, rows in data.items()]
    history = {}
    booster = xgb.train({**params, **tuned}, watchlist[0][0], int(static["num_round"]), evals=watchlist, evals_result=history, verbose_eval=False)
    booster.save_model(f"model-{trial.number}.ubj")
    return history["validation"]["rmse"][-1]

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=1))
study.optimize(objective, n_trials=jobs, n_jobs=parallel)
"""


def run(argv: list[Any], cwd: Path, env: dict[str, str]) -> None:
    """Run one command; any failure stops the benchmark, since its numbers would lie."""
    done = subprocess.run([str(a) for a in argv], check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"FAILED: exit code {done.returncode} from {argv} in {cwd}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def timed(cwd: Path, env: dict[str, str], *commands: list[Any]) -> float:
    """Seconds to run `commands` one after the other."""
    start = time.perf_counter()
    for argv in commands:
        run(argv, cwd, env)
    return time.perf_counter() - start


def write_wheel(folder: Path, name: str) -> None:
    """A pure-Python wheel `name` 1.0 of one module holding NAME, with the RECORD pip checks."""
    module, version = name.replace("-", "_"), "1.0"
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"NAME = {name!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench_containers\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    digests = {path: base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode() for path, text in files.items()}
    files[f"{info}/RECORD"] = "".join(f"{path},sha256={digests[path]},{len(text.encode())}\n" for path, text in files.items()) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def make_project(folder: Path, step: dict[str, Any], objects: dict[str, bytes]) -> Path:
    """A sagelab project whose pipeline.json is `step`, with `objects` in its local S3."""
    folder.mkdir()
    # environment = "host": both sides use this environment's packages, so the figures compare orchestration, not releases.
    (folder / "pyproject.toml").write_text(f"[tool.sagelab]\nconcurrency = {PARALLEL}\nenvironment = \"host\"\n", encoding="utf-8")
    definition = {"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [step]}
    (folder / "pipeline.json").write_text(json.dumps(definition, indent=1), encoding="utf-8")
    store = LocalStore(load_settings(folder).store)
    for uri, data in objects.items():
        store.put_bytes(uri, data)
    return folder


def job_request(image: str, channels: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a CreateTrainingJob request and a tuning job's TrainingJobDefinition share."""
    return {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "InputDataConfig": [{"ChannelName": c, "ContentType": "text/csv",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bench-bucket/data/{c}"}}} for c in channels],
        "OutputDataConfig": {"S3OutputPath": "s3://bench-bucket/models"},
        "RoleArn": "arn:aws:iam::000000000000:role/Bench",
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }  # fmt: skip


RESOURCES = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}


def requirements_cases(root: Path) -> list[tuple[str, Callable[[], float]]]:
    """(a): sagelab's first and warm runs of a step with requirements.txt, and the container's per-job install."""
    wheels, code = root / "wheels", root / "code"
    wheels.mkdir()
    code.mkdir()
    for name in PACKAGES:
        write_wheel(wheels, name)
    (code / "train.py").write_text(TRAIN_PY, encoding="utf-8")
    (code / "requirements.txt").write_text("\n".join(PACKAGES) + "\n", encoding="utf-8")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(code.iterdir()):
            tar.add(path, arcname=path.name)
    hyperparameters = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(CODE)}
    step = {"Name": "Train", "Type": "Training", "Arguments": {**job_request(SKLEARN), "HyperParameters": hyperparameters, "ResourceConfig": RESOURCES}}
    project = make_project(root / "requirements", step, {CODE: archive.getvalue()})
    env = {**os.environ, **PIP_ENV, "PIP_FIND_LINKS": str(wheels)}
    sagelab = [SAGELAB, "run", "pipeline.json"]
    warm = {**env, "XDG_CACHE_HOME": str(root / "warm-cache")}
    run(sagelab, project, warm)  # builds the environment the warm runs reuse

    def first_run() -> float:  # an empty cache, so sagelab builds the environment
        return timed(project, {**env, "XDG_CACHE_HOME": tempfile.mkdtemp(dir=root)}, sagelab)

    def per_job_install() -> float:  # a fresh container's filesystem each time
        job = Path(tempfile.mkdtemp(dir=root))
        python = job / "venv" / "bin" / "python"
        install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-input", "-r", "requirements.txt"]
        return timed(code, {**env, "SM_MODEL_DIR": str(job)}, [sys.executable, "-m", "venv", "--without-pip", job / "venv"], install, [python, "train.py"])

    return [("sagelab run, first (builds env)", first_run), ("sagelab run, warm (reuses env)", lambda: timed(project, warm, sagelab)),
            ("venv + pip install + script", per_job_install)]  # fmt: skip


def regression_csv(rng: np.random.Generator, count: int) -> bytes:
    """Label first, then 8 features, no header: what the built-in algorithm reads."""
    features = rng.uniform(0, 1, (count, 8))
    label = 3 * features[:, 0] + np.sin(6 * features[:, 1]) + features[:, 2] * features[:, 3] + rng.normal(0, 0.1, count)
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([label, features]), delimiter=",", fmt="%.5f")
    return buffer.getvalue().encode()


def tuning_cases(root: Path) -> list[tuple[str, Callable[[], float]]]:
    """(b): sagelab's Tuning step against optuna + xgboost.train in one process, on the same CSV files."""
    rng = np.random.default_rng(5)
    data = {"train": regression_csv(rng, 2000), "validation": regression_csv(rng, 500)}
    peer = root / "optuna"
    peer.mkdir()
    for name, csv in data.items():
        (peer / f"{name}.csv").write_bytes(csv)
    config = {"Strategy": "Random", "RandomSeed": 1, "ParameterRanges": RANGES, "TrainingJobEarlyStoppingType": "Off",
              "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
              "ResourceLimits": {"MaxNumberOfTrainingJobs": JOBS, "MaxParallelTrainingJobs": PARALLEL}}  # fmt: skip
    training = {**job_request(XGBOOST, tuple(data)), "StaticHyperParameters": STATIC, "HyperParameterTuningResourceConfig": RESOURCES}
    step = {"Name": "Tune", "Type": "Tuning", "Arguments": {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": training}}
    project = make_project(root / "tuning", step, {f"s3://bench-bucket/data/{n}/{n}.csv": csv for n, csv in data.items()})
    env = dict(os.environ)
    optuna_xgboost = [sys.executable, "-c", OPTUNA_XGBOOST, JOBS, PARALLEL, json.dumps(STATIC), json.dumps(RANGES)]
    return [(f"sagelab run, tuning ({JOBS} jobs)", lambda: timed(project, env, [SAGELAB, "run", "pipeline.json"])),
            (f"optuna + xgboost ({JOBS} trials)", lambda: timed(peer, env, optuna_xgboost))]  # fmt: skip


def version(module: str) -> str:
    """The module's own version (xgboost's distribution may be xgboost-cpu)."""
    return str(importlib.import_module(module).__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first, to fill OS caches")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sagelab-bench-") as tmp:
        cases = requirements_cases(Path(tmp)) + tuning_cases(Path(tmp))
        samples: dict[str, list[float]] = {label: [] for label, _ in cases}
        for round_ in range(args.warmup + args.runs):
            for label, case in cases:  # every case once per round: alternating, not batched
                elapsed = case()
                if round_ >= args.warmup:
                    samples[label].append(elapsed)

    median = {label: statistics.median(values) for label, values in samples.items()}
    print(f"sagelab {version('sagelab')} (Python {platform.python_version()}), pip {version('pip')}, xgboost {version('xgboost')}, "
          f"optuna {version('optuna')}; {os.cpu_count()} CPUs; {args.runs} runs each after {args.warmup} warm-up rounds")  # fmt: skip
    print()
    print(f"{'case':<34}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, values in samples.items():
        print(f"{label:<34}{median[label]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}")
    print()
    first, warm, install, tuning, optuna = median.values()
    print(f"per-job install / sagelab warm run:  {install / warm:5.2f}x  (every job after the first)")
    print(f"sagelab first run / per-job install: {first / install:5.2f}x  (the one job that builds the environment)")
    print(f"sagelab tuning / optuna + xgboost:   {tuning / optuna:5.2f}x  ({(tuning - optuna) / JOBS * 1000:.0f} ms more per training job, "
          f"{PARALLEL} at a time)")  # fmt: skip


if __name__ == "__main__":
    main()
