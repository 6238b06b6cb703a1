"""Progress of the Spark jobs a notebook cell starts, shown in the cell itself (not only in the Spark UI).

`watch(session, show)` runs while a cell does: on local Spark it polls the status tracker four
times a second; on Spark Connect the server streams each operation's progress to a handler. Either
way `show` gets one line whenever it changes (`stage 3: 12/40 tasks, 4 running`) and a summary at
the end (`2 stages, 44 tasks in 1.8 s`), or nothing when the cell started no Spark job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

POLL = 0.25  # seconds between status-tracker reads on local Spark


@dataclass
class Stage:
    """What is known of one stage: its tasks, done and running."""

    stage_id: int
    tasks: int
    completed: int
    running: int = 0


class Tally:
    """The stages seen while a cell runs, and the line that shows them."""

    def __init__(self) -> None:
        self.stages: dict[int, Stage] = {}
        self.started = time.monotonic()

    def update(self, stages: list[Stage]) -> None:
        for stage in stages:
            self.stages[stage.stage_id] = stage

    def line(self, active: list[Stage]) -> str:
        """`stage 3: [#####.....] 12/40 tasks, 4 running` for each active stage."""
        parts = []
        for stage in active:
            filled = int(10 * stage.completed / stage.tasks) if stage.tasks else 0
            bar = "#" * filled + "." * (10 - filled)
            parts.append(f"stage {stage.stage_id}: [{bar}] {stage.completed}/{stage.tasks} tasks, {stage.running} running")
        return "Spark " + "; ".join(parts)

    def summary(self) -> str | None:
        if not self.stages:
            return None
        tasks = sum(stage.tasks for stage in self.stages.values())
        count = len(self.stages)
        return f"Spark: {count} stage{'s' if count != 1 else ''}, {tasks} task{'s' if tasks != 1 else ''} in {time.monotonic() - self.started:.1f} s"


@contextmanager
def watch(session: Any, show: Callable[[str], None]) -> Iterator[None]:
    """Show the progress of the Spark jobs run inside the block."""
    tally = Tally()
    if type(session).__module__.startswith("pyspark.sql.connect"):  # Spark Connect streams progress to a handler
        watched = _connect(session, tally, show)
    else:
        watched = _local(session, tally, show)
    with watched:
        yield
    summary = tally.summary()
    if summary:
        show(summary)


@contextmanager
def _local(session: Any, tally: Tally, show: Callable[[str], None]) -> Iterator[None]:
    tracker = session.sparkContext.statusTracker()
    done = threading.Event()
    last = ""

    def poll() -> None:
        nonlocal last
        while not done.wait(POLL):
            active = []
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    active.append(Stage(stage_id, info.numTasks, info.numCompletedTasks, info.numActiveTasks))
            tally.update(active)
            line = tally.line(active) if active else ""
            if line and line != last:
                show(line)
            last = line

    thread = threading.Thread(target=poll, name="sagelab-spark-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def _connect(session: Any, tally: Tally, show: Callable[[str], None]) -> Iterator[None]:
    def handler(stages: Any, inflight_tasks: int, operation_id: Any, done: bool) -> None:
        seen = [Stage(s.stage_id, s.num_tasks, s.num_completed_tasks) for s in stages or []]
        tally.update(seen)
        active = [s for s, raw in zip(seen, stages or []) if not raw.done]
        if active and not done:
            active[-1].running = inflight_tasks
            show(tally.line(active))

    session.registerProgressHandler(handler)
    try:
        yield
    finally:
        session.removeProgressHandler(handler)
