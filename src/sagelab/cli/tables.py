"""The execution records as read-only commands see them, and their tables (printed with rich)."""

from __future__ import annotations

import time
from typing import Any

from sagelab.config import STATE_DIR, load_settings
from sagelab.engines.local import ExecutionRecord, Records, StepRecord
from sagelab.errors import ExecutionError


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


def executions_table(executions: list[ExecutionRecord]) -> Any:
    from rich.table import Table

    table = Table("Execution", "Pipeline", "Status", "Started", "Duration")
    for e in executions:
        table.add_row(e.id, e.pipeline, e.status, _when(e.started), _took(e.started, e.ended))
    return table


def steps_table(execution: ExecutionRecord, steps: list[StepRecord]) -> Any:
    from rich.table import Table

    title = f"{execution.pipeline} · {execution.id} · {execution.status}"
    if execution.failure_reason:
        title += f"\n{execution.failure_reason.splitlines()[0]}"
    table = Table("Step", "Type", "Status", "Started", "Duration", "Failure reason", title=title, title_justify="left")
    for s in steps:
        reason = (s.failure_reason or "").splitlines()[0] if s.failure_reason else ""
        table.add_row(s.name, s.type, s.status, _when(s.started), _took(s.started, s.ended), reason)
    return table


def print_table(table: Any) -> None:
    from rich.console import Console

    Console().print(table)
