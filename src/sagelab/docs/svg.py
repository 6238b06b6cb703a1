"""The step graph as an SVG image (and PNG, through cairosvg when it is installed)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from html import escape

from sagelab.definition import PipelineDefinition
from sagelab.docs.layout import Box, Route, layout
from sagelab.errors import SagelabError

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Helvetica, Arial, sans-serif"
# A colour per step type: the stripe on the left of each box.
TYPE_COLOURS = {
    "Processing": "#1a73e8",
    "Training": "#8430ce",
    "Condition": "#e37400",
    "RegisterModel": "#188038",
    "Model": "#188038",
    "Transform": "#007b83",
    "EndpointConfig": "#007b83",
    "Endpoint": "#007b83",
    "Fail": "#c5221f",
}
# Status → (fill, text colour, mark), as the CLI's colours.
STATUS_STYLES = {
    "Succeeded": ("#e6f4ea", "#137333", "✓"),
    "Failed": ("#fce8e6", "#c5221f", "✗"),
    "Executing": ("#e8f0fe", "#1967d2", "▶"),
    "Stopped": ("#fef7e0", "#b06000", "■"),
    "Skipped": ("#f1f3f4", "#5f6368", "–"),
    "NotStarted": ("#f1f3f4", "#5f6368", "–"),
    "Pending": ("#f1f3f4", "#5f6368", "…"),
}
# Edge kind → (colour, dashes). "implied": another path orders the two steps too; drawn lightly.
EDGE_STYLES = {"needs": ("#80868b", ""), "implied": ("#c4c7cc", ""), "if": ("#188038", ""), "else": ("#c5221f", "5 4")}


class GraphImageError(SagelabError):
    """A graph image cannot be written (unknown format, or PNG without cairosvg)."""


def graph_svg(definition: PipelineDefinition, name: str = "", statuses: Mapping[str, str] | None = None,
              direction: str = "LR") -> str:  # fmt: skip
    """The step graph of `definition` as a standalone SVG document, flowing left to right ("LR")
    or top to bottom ("TB"); with `statuses` (step name → status), each step is coloured by how it went."""
    statuses = statuses or {}
    captions = {step.name: _caption(step.type, statuses.get(step.name)) for step in definition.all_steps()}
    placed = layout(definition, direction, captions)
    title = f"Pipeline {name}: steps and what each waits for" if name else "Pipeline steps and what each waits for"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" font-family="{escape(FONT)}" role="img">',
        f"<title>{escape(title)}</title>",
        "<defs>",
        *(_marker(kind, colour) for kind, (colour, _) in EDGE_STYLES.items()),
        "</defs>",
        f'<rect width="{placed.width:.0f}" height="{placed.height:.0f}" fill="#ffffff"/>',
    ]
    parts.extend(_route(route, placed.direction == "LR") for route in placed.routes)
    parts.extend(_box(box, statuses.get(box.name), captions[box.name]) for box in placed.boxes.values())
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def graph_png(svg: str, scale: float = 2.0) -> bytes:
    """`svg` rendered to PNG by cairosvg (`pip install cairosvg`; it needs the system's libcairo)."""
    try:
        cairosvg = importlib.import_module("cairosvg")
    except (ImportError, OSError) as exc:  # OSError: the package is there but libcairo is not
        raise GraphImageError(f"PNG output needs cairosvg and libcairo ({exc}); write an .svg instead, or pip install cairosvg") from None
    png: bytes = cairosvg.svg2png(bytestring=svg.encode(), scale=scale)
    return png


def _marker(kind: str, colour: str) -> str:
    return (
        f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
    )


def _route(route: Route, sideways: bool) -> str:
    colour, dash = EDGE_STYLES.get(route.kind, EDGE_STYLES["needs"])
    (x, y), *rest = route.points
    path = [f"M{x:.1f},{y:.1f}"]
    for nx, ny in rest:
        if nx == x or ny == y:
            path.append(f"L{nx:.1f},{ny:.1f}")
        elif sideways:  # leave and arrive level, bending in between
            bend = (nx - x) / 2
            path.append(f"C{x + bend:.1f},{y:.1f} {nx - bend:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
        else:
            bend = (ny - y) / 2
            path.append(f"C{x:.1f},{y + bend:.1f} {nx:.1f},{ny - bend:.1f} {nx:.1f},{ny:.1f}")
        x, y = nx, ny
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    element = (
        f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.6"{dashes} '
        f'marker-end="url(#arrow-{route.kind if route.kind in EDGE_STYLES else "needs"})"/>'
    )
    if route.kind in ("if", "else"):
        (ax, ay), (bx, by) = route.points[-2], route.points[-1]
        lx, ly = (ax + bx) / 2, (ay + by) / 2
        element += (
            f'<rect x="{lx - 17:.1f}" y="{ly - 10:.1f}" width="34" height="18" rx="9" fill="#ffffff" stroke="{colour}"/>'
            f'<text x="{lx:.1f}" y="{ly + 3.5:.1f}" font-size="11" text-anchor="middle" fill="{colour}">{route.kind}</text>'
        )
    return element


def _caption(step_type: str, status: str | None) -> str:
    mark = STATUS_STYLES.get(status or "", ("", "", "•"))[2]
    return f"{step_type} · {mark} {status}" if status else step_type


def _box(box: Box, status: str | None, second: str) -> str:
    stripe = TYPE_COLOURS.get(box.type, "#5f6368")
    fill, colour, _ = STATUS_STYLES.get(status or "", ("#ffffff", "#5f6368", ""))
    tooltip = f"{box.name} ({box.type}{', ' + status if status else ''})" + (f": {box.description}" if box.description else "")
    return (
        f'<g data-step="{escape(box.name)}"><title>{escape(tooltip)}</title>'
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" rx="8" '
        f'fill="{fill}" stroke="#dadce0" stroke-width="1.2"/>'
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="6" height="{box.height:.1f}" rx="3" fill="{stripe}"/>'
        f'<text x="{box.x + 18:.1f}" y="{box.y + 24:.1f}" font-size="14" font-weight="600" fill="#202124">{escape(box.name)}</text>'
        f'<text x="{box.x + 18:.1f}" y="{box.y + 43:.1f}" font-size="12" fill="{colour}">{escape(second)}</text>'
        "</g>"
    )
