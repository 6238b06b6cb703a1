"""The step graph: which steps each step waits for, and cycle detection."""

from __future__ import annotations

from collections.abc import Iterator

from sagelab.definition.expressions import Reference, references
from sagelab.definition.model import CHECK_SETTINGS, CHECK_STEP_TYPES, PipelineDefinition, Step


def step_references(step: Step) -> Iterator[Reference | tuple[str, str]]:
    """The expressions of one step; a condition's branch steps are steps of their own."""
    arguments = {k: v for k, v in step.arguments.items() if not (step.type == "Condition" and k in ("IfSteps", "ElseSteps"))}
    settings = {k: arguments.pop(k) for k in CHECK_SETTINGS if k in arguments} if step.type in CHECK_STEP_TYPES else {}
    yield from references(arguments, f"{step.pointer}/Arguments")
    yield from references(settings, step.pointer)  # a check step's settings sit beside its Arguments


def condition_parent(step: Step) -> str | None:
    """The condition step whose branch holds `step`, if any."""
    return step.branch[-1].rpartition(":")[0] if step.branch else None


def dependencies(definition: PipelineDefinition) -> dict[str, set[str]]:
    """Step name → the steps it waits for: property references, DependsOn, and its condition."""
    graph: dict[str, set[str]] = {}
    for step in definition.all_steps():
        needs = {ref.name for ref in step_references(step) if isinstance(ref, Reference) and ref.kind == "Steps"}
        needs.update(step.depends_on)
        parent = condition_parent(step)
        if parent:
            needs.add(parent)
        needs.discard(step.name)
        graph[step.name] = needs
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One dependency cycle as `[a, b, ..., a]`, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for needed in sorted(graph.get(node, ())):
            if needed not in graph:
                continue
            if state.get(needed) == 1:
                return path[path.index(needed) :] + [needed]
            if needed not in state and (cycle := visit(needed)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None
