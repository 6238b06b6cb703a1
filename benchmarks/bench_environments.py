"""Image environments: building them with uv against pip, and a step's start on one against sagelab's own packages.

Usage: python benchmarks/bench_environments.py [--runs 3]

a) Build the environment of three images (sagemaker-scikit-learn 1.2-1 and 0.23-1,
   sagemaker-xgboost 1.7-1; the releases images.json lists for this Python) the way sagelab
   builds it — `uv venv --seed` and `uv pip install --compile-bytecode` of the pins — against the way a user would
   without sagelab: `python -m venv` and `pip install` of the same pins. Cold: an empty package
   cache (both download every wheel from the index pip is configured with); warm: the cache
   filled by the cold build, a new environment.
b) `sagelab run` of a one-step pipeline (a Processing step printing one line) on the
   scikit-learn 1.2-1 image with its environment built, against the same run with
   environment = "host" (sagelab's own packages): what the faithful default costs per step.

Every case is timed from process start to exit; rounds alternate the cases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagelab.containers.environments import manifest, uv
from sagelab.containers.images import identify

SAGELAB = Path(sys.executable).parent / "sagelab"
IMAGES = ("sagemaker-scikit-learn:1.2-1-cpu-py3", "sagemaker-scikit-learn:0.23-1-cpu-py3", "sagemaker-xgboost:1.7-1")


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def build_uv(pins: list[str], target: Path, cache: Path) -> float:
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    env.pop("UV_OFFLINE", None)
    started = time.perf_counter()
    subprocess.run([uv.binary(), "venv", "--quiet", "--seed", "--python", sys.executable, str(target)], env=env, check=True)
    subprocess.run([uv.binary(), "pip", "install", "--quiet", "--python", str(target / "bin" / "python"), "--compile-bytecode",
                    "--only-binary", ":all:", "--exclude-newer", manifest.exclude_newer(), *uv.index_options(), *pins],
                   env=env, check=True)  # fmt: skip
    return time.perf_counter() - started


def build_pip(pins: list[str], target: Path, cache: Path) -> float:
    env = {**os.environ, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(target)], env=env, check=True)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--only-binary=:all:", *pins], env=env, check=True)
    return time.perf_counter() - started


def project(folder: Path, mode: str) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(f'[tool.sagelab]\nenvironment = "{mode}"\n')
    step = {"Name": "Prep", "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": f"683313688378.dkr.ecr.us-east-1.amazonaws.com/{IMAGES[0]}",
                             "ContainerEntrypoint": ["python3", "-c", "import pandas; print('ok')"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
        "RoleArn": "arn:aws:iam::000000000000:role/R"}}  # fmt: skip
    (folder / "pipeline.json").write_text(json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [step]}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; uv {subprocess.run([uv.binary(), '--version'], capture_output=True, text=True).stdout.split()[1]}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        print("\na) environment builds (median of runs, seconds)")
        print(f"{'image':<40}{'uv cold':>9}{'pip cold':>10}{'ratio':>7}{'uv warm':>10}{'pip warm':>10}{'ratio':>7}")
        for image in IMAGES:
            spec, why = manifest.lookup(identify(image))
            if spec is None:
                print(f"{image}: {why}")
                continue
            pins = [f"{name}=={version}" for name, version in spec.pins.items()]
            times: dict[str, list[float]] = {"uv cold": [], "pip cold": [], "uv warm": [], "pip warm": []}
            for run in range(args.runs):
                for tool, build in (("uv", build_uv), ("pip", build_pip)):
                    cache = root / f"{tool}-cache-{run}"
                    times[f"{tool} cold"].append(build(pins, root / f"{tool}-cold-{run}", cache))
                    times[f"{tool} warm"].append(build(pins, root / f"{tool}-warm-{run}", cache))
                    for leftover in (cache, root / f"{tool}-cold-{run}", root / f"{tool}-warm-{run}"):
                        shutil.rmtree(leftover, ignore_errors=True)
            med = {name: statistics.median(values) for name, values in times.items()}
            print(f"{image:<40}{med['uv cold']:>9.2f}{med['pip cold']:>10.2f}{med['pip cold'] / med['uv cold']:>6.1f}x"
                  f"{med['uv warm']:>10.2f}{med['pip warm']:>10.2f}{med['pip warm'] / med['uv warm']:>6.1f}x")  # fmt: skip

        print("\nb) `sagelab run` of one Processing step on sagemaker-scikit-learn:1.2-1 (median, seconds)")
        image_project, host_project = project(root / "image", "image"), project(root / "host", "host")
        env = {k: v for k, v in os.environ.items() if k != "UV_OFFLINE"}
        subprocess.run([str(SAGELAB), "envs", "prepare", "pipeline.json"], cwd=image_project, env=env, check=True, stdout=subprocess.DEVNULL)
        runs: dict[str, list[float]] = {"image": [], "host": []}
        for _ in range(max(args.runs, 5)):
            for mode, folder in (("image", image_project), ("host", host_project)):
                runs[mode].append(timed([str(SAGELAB), "run", "pipeline.json"], env, folder))
        image_time, host_time = statistics.median(runs["image"]), statistics.median(runs["host"])
        print(f"image environment {image_time:.2f}   sagelab's own packages {host_time:.2f}   ratio {image_time / host_time:.2f}x")


if __name__ == "__main__":
    main()
