"""The live view of a run: a rich table on a terminal, one line per change elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sagelab.cli.tables import environment_lines
from sagelab.config import Settings
from sagelab.engines.local import Execution, StepState
from sagelab.engines.local.job import tail
from sagelab.engines.local.scheduler import Listener

STATUS_STYLE = {
    "Pending": "dim",
    "Executing": "cyan",
    "Succeeded": "green",
    "Failed": "bold red",
    "Stopped": "yellow",
    "Skipped": "dim",
    "NotStarted": "dim",
}


@contextmanager
def run_view(settings: Settings) -> Iterator[Listener]:
    """A listener for `LocalEngine.start` that shows progress, then prints the summary."""
    if sys.stdout.isatty():
        with _live(settings) as listener:
            yield listener
    else:
        yield _plain


def _plain(execution: Execution, state: StepState | None) -> None:
    if state is not None:
        if state.status in ("Executing", "Pending"):
            print(f"{state.name:<30} {state.status}", flush=True)
        else:
            took = f" in {state.ended - state.started:.2f}s" if state.started and state.ended else ""
            cached = " (cached)" if state.note and state.note.startswith("cached") else ""
            print(f"{state.name:<30} {state.status}{cached}{took}", flush=True)
            if state.failure_reason:
                print(_indent(state.failure_reason), flush=True)
        return
    print(_summary_text(execution), flush=True)


@contextmanager
def _live(settings: Settings) -> Iterator[Listener]:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    current: dict[str, Execution] = {}

    def render():  # type: ignore[no-untyped-def]
        execution = current.get("execution")
        return _table(execution) if execution else ""

    def listener(execution: Execution, state: StepState | None) -> None:
        current["execution"] = execution

    live = Live(get_renderable=render, console=console, refresh_per_second=8, transient=False)
    with live:
        yield listener
        live.refresh()
    if "execution" in current:
        console.print(_summary_text(current["execution"]), highlight=False, markup=False)


def _table(execution: Execution):  # type: ignore[no-untyped-def]
    """The live table; every text from a definition or a step is a rich `Text`, never read as markup (a log line may hold `[/red]`)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{execution.pipeline} · {execution.id}"), title_justify="left", expand=False)
    for column in ("Step", "Type", "Status", "Time", "Log"):
        table.add_column(column, no_wrap=column != "Log", overflow="ellipsis")
    now = time.time()
    for state in execution.steps.values():
        elapsed = ""
        if state.started:
            elapsed = f"{(state.ended or now) - state.started:.1f}s"
        last = tail(Path(state.log_path), 1) if state.log_path and state.status == "Executing" else ""
        if state.status == "Failed" and state.failure_reason:
            last = state.failure_reason.strip().splitlines()[-1]  # the script's own last words
        style = STATUS_STYLE.get(state.status, "")
        table.add_row(Text(state.name), Text(state.type), Text(state.status, style=style), elapsed, Text(last[-80:]))
    return table


def _summary_text(execution: Execution) -> str:
    took = (execution.ended or time.time()) - execution.started
    lines = [f"Execution {execution.id} of {execution.pipeline}: {execution.status} in {took:.2f}s"]
    if execution.failure_reason:
        lines.append(_indent(execution.failure_reason))
    notes = [(s.name, s.note) for s in execution.steps.values() if s.note]
    if notes:
        lines.append("Notes:")
        lines.extend(f"  {name}: {note}" for name, note in notes)
    lines.extend(environment_lines(execution.steps.values()))
    outputs = [(s.name, uri) for s in execution.steps.values() for uri in s.outputs]
    if outputs:
        lines.append("Outputs:")
        lines.extend(f"  {name}: {uri}" for name, uri in outputs)
    logs = {Path(s.log_path).parent for s in execution.steps.values() if s.log_path}
    for folder in logs:
        lines.append(f"Logs: {folder}  (sagelab logs {execution.id} [STEP])")
    if execution.status == "Failed":
        lines.append(f"Details: sagelab status {execution.id}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
