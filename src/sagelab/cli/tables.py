"""The execution records as read-only commands see them: their tables, and the lines saying what each step ran on (the run summary prints them too)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sagelab.cli.output import Table
from sagelab.config import STATE_DIR, load_settings
from sagelab.containers import sandbox
from sagelab.containers.environments.drift import PROPERTY, describe
from sagelab.engines.local import ExecutionRecord, Records, StepRecord
from sagelab.errors import ExecutionError

if TYPE_CHECKING:
    from sagelab.engines.local import StepState


def records() -> Records:
    """The project's execution records, for commands that read them: a folder with none gets no database file.

    Raises:
        ExecutionError: nothing has run in this project yet.
    """
    settings = load_settings()
    path = settings.state_dir / "sagelab.db"
    if not path.is_file():
        raise ExecutionError(f"no executions in {settings.root} yet (no {STATE_DIR}/sagelab.db): run a pipeline with `sagelab run PIPELINE`")
    store = Records(path)
    store.mark_interrupted()
    return store


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""


def _took(started: float | None, ended: float | None) -> str:
    if not started:
        return ""
    return f"{(ended or time.time()) - started:.2f}s"


def executions_table(executions: list[ExecutionRecord]) -> Table:
    table = Table("Execution", "Pipeline", "Status", "Started", "Duration")
    for e in executions:
        table.add_row(e.id, e.pipeline, e.status, _when(e.started), _took(e.started, e.ended))
    return table


def steps_table(execution: ExecutionRecord, steps: list[StepRecord]) -> Table:
    title = f"{execution.pipeline} · {execution.id} · {execution.status}"
    if execution.failure_reason:
        title += f"\n{execution.failure_reason.splitlines()[0]}"
    table = Table("Step", "Type", "Status", "Started", "Duration", "Failure reason", title=title)
    for s in steps:
        reason = (s.failure_reason or "").splitlines()[0] if s.failure_reason else ""
        table.add_row(s.name, s.type, s.status, _when(s.started), _took(s.started, s.ended), reason)
    return table


def environment_lines(steps: Iterable[StepState | StepRecord]) -> list[str]:
    """What each step ran with against its image's packages, failed steps first; steps with the same line share it."""
    states = sorted(steps, key=lambda s: s.status != "Failed")
    versions = [(s.name, s.properties[PROPERTY]) for s in states if s.properties and PROPERTY in s.properties]
    lines = []
    if versions:
        steps_by_line: dict[str, list[str]] = {}
        for name, record in versions:
            steps_by_line.setdefault(describe(record), []).append(name)
        lines = ["Environments (what each step ran on, against its image):", *(f"  {', '.join(names)}: {line}" for line, names in steps_by_line.items())]
    return lines + _sandbox_lines(states)


def _sandbox_lines(steps: list[StepState | StepRecord]) -> list[str]:
    """How each step's process got its /opt/ml (sandbox modes); one line when every step had the same."""
    steps_by_mode: dict[str, list[str]] = {}
    for step in steps:
        mode = (step.properties or {}).get(sandbox.PROPERTY)
        if mode in sandbox.GUARANTEES:
            steps_by_mode.setdefault(mode, []).append(step.name)
    if len(steps_by_mode) == 1:
        [mode] = steps_by_mode
        return [f"Sandbox: {sandbox.Sandbox(mode).describe()}"]
    return [f"Sandbox of {', '.join(names)}: {sandbox.Sandbox(mode).describe()}" for mode, names in steps_by_mode.items()]
