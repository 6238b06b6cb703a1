"""Plots of large data that reduce before they draw, so a notebook never sends millions of points to a renderer.

A series is thinned to a few thousand points that draw the same line: LTTB (largest triangle, three
buckets), min-max per x bucket (keeps every spike), or MinMaxLTTB, the default: min-max to about
4 points per point drawn, then LTTB on those (tsdownsample's and plotly-resampler's approach). A
scatter becomes a 2-D histogram drawn as an image. A Spark DataFrame is reduced in Spark (a groupBy
on x buckets or on bin indices) and only the reduced rows come to the driver. Each figure says what
was reduced and how; matplotlib and plotly are imported when a figure is drawn.

reduction.py holds the numpy reductions, spark.py the Spark ones, drawing.py the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sagelab.errors import PlottingError
from sagelab.notebook.plotting import drawing, reduction, spark
from sagelab.notebook.plotting.drawing import Backend
from sagelab.notebook.plotting.reduction import Binned, Floats, Method, Reduced

__all__ = ["Binned", "PlottingError", "Reduced", "bin2d", "downsample", "line", "scatter"]


def downsample(data: Any, y: Any = None, n: int = 2000, method: Method = "minmax-lttb", *, x: Any = None) -> tuple[npt.NDArray[Any], Floats]:
    """The at most `n` points of a series that `line` draws, as (x, y) arrays sorted by x.

    Takes what `line` takes: `downsample(x, y)`, `downsample(values)`, `downsample(frame, x="t", y="v")`
    with a pandas or Spark DataFrame (a Spark one is reduced in Spark). Points without a finite x and y
    are skipped; x out of order is sorted first (stably).
    """
    series = _series(data, y, x, n, method)
    return series.x, series.y


def bin2d(data: Any, y: Any = None, bins: int | tuple[int, int] = (400, 300), range: tuple[tuple[float, float], tuple[float, float]] | None = None,
          *, x: Any = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any]]:  # fmt: skip
    """Counts of points in a grid of bins, as numpy.histogram2d returns them: (counts, xedges, yedges).

    Bin `i` holds `edges[i] <= v < edges[i + 1]`, the last also its right edge; points outside
    `range` (default: the data's extent) and without a finite x and y are not counted. A Spark
    DataFrame (`bin2d(frame, x="a", y="b")`) is counted in Spark.
    """
    found = _bins(data, y, x, bins, range)
    return found.counts, found.xedges, found.yedges


def line(data: Any, y: Any = None, *, x: Any = None, points: int = 2000, method: Method = "minmax-lttb",
         backend: Backend = "matplotlib", ax: Any = None, title: str | None = None) -> Any:  # fmt: skip
    """A line plot of a series of any length, drawn from at most `points` of its points.

    Args:
        data: y values (x is their pandas index or position), or x values when `y` is given too, or
            a pandas or Spark DataFrame whose columns `x` and `y` name.
        points: how many points to draw, at most; a series with fewer is drawn whole.
        method: "minmax-lttb" (min-max, then LTTB), "lttb", or "minmax" (each x bucket's lowest and
            highest point). A Spark DataFrame takes "minmax-lttb" or "minmax", which reduce in Spark.
        backend: "matplotlib" (a Figure) or "plotly" (a plotly Figure).
        ax: matplotlib Axes to draw on; its figure is returned.

    Returns:
        The figure, whose note (top right) says how many points were reduced to how many, and how.

    Raises:
        PlottingError: a bad argument, a missing column, or the backend's library is not installed.

    Example: `line(df, x="time", y="price")`, `line(spark.table("ticks"), x="ts", y="bid")`.
    """
    drawing.check_backend(backend, ax)
    series = _series(data, y, x, points, method)
    xlabel, ylabel = drawing.labels(data, x, y)
    return drawing.line_figure(series, xlabel, ylabel, backend=backend, ax=ax, title=title)


def scatter(data: Any, y: Any = None, *, x: Any = None, bins: int | tuple[int, int] = (400, 300),
            range: tuple[tuple[float, float], tuple[float, float]] | None = None, log: bool = True,
            backend: Backend = "matplotlib", ax: Any = None, title: str | None = None) -> Any:  # fmt: skip
    """A scatter of any number of points, drawn as their density: a 2-D histogram image, not one marker each.

    Takes what `line` takes (`scatter(x, y)`, `scatter(frame, x="a", y="b")`, pandas or Spark);
    `bins` and `range` are `bin2d`'s. `log` colours counts on a log scale, so sparse regions stay
    visible beside dense ones. Empty bins are left blank. Returns a matplotlib or plotly figure.
    """
    drawing.check_backend(backend, ax)
    found = _bins(data, y, x, bins, range)
    xlabel, ylabel = drawing.labels(data, x, y)
    return drawing.scatter_figure(found, xlabel, ylabel, log=log, backend=backend, ax=ax, title=title)


def _series(data: Any, y: Any, x: Any, n: int, method: str) -> Reduced:
    """A series reduced where it is: in Spark for a Spark DataFrame, else in numpy."""
    points = reduction.check_points(n, method)
    if spark.is_spark(data):
        return spark.reduce_series(data, spark.column_name(x, "x"), spark.column_name(y, "y"), points, method)
    return reduction.reduce_series(data, y, x, points, method)


def _bins(data: Any, y: Any, x: Any, bins: int | tuple[int, int], limits: tuple[tuple[float, float], tuple[float, float]] | None) -> Binned:
    """Points counted in bins where they are: in Spark for a Spark DataFrame, else in numpy."""
    shape = reduction.check_bins(bins)
    if spark.is_spark(data):
        return spark.count_bins(data, spark.column_name(x, "x"), spark.column_name(y, "y"), shape, limits)
    return reduction.count_bins(data, y, x, shape, limits)
