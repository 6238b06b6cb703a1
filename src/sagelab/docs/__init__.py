"""Pipeline documentation: the step graph as SVG, PNG and Mermaid, and mkdocs pages per step.

    from sagelab.definition.loader import load
    from sagelab.docs import graph_svg, write_pipeline_docs
    loaded = load("production/pipeline.py:pipeline")
    svg = graph_svg(loaded.definition, loaded.name)
    write_pipeline_docs(loaded, Path("docs"))      # docs/pipeline/index.md, graph.svg, a page per step

Everything here reads a parsed definition (and the local files its S3 URIs stand for); it
never runs a pipeline. Step statuses to overlay come from the caller.
"""

from __future__ import annotations

from pathlib import Path

from sagelab.definition import PipelineDefinition
from sagelab.docs.layout import Layout, layout
from sagelab.docs.mermaid import mermaid
from sagelab.docs.pages import Execution, overview, page_names, step_page, write_pipeline_docs
from sagelab.docs.site import SiteError, build_site, serve_site
from sagelab.docs.svg import GraphImageError, graph_png, graph_svg


def write_graph(definition: PipelineDefinition, path: Path, name: str = "", statuses: dict[str, str] | None = None) -> Path:
    """Write the step graph to `path`: .svg, or .png (with cairosvg), chosen by the suffix."""
    svg = graph_svg(definition, name, statuses)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        data = svg.encode()
    elif suffix == ".png":
        data = graph_png(svg)
    else:
        raise GraphImageError(f"{path}: the graph can be written as .svg or .png, not {suffix or 'a file without a suffix'}")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)  # never a half-written image where the old one was
    return path


__all__ = [
    "Execution",
    "GraphImageError",
    "Layout",
    "SiteError",
    "build_site",
    "graph_png",
    "graph_svg",
    "layout",
    "mermaid",
    "overview",
    "page_names",
    "serve_site",
    "step_page",
    "write_graph",
    "write_pipeline_docs",
]
