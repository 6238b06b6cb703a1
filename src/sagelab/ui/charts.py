"""Small SVG charts drawn on the server: a metric across executions or versions, a parameter against a metric.

No chart library in the browser: the pages stay server-rendered, readable without JavaScript, and each
chart carries a title and a table of its values beside it for screen readers.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 560, 220, 44
COLOURS = ("#1a73e8", "#c5221f", "#188038", "#8430ce", "#e37400", "#007b83")


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]]) -> str:
    """Each series as a line over `labels` (executions or versions, in order); gaps where a value is missing."""
    values = [v for points in series.values() for v in points if v is not None]
    if not values or not labels:
        return ""
    low, high = _bounds(values)
    step = (WIDTH - 2 * PAD) / max(len(labels) - 1, 1)
    parts = [_frame(title, low, high)]
    for index, label in enumerate(labels):
        x = PAD + index * step
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 16}" font-size="10" text-anchor="middle" fill="#5f6368">{escape(label[:10])}</text>')
    for number, (name, points) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        placed = [(PAD + i * step, _y(v, low, high)) for i, v in enumerate(points) if v is not None]
        if len(placed) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(placed))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{escape(name)}: {v:g}</title></circle>'
                     for (x, y), v in zip(placed, [v for v in points if v is not None]))  # fmt: skip
        parts.append(f'<text x="{PAD + 4}" y="{14 + 13 * number + 16}" font-size="11" fill="{colour}">{escape(name)}</text>')
    return _svg(title, parts)


def scatter_chart(title: str, x_name: str, y_name: str, points: list[tuple[float, float, str]]) -> str:
    """`y_name` against `x_name`, a dot per (x, y, label)."""
    if not points:
        return ""
    x_low, x_high = _bounds([p[0] for p in points])
    y_low, y_high = _bounds([p[1] for p in points])
    parts = [_frame(title, y_low, y_high),
             f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle" fill="#3c4043">{escape(x_name)} '
             f"({x_low:g} – {x_high:g})</text>"]  # fmt: skip
    for x, y, label in points:
        cx = PAD + (x - x_low) / (x_high - x_low) * (WIDTH - 2 * PAD)
        parts.append(f'<circle cx="{cx:.1f}" cy="{_y(y, y_low, y_high):.1f}" r="4.5" fill="{COLOURS[0]}">'
                     f"<title>{escape(label)}: {escape(x_name)}={x:g}, {escape(y_name)}={y:g}</title></circle>")  # fmt: skip
    return _svg(title, parts)


def _bounds(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    return low, high


def _y(value: float, low: float, high: float) -> float:
    return HEIGHT - PAD - (value - low) / (high - low) * (HEIGHT - 2 * PAD)


def _frame(title: str, low: float, high: float) -> str:
    return (f'<rect x="{PAD}" y="{PAD / 2}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 1.5 * PAD}" fill="#ffffff" stroke="#dadce0"/>'
            f'<text x="{PAD - 4}" y="{_y(high, low, high) + 4:.1f}" font-size="10" text-anchor="end" fill="#5f6368">{high:.4g}</text>'
            f'<text x="{PAD - 4}" y="{_y(low, low, high) + 4:.1f}" font-size="10" text-anchor="end" fill="#5f6368">{low:.4g}</text>'
            f'<text x="{PAD}" y="14" font-size="12" font-weight="600" fill="#202124">{escape(title)}</text>')  # fmt: skip


def _svg(title: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
            f'aria-label="{escape(title)}" class="chart">' + "".join(parts) + "</svg>")  # fmt: skip
