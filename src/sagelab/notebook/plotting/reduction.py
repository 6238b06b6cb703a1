"""The reductions in numpy (LTTB, min-max, 2-D bins), and the arrays they take from numpy, pandas or lists.

The Spark reductions (spark.py) repeat the bucket and bin arithmetic here, so both pick the same points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sagelab.errors import PlottingError

Method = Literal["minmax-lttb", "lttb", "minmax"]
Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]

LABELS = {"minmax-lttb": "MinMaxLTTB", "lttb": "LTTB", "minmax": "MinMax"}
PRESELECT = 4  # MinMaxLTTB's min-max step keeps up to 4 points per point drawn (tsdownsample's default ratio)


@dataclass(frozen=True)
class Reduced:
    """A series ready to draw, and what was done to get it (for the figure's note)."""

    x: npt.NDArray[Any]  # numbers, or datetime64
    y: Floats
    total: int  # points with a finite x and y
    skipped: int  # rows without one (NaN, inf, NaT, null)
    method: str | None  # the reduction's label; None when every point is drawn
    in_spark: bool = False
    sorted: bool = False

    def note(self) -> str:
        text = f"{self.total:,} points → {len(self.y):,} ({self.method}{', reduced in Spark' if self.in_spark else ''})" if self.method else (
            f"{self.total:,} points, all drawn")  # fmt: skip
        return text + _aside(self.skipped) + ("; x sorted" if self.sorted else "")


@dataclass(frozen=True)
class Binned:
    """A 2-D histogram ready to draw, and what went into it."""

    counts: npt.NDArray[np.int64]  # shape (x bins, y bins), as numpy.histogram2d's
    xedges: npt.NDArray[Any]
    yedges: npt.NDArray[Any]
    total: int
    skipped: int
    in_spark: bool = False

    def note(self) -> str:
        inside = int(self.counts.sum())
        shape = f"{self.counts.shape[0]}×{self.counts.shape[1]} bins"
        text = f"{self.total:,} points → {shape}{' in Spark' if self.in_spark else ''}"
        if inside < self.total:
            text += f"; {self.total - inside:,} outside the range"
        return text + _aside(self.skipped)


def _aside(skipped: int) -> str:
    return f"; {skipped:,} skipped (NaN, inf or missing)" if skipped else ""


# Reducing a series


def check_points(n: int, method: str) -> int:
    """The number of points to draw, checked against the method (checked before a Spark job starts)."""
    if method not in LABELS:
        raise PlottingError(f"method must be one of {', '.join(map(repr, LABELS))}; got {method!r}")
    least = 4 if method == "minmax" else 3
    if not isinstance(n, (int, np.integer)) or n < least:
        raise PlottingError(f"the number of points for method={method!r} must be an integer of at least {least}; got {n!r}")
    return int(n)


def reduce_series(data: Any, y: Any, x: Any, n: int, method: str) -> Reduced:
    """The points of a series to draw: finite ones only, sorted by x, then picked by `method`."""
    xs, ys = _arrays(data, x, y)
    if ys.dtype.kind in "Mm":
        raise PlottingError("y must hold numbers; got datetimes (put them on x)")
    xnum = xs.view(np.int64) if xs.dtype.kind in "Mm" else xs
    ok = (~np.isnat(xs) if xs.dtype.kind in "Mm" else np.isfinite(xs)) & np.isfinite(ys)
    skipped = len(ys) - int(np.count_nonzero(ok))
    if skipped:
        xs, xnum, ys = xs[ok], xnum[ok], ys[ok]
    unsorted = bool(np.any(xnum[1:] < xnum[:-1]))
    if unsorted:  # a line through x out of order is a scribble; sorting keeps equal x in their order
        order = np.argsort(xnum, kind="stable")
        xs, xnum, ys = xs[order], xnum[order], ys[order]
    picked = pick(xnum, ys, n, method)
    if picked is not None:
        xs, ys = xs[picked], ys[picked]
    return Reduced(xs, ys, len(ok) - skipped, skipped, reduction_label(len(ok) - skipped, n, method), sorted=unsorted)


def pick(xnum: npt.NDArray[Any], y: Floats, n: int, method: str) -> Indices | None:
    """Indices of the points to draw, from a series sorted by x; None to draw them all."""
    if len(y) <= n:
        return None
    if method == "lttb" or (method == "minmax-lttb" and len(y) <= PRESELECT * n):
        return _lttb(_offsets(xnum), y, n)
    kept = _minmax(xnum, y, bucket_count(n, method))
    then = pick(xnum[kept], y[kept], n, "lttb") if method == "minmax-lttb" else None
    return kept if then is None else kept[then]


def reduction_label(total: int, n: int, method: str) -> str | None:
    """What `pick` does to `total` points: nothing, LTTB alone (few enough to skip min-max), or the method."""
    if total <= n:
        return None
    return LABELS["lttb"] if method == "minmax-lttb" and total <= PRESELECT * n else LABELS[method]


def bucket_count(n: int, method: str) -> int:
    """x buckets of the min-max step: 2 points each, with the first and last points beside them."""
    return PRESELECT * n // 2 if method == "minmax-lttb" else (n - 2) // 2


def _offsets(xnum: npt.NDArray[Any]) -> Floats:
    """x as float distances from the first x (exact integer differences for datetimes)."""
    offsets: Floats = (xnum - xnum[0]).astype(np.float64)
    return offsets


def _minmax(xnum: npt.NDArray[Any], y: Floats, buckets: int) -> Indices:
    """The first and last point, and each equal-width x bucket's lowest and highest point (the first of equals)."""
    starts = _bucket_starts(xnum, buckets)
    ends = np.append(starts[1:], len(y)).tolist()
    kept = [0, len(y) - 1]
    for start, end in zip(starts.tolist(), ends):  # a few thousand buckets; argmin/argmax are vectorised within each
        run = y[start:end]
        kept += [start + int(run.argmin()), start + int(run.argmax())]
    return np.unique(np.array(kept, dtype=np.intp))


def _bucket_starts(xnum: npt.NDArray[Any], buckets: int) -> Indices:
    """Where each non-empty bucket starts in x sorted: a binary search per bucket for the first point whose
    floor((x - x0) / span * buckets) reaches it. That is the Spark reduction's arithmetic, so both find the same
    buckets, and the search reads ~25 points a bucket instead of making arrays the size of the data."""
    size, x0 = len(xnum), xnum[0]
    span = float(xnum[-1] - x0)
    if not span > 0:
        return np.zeros(1, dtype=np.intp)
    wanted = np.arange(1, buckets)
    low, high = np.zeros(buckets - 1, dtype=np.intp), np.full(buckets - 1, size, dtype=np.intp)
    while np.any(searching := low < high):
        middle = (low + high) // 2
        reached = np.floor((xnum[np.minimum(middle, size - 1)] - x0).astype(np.float64) / span * buckets) >= wanted
        high = np.where(searching & reached, middle, high)
        low = np.where(searching & ~reached, middle + 1, low)
    return np.unique(np.append(0, low[low < size]))


def _lttb(x: Floats, y: Floats, n: int) -> Indices:
    """Largest-Triangle-Three-Buckets (Steinarsson 2013): the first and last points, and from each of
    n - 2 buckets of equal point count the one making the largest triangle with the point chosen
    before it and the mean of the next bucket."""
    size = len(y)
    bounds = 1 + np.arange(n - 1) * (size - 2) // (n - 2)  # bucket i is [bounds[i], bounds[i + 1]); bounds[-1] is the last point
    after = bounds[1:]  # where the bucket after each bucket starts; after the last bucket comes the last point
    lengths = np.diff(np.append(after, size))
    mean_x = (np.add.reduceat(x, after) / lengths).tolist()
    mean_y = (np.add.reduceat(y, after) / lengths).tolist()
    edges = bounds.tolist()
    chosen = np.empty(n, dtype=np.intp)
    chosen[0], chosen[-1] = 0, size - 1
    a = 0
    for i in range(n - 2):  # each choice depends on the last: one vectorised step per bucket
        start, end = edges[i], edges[i + 1]
        ax, ay = float(x[a]), float(y[a])
        area = np.abs((ax - mean_x[i]) * (y[start:end] - ay) - (ax - x[start:end]) * (mean_y[i] - ay))
        a = start + int(area.argmax())
        chosen[i + 1] = a
    return chosen


# Binning


def check_bins(bins: int | tuple[int, int]) -> tuple[int, int]:
    """The grid's shape, (x bins, y bins), from one number or two (checked before a Spark job starts)."""
    shape = (bins, bins) if isinstance(bins, (int, np.integer)) else tuple(bins)
    if len(shape) != 2 or not all(isinstance(b, (int, np.integer)) and b >= 1 for b in shape):
        raise PlottingError(f"bins must be a positive integer or two of them, (x bins, y bins); got {bins!r}")
    return (int(shape[0]), int(shape[1]))


def count_bins(data: Any, y: Any, x: Any, shape: tuple[int, int], limits: tuple[tuple[float, float], tuple[float, float]] | None) -> Binned:
    """The points' counts in a grid of `shape` bins over `limits` (default: the data's extent)."""
    xs, ys = _arrays(data, x, y)
    xv, yv = _plain(xs), _plain(ys)
    ok = np.isfinite(xv) & np.isfinite(yv)
    skipped = len(xv) - int(np.count_nonzero(ok))
    if skipped:
        xv, yv = xv[ok], yv[ok]
    xlim, ylim = (bin_range(xv, None), bin_range(yv, None)) if limits is None else (bin_range(xv, limits[0]), bin_range(yv, limits[1]))
    if limits is not None:
        inside = (xv >= xlim[0]) & (xv <= xlim[1]) & (yv >= ylim[0]) & (yv <= ylim[1])
        xv, yv = xv[inside], yv[inside]
    flat = _index(xv, xlim, shape[0])
    flat *= shape[1]
    flat += _index(yv, ylim, shape[1])
    counts = np.bincount(flat.astype(np.intp), minlength=shape[0] * shape[1]).astype(np.int64).reshape(shape)
    return Binned(counts, bin_edges(xlim, shape[0], xs.dtype), bin_edges(ylim, shape[1], ys.dtype), len(ok) - skipped, skipped)


def _plain(values: npt.NDArray[Any]) -> Floats:
    """Numbers to bin: datetimes as float counts of their unit, NaN where missing."""
    if values.dtype.kind in "Mm":
        return np.where(np.isnat(values), np.nan, values.view(np.int64).astype(np.float64))
    return values.astype(np.float64, copy=False)


def bin_range(values: Floats, given: tuple[float, float] | None) -> tuple[float, float]:
    """The range to bin over: the given one, or the data's, widened by half a unit when flat (as numpy does)."""
    lo, hi = (float(given[0]), float(given[1])) if given is not None else (
        (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0))  # fmt: skip
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise PlottingError(f"a range must be (low, high) with finite low <= high; got {given!r}")
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _index(values: Floats, limits: tuple[float, float], bins: int) -> Floats:
    """Each value's bin as a float, floor((v - low) / (high - low) * bins), the high end in the last bin; Spark
    computes the same. In place after the first step: at 10 M points each array of the data's size costs ~20 ms."""
    scaled = values - limits[0]
    scaled /= limits[1] - limits[0]
    scaled *= bins
    return np.minimum(np.floor(scaled, out=scaled), bins - 1, out=scaled)


def bin_edges(limits: tuple[float, float], bins: int, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    edges = np.linspace(limits[0], limits[1], bins + 1)
    return np.round(edges).astype(np.int64).view(dtype) if dtype.kind in "Mm" else edges


# Inputs


def _arrays(data: Any, x: Any, y: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(x, y) as numpy arrays from any of the forms `line` takes; x is the pandas index or the position when not given."""
    if hasattr(data, "columns") and hasattr(data, "index"):  # a pandas DataFrame
        if not isinstance(y, str) or not (x is None or isinstance(x, str)):
            raise PlottingError("with a DataFrame, x and y must be column names: line(df, x='t', y='v')")
        missing = [name for name in (x, y) if name is not None and name not in data.columns]
        if missing:
            raise PlottingError(f"the DataFrame has no column {missing[0]!r}; its columns: {', '.join(map(str, data.columns))}")
        xv, yv = (data.index if x is None else data[x]), data[y]
    elif y is None:
        xv, yv = (index_of(data) if x is None else x), data
    elif x is not None:
        raise PlottingError("x is given twice: pass line(x, y) or line(y, x=x), not both")
    else:
        xv, yv = data, y
    ys = _values(yv, "y")
    xs = np.arange(len(ys)) if xv is None else _values(xv, "x")
    if xs.shape != ys.shape or ys.ndim != 1:
        raise PlottingError(f"x and y must be one-dimensional and of one length; got shapes {xs.shape} and {ys.shape}")
    return xs, ys


def index_of(data: Any) -> Any:
    """A pandas object's index (the x of a Series or DataFrame drawn by itself), else None."""
    return data.index if hasattr(data, "to_numpy") and hasattr(data, "index") else None


def _values(values: Any, what: str) -> npt.NDArray[Any]:
    """Floats (NaN where missing) or datetime64 (NaT where missing) from numpy, pandas or a list."""
    dtype = getattr(values, "dtype", None)
    if getattr(dtype, "tz", None) is not None:  # tz-aware pandas: its wall time, as pandas prints it
        values = values.dt.tz_localize(None) if hasattr(values, "dt") else values.tz_localize(None)
    elif hasattr(values, "to_numpy") and getattr(dtype, "kind", None) in tuple("biuf"):  # nullable pandas dtypes: NA becomes NaN
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    array = np.asarray(values)
    if array.dtype.kind in "Mm":
        return array
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False)
    raise PlottingError(f"{what} must hold numbers or datetimes; got {array.dtype} values (pandas.to_datetime or .astype(float) converts them)")
