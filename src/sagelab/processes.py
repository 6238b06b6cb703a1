"""Processes as sagelab watches them: whether one is alive (records and endpoints spot owners that died, writers their
leftovers), and how much memory a process and its children hold (a serverless endpoint's MemorySizeInMB)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def alive(pid: int | None) -> bool:
    """True while process `pid` exists (also when it belongs to another user)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned(target: Path) -> None:
    """Delete what killed writers of `target` left beside it: `.<name>.<pid>.….partial` files or folders whose process is gone."""
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        pid = partial.name[len(target.name) + 2 :].partition(".")[0]
        if pid.isdigit() and not alive(int(pid)):
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)


def tree_memory_mb(pid: int) -> float | None:
    """The memory process `pid` and its descendants hold, in MB (proportional set size, so pages forked workers share are
    counted once, as a container's memory limit counts them); None where /proc does not tell (macOS)."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").is_file():
        return None
    return sum(_memory_kb(proc / str(member)) for member in [pid, *descendants(pid)]) / 1024


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, theirs, and so on (none where /proc does not tell)."""
    proc, found, pending = Path("/proc"), [], [pid]
    while pending:
        children = _children(proc, pending.pop())
        found += children
        pending += children
    return found


def _children(proc: Path, pid: int) -> list[int]:
    """The child processes of `pid`: from its threads' `children` files, else (a kernel without them) from every process's parent."""
    found: list[int] = []
    try:
        tasks = list((proc / str(pid) / "task").glob("*/children"))
    except OSError:  # it ended while we looked
        return found
    if tasks:
        for task in tasks:
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue  # the thread ended while we looked
        return found
    for stat in proc.glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _memory_kb(folder: Path) -> float:
    """Pss from smaps_rollup (Linux 4.14+), else the resident size from status; 0 for a process that has ended."""
    for name, field in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in (folder / name).read_text().splitlines():
                if line.startswith(field):
                    return float(line.split()[1])
        except OSError:
            continue
    return 0.0
