"""10 M points to a figure: sagelab.notebook.plotting's line() and scatter() against drawing every point, in one run.

Usage: python benchmarks/bench_plotting.py [--points 10000000] [--runs 3] [--no-spark] [--out FOLDER]

The series is a random walk sampled every 10 ms (datetime64 x) with five spikes; the scatter is two
correlated normals with a small offset cluster. Every case goes from the arrays (or the Spark
DataFrame) to a rendered PNG in memory, as a notebook's inline backend renders it:

- line: sagelab `line()` (MinMaxLTTB to 2,000 points) against matplotlib `plot()` of every point;
- scatter: sagelab `scatter()` (400x300 bins, log colour) against matplotlib `scatter()` of every point;
- plotly: `line(backend="plotly")` against a `Scattergl` of every point, each to the JSON a notebook
  sends to the browser (no PNG: plotly's export needs a browser), with its size;
- Spark (local[2], the data in Parquet): `line(frame)` and `scatter(frame)`, which reduce in Spark,
  against `frame.toPandas()` (Arrow on) and the same matplotlib call on every point.

Cases alternate within each round, the numpy cases first and then the Spark ones (so the JVM is not
running beside the numpy cases). The first round is a warm-up whose times are printed apart as
"first" (a kernel's first plot: page faults on fresh memory, font caches, the JVM's JIT); medians
are of the rest.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_S = 1.0


def series(points: int) -> tuple[np.ndarray, np.ndarray]:
    """A random walk every 10 ms from 2026-01-01, with five spikes a reducer must keep."""
    rng = np.random.default_rng(7)
    t = np.datetime64("2026-01-01T00:00:00", "us") + np.arange(points, dtype=np.int64) * np.timedelta64(10_000, "us")
    v = np.cumsum(rng.normal(size=points))
    spikes = (np.array([0.11, 0.35, 0.52, 0.77, 0.93]) * points).astype(np.int64)
    v[spikes] += np.array([900.0, -1200.0, 700.0, 1500.0, -800.0])
    return t, v


def cloud(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated normals, and 3 % of the points in an offset cluster."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=points)
    y = 0.6 * x + rng.normal(scale=0.8, size=points)
    cluster = rng.random(points) < 0.03
    x[cluster] = rng.normal(3.0, 0.3, size=int(cluster.sum()))
    y[cluster] = rng.normal(-2.5, 0.2, size=int(cluster.sum()))
    return x, y


def png(figure: Any, keep: Path | None, name: str) -> None:
    """Render to PNG in memory (and to `keep`/name.png when asked), then free pyplot's hold on it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    if keep is not None:
        (keep / f"{name}.png").write_bytes(buffer.getvalue())
    plt.close(figure)


def numpy_cases(points: int, keep: Path | None, sizes: dict[str, float]) -> dict[str, Callable[[], None]]:
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    from sagelab.notebook.plotting import line, scatter

    t, v = series(points)
    x, y = cloud(points)

    def naive_line() -> None:
        figure, axes = plt.subplots(figsize=(10, 4), layout="constrained")
        axes.plot(t, v, linewidth=0.8)
        png(figure, keep, "naive-line")

    def naive_scatter() -> None:
        figure, axes = plt.subplots(figsize=(7, 5), layout="constrained")
        axes.scatter(x, y, s=1)
        png(figure, keep, "naive-scatter")

    def plotly_json(label: str, figure: Any) -> None:
        sizes[label] = len(figure.to_json()) / 1e6

    return {
        "line: sagelab line()": lambda: png(line(t, v), keep, "sagelab-line"),
        "line: matplotlib plot(), every point": naive_line,
        "scatter: sagelab scatter()": lambda: png(scatter(x, y), keep, "sagelab-scatter"),
        "scatter: matplotlib scatter(), every point": naive_scatter,
        "plotly: sagelab line() -> JSON": lambda: plotly_json("plotly: sagelab line() -> JSON", line(t, v, backend="plotly")),
        "plotly: Scattergl, every point -> JSON": lambda: plotly_json(
            "plotly: Scattergl, every point -> JSON", go.Figure(go.Scattergl(x=t, y=v, mode="lines"))),
    }  # fmt: skip


def spark_cases(points: int, folder: Path, keep: Path | None) -> tuple[dict[str, Callable[[], None]], Any]:
    """The same data as Parquet read by local Spark: reduce in Spark against toPandas() and plot."""
    import matplotlib.pyplot as plt
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession

    from sagelab.notebook.plotting import line, scatter

    t, v = series(points)
    pq.write_table(pa.table({"t": t, "v": v}), folder / "series.parquet")
    x, y = cloud(points)
    pq.write_table(pa.table({"x": x, "y": y}), folder / "cloud.parquet")
    del t, v, x, y
    session = (SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "6g")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    ticks, points_frame = session.read.parquet(str(folder / "series.parquet")), session.read.parquet(str(folder / "cloud.parquet"))

    def naive_line() -> None:
        frame = ticks.toPandas()
        figure, axes = plt.subplots(figsize=(10, 4), layout="constrained")
        axes.plot(frame["t"], frame["v"], linewidth=0.8)
        png(figure, keep, "spark-naive-line")

    def naive_scatter() -> None:
        frame = points_frame.toPandas()
        figure, axes = plt.subplots(figsize=(7, 5), layout="constrained")
        axes.scatter(frame["x"], frame["y"], s=1)
        png(figure, keep, "spark-naive-scatter")

    cases = {
        "spark line: sagelab line(frame)": lambda: png(line(ticks, x="t", y="v"), keep, "spark-sagelab-line"),
        "spark line: toPandas() + plot()": naive_line,
        "spark scatter: sagelab scatter(frame)": lambda: png(scatter(points_frame, x="x", y="y"), keep, "spark-sagelab-scatter"),
        "spark scatter: toPandas() + scatter()": naive_scatter,
    }
    return cases, session


def measure(cases: dict[str, Callable[[], None]], runs: int, first: dict[str, float], samples: dict[str, list[float]]) -> None:
    """A warm-up round (its times go to `first`), then `runs` rounds of every case once each: alternating, not batched."""
    for round_ in range(runs + 1):
        for label, case in cases.items():
            started = time.perf_counter()
            case()
            elapsed = time.perf_counter() - started
            if round_:
                samples.setdefault(label, []).append(elapsed)
            else:
                first[label] = elapsed


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    return f"{head} (work tree modified)" if dirty else head


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each case, after one warm-up round")
    parser.add_argument("--no-spark", action="store_true", help="leave out the Spark cases")
    parser.add_argument("--out", type=Path, help="keep the last PNG of each case here, to look at")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")  # both sides render with Agg, as the inline backend does
    # pyspark 4.3 warns on every toPandas() that it is not tested with pandas 3 yet
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    sizes: dict[str, float] = {}
    first: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    measure(numpy_cases(args.points, args.out, sizes), args.runs, first, samples)
    spark_note = ""
    if args.no_spark:
        spark_note = "Spark cases left out (--no-spark)"
    elif shutil.which("java") is None:
        spark_note = "Spark cases left out: no Java here"
    else:
        with tempfile.TemporaryDirectory(prefix="sagelab-bench-plotting-") as tmp:
            cases, session = spark_cases(args.points, Path(tmp), args.out)
            try:
                measure(cases, args.runs, first, samples)
            finally:
                session.stop()

    median = {label: statistics.median(values) for label, values in samples.items()}
    print(f"sagelab {version('sagelab')} at {commit()} (Python {platform.python_version()}), numpy {version('numpy')}, "
          f"matplotlib {version('matplotlib')}, plotly {version('plotly')}, pyspark {version('pyspark')}; {os.cpu_count()} CPUs; "
          f"{args.points:,} points; {args.runs} runs each after a warm-up round; 1-minute load average {load:.2f} at the start")  # fmt: skip
    if spark_note:
        print(spark_note)
    print()
    print(f"{'case':<46}{'first s':>9}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, values in samples.items():
        size = f"  {sizes[label]:,.1f} MB of JSON" if label in sizes else ""
        print(f"{label:<46}{first[label]:>9.3f}{median[label]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}{size}")
    print()
    pairs = [("line", "line: matplotlib plot(), every point", "line: sagelab line()"),
             ("scatter", "scatter: matplotlib scatter(), every point", "scatter: sagelab scatter()"),
             ("plotly", "plotly: Scattergl, every point -> JSON", "plotly: sagelab line() -> JSON"),
             ("spark line", "spark line: toPandas() + plot()", "spark line: sagelab line(frame)"),
             ("spark scatter", "spark scatter: toPandas() + scatter()", "spark scatter: sagelab scatter(frame)")]  # fmt: skip
    for name, naive, ours in pairs:
        if ours in median:
            print(f"{name + ':':<15}every point / sagelab {median[naive] / median[ours]:7.1f}x (median), {first[naive] / first[ours]:7.1f}x (first)")
    for label in ("line: sagelab line()", "scatter: sagelab scatter()"):
        took = median[label]
        print(f"target: {args.points:,} points to a figure in <= {TARGET_S:.0f} s, {label}: {took:.3f} s median, "
              f"{first[label]:.3f} s first  {verdict(took <= TARGET_S)}")  # fmt: skip


if __name__ == "__main__":
    main()
