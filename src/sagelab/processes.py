"""Whether a process is alive: records and endpoints use it to spot owners that died, and writers their leftovers."""

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
