"""Plotting large data: the reductions (LTTB, min-max, 2-D bins) checked by hand and by their properties, the
Spark reductions against the numpy ones on the same data in a real local Spark, and figures written to PNG."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sagelab.errors import SagelabError
from sagelab.notebook.plotting import PlottingError, bin2d, downsample, line, scatter

pytest.importorskip("matplotlib", reason="the notebook extra is not installed")


def walk(points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random walk on random increasing x, with three spikes."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.uniform(0.5, 1.5, points))
    y = np.cumsum(rng.normal(size=points))
    y[[points // 7, points // 2, points - points // 5]] += [400.0, -650.0, 500.0]
    return x, y


def positions(of: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Where the values `of` are in the sorted, distinct `within`."""
    found = np.searchsorted(within, of)
    assert np.array_equal(within[found], of)
    return found


# LTTB


def test_lttb_picks_the_largest_triangle_not_the_largest_value() -> None:
    # Buckets {1, 2, 3} and {4, 5, 6}. First: a = (0, 0), next mean (5, 10/3); doubled areas 5/3, 25/3, 7.5 -> index 2,
    # though index 3 is higher. Second: a = (2, 3), next = the last point (7, 0); doubled areas 31, 1, 2 -> index 4.
    x = np.arange(8.0)
    y = np.array([0.0, 1.0, 3.0, 3.5, 8.0, 1.0, 1.0, 0.0])
    xs, ys = downsample(x, y, 4, "lttb")
    assert xs.tolist() == [0.0, 2.0, 4.0, 7.0] and ys.tolist() == [0.0, 3.0, 8.0, 0.0]


@pytest.mark.parametrize(("points", "n"), [(10, 3), (1000, 7), (10_007, 100), (200_000, 2000)])
def test_lttb_keeps_the_ends_and_one_point_from_each_bucket(points: int, n: int) -> None:
    x, y = walk(points, seed=points)
    xs, ys = downsample(x, y, n, "lttb")
    chosen = positions(xs, x)
    assert len(xs) == n and chosen[0] == 0 and chosen[-1] == points - 1
    assert np.array_equal(ys, y[chosen])
    # n - 2 buckets of (nearly) equal point count between the ends: bucket i is [1 + i(N-2)//(n-2), 1 + (i+1)(N-2)//(n-2))
    for i, index in enumerate(chosen[1:-1].tolist()):
        assert 1 + i * (points - 2) // (n - 2) <= index < 1 + (i + 1) * (points - 2) // (n - 2)


# Min-max and MinMaxLTTB


@pytest.mark.parametrize("n", [10, 400, 2000])
def test_minmax_keeps_the_extremes_of_every_x_bucket(n: int) -> None:
    x, y = walk(100_000)
    xs, ys = downsample(x, y, n, "minmax")
    assert len(xs) <= n and xs[0] == x[0] and xs[-1] == x[-1] and np.all(np.diff(xs) > 0)
    assert np.array_equal(ys, y[positions(xs, x)])
    buckets = (n - 2) // 2
    edges = np.linspace(x[0], x[-1], buckets + 1)
    kept = set(zip(xs.tolist(), ys.tolist()))
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (x >= low) & ((x < high) | (high == x[-1]))
        if not inside.any():
            continue
        bx, by = x[inside], y[inside]
        assert (bx[by.argmin()], by.min()) in kept and (bx[by.argmax()], by.max()) in kept


@pytest.mark.parametrize("method", ["minmax-lttb", "lttb", "minmax"])
def test_every_method_keeps_spikes_and_the_ends(method: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=1_000_000)
    spikes = [12_345, 400_000, 777_777]
    y[spikes] = [1e3, -1e3, 2e3]
    xs, ys = downsample(y, n=500, method=method)  # x is the position
    assert len(xs) <= 500 and {0, 999_999, *spikes} <= set(xs.tolist())


def test_minmax_lttb_is_lttb_on_the_minmax_points() -> None:
    x, y = walk(50_000)
    pre_x, pre_y = downsample(x, y, 2 * 2 * 100 + 2, "minmax")  # 2n buckets of min and max, and the ends
    assert np.array_equal(np.stack(downsample(x, y, 100)), np.stack(downsample(pre_x, pre_y, 100, "lttb")))
    few = x[:300], y[:300]  # up to 4n points: the min-max step is skipped
    assert np.array_equal(np.stack(downsample(*few, 100)), np.stack(downsample(*few, 100, "lttb")))


def test_a_short_series_comes_back_whole() -> None:
    x, y = walk(1500)
    for method in ("minmax-lttb", "lttb", "minmax"):
        xs, ys = downsample(x, y, 1500, method)
        assert np.array_equal(xs, x) and np.array_equal(ys, y)


def test_nan_inf_and_missing_are_skipped_and_counted() -> None:
    x, y = walk(10_000)
    y[[0, 5, 9999]] = np.nan
    y[7] = np.inf
    x[9] = np.nan
    xs, ys = downsample(x, y, 100)
    assert np.isfinite(xs).all() and np.isfinite(ys).all() and xs[0] == x[1] and xs[-1] == x[9998]
    figure = line(x, y, points=100)
    assert figure.axes[0].get_title(loc="right") == "9,995 points → 100 (MinMaxLTTB); 5 skipped (NaN, inf or missing)"
    values = pd.Series(pd.array([1.0, None, 3.0, 2.0], dtype="Float64"))  # pandas' nullable NA
    assert downsample(values)[1].tolist() == [1.0, 3.0, 2.0]
    empty = downsample(np.full(5, np.nan))
    assert len(empty[0]) == len(empty[1]) == 0


def test_x_out_of_order_is_sorted_first() -> None:
    x, y = walk(20_000)
    order = np.random.default_rng(5).permutation(len(x))
    assert np.array_equal(np.stack(downsample(x[order], y[order], 300)), np.stack(downsample(x, y, 300)))
    assert line(x[order], y[order], points=300).axes[0].get_title(loc="right").endswith("; x sorted")


def test_datetime_x_from_numpy_and_pandas() -> None:
    x, y = walk(30_000)
    t = np.datetime64("2026-03-01T00:00:00", "ns") + (x * 1e9).astype("timedelta64[ns]")
    t[3] = np.datetime64("NaT")
    ts, ys = downsample(t, y, 200)
    assert ts.dtype == np.dtype("datetime64[ns]") and len(ts) == 200 and not np.isnat(ts).any()
    assert set(ts.tolist()) <= set(t.tolist()) and ts[0] == t[0] and ts[-1] == t[-1]
    # a tz-aware pandas index is drawn in its own wall time, as pandas prints it
    series = pd.Series(y, index=pd.DatetimeIndex(t).tz_localize("Europe/Berlin"), name="price")
    ps, pys = downsample(series, n=200)
    assert np.array_equal(ps, ts.astype(ps.dtype)) and np.array_equal(pys, ys)


def test_a_pandas_frame_by_column_names() -> None:
    x, y = walk(5000)
    frame = pd.DataFrame({"t": x, "v": y})
    assert np.array_equal(np.stack(downsample(frame, x="t", y="v", n=100)), np.stack(downsample(x, y, 100)))
    axes = line(frame, x="t", y="v", points=100).axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("t", "v")
    with pytest.raises(PlottingError, match="no column 'value'; its columns: t, v"):
        line(frame, x="t", y="value")


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, y: downsample(x, y, 100, "fast"), "method must be one of 'minmax-lttb', 'lttb', 'minmax'; got 'fast'"),
    (lambda x, y: downsample(x, y, 3, "minmax"), "at least 4; got 3"),
    (lambda x, y: downsample(x, y[:50]), "one length"),
    (lambda x, y: downsample(x, y, x=x), "x is given twice"),
    (lambda x, y: downsample(np.array(["a", "b"])), "y must hold numbers or datetimes"),
    (lambda x, y: bin2d(x, y, bins=(10, 0)), "bins must be a positive integer"),
    (lambda x, y: bin2d(x, y, range=((1.0, 0.0), (0.0, 1.0))), "finite low <= high"),
    (lambda x, y: line(x, y, backend="bokeh"), "backend must be 'matplotlib' or 'plotly'"),
])  # fmt: skip
def test_bad_arguments_are_user_errors(call: Any, message: str) -> None:
    with pytest.raises(PlottingError, match=message) as raised:
        call(*walk(100))
    assert isinstance(raised.value, SagelabError)


# 2-D bins


def test_bin2d_counts_every_finite_point_as_histogram2d_does() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=300_000), rng.normal(size=300_000) * 3 + 1
    x[:50], y[50:80], x[80] = np.nan, np.inf, -np.inf
    counts, xedges, yedges = bin2d(x, y, bins=(40, 30))
    finite = np.isfinite(x) & np.isfinite(y)
    assert counts.shape == (40, 30) and counts.sum() == finite.sum() == 300_000 - 81
    expected, ex, ey = np.histogram2d(x[finite], y[finite], bins=(40, 30))
    assert np.array_equal(counts, expected) and np.allclose(xedges, ex) and np.allclose(yedges, ey)
    # a range: points outside it are not counted, as numpy leaves them out
    window = ((-1.0, 2.0), (0.0, 5.0))
    counts, _, _ = bin2d(x, y, bins=25, range=window)
    assert np.array_equal(counts, np.histogram2d(x[finite], y[finite], bins=25, range=window)[0])
    flat, fx, _ = bin2d(np.full(10, 2.0), np.arange(10.0), bins=4)  # one x: widened by half a unit, as numpy does
    assert fx[0] == 1.5 and fx[-1] == 2.5 and np.array_equal(flat, np.histogram2d(np.full(10, 2.0), np.arange(10.0), bins=4)[0])


# Figures


def test_figures_to_png(tmp_path: Path) -> None:
    x, y = walk(1_000_000)
    figure = line(x, y, title="a random walk with three spikes")
    axes = figure.axes[0]
    assert axes.get_title(loc="right") == "1,000,000 points → 2,000 (MinMaxLTTB)" and axes.get_title(loc="left") == "a random walk with three spikes"
    assert len(axes.lines[0].get_xdata()) == 2000 and max(axes.lines[0].get_ydata()) == y.max() and min(axes.lines[0].get_ydata()) == y.min()
    figure.savefig(tmp_path / "line.png")

    t = np.datetime64("2026-01-01T00:00:00", "us") + np.arange(len(y)) * np.timedelta64(10, "s")
    line(pd.DataFrame({"time": t, "value": y}), x="time", y="value").savefig(tmp_path / "line-datetime.png")

    rng = np.random.default_rng(1)
    a = rng.normal(size=2_000_000)
    b = 0.6 * a + rng.normal(scale=0.8, size=a.size)
    figure = scatter(a, b, bins=(200, 150))
    assert figure.axes[0].get_title(loc="right") == "2,000,000 points → 200×150 bins"
    mesh = figure.axes[0].collections[0]
    assert mesh.get_array().count() == np.count_nonzero(bin2d(a, b, bins=(200, 150))[0])  # empty bins are blank, the rest drawn
    figure.savefig(tmp_path / "scatter.png")

    from matplotlib.figure import Figure

    shared = Figure().subplots()
    assert line(x, y, ax=shared, points=100) is shared.figure
    line(x, y + 100, ax=shared, points=50, method="minmax")
    assert shared.get_title(loc="right") == "1,000,000 points → 100 (MinMaxLTTB); 1,000,000 points → 50 (MinMax)"
    for name in ("line.png", "line-datetime.png", "scatter.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotly_figures() -> None:
    pytest.importorskip("plotly", reason="plotly is not installed")
    x, y = walk(100_000)
    figure = line(x, y, points=1000, backend="plotly", title="walk")
    assert len(figure.data) == 1 and figure.data[0].type == "scatter" and len(figure.data[0].x) == 1000
    assert figure.layout.annotations[0].text == "100,000 points → 1,000 (MinMaxLTTB)" and figure.layout.title.text == "walk"
    figure = scatter(x, y, bins=(50, 40), backend="plotly")
    heatmap = figure.data[0]
    assert heatmap.type == "heatmap" and np.asarray(heatmap.z).shape == (40, 50)
    assert np.nansum(np.asarray(heatmap.customdata, dtype=float)) == 100_000
    with pytest.raises(PlottingError, match="ax is a matplotlib Axes"):
        line(x, y, backend="plotly", ax=object())


@pytest.mark.parametrize(("backend", "module"), [("matplotlib", "matplotlib.figure"), ("plotly", "plotly.graph_objects")])
def test_a_missing_library_says_what_to_install(backend: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what Python does for a module that cannot be imported
    with pytest.raises(PlottingError, match=f"^backend='{backend}' needs {backend}, which is not installed here: pip install {backend} "):
        line(np.arange(10.0), backend=backend)


# Spark: the reduction happens in Spark, and gives what numpy gives


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("CI has no Java: .ci/run installs it", pytrace=False)
        pytest.skip("no Java here (sagelab doctor says how to install it)")
    from pyspark.sql import SparkSession

    # The JVM this starts serves every later Spark session of the test run: started as sagelab starts it, with its UI on
    # loopback (tests/test_spark.py checks where the UI listens).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").getOrCreate())  # fmt: skip
    yield session
    session.stop()


def frame_of(spark: Any, x: np.ndarray, y: np.ndarray, *, nulls: bool = False) -> Any:
    """The points as a Spark DataFrame, rows shuffled; with `nulls`, NaN in y becomes null (Spark tells them apart)."""
    from pyspark.sql import functions as F

    order = np.random.default_rng(2).permutation(len(x))
    frame = spark.createDataFrame(pd.DataFrame({"x": x[order], "y": y[order]}))
    return frame.withColumn("y", F.when(~F.isnan("y"), F.col("y"))) if nulls else frame


def test_spark_reductions_equal_the_numpy_ones(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = walk(60_000, seed=4)
    y[[0, 100, 59_999]] = np.nan  # the first and last x among them
    y[200] = np.inf
    frame, with_nulls = frame_of(spark, x, y), frame_of(spark, x, y, nulls=True)
    monkeypatch.setattr(type(frame), "toPandas", lambda self: pytest.fail("the whole frame came to the driver"))
    # n = 100 and 1000: min-max in Spark (and LTTB here); 20,000: LTTB on the rows brought as they are; 100,000: every row
    for method, n in [("minmax-lttb", 100), ("minmax-lttb", 1000), ("minmax-lttb", 20_000), ("minmax", 100), ("minmax", 1000), ("minmax", 100_000)]:
        expected = np.stack(downsample(x, y, n, method))
        assert np.array_equal(np.stack(downsample(frame, x="x", y="y", n=n, method=method)), expected), (method, n)
    assert np.array_equal(np.stack(downsample(with_nulls, x="x", y="y", n=300)), np.stack(downsample(x, y, 300)))
    with pytest.raises(PlottingError, match="method='lttb' needs every point on the driver"):
        downsample(frame, x="x", y="y", method="lttb")
    with pytest.raises(PlottingError, match="no column 't'; its columns: x, y"):
        downsample(frame, x="t", y="y")


def test_spark_timestamps_are_drawn_in_their_wall_time(spark: Any) -> None:
    from pyspark.sql import functions as F

    x, y = walk(40_000, seed=6)  # ~40,000 s: across the night the clocks go back in Berlin (2026-10-25)
    t = np.datetime64("2026-10-24T18:00:00", "us") + (x * 1e6).astype("timedelta64[us]")
    expected_t, expected_y = downsample(t, y, 500)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")  # naive pandas times are read as Berlin wall times
    try:
        frame = spark.createDataFrame(pd.DataFrame({"t": t, "v": y}))
        for column in (F.col("t"), F.col("t").cast("timestamp_ntz")):
            ts, ys = downsample(frame.withColumn("t", column), x="t", y="v", n=500)
            assert ts.dtype == np.dtype("datetime64[us]") and np.array_equal(ts, expected_t) and np.array_equal(ys, expected_y)
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


def test_spark_bins_equal_the_numpy_ones(spark: Any) -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=50_000), rng.exponential(size=50_000)
    x[:30] = np.nan
    frame = frame_of(spark, x, y)
    for bins, window in [((40, 30), None), (25, ((-1.0, 1.5), (0.0, 2.0)))]:
        counts, xedges, yedges = bin2d(frame, x="x", y="y", bins=bins, range=window)
        expected = bin2d(x, y, bins=bins, range=window)
        assert np.array_equal(counts, expected[0]) and np.array_equal(xedges, expected[1]) and np.array_equal(yedges, expected[2])
    finite = np.isfinite(x)
    assert np.array_equal(bin2d(frame, x="x", y="y", bins=(40, 30))[0], np.histogram2d(x[finite], y[finite], bins=(40, 30))[0])


def test_spark_figures_to_png(spark: Any, tmp_path: Path) -> None:
    x, y = walk(200_000, seed=10)
    frame = frame_of(spark, x, y)
    figure = line(frame, x="x", y="y")
    assert figure.axes[0].get_title(loc="right") == "200,000 points → 2,000 (MinMaxLTTB, reduced in Spark)"
    assert (figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel()) == ("x", "y")
    figure.savefig(tmp_path / "spark-line.png")
    figure = scatter(frame, x="x", y="y", bins=(100, 80))
    assert figure.axes[0].get_title(loc="right") == "200,000 points → 100×80 bins in Spark"
    figure.savefig(tmp_path / "spark-scatter.png")
