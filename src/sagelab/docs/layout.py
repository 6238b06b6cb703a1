"""A layered (Sugiyama-style) left-to-right layout of a pipeline's step graph.

Steps sit in columns by their longest chain of dependencies; an edge that skips columns is
routed through invisible waypoints, one per column it crosses, so it bends around the steps in
between instead of crossing them. The order within a column is improved by barycenter sweeps,
then each column is placed near the mean height of its neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sagelab.definition import PipelineDefinition, dependencies
from sagelab.definition.graph import condition_parent, find_cycle
from sagelab.errors import DefinitionError, Problem

NODE_HEIGHT = 56.0
COLUMN_GAP = 72.0
RANK_GAP = 52.0  # between rows, top to bottom
ROW_GAP = 28.0
WAYPOINT_GAP = 14.0
MARGIN = 16.0
_CHAR_WIDTH = 8.6  # of a bold 14px sans-serif name, generously, since no font metrics are at hand
_CAPTION_CHAR_WIDTH = 7.0  # of the 12px caption


@dataclass(frozen=True)
class Box:
    """A step's place: top-left corner and size."""

    name: str
    type: str
    x: float
    y: float
    width: float
    height: float
    description: str | None = None


@dataclass(frozen=True)
class Route:
    """An edge from `source` to `target` through `points`; `kind` is "if" or "else" (a condition's
    branches), "needs", or "implied" when another path orders the two steps already."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    kind: str = "needs"


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    routes: list[Route]
    width: float
    height: float
    direction: str = "LR"


def layout(definition: PipelineDefinition, direction: str = "LR", captions: Mapping[str, str] | None = None) -> Layout:
    """Place every step of `definition`, condition branches included: "LR" flows left to right,
    "TB" top to bottom (narrower, for pages). Boxes are wide enough for each step's name and
    caption (the line under the name; the step type unless given)."""
    if direction not in ("LR", "TB"):
        raise ValueError(f"direction must be LR or TB, not {direction!r}")
    steps = list(definition.all_steps())
    needs = dependencies(definition)
    cycle = find_cycle(needs)
    if cycle:
        raise DefinitionError([Problem("/Steps", f"the steps depend on each other in a cycle: {' → '.join(cycle)}")])
    order = {step.name: index for index, step in enumerate(steps)}
    column: dict[str, int] = {}
    for name in _topological(needs, order):
        column[name] = 1 + max((column[n] for n in needs[name] if n in column), default=-1)

    # Waypoints: one per column an edge crosses. Names starting with "~" are never steps.
    edges = [(source, target) for target in order for source in sorted(needs[target], key=order.__getitem__) if source in order]
    chains: dict[tuple[str, str], list[str]] = {}
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for name in sorted(order, key=order.__getitem__):
        columns[column[name]].append(name)
    for source, target in edges:
        chain = [source]
        for between in range(column[source] + 1, column[target]):
            waypoint = f"~{source}>{target}>{between}"
            columns[between].append(waypoint)
            column[waypoint] = between
            chain.append(waypoint)
        chains[(source, target)] = [*chain, target]
    links: dict[str, set[str]] = {name: set() for column_names in columns for name in column_names}
    for chain in chains.values():
        for a, b in zip(chain, chain[1:]):
            links[a].add(b)
            links[b].add(a)

    _order_columns(columns, links)
    captions = captions or {}
    width = max(
        [150.0]
        + [_CHAR_WIDTH * len(step.name) + 40 for step in steps]
        + [_CAPTION_CHAR_WIDTH * len(captions.get(step.name, step.type)) + 36 for step in steps]
    )
    sideways = direction == "LR"
    along = width if sideways else NODE_HEIGHT  # a box's extent in the direction of flow
    gap = COLUMN_GAP if sideways else RANK_GAP
    across = {name: 0.0 if name.startswith("~") else (NODE_HEIGHT if sideways else width) for name in links}
    centres = _place_rows(columns, links, across)
    low = min((centres[n] - across[n] / 2 for n in centres), default=0.0)

    def start(name: str) -> float:
        return MARGIN + column[name] * (along + gap)

    def middle(name: str) -> float:
        return centres[name] - low + MARGIN

    boxes = {}
    for step in steps:
        if sideways:
            x, y = start(step.name), middle(step.name) - NODE_HEIGHT / 2
        else:
            x, y = middle(step.name) - width / 2, start(step.name)
        boxes[step.name] = Box(step.name, step.type, x, y, width, NODE_HEIGHT, step.description)
    routes = []
    for (source, target), chain in chains.items():
        points = [(start(source) + along, middle(source))]
        for waypoint in chain[1:-1]:  # straight across the column, so curves only bend between columns
            points.extend([(start(waypoint), middle(waypoint)), (start(waypoint) + along, middle(waypoint))])
        points.append((start(target), middle(target)))
        if not sideways:
            points = [(b, a) for a, b in points]
        kind = _kind(definition, source, target)
        if kind == "needs" and _implied(needs, source, target):
            kind = "implied"
        routes.append(Route(source, target, tuple(points), kind))
    length = MARGIN * 2 + len(columns) * along + max(len(columns) - 1, 0) * gap
    breadth = max((middle(n) + across[n] / 2 for n in centres), default=0.0) + MARGIN
    return Layout(boxes, routes, length, breadth, direction) if sideways else Layout(boxes, routes, breadth, length, direction)


def _implied(needs: Mapping[str, set[str]], source: str, target: str) -> bool:
    """True when `target` also waits for `source` through another step (the edge adds no order)."""
    pending = [n for n in needs[target] if n != source]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name == source:
            return True
        if name not in seen and name in needs:
            seen.add(name)
            pending.extend(needs[name])
    return False


def _kind(definition: PipelineDefinition, source: str, target: str) -> str:
    step = definition.step(target)
    if condition_parent(step) == source:
        return step.branch[-1].rpartition(":")[2] or "needs"
    return "needs"


def _topological(needs: Mapping[str, set[str]], order: Mapping[str, int]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()
    for start in sorted(needs, key=order.__getitem__):
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                done.append(name)
                continue
            if name in seen:
                continue
            seen.add(name)
            stack.append((name, True))
            stack.extend((n, False) for n in sorted(needs[name], key=order.__getitem__, reverse=True) if n in needs and n not in seen)
    return done


def _order_columns(columns: list[list[str]], links: Mapping[str, set[str]]) -> None:
    """Barycenter sweeps: sort each column by the mean position of its neighbours in the last one."""
    for sweep in range(8):
        indices = range(1, len(columns)) if sweep % 2 == 0 else range(len(columns) - 2, -1, -1)
        for index in indices:
            reference = columns[index - 1] if sweep % 2 == 0 else columns[index + 1]
            position = {name: i for i, name in enumerate(reference)}
            current = columns[index]

            def barycenter(name: str, current: list[str] = current, position: dict[str, int] = position) -> float:
                near = [position[n] for n in links[name] if n in position]
                return sum(near) / len(near) if near else float(current.index(name))

            current.sort(key=barycenter)


def _place_rows(columns: list[list[str]], links: Mapping[str, set[str]], heights: Mapping[str, float]) -> dict[str, float]:
    """Vertical centres: stacked at first, then pulled towards the neighbours' mean, keeping order and gaps."""
    centres: dict[str, float] = {}
    for names in columns:
        y = 0.0
        for name in names:
            centres[name] = y + heights[name] / 2
            y += heights[name] + _gap(name)
    for _ in range(12):
        for names in columns:
            wanted = []
            for name in names:
                near = [centres[n] for n in links[name]]
                wanted.append(sum(near) / len(near) if near else centres[name])
            placed: list[float] = []
            for i, name in enumerate(names):
                lowest = placed[-1] + (heights[names[i - 1]] + heights[name]) / 2 + _gap(names[i - 1]) if placed else float("-inf")
                placed.append(max(wanted[i], lowest))
            shift = sum(w - p for w, p in zip(wanted, placed)) / len(names) if names else 0.0
            for name, y in zip(names, placed):
                centres[name] = y + shift
    return centres


def _gap(name: str) -> float:
    return WAYPOINT_GAP if name.startswith("~") else ROW_GAP
