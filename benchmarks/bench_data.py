"""What moving data costs a step: a Processing step that copies its input to its output, against `cp` of the file.

Usage: python benchmarks/bench_data.py [--runs 5] [--sizes 10MB,200MB,1GB] [--dir FOLDER]

Each size gets a project whose store holds one object of that size, and a one-step pipeline whose
script copies /opt/ml/processing/input/data/blob.bin to /opt/ml/processing/output/out/blob.bin
(`shutil.copyfile`, a copy inside the kernel). A step's *extra* time is its `sagelab run` wall
clock minus that of the same step on a 1-byte input: what staging the input and publishing the
output cost, plus the script's own copy. The peer is one `cp` of the same file on the same
filesystem, the least any copying step can cost. *Disk* is what the project folder holds after a
run against the input plus the output in the store. Runs of all sizes and the `cp`s alternate
within each round, each started after `sync` (nothing left to write back from the one before). SAGELAB_SANDBOX=remap (or shared) measures the fallback modes, which copy inputs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines import ROLE_ARN

HERE = Path(__file__).resolve().parent
SAGELAB = Path(sys.executable).parent / "sagelab"
COPY = "import shutil; shutil.copyfile('/opt/ml/processing/input/data/blob.bin', '/opt/ml/processing/output/out/blob.bin')"
UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_size(text: str) -> int:
    number = text.rstrip("BKMG")
    return int(float(number) * UNITS[text[len(number) :] or "B"])


def project(root: Path, size: int) -> Path:
    """A project whose store holds s3://bench-data/in/blob.bin of `size` random bytes, and the copying pipeline."""
    import json

    from sagelab.config import load_settings
    from sagelab.store import LocalStore

    folder = root / f"size-{size}"
    folder.mkdir()
    (folder / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.sagelab]\nenvironment = "host"\n', encoding="utf-8")
    source = root / f"blob-{size}.bin"
    with open(source, "wb") as out:
        block = os.urandom(min(size, 2**20))
        for start in range(0, size, len(block)):
            out.write(block[: size - start])
    LocalStore(load_settings(folder).store).publish_file("s3://bench-data/in/blob.bin", source)
    step = {
        "Name": "Copy",
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": "local/python", "ContainerEntrypoint": ["python3", "-c", COPY]},
            "RoleArn": ROLE_ARN,
            "ProcessingInputs": [{"InputName": "data", "S3Input": {"S3Uri": "s3://bench-data/in", "LocalPath": "/opt/ml/processing/input/data",
                                                                  "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            # A fresh output path per execution, as the SDK's defaults have (a reused one first deletes the old object).
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://bench-data/out", {"Get": "Execution.PipelineExecutionId"}]}},
                "LocalPath": "/opt/ml/processing/output/out", "S3UploadMode": "EndOfJob"}}]},
        },
    }  # fmt: skip
    definition = {"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [step]}
    (folder / "pipeline.json").write_text(json.dumps(definition), encoding="utf-8")
    return folder


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"FAILED: {argv} in {cwd}: {done.stderr[-2000:]}")
    return elapsed


def disk_used(folder: Path) -> int:
    """Bytes of disk the folder's files take (blocks actually allocated, each file once)."""
    seen, total = set(), 0
    for parent, _, files in os.walk(folder):
        for name in files:
            stat = os.lstat(os.path.join(parent, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="10MB,200MB,1GB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the projects go (the filesystem measured)")
    args = parser.parse_args()
    sizes = [1, *(parse_size(text) for text in args.sizes.split(","))]
    from sagelab.containers import sandbox

    with tempfile.TemporaryDirectory(prefix="sagelab-bench-data-", dir=args.dir) as tmp:
        root = Path(tmp)
        projects = {size: project(root, size) for size in sizes}
        runs: dict[int, list[float]] = {size: [] for size in sizes}
        copies: dict[int, list[float]] = {size: [] for size in sizes}
        disk: dict[int, int] = {}
        for round_ in range(args.runs + 1):  # the first round warms the page cache and the environment
            for size, folder in projects.items():
                os.sync()  # each timed command starts with nothing left to write back from the one before
                elapsed = timed([str(SAGELAB), "run", "pipeline.json"], folder)
                if not round_:
                    disk[size] = disk_used(folder)
                shutil.rmtree(folder / ".sagelab" / "s3" / "bench-data" / "out")  # untimed: keep the disk from filling
                shutil.rmtree(folder / ".sagelab" / "jobs")
                os.sync()
                blob = folder / ".sagelab" / "s3" / "bench-data" / "in" / "blob.bin"
                copy_time = timed(["cp", str(blob), str(root / "cp-target.bin")], root)
                os.unlink(root / "cp-target.bin")
                if round_:
                    runs[size].append(elapsed)
                    copies[size].append(copy_time)
        mode = sandbox.current().mode
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    print(f"sagelab at {commit}, sandbox {mode} mode, {args.runs} runs each (medians), projects in {args.dir}")
    print(f"{'input':>8}{'sagelab run':>14}{'extra':>10}{'cp':>10}{'extra/cp':>10}{'disk/(in+out)':>15}")
    base = statistics.median(runs[1])
    for size in sizes:
        run_s, cp_s = statistics.median(runs[size]), statistics.median(copies[size])
        extra = run_s - base
        ratio = f"{extra / cp_s:10.2f}" if size > 1 else f"{'':>10}"
        used = f"{disk[size] / (2 * size):15.3f}" if size >= 10**6 else f"{'(records)':>15}"
        print(f"{_label(size):>8}{run_s * 1000:>11.0f} ms{extra * 1000:>7.0f} ms{cp_s * 1000:>7.0f} ms{ratio}{used}")
    largest = sizes[-1]
    limit = 1.3 if sandbox.mounts_inputs(mode) else 2.2
    ratio = (statistics.median(runs[largest]) - base) / statistics.median(copies[largest])
    print(f"{_label(largest)} step extra / cp: {ratio:.2f}x  target <= {limit}x ({mode} mode)  {'PASS' if ratio <= limit else 'MISS'}")
    if 10**7 in runs:
        small = statistics.median(runs[10**7]) / base
        print(f"10 MB step / no-op step: {small:.2f}x  target <= 1.5x  {'PASS' if small <= 1.5 else 'MISS'}")
    worst = max(disk[size] / (2 * size) for size in sizes if size >= 10**7)
    print(f"disk after a step / (input + output): {worst:.3f}x at most  target <= 1.05x  {'PASS' if worst <= 1.05 else 'MISS'}")


def _label(size: int) -> str:
    for unit in ("GB", "MB", "KB"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:g} {unit}"
    return f"{size} B"


if __name__ == "__main__":
    main()
