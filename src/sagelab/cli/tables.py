"""Tables of executions and steps, printed with rich."""

from __future__ import annotations

import time
from typing import Any

from sagelab.engines.local import ExecutionRecord, StepRecord


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
