"""Executions as read-only commands show them: their tables, and the lines saying what each step ran on (the run summary prints them too)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sagelab.api.model import Execution, Step
from sagelab.cli.output import Table
from sagelab.containers import sandbox
from sagelab.containers.environments.drift import PROPERTY, describe

if TYPE_CHECKING:
    from sagelab.engines.local import StepRecord, StepState


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _took(seconds: float | None) -> str:
    return f"{seconds:.2f}s" if seconds is not None else ""


def executions_table(executions: list[Execution]) -> Table:
    table = Table("Execution", "Pipeline", "Status", "Started", "Duration")
    for e in executions:
        table.add_row(e.id, e.pipeline, e.status, _when(e.started), _took(e.duration))
    return table


def steps_table(execution: Execution) -> Table:
    title = f"{execution.pipeline} · {execution.id} · {execution.status}"
    if execution.failure_reason:
        title += f"\n{execution.failure_reason.splitlines()[0]}"
    table = Table("Step", "Type", "Status", "Started", "Duration", "Failure reason", title=title)
    for s in execution.steps.values():
        if s.status == "NotStarted":
            continue
        reason = s.failure_reason.splitlines()[0] if s.failure_reason else ""
        table.add_row(s.name, s.type, s.status, _when(s.started), _took(s.duration), reason)
    return table


def environment_lines(steps: Iterable[StepState | StepRecord | Step]) -> list[str]:
    """What each step ran with against its image's packages, failed steps first; steps with the same line share it."""
    states = sorted(steps, key=lambda s: s.status != "Failed")
    known = {s.name: _known(s) for s in states}
    versions = [(name, properties[PROPERTY]) for name, properties in known.items() if PROPERTY in properties]
    lines = []
    if versions:
        steps_by_line: dict[str, list[str]] = {}
        for name, record in versions:
            steps_by_line.setdefault(describe(record), []).append(name)
        lines = ["Environments (what each step ran on, against its image):", *(f"  {', '.join(names)}: {line}" for line, names in steps_by_line.items())]
    return lines + _sandbox_lines(states, known)


def _known(step: StepState | StepRecord | Step) -> dict[str, Any]:
    """A step's properties at hand (a SageMaker step's are not fetched for this)."""
    return step.known_properties if isinstance(step, Step) else step.properties or {}


def _sandbox_lines(steps: list[StepState | StepRecord | Step], known: dict[str, dict[str, Any]]) -> list[str]:
    """How each step's process got its /opt/ml (sandbox modes); one line when every step had the same."""
    steps_by_mode: dict[str, list[str]] = {}
    for step in steps:
        mode = known[step.name].get(sandbox.PROPERTY)
        if mode in sandbox.GUARANTEES:
            steps_by_mode.setdefault(mode, []).append(step.name)
    if len(steps_by_mode) == 1:
        [mode] = steps_by_mode
        return [f"Sandbox: {sandbox.Sandbox(mode).describe()}"]
    return [f"Sandbox of {', '.join(names)}: {sandbox.Sandbox(mode).describe()}" for mode, names in steps_by_mode.items()]
