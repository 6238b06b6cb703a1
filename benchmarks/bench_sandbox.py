"""What each sandbox mode costs a step: the launcher giving a job its /opt/ml, against no sandbox at all.

Usage: python benchmarks/bench_sandbox.py [--runs 30]

For every mode this machine allows (namespace needs root; user-namespace an unprivileged user
namespace; shared a /opt/ml link, set up here inside a private /opt as `sagelab setup` would; remap
none), it times the launcher starting the two kinds of step command:
- `python3 -c pass`: a Python step, which the launcher runs in its own interpreter;
- `sh -c true`: any other program (shell launchers, smspark-submit), exec'd after the setup.
The peer is the same command started directly, without sagelab (what a step costs at the very
least). A `user-namespace, no /opt/ml` row measures the case where /opt/ml is missing and must be
made inside the namespace (a tmpfs over /opt with its entries bound back). Each job hides its project's
`.sagelab` folder but for its own job folder, as the engine's do. Medians of interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sagelab.containers import sandbox

ROOT = Path(__file__).resolve().parents[1]
PRIVATE_OPT = ROOT / "tests" / "scripts" / "private_opt.py"
COMMANDS = {"python": [sys.executable, "-c", "pass"], "shell": ["sh", "-c", "true"]}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(modes: list[str], runs: int) -> dict[str, dict[str, float]]:
    """Median seconds per (mode or "direct") and command kind; this process's /opt is what the modes see."""
    env = dict(os.environ)
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as base:
        # A job as the engine lays it out: its folder among others in .sagelab/jobs, which (with the store) the step must not see.
        state = Path(base) / ".sagelab"
        job, other = state / "jobs" / "job", state / "jobs" / "other"
        for folder in (job, other, state / "s3"):
            folder.mkdir(parents=True)
        for _ in range(runs):
            for kind, command in COMMANDS.items():
                samples.setdefault(("direct", kind), []).append(timed(command, env))
                for mode in modes:
                    if mode == "remap" and kind == "shell":
                        continue  # remap mode refuses non-Python programs
                    launch = sandbox.command(sandbox.Sandbox(mode), job, "/opt/ml", command, hidden=(state,), kept=(job,))
                    samples.setdefault((mode, kind), []).append(timed(launch, env))
    result: dict[str, dict[str, float]] = {}
    for (mode, kind), times in samples.items():
        result.setdefault(mode, {})[kind] = statistics.median(times)
    return result


def inside_private_opt(mode: str, runs: int, link: bool) -> dict[str, dict[str, float]]:
    """Measure `mode` in a private, empty /opt (holding the shared link when `link`)."""
    state = tempfile.mkdtemp(prefix="sagelab-bench-")
    setup = f"ln -s {state}/sagelab/opt-ml /opt/ml && mkdir -p {state}/sagelab && " if link else ""
    command = f"{setup}{sys.executable} {__file__} --inner {mode} --runs {runs}"
    env = {**os.environ, "XDG_STATE_HOME": state}
    output = subprocess.run([sys.executable, str(PRIVATE_OPT), "sh", "-c", command], env=env, check=True, capture_output=True, text=True)
    measured: dict[str, dict[str, float]] = json.loads(output.stdout)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure([args.inner], args.runs)))
        return
    reasons = sandbox.probe()
    local = [mode for mode in ("namespace", "user-namespace", "remap") if not reasons[mode]]
    results = measure(local, args.runs)
    can_nest = not reasons["namespace"] or not reasons["user-namespace"]
    if can_nest:
        results["shared"] = inside_private_opt("shared", args.runs, link=True)["shared"]
        results["user-namespace, no /opt/ml"] = inside_private_opt("user-namespace", args.runs, link=False)["user-namespace"]
    direct = results.pop("direct")
    print(f"{'mode':<28}{'python3 -c pass':>18}{'vs direct':>11}{'sh -c true':>14}{'vs direct':>11}")
    print(f"{'direct (no sagelab)':<28}{direct['python'] * 1000:>15.1f} ms{'':>11}{direct['shell'] * 1000:>11.1f} ms")
    for mode, times in results.items():
        shell = f"{times['shell'] * 1000:>11.1f} ms{times['shell'] / direct['shell']:>10.2f}x" if "shell" in times else f"{'refused':>14}"
        print(f"{mode:<28}{times['python'] * 1000:>15.1f} ms{times['python'] / direct['python']:>10.2f}x{shell}")
    for mode, reason in reasons.items():
        if reason and mode != "shared":
            print(f"not measured: {mode}: {reason}")
    print(f"(user {os.getuid()}, Python {sys.version.split()[0]}, {args.runs} runs, medians; commit {_commit()})")


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
