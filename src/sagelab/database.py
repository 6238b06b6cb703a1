"""The SQLite files a project keeps (execution records, the model registry, local endpoints), opened one way.

Each is shared by threads of one run and by other sagelab processes, so it runs in WAL mode with
a 30-second busy timeout. Switching a new file to WAL takes it for itself and does not wait for
a busy one, so processes or steps that create the same file at once retry that step briefly.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sagelab.errors import SagelabError


def open_database(path: Path, schema: str, attempts: int = 100) -> sqlite3.Connection:
    """A connection to `path` in WAL mode with `schema` applied (its statements must be idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for attempt in range(attempts):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                db.close()
                raise SagelabError(f"{path} is locked by another process ({exc}); try again when it has finished") from None
            time.sleep(0.05)
    raise AssertionError("unreachable")  # the loop returns or raises
