"""Figures from reduced data, in matplotlib or plotly, with axis titles and a note saying what was reduced.

The libraries are imported when a figure is drawn, so the reductions work where neither is installed.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sagelab.errors import PlottingError
from sagelab.notebook.plotting.reduction import Binned, Reduced, index_of

Backend = Literal["matplotlib", "plotly"]


def check_backend(backend: str, ax: Any) -> None:
    """Refuse a wrong backend before the reduction, which may be a Spark job."""
    if backend not in ("matplotlib", "plotly"):
        raise PlottingError(f"backend must be 'matplotlib' or 'plotly'; got {backend!r}")
    if backend == "plotly" and ax is not None:
        raise PlottingError("ax is a matplotlib Axes; backend='plotly' draws a figure of its own")


def labels(data: Any, x: Any, y: Any) -> tuple[str | None, str | None]:
    """Axis titles: column names, or a pandas Series' name and its index's."""
    if isinstance(y, str):
        return (x if isinstance(x, str) else getattr(index_of(data), "name", None)), y
    if y is None:
        return getattr(index_of(data), "name", None), getattr(data, "name", None)
    return getattr(data, "name", None), getattr(y, "name", None)


def line_figure(series: Reduced, xlabel: str | None, ylabel: str | None, *, backend: Backend, ax: Any, title: str | None) -> Any:
    """`line`'s figure: the reduced series as a thin line, dates on x told concisely."""
    if backend == "plotly":
        go = _library("plotly.graph_objects", "plotly")
        figure = go.Figure(go.Scatter(x=series.x, y=series.y, mode="lines", line={"width": 1}, name=ylabel or "y"))
        return _plotly_labels(figure, xlabel, ylabel, title, series.note())
    axes = _axes(ax, (10, 4))
    axes.plot(series.x, series.y, linewidth=0.8)
    axes.margins(x=0)
    if series.x.dtype.kind == "M":
        dates = _library("matplotlib.dates", "matplotlib")
        locator = dates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    _matplotlib_labels(axes, xlabel, ylabel, title, series.note())
    return axes.figure


def scatter_figure(found: Binned, xlabel: str | None, ylabel: str | None, *, log: bool, backend: Backend, ax: Any, title: str | None) -> Any:
    """`scatter`'s figure: the bin counts as an image, empty bins blank, with a colour bar of points per bin."""
    shown = np.where(found.counts > 0, found.counts, np.nan).T  # rows are y, as images are
    if backend == "plotly":
        go = _library("plotly.graph_objects", "plotly")
        top = max(1, int(found.counts.max(initial=0)))
        ticks = (10 ** np.arange(int(np.log10(top)) + 1)).tolist()
        heatmap = go.Heatmap(x=_centres(found.xedges), y=_centres(found.yedges), z=np.log10(shown) if log else shown, customdata=shown,
                             colorscale="Viridis", hovertemplate="x %{x}<br>y %{y}<br>%{customdata} points<extra></extra>",
                             colorbar={"title": {"text": "points per bin"},
                                       **({"tickvals": np.log10(ticks), "ticktext": [f"{t:,}" for t in ticks]} if log else {})})  # fmt: skip
        return _plotly_labels(go.Figure(heatmap), xlabel, ylabel, title, found.note())
    axes = _axes(ax, (7, 5))
    colors = _library("matplotlib.colors", "matplotlib")
    top = max(1, int(found.counts.max(initial=0)))
    norm = colors.LogNorm(vmin=1, vmax=top) if log else colors.Normalize(vmin=0, vmax=top)
    mesh = axes.pcolormesh(found.xedges, found.yedges, np.ma.masked_invalid(shown), norm=norm, cmap="viridis")
    axes.figure.colorbar(mesh, ax=axes, label="points per bin")
    _matplotlib_labels(axes, xlabel, ylabel, title, found.note())
    return axes.figure


def _centres(edges: npt.NDArray[Any]) -> npt.NDArray[Any]:
    centres: npt.NDArray[Any] = edges[:-1] + (edges[1:] - edges[:-1]) / 2
    return centres


def _library(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PlottingError(f"backend={package!r} needs {package}, which is not installed here: pip install {package} "
                            "(or pip install 'sagelab[notebook]')") from None  # fmt: skip


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    """The given Axes, or those of a new Figure (not pyplot's: nothing accumulates in its figure list)."""
    figure = _library("matplotlib.figure", "matplotlib")
    return ax if ax is not None else figure.Figure(figsize=size, layout="constrained").subplots()


def _matplotlib_labels(axes: Any, xlabel: str | None, ylabel: str | None, title: str | None, note: str) -> None:
    if xlabel:
        axes.set_xlabel(str(xlabel))
    if ylabel:
        axes.set_ylabel(str(ylabel))
    if title:
        axes.set_title(title, loc="left")
    before = axes.get_title(loc="right")  # a second series on the same axes adds its note
    axes.set_title(f"{before}; {note}" if before else note, loc="right", fontsize="small", color="0.4")


def _plotly_labels(figure: Any, xlabel: str | None, ylabel: str | None, title: str | None, note: str) -> Any:
    figure.update_layout(title={"text": title}, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    figure.add_annotation(text=note, xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                          showarrow=False, font={"size": 11, "color": "#666"})  # fmt: skip
    return figure
