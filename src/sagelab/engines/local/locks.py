"""The project lock between runs and `sagelab gc`: runs share it, gc takes it alone.

gc decides what is unused from the records; a run that started meanwhile could be reading or
writing exactly those objects. So every run holds `.sagelab/runs.lock` shared for as long as it
executes, and gc holds it exclusively: gc refuses while a run is live, and a run that starts
during gc waits for it to finish (seconds).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sagelab.errors import ExecutionError


def _open(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    return os.open(state_dir / "runs.lock", os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def running(state_dir: Path) -> Iterator[None]:
    """Held by a run while it executes; waits while gc works."""
    descriptor = _open(state_dir)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)


@contextmanager
def collecting(state_dir: Path) -> Iterator[None]:
    """Held by gc; refused while any run in the project is live."""
    descriptor = _open(state_dir)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExecutionError("a run is live in this project; gc removes nothing while runs may use the store. "
                                 "Run it again when the run has ended (sagelab executions)") from None  # fmt: skip
        yield
    finally:
        os.close(descriptor)
