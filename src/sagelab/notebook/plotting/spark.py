"""The reductions in Spark: reduce where the data is, bring back the few rows to draw.

A series is a groupBy on x buckets, a scatter a groupBy on bin indices, each with reduction.py's
arithmetic in the same order, so a Spark DataFrame gives the points and counts numpy gives.
pyspark is imported only when a Spark DataFrame comes.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import numpy.typing as npt

from sagelab.errors import PlottingError
from sagelab.notebook.plotting.reduction import (LABELS, PRESELECT, Binned, Floats, Reduced, bin_edges, bin_range, bucket_count, pick,
                                                 reduction_label)  # fmt: skip

SPARK_NUMBERS = {"byte", "short", "integer", "long", "float", "double", "decimal"}
SPARK_TIMES = {"timestamp", "timestamp_ntz", "date"}


def is_spark(data: Any) -> bool:
    """A Spark DataFrame, classic or Connect, told without importing pyspark."""
    return type(data).__module__.startswith("pyspark.sql") and hasattr(data, "groupBy")


def column_name(name: Any, what: str) -> str:
    """x or y as a column name: arrays cannot be lined up with a Spark DataFrame's rows."""
    if not isinstance(name, str):
        raise PlottingError(f"with a Spark DataFrame, {what} must be a column name; got {type(name).__name__}")
    return name


def reduce_series(frame: Any, x: str, y: str, n: int, method: str) -> Reduced:
    """`reduction.reduce_series` for a Spark DataFrame: min-max per x bucket in Spark, LTTB on the driver."""
    if method == "lttb":
        raise PlottingError("method='lttb' needs every point on the driver in x order; for a Spark DataFrame use "
                            "'minmax-lttb' (the default) or 'minmax', which reduce in Spark")  # fmt: skip
    F = importlib.import_module("pyspark.sql.functions")
    xcol, is_time = _number(frame, x)
    ycol = _number(frame, y, times=False)[0]
    points = frame.select(xcol.alias("x"), ycol.alias("y"), (_finite(F, F.col("x")) & _finite(F, F.col("y"))).alias("ok"))
    # Aggregates with fixed-width buffers only (min_by, not min of a struct): Spark hash-aggregates those, and sorts for the rest.
    ok, x_ok, y_ok = F.col("ok"), F.when(F.col("ok"), F.col("x")), F.when(F.col("ok"), F.col("y"))
    stats = points.agg(F.count(F.lit(1)).alias("rows"), F.count(F.when(ok, 1)).alias("n"), F.min(x_ok).alias("x0"), F.max(x_ok).alias("x1"),
                       F.min_by(y_ok, x_ok).alias("y0"), F.max_by(y_ok, x_ok).alias("y1")).first()  # fmt: skip
    total, skipped = int(stats["n"]), int(stats["rows"] - stats["n"])
    points = points.where("ok")
    if total <= n or (method == "minmax-lttb" and total <= PRESELECT * n):  # few enough to bring as they are
        rows = points.select("x", "y").collect()
        xnum, ys = _arrays([(r["x"], r["y"]) for r in rows], is_time)
        order = np.argsort(xnum, kind="stable")
        xnum, ys = xnum[order], ys[order]
        picked = pick(xnum, ys, n, method)
        in_spark = False
        label = reduction_label(total, n, method)
    else:
        span, buckets = float(stats["x1"] - stats["x0"]), bucket_count(n, method)
        offset = (F.col("x") - F.lit(stats["x0"])).cast("double")
        bucket = F.least(F.floor(offset / F.lit(span) * F.lit(float(buckets))), F.lit(buckets - 1)) if span > 0 else F.lit(0)
        # Where a bucket's lowest (or highest) y occurs more than once, min_by picks any of them, numpy the first.
        extremes = points.groupBy(bucket.alias("bucket")).agg(F.min("y").alias("low"), F.min_by("x", "y").alias("low_x"),
                                                              F.max("y").alias("high"), F.max_by("x", "y").alias("high_x")).collect()  # fmt: skip
        found = {(stats["x0"], stats["y0"]), (stats["x1"], stats["y1"])}
        found |= {(r["low_x"], r["low"]) for r in extremes} | {(r["high_x"], r["high"]) for r in extremes}
        xnum, ys = _arrays(sorted(found), is_time)
        picked = pick(xnum, ys, n, "lttb") if method == "minmax-lttb" else None
        in_spark, label = True, LABELS[method]
    if picked is not None:
        xnum, ys = xnum[picked], ys[picked]
    xs = xnum.astype("datetime64[us]") if is_time else xnum
    return Reduced(xs, ys, total, skipped, label, in_spark=in_spark)


def count_bins(frame: Any, x: str, y: str, shape: tuple[int, int], limits: tuple[tuple[float, float], tuple[float, float]] | None) -> Binned:
    """`reduction.count_bins` for a Spark DataFrame: one groupBy on the bin indices, one row per non-empty bin."""
    F = importlib.import_module("pyspark.sql.functions")
    xcol, x_time = _number(frame, x)
    ycol, y_time = _number(frame, y)
    points = frame.select(xcol.cast("double").alias("x"), ycol.cast("double").alias("y"))
    points = points.select("x", "y", (_finite(F, F.col("x")) & _finite(F, F.col("y"))).alias("ok"))
    ok = F.col("ok")
    stats = points.agg(F.count(F.lit(1)).alias("rows"), F.count(F.when(ok, 1)).alias("n"), F.min(F.when(ok, F.col("x"))).alias("x0"),
                       F.max(F.when(ok, F.col("x"))).alias("x1"), F.min(F.when(ok, F.col("y"))).alias("y0"),
                       F.max(F.when(ok, F.col("y"))).alias("y1")).first()  # fmt: skip
    total = int(stats["n"])
    if limits is None:
        found = total > 0
        xlim = bin_range(np.array([stats["x0"], stats["x1"]], dtype=np.float64) if found else np.empty(0), None)
        ylim = bin_range(np.array([stats["y0"], stats["y1"]], dtype=np.float64) if found else np.empty(0), None)
    else:
        xlim, ylim = bin_range(np.empty(0), limits[0]), bin_range(np.empty(0), limits[1])
    inside = ok & F.col("x").between(*xlim) & F.col("y").between(*ylim)
    cells = points.where(inside).groupBy(_index(F, "x", xlim, shape[0]).alias("i"), _index(F, "y", ylim, shape[1]).alias("j")).count()
    counts = np.zeros(shape, dtype=np.int64)
    for row in cells.collect():
        counts[row["i"], row["j"]] = row["count"]
    unit = np.dtype("datetime64[us]")
    return Binned(counts, bin_edges(xlim, shape[0], unit if x_time else np.dtype(np.float64)),
                  bin_edges(ylim, shape[1], unit if y_time else np.dtype(np.float64)), total, int(stats["rows"]) - total, in_spark=True)  # fmt: skip


def _index(F: Any, name: str, limits: tuple[float, float], bins: int) -> Any:
    """reduction.py's `_index` as a Spark column: the same arithmetic in the same order, so the same bins."""
    return F.least(F.floor((F.col(name) - F.lit(limits[0])) / F.lit(limits[1] - limits[0]) * F.lit(float(bins))), F.lit(bins - 1))


def _number(frame: Any, name: str, *, times: bool = True) -> tuple[Any, bool]:
    """A column as numbers: doubles, or microseconds since 1970 of its wall time for dates and timestamps."""
    F = importlib.import_module("pyspark.sql.functions")
    columns = list(frame.columns)
    if name not in columns:
        raise PlottingError(f"the Spark DataFrame has no column {name!r}; its columns: {', '.join(columns)}")
    kind = frame.schema[name].dataType.typeName()
    if kind in SPARK_NUMBERS:
        return F.col(name).cast("double"), False
    if times and kind in SPARK_TIMES:  # as TIMESTAMP_NTZ: the wall time in the session's time zone, as show() prints it
        return F.unix_micros(F.col(name).cast("timestamp_ntz")), True
    wanted = "numbers, dates or timestamps" if times else "numbers"
    raise PlottingError(f"column {name!r} must hold {wanted}; it holds {kind}")


def _arrays(pairs: list[tuple[Any, Any]], is_time: bool) -> tuple[npt.NDArray[Any], Floats]:
    xs = np.array([p[0] for p in pairs], dtype=np.int64 if is_time else np.float64)
    return xs, np.array([p[1] for p in pairs], dtype=np.float64)


def _finite(F: Any, column: Any) -> Any:
    return column.isNotNull() & ~F.isnan(column) & (F.abs(column) != F.lit(float("inf")))
