"""Whether a process is alive: records and endpoints use it to spot owners that died."""

from __future__ import annotations

import os


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
