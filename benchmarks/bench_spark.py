"""Local Spark in a notebook: how long the session takes to start, and a 10 M-row aggregation against pandas and DuckDB.

Usage: python benchmarks/bench_spark.py [--rows 10000000] [--runs 5]

The data is one Parquet file of `--rows` rows (a key with 1,000 values, two float columns),
made once under benchmarks/.data and put in a throwaway project's store. Every tool answers
the same question, per key: count, mean and max, and each answer is checked against pandas'.

- Start: `sagelab.spark.session()` (what the first %%spark cell pays) against a bare
  `SparkSession.builder.master("local[*]").getOrCreate()`, each in a fresh process.
- Aggregation: the warm session reading `s3://bench/rows/` from the store, pandas
  (`read_parquet` + `groupby`) and DuckDB (SQL over the file, its own venv, the latest release),
  each query timed after one warm-up in the same process, as a notebook re-runs a cell.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench_local_engine import package_version, peer_bin

HERE = Path(__file__).resolve().parent
KEYS = 1000

_SAGELAB_START = """
import time
started = time.perf_counter()
from sagelab import spark
session = spark.session()
print(json.dumps({"seconds": time.perf_counter() - started}))
spark.stop()
"""
_BARE_START = """
import time
started = time.perf_counter()
from pyspark.sql import SparkSession
session = (SparkSession.builder.master("local[*]").config("spark.driver.host", "127.0.0.1")
           .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
print(json.dumps({"seconds": time.perf_counter() - started}))
session.stop()
"""
_SPARK_QUERY = """
from sagelab import spark
from pyspark.sql import functions as F
session = spark.session()

def query():
    frame = session.read.parquet("s3://bench/rows/")
    return frame.groupBy("key").agg(F.count("*").alias("n"), F.avg("a").alias("mean_a"), F.max("b").alias("max_b")).toPandas()
"""
_PANDAS_QUERY = """
import pandas
def query():
    frame = pandas.read_parquet(PATH)
    return frame.groupby("key").agg(n=("a", "size"), mean_a=("a", "mean"), max_b=("b", "max")).reset_index()
"""
_DUCKDB_QUERY = """
import duckdb
connection = duckdb.connect()
def query():
    return connection.sql("SELECT key, count(*) AS n, avg(a) AS mean_a, max(b) AS max_b FROM read_parquet('PATH') GROUP BY key").df()
"""
_TIMED = """
import time
query()
times = []
for _ in range(RUNS):
    started = time.perf_counter()
    answer = query()
    times.append(time.perf_counter() - started)
answer = answer.sort_values("key").reset_index(drop=True)
print(json.dumps({"times": times, "n": answer["n"].astype(int).tolist(), "mean_a": answer["mean_a"].round(9).tolist(),
                  "max_b": answer["max_b"].round(9).tolist()}))
"""


def make_data(rows: int) -> Path:
    """One Parquet file of `rows` rows, made once (numpy and pyarrow, seeded)."""
    import numpy
    import pyarrow
    import pyarrow.parquet

    path = HERE / ".data" / f"rows-{rows}.parquet"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        generator = numpy.random.default_rng(7)
        table = pyarrow.table({"key": generator.integers(0, KEYS, rows), "a": generator.normal(size=rows), "b": generator.random(rows)})
        pyarrow.parquet.write_table(table, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


def run_python(python: str | Path, code: str, cwd: Path) -> dict[str, object]:
    """Run `code` in a fresh `python`; its last stdout line is the JSON result."""
    done = subprocess.run([str(python), "-c", "import json\n" + textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "SPARK_LOCAL_IP": "127.0.0.1"})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"a benchmark process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = make_data(args.rows)
    duckdb = peer_bin("duckdb", ["duckdb", "pandas"]) / "python"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    print(f"sagelab {commit}; pyspark {package_version(sys.executable, 'pyspark')}, pandas {package_version(sys.executable, 'pandas')}, "
          f"duckdb {package_version(duckdb, 'duckdb')}; {args.rows:,} rows, {KEYS} keys; {os.cpu_count()} CPUs")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-spark-") as folder:
        project = Path(folder)
        (project / "pyproject.toml").write_text('[project]\nname = "bench"\n\n[tool.sagelab]\nspark_conf = { "spark.driver.memory" = "8g" }\n')
        rows = project / ".sagelab" / "s3" / "bench" / "rows"
        rows.mkdir(parents=True)
        os.link(data, rows / "part-0.parquet") if data.stat().st_dev == rows.stat().st_dev else rows.joinpath("part-0.parquet").write_bytes(data.read_bytes())

        starts: dict[str, list[float]] = {"sagelab.spark.session()": [], "bare pyspark getOrCreate()": []}
        for _ in range(args.runs):  # alternating, so drift in machine load hits both alike
            starts["sagelab.spark.session()"].append(float(run_python(sys.executable, _SAGELAB_START, project)["seconds"]))  # type: ignore[arg-type]
            starts["bare pyspark getOrCreate()"].append(float(run_python(sys.executable, _BARE_START, project)["seconds"]))  # type: ignore[arg-type]
        timed = _TIMED.replace("RUNS", str(args.runs))
        answers = {
            "local Spark (sagelab, s3:// from the store)": run_python(sys.executable, _SPARK_QUERY + timed, project),
            "pandas": run_python(sys.executable, _PANDAS_QUERY.replace("PATH", repr(str(data))) + timed, project),
            "DuckDB": run_python(duckdb, _DUCKDB_QUERY.replace("PATH", str(data)) + timed, project),
        }

    reference = answers["pandas"]
    for name, answer in answers.items():
        same = all(answer[column] == reference[column] for column in ("n", "max_b")) and all(
            abs(x - y) < 1e-6 for x, y in zip(answer["mean_a"], reference["mean_a"]))  # type: ignore[call-overload]
        if not same:
            raise SystemExit(f"{name} answered differently from pandas: the benchmark would compare different work")

    print("\nsession start (fresh process, median of runs)")
    bare = statistics.median(starts["bare pyspark getOrCreate()"])
    for name, values in starts.items():
        print(f"  {name:<45} {statistics.median(values):6.2f} s   {statistics.median(values) / bare:4.2f}× bare pyspark")
    print(f"\n{args.rows:,}-row group-by (count, mean, max per key), warm, median of {args.runs}")
    spark = statistics.median(answers["local Spark (sagelab, s3:// from the store)"]["times"])  # type: ignore[arg-type]
    for name, answer in answers.items():
        median = statistics.median(answer["times"])  # type: ignore[arg-type]
        print(f"  {name:<45} {median:6.2f} s   local Spark takes {spark / median:4.2f}× its time")


if __name__ == "__main__":
    main()
