"""Wall clock of `sagelab run` against `kedro run` and Metaflow's `python flow.py run` on the same no-op chains.

Usage: python benchmarks/bench_local_engine.py [--runs 10] [--warmup 2] [--steps 3,12,48]

Every tool is timed end to end as a user meets it (process start to exit), alternating within
each round so that drift in machine load hits all alike. Kedro and Metaflow live in their own
virtualenvs (benchmarks/.venvs/kedro and .../metaflow, made once) so their dependencies never
touch sagelab's; delete a folder to benchmark a newer release. Each peer runs as its users run it
when they care about speed: Kedro without its telemetry plugin (`pip uninstall kedro-telemetry`,
checked before every benchmark: loaded, it costs Kedro ~13 %), Metaflow with its defaults (local
runtime, local datastore, each step its own process, as sagelab's).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines import write_kedro_chain, write_metaflow_chain, write_sagemaker_chain

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
SAGELAB = Path(sys.executable).parent / "sagelab"
# Metaflow names each run's user; with no USER (a container) it refuses to start.
ENV = {**os.environ, "USERNAME": os.environ.get("USER") or "bench"}


@dataclass(frozen=True)
class Command:
    """One thing to time: its row label, argument list and working folder."""

    label: str
    argv: list[str]
    cwd: Path


def peer_bin(name: str, packages: list[str]) -> Path:
    """The bin folder of a peer's own venv, created with the latest `packages` on first use."""
    bin_dir = VENVS / name / "bin"
    if not (bin_dir / "python").is_file():
        print(f"creating {VENVS / name} with the latest {' '.join(packages)} (once)...", file=sys.stderr)
        subprocess.run([BASE_PYTHON, "-m", "venv", "--clear", str(VENVS / name)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", *packages], check=True)
    return bin_dir


def kedro_bin() -> Path:
    """Kedro's venv, without the kedro-telemetry plugin that `pip install kedro` brings (asserted)."""
    bin_dir = peer_bin("kedro", ["kedro"])
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "uninstall", "-q", "-y", "kedro-telemetry"], check=True, capture_output=True)
    plugins = "import importlib.metadata as m; print(sorted(e.name for e in m.entry_points(group='kedro.hooks')))"
    loaded = subprocess.run([str(bin_dir / "python"), "-c", plugins], capture_output=True, text=True, check=True).stdout.strip()
    if loaded != "[]":
        raise SystemExit(f"the Kedro venv loads plugins {loaded}; the peer must be plain Kedro")
    return bin_dir


def package_version(python: Path | str, package: str) -> str:
    """The installed version of `package` as `python` sees it."""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def time_ms(command: Command) -> float:
    """Wall clock of one run in ms; any failure stops the benchmark, since its numbers would lie."""
    start = time.perf_counter()
    done = subprocess.run(command.argv, cwd=command.cwd, env=ENV, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"FAILED ({command.label}): exit code {done.returncode} from {command.argv} in {command.cwd}")
    return elapsed


def cached_example(root: Path) -> Command:
    """The example pipeline in a project of its own, run once so that a re-run is all cache hits."""
    project = root / "example"
    shutil.copytree(HERE.parent / "examples" / "diabetes", project / "diabetes")
    (project / "pyproject.toml").write_text("[tool.sagelab]\ncache = \"content\"\n", encoding="utf-8")
    command = Command("sagelab run example (cached)", [str(SAGELAB), "run", "diabetes/pipeline.py:pipeline"], project)
    time_ms(command)
    return command


def build_commands(root: Path, kedro: Path, kedro_version: str, metaflow: Path, steps: list[int]) -> list[Command]:
    """Reference commands, read-only commands, then sagelab, Kedro and Metaflow on each chain length, each in its own folder."""
    example = cached_example(root)
    commands = [
        Command("python -c pass", [sys.executable, "-c", "pass"], root),
        Command("sagelab --help", [str(SAGELAB), "--help"], root),
        Command("sagelab executions", [str(SAGELAB), "executions"], example.cwd),
        Command("sagelab status latest", [str(SAGELAB), "status", "latest"], example.cwd),
        Command("sagelab models list", [str(SAGELAB), "models", "list", "diabetes"], example.cwd),
        Command("kedro --version", [str(kedro / "kedro"), "--version"], root),
        example,
    ]
    for count in steps:
        sagelab_project = root / f"sagelab-{count}"
        sagelab_project.mkdir()
        # Its own pyproject.toml makes this folder the project, so sagelab's state stays here.
        (sagelab_project / "pyproject.toml").write_text("[tool.sagelab]\n", encoding="utf-8")
        write_sagemaker_chain(sagelab_project / "pipeline.json", count)
        kedro_project = write_kedro_chain(root / f"kedro-{count}", count, kedro_version)
        flow = write_metaflow_chain(root / f"metaflow-{count}", count)
        commands += [
            Command(f"sagelab run ({count} steps)", [str(SAGELAB), "run", "pipeline.json"], sagelab_project),
            Command(f"kedro run ({count} steps)", [str(kedro / "kedro"), "run"], kedro_project),
            Command(f"metaflow run ({count} steps)", [str(metaflow / "python"), flow.name, "run"], flow.parent),
        ]
    return commands


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command (at least 2)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first, to fill OS caches")
    parser.add_argument("--steps", default="3,12,48", help="chain lengths, comma-separated")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 for a p90")
    steps = [int(count) for count in args.steps.split(",")]

    kedro, metaflow = kedro_bin(), peer_bin("metaflow", ["metaflow"])
    # pip compiles an installed package's bytecode; an editable install (and a machine with
    # PYTHONDONTWRITEBYTECODE set) would otherwise recompile sagelab on every start.
    import sagelab

    compileall.compile_dir(Path(sagelab.__file__).parent, quiet=1)
    kedro_version = package_version(kedro / "python", "kedro")
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-") as tmp:
        commands = build_commands(Path(tmp), kedro, kedro_version, metaflow, steps)
        samples: dict[str, list[float]] = {c.label: [] for c in commands}
        for round_ in range(args.warmup + args.runs):
            for command in commands:  # every command once per round: alternating, not batched
                elapsed = time_ms(command)
                if round_ >= args.warmup:
                    samples[command.label].append(elapsed)

    median = {label: statistics.median(values) for label, values in samples.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    print(f"sagelab {package_version(sys.executable, 'sagelab')} at {commit} (Python {platform.python_version()}) vs "
          f"kedro {kedro_version} (no telemetry plugin) and metaflow {package_version(metaflow / 'python', 'metaflow')}; "
          f"{os.cpu_count()} CPUs; {args.runs} runs each after {args.warmup} warm-up rounds")  # fmt: skip
    print()
    print(f"{'command':<28}{'median ms':>11}{'p90 ms':>10}")
    for label, values in samples.items():
        print(f"{label:<28}{median[label]:>11.1f}{p90(values):>10.1f}")
    print()
    for count in steps:
        ours = median[f"sagelab run ({count} steps)"]
        print(f"{count:>2} steps: sagelab/kedro {ours / median[f'kedro run ({count} steps)']:5.2f}x, "
              f"sagelab/metaflow {ours / median[f'metaflow run ({count} steps)']:5.2f}x")
    short, long = steps[0], steps[1]
    to_kedro = {count: median[f"sagelab run ({count} steps)"] / median[f"kedro run ({count} steps)"] for count in (short, long)}
    per_step = (median[f"sagelab run ({steps[-1]} steps)"] - median[f"sagelab run ({short} steps)"]) / (steps[-1] - short)
    print(f"sagelab/kedro, {short} steps:   {to_kedro[short]:6.2f}x   target <= 0.50x  {verdict(to_kedro[short] <= 0.5)}")
    print(f"sagelab/kedro, {long} steps:  {to_kedro[long]:6.2f}x   target <= 0.80x  {verdict(to_kedro[long] <= 0.8)}")
    print(f"sagelab per extra step:   {per_step:6.1f} ms  target <= 15 ms   {verdict(per_step <= 15)}")
    cached_ms = median["sagelab run example (cached)"]
    print(f"cached re-run, example:   {cached_ms:6.1f} ms  target < 1000 ms {verdict(cached_ms < 1000)}")
    help_ms = median["sagelab --help"]
    print(f"sagelab --help:           {help_ms:6.1f} ms  target <= 100 ms  {verdict(help_ms <= 100)}")
    for label in ("sagelab executions", "sagelab status latest", "sagelab models list"):
        print(f"{label + ':':<26}{median[label]:6.1f} ms  target <= 120 ms  {verdict(median[label] <= 120)}")


if __name__ == "__main__":
    main()
