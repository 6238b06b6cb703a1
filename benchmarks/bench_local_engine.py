"""Wall clock of `sagelab run` against `kedro run` on the same no-op chains, on this machine.

Usage: python benchmarks/bench_local_engine.py [--runs 10] [--warmup 2]

Both tools are timed end to end as a user meets them (process start to exit), alternating
within each round so that drift in machine load hits both alike. Kedro lives in its own
virtualenv (benchmarks/.venvs/kedro, made once) so its dependencies never touch sagelab's.
Delete that folder to benchmark a newer Kedro.
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

from pipelines import write_kedro_chain, write_sagemaker_chain

HERE = Path(__file__).resolve().parent
KEDRO_VENV = HERE / ".venvs" / "kedro"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
SAGELAB = Path(sys.executable).parent / "sagelab"
STEPS = (3, 12)
# Kedro's telemetry plugin (a required dependency) otherwise tries the network on every
# command; opting out is what a user who cares about latency does, and keeps runs offline.
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class Command:
    """One thing to time: its row label, argument list and working folder."""

    label: str
    argv: list[str]
    cwd: Path


def kedro_bin() -> Path:
    """The Kedro venv's bin folder, created with the latest kedro on first use."""
    bin_dir = KEDRO_VENV / "bin"
    if not (bin_dir / "kedro").is_file():
        print(f"creating {KEDRO_VENV} with the latest kedro (once)...", file=sys.stderr)
        subprocess.run([BASE_PYTHON, "-m", "venv", "--clear", str(KEDRO_VENV)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", "kedro"], check=True)
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


def build_commands(root: Path, kedro: Path, kedro_version: str) -> list[Command]:
    """Reference commands, then sagelab and Kedro on each chain length, each in its own project folder."""
    commands = [
        Command("python -c pass", [sys.executable, "-c", "pass"], root),
        Command("sagelab --help", [str(SAGELAB), "--help"], root),
        Command("kedro --version", [str(kedro / "kedro"), "--version"], root),
        cached_example(root),
    ]
    for steps in STEPS:
        sagelab_project = root / f"sagelab-{steps}"
        sagelab_project.mkdir()
        # Its own pyproject.toml makes this folder the project, so sagelab's state stays here.
        (sagelab_project / "pyproject.toml").write_text("[tool.sagelab]\n", encoding="utf-8")
        write_sagemaker_chain(sagelab_project / "pipeline.json", steps)
        kedro_project = write_kedro_chain(root / f"kedro-{steps}", steps, kedro_version)
        commands += [
            Command(f"sagelab run ({steps} steps)", [str(SAGELAB), "run", "pipeline.json"], sagelab_project),
            Command(f"kedro run ({steps} steps)", [str(kedro / "kedro"), "run"], kedro_project),
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
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 for a p90")

    kedro = kedro_bin()
    # pip compiles an installed package's bytecode; an editable install (and a machine with
    # PYTHONDONTWRITEBYTECODE set) would otherwise recompile sagelab on every start.
    import sagelab

    compileall.compile_dir(Path(sagelab.__file__).parent, quiet=1)
    kedro_version = package_version(kedro / "python", "kedro")
    with tempfile.TemporaryDirectory(prefix="sagelab-bench-") as tmp:
        commands = build_commands(Path(tmp), kedro, kedro_version)
        samples: dict[str, list[float]] = {c.label: [] for c in commands}
        for round_ in range(args.warmup + args.runs):
            for command in commands:  # every command once per round: alternating, not batched
                elapsed = time_ms(command)
                if round_ >= args.warmup:
                    samples[command.label].append(elapsed)

    median = {label: statistics.median(values) for label, values in samples.items()}
    print(f"sagelab {package_version(sys.executable, 'sagelab')} (Python {platform.python_version()}) vs "
          f"kedro {kedro_version}; {os.cpu_count()} CPUs; {args.runs} runs each after {args.warmup} warm-up rounds")  # fmt: skip
    print()
    print(f"{'command':<26}{'median ms':>11}{'p90 ms':>10}")
    for label, values in samples.items():
        print(f"{label:<26}{median[label]:>11.1f}{p90(values):>10.1f}")
    print()
    short, long = STEPS
    ratio_short = median[f"kedro run ({short} steps)"] / median[f"sagelab run ({short} steps)"]
    ratio_long = median[f"kedro run ({long} steps)"] / median[f"sagelab run ({long} steps)"]
    per_step = (median[f"sagelab run ({long} steps)"] - median[f"sagelab run ({short} steps)"]) / (long - short)
    print(f"kedro/sagelab, {short} steps:  {ratio_short:6.2f}x   target >= 2.00x  {verdict(ratio_short >= 2)}")
    print(f"kedro/sagelab, {long} steps: {ratio_long:6.2f}x   target >= 1.00x  {verdict(ratio_long >= 1)}")
    print(f"sagelab per extra step:  {per_step:6.1f} ms  target < 25 ms   {verdict(per_step < 25)}")
    cached_ms = median["sagelab run example (cached)"]
    print(f"cached re-run, example:  {cached_ms:6.1f} ms  target < 1000 ms {verdict(cached_ms < 1000)}")
    help_ms = median["sagelab --help"]
    print(f"sagelab --help:          {help_ms:6.1f} ms  budget < 150 ms  {verdict(help_ms < 150)}")


if __name__ == "__main__":
    main()
