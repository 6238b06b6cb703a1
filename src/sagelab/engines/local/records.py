"""Execution records in SQLite (`.sagelab/sagelab.db`): what ran, with which values, and how it went."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.errors import ExecutionError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    parameters TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    failure_reason TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    job_name TEXT,
    started REAL,
    ended REAL,
    properties TEXT,
    failure_reason TEXT,
    log_path TEXT,
    PRIMARY KEY (execution_id, name)
);
"""


@dataclass
class ExecutionRecord:
    id: str
    pipeline: str
    status: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    started: float
    ended: float | None
    failure_reason: str | None


@dataclass
class StepRecord:
    name: str
    type: str
    status: str
    job_name: str | None
    started: float | None
    ended: float | None
    properties: dict[str, Any] | None
    failure_reason: str | None
    log_path: str | None


class Records:
    """One project's execution history. Writes happen on the engine's thread only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def create_execution(self, record: ExecutionRecord) -> None:
        self._db.execute(
            "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.pipeline,
                record.status,
                json.dumps(record.definition),
                json.dumps(record.parameters),
                record.started,
                record.ended,
                record.failure_reason,
            ),
        )

    def finish_execution(self, execution_id: str, status: str, ended: float, failure_reason: str | None) -> None:
        self._db.execute(
            "UPDATE executions SET status = ?, ended = ?, failure_reason = ? WHERE id = ?",
            (status, ended, failure_reason, execution_id),
        )

    def save_step(self, execution_id: str, step: StepRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                execution_id,
                step.name,
                step.type,
                step.status,
                step.job_name,
                step.started,
                step.ended,
                None if step.properties is None else json.dumps(step.properties, default=str),
                step.failure_reason,
                step.log_path,
            ),
        )

    def executions(self, limit: int = 20, pipeline: str | None = None) -> list[ExecutionRecord]:
        query = "SELECT * FROM executions"
        args: tuple[Any, ...] = ()
        if pipeline:
            query += " WHERE pipeline = ?"
            args = (pipeline,)
        rows = self._db.execute(query + " ORDER BY started DESC LIMIT ?", (*args, limit)).fetchall()
        return [_execution(row) for row in rows]

    def execution(self, execution_id: str) -> ExecutionRecord:
        """The execution whose id is or starts with `execution_id` ("latest" names the newest)."""
        if execution_id == "latest":
            rows = self._db.execute("SELECT * FROM executions ORDER BY started DESC LIMIT 1").fetchall()
        else:
            pattern = execution_id.replace("%", "").replace("_", "") + "%"
            rows = self._db.execute("SELECT * FROM executions WHERE id LIKE ? LIMIT 2", (pattern,)).fetchall()
        if not rows:
            raise ExecutionError(f"no execution {execution_id!r} in this project; `sagelab executions` lists them")
        if len(rows) > 1:
            raise ExecutionError(f"{execution_id!r} matches several executions; give more of the id")
        return _execution(rows[0])

    def steps(self, execution_id: str) -> list[StepRecord]:
        rows = self._db.execute(
            "SELECT name, type, status, job_name, started, ended, properties, failure_reason, log_path "
            "FROM steps WHERE execution_id = ? ORDER BY started IS NULL, started, rowid",
            (execution_id,),
        ).fetchall()
        return [
            StepRecord(
                name=row[0], type=row[1], status=row[2], job_name=row[3], started=row[4], ended=row[5],
                properties=json.loads(row[6]) if row[6] else None, failure_reason=row[7], log_path=row[8],
            )
            for row in rows
        ]


def _execution(row: tuple[Any, ...]) -> ExecutionRecord:
    return ExecutionRecord(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6], row[7])
