"""The step graph as a Mermaid flowchart, for Markdown renderers that draw Mermaid blocks."""

from __future__ import annotations

from collections.abc import Mapping

from sagelab.definition import PipelineDefinition, dependencies
from sagelab.definition.graph import condition_parent

_CLASSES = {
    "Processing": "fill:#e8f0fe,stroke:#1a73e8",
    "Training": "fill:#f3e8fd,stroke:#8430ce",
    "Condition": "fill:#fef7e0,stroke:#e37400",
    "RegisterModel": "fill:#e6f4ea,stroke:#188038",
    "Fail": "fill:#fce8e6,stroke:#c5221f",
}
_STATUS_CLASSES = {
    "Succeeded": "fill:#e6f4ea,stroke:#137333,stroke-width:2px",
    "Failed": "fill:#fce8e6,stroke:#c5221f,stroke-width:2px",
    "Executing": "fill:#e8f0fe,stroke:#1967d2,stroke-width:2px",
    "Stopped": "fill:#fef7e0,stroke:#b06000,stroke-width:2px",
    "Skipped": "fill:#f1f3f4,stroke:#9aa0a6,stroke-dasharray:4 3",
    "NotStarted": "fill:#f1f3f4,stroke:#9aa0a6,stroke-dasharray:4 3",
}


def mermaid(definition: PipelineDefinition, statuses: Mapping[str, str] | None = None) -> str:
    """`flowchart LR` text: a node per step (its name and type), an edge per dependency,
    condition branches labelled if/else; with `statuses`, nodes are styled by status."""
    steps = list(definition.all_steps())
    ids = {step.name: f"s{index}" for index, step in enumerate(steps)}
    needs = dependencies(definition)
    lines = ["flowchart LR"]
    for step in steps:
        label = f"{step.name}<br/><small>{step.type}{' · ' + statuses[step.name] if statuses and step.name in statuses else ''}</small>"
        shape = ('{{"', '"}}') if step.type == "Condition" else ('["', '"]')
        lines.append(f"    {ids[step.name]}{shape[0]}{_text(label)}{shape[1]}")
    for step in steps:
        for source in sorted(needs[step.name], key=lambda name: list(ids).index(name) if name in ids else -1):
            if source not in ids:
                continue
            branch = step.branch[-1].rpartition(":")[2] if condition_parent(step) == source else ""
            arrow = "-- if -->" if branch == "if" else "-. else .->" if branch == "else" else "-->"
            lines.append(f"    {ids[source]} {arrow} {ids[step.name]}")
    styles = _STATUS_CLASSES if statuses else _CLASSES
    for key, style in styles.items():
        members = [ids[s.name] for s in steps if (statuses.get(s.name) if statuses else s.type) == key]
        if members:
            name = key.lower()
            lines.append(f"    classDef {name} {style}")
            lines.append(f"    class {','.join(members)} {name}")
    return "\n".join(lines) + "\n"


def _text(label: str) -> str:
    return label.replace('"', "#quot;")
