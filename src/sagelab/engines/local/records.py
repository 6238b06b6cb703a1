"""Execution records in SQLite (`.sagelab/sagelab.db`): what ran, with which values, and how it went.

Every change is its own committed transaction (WAL), so a run killed at any moment leaves
records that describe what had happened up to then; `mark_interrupted` later closes
executions whose process is gone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.database import open_database
from sagelab.errors import ExecutionError
from sagelab.processes import alive

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    parameters TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    failure_reason TEXT,
    owner_pid INTEGER,
    artifacts TEXT,
    writes_tracked INTEGER
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
    outputs TEXT,
    note TEXT,
    attempts INTEGER,
    PRIMARY KEY (execution_id, name)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    step TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    properties TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_by_key ON cache (key, created);
CREATE TABLE IF NOT EXISTS written (
    execution_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    PRIMARY KEY (execution_id, uri)
);
"""
# Columns added since the first release, added to older databases when they are opened.
_ADDED_COLUMNS = {"executions": ("owner_pid INTEGER", "artifacts TEXT", "writes_tracked INTEGER"), "steps": ("outputs TEXT", "note TEXT", "attempts INTEGER")}
_STEP_COLUMNS = "name, type, status, job_name, started, ended, properties, failure_reason, log_path, outputs, note, attempts"
_EXECUTION_COLUMNS = "id, pipeline, status, definition, parameters, started, ended, failure_reason, artifacts"


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
    artifacts: dict[str, str] = field(default_factory=dict)  # S3 URI → SHA-256 of the code or data uploaded there


@dataclass
class StepRecord:
    name: str
    type: str
    status: str
    job_name: str | None = None
    started: float | None = None
    ended: float | None = None
    properties: dict[str, Any] | None = None
    failure_reason: str | None = None
    log_path: str | None = None
    outputs: list[str] = field(default_factory=list)
    note: str | None = None  # e.g. why the step was or was not taken from the cache
    attempts: int = 0

    @property
    def reused_from(self) -> str | None:
        """The execution whose results this step took instead of running: a cache hit ("cached: reused from execution X")
        or a step a selective execution did not select ("reused from execution X (not selected)")."""
        _, found, rest = (self.note or "").partition("reused from execution ")
        return rest.split()[0] if found and rest else None


@dataclass(frozen=True)
class CacheEntry:
    execution_id: str
    properties: dict[str, Any]
    outputs: list[str]
    created: float



class Records:
    """One project's execution history, shared safely by concurrent runs."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path, _SCHEMA)
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def close(self) -> None:
        self._db.close()

    # -- executions ------------------------------------------------------------------------

    def create_execution(self, record: ExecutionRecord) -> None:
        self._db.execute(
            "INSERT INTO executions (id, pipeline, status, definition, parameters, started, ended, failure_reason, owner_pid, "
            "artifacts, writes_tracked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (record.id, record.pipeline, record.status, json.dumps(record.definition), json.dumps(record.parameters),
             record.started, record.ended, record.failure_reason, os.getpid(), json.dumps(record.artifacts)),
        )  # fmt: skip

    def reopen_execution(self, execution_id: str) -> None:
        """Mark an execution as running again, owned by this process (RetryPipelineExecution)."""
        self._db.execute(
            "UPDATE executions SET status = 'Executing', ended = NULL, failure_reason = NULL, owner_pid = ? WHERE id = ?",
            (os.getpid(), execution_id),
        )

    def finish_execution(self, execution_id: str, status: str, ended: float, failure_reason: str | None) -> None:
        self._db.execute(
            "UPDATE executions SET status = ?, ended = ?, failure_reason = ? WHERE id = ?",
            (status, ended, failure_reason, execution_id),
        )

    def mark_interrupted(self) -> list[str]:
        """Close the executions whose sagelab process died (killed, power loss): they are Interrupted."""
        rows = self._db.execute("SELECT id, owner_pid FROM executions WHERE status = 'Executing'").fetchall()
        interrupted = [execution_id for execution_id, pid in rows if not alive(pid)]
        for execution_id in interrupted:
            reason = f"interrupted: the sagelab process stopped before the execution ended; `sagelab retry {execution_id}` completes it"
            self.finish_execution(execution_id, "Interrupted", time.time(), reason)
            self._db.execute(
                "UPDATE steps SET status = 'Interrupted' WHERE execution_id = ? AND status = 'Executing'", (execution_id,)
            )
        return interrupted

    def executions(self, limit: int = 20, pipeline: str | None = None, offset: int = 0) -> list[ExecutionRecord]:
        """The newest executions (of `pipeline`), `offset` of them skipped."""
        query = f"SELECT {_EXECUTION_COLUMNS} FROM executions"
        args: tuple[Any, ...] = ()
        if pipeline:
            query += " WHERE pipeline = ?"
            args = (pipeline,)
        rows = self._db.execute(query + " ORDER BY started DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [_execution(row) for row in rows]

    def pipelines(self) -> list[tuple[str, int, float, str]]:
        """(pipeline, executions, newest start, newest status) for every pipeline that ran, newest first."""
        rows = self._db.execute(
            "SELECT e.pipeline, counted.n, e.started, e.status FROM executions e JOIN "
            "(SELECT pipeline, COUNT(*) AS n, MAX(started) AS newest FROM executions GROUP BY pipeline) counted "
            "ON e.pipeline = counted.pipeline AND e.started = counted.newest ORDER BY e.started DESC"
        ).fetchall()
        return [(str(r[0]), int(r[1]), float(r[2]), str(r[3])) for r in rows]

    def execution(self, execution_id: str) -> ExecutionRecord:
        """The execution whose id is or starts with `execution_id` ("latest" names the newest)."""
        if execution_id == "latest":
            rows = self._db.execute(f"SELECT {_EXECUTION_COLUMNS} FROM executions ORDER BY started DESC LIMIT 1").fetchall()
        else:
            pattern = execution_id.replace("%", "").replace("_", "") + "%"
            rows = self._db.execute(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id LIKE ? LIMIT 2", (pattern,)).fetchall()
        if not rows:
            raise ExecutionError(f"no execution {execution_id!r} in this project; `sagelab executions` lists them")
        if len(rows) > 1:
            raise ExecutionError(f"{execution_id!r} matches several executions; give more of the id")
        return _execution(rows[0])

    def latest_succeeded(self, pipeline: str) -> ExecutionRecord | None:
        rows = self._db.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE pipeline = ? AND status = 'Succeeded' ORDER BY started DESC LIMIT 1",
            (pipeline,),
        ).fetchall()
        return _execution(rows[0]) if rows else None

    def delete_execution(self, execution_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM steps WHERE execution_id = ?", (execution_id,))
            self._db.execute("DELETE FROM cache WHERE execution_id = ?", (execution_id,))
            self._db.execute("DELETE FROM written WHERE execution_id = ?", (execution_id,))
            self._db.execute("DELETE FROM executions WHERE id = ?", (execution_id,))

    # -- what executions wrote (what gc may delete) --------------------------------------

    def add_written(self, execution_id: str, uris: list[str]) -> None:
        """Record objects an execution wrote to the local store (its steps' outputs, what scripts PUT)."""
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO written (execution_id, uri) VALUES (?, ?)", [(execution_id, uri) for uri in uris])

    def written(self, execution_id: str) -> list[str]:
        rows = self._db.execute("SELECT uri FROM written WHERE execution_id = ? ORDER BY uri", (execution_id,)).fetchall()
        return [str(row[0]) for row in rows]

    def writes_recorded(self, execution_id: str) -> bool:
        """False for executions recorded before sagelab kept track of what they wrote (gc leaves their objects)."""
        row = self._db.execute("SELECT writes_tracked FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return bool(row and row[0])

    # -- steps -----------------------------------------------------------------------------

    def save_step(self, execution_id: str, step: StepRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO steps (execution_id, {_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (execution_id, step.name, step.type, step.status, step.job_name, step.started, step.ended,
             None if step.properties is None else json.dumps(step.properties, default=str), step.failure_reason,
             step.log_path, json.dumps(step.outputs), step.note, step.attempts),
        )  # fmt: skip

    def job_steps(self, step_type: str) -> list[tuple[str, StepRecord]]:
        """(execution id, step) of every step of `step_type` that was given a job name, in every execution, oldest first."""
        rows = self._db.execute(
            f"SELECT execution_id, {_STEP_COLUMNS} FROM steps WHERE type = ? AND job_name IS NOT NULL ORDER BY started, rowid", (step_type,)
        ).fetchall()
        return [(row[0], _step(row[1:])) for row in rows]

    def steps(self, execution_id: str) -> list[StepRecord]:
        rows = self._db.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE execution_id = ? ORDER BY started IS NULL, started, rowid", (execution_id,)
        ).fetchall()
        return [_step(row) for row in rows]

    # -- the step cache --------------------------------------------------------------------

    def cache_put(self, key: str, pipeline: str, step: str, execution_id: str, properties: dict[str, Any], outputs: list[str]) -> None:
        self._db.execute(
            "INSERT INTO cache VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, pipeline, step, execution_id, json.dumps(properties, default=str), json.dumps(outputs), time.time()),
        )

    def cache_get(self, key: str, newer_than: float) -> CacheEntry | None:
        row = self._db.execute(
            "SELECT execution_id, properties, outputs, created FROM cache WHERE key = ? AND created >= ? ORDER BY created DESC LIMIT 1",
            (key, newer_than),
        ).fetchone()
        return CacheEntry(row[0], json.loads(row[1]), json.loads(row[2]), row[3]) if row else None

    def cache_history(self, pipeline: str, step: str) -> list[tuple[str, float]]:
        """(key, created) of the step's earlier cacheable runs, newest first."""
        rows = self._db.execute(
            "SELECT key, created FROM cache WHERE pipeline = ? AND step = ? ORDER BY created DESC", (pipeline, step)
        ).fetchall()
        return [(row[0], row[1]) for row in rows]


def _step(row: tuple[Any, ...]) -> StepRecord:
    return StepRecord(name=row[0], type=row[1], status=row[2], job_name=row[3], started=row[4], ended=row[5],
                      properties=json.loads(row[6]) if row[6] else None, failure_reason=row[7], log_path=row[8],
                      outputs=json.loads(row[9] or "[]"), note=row[10], attempts=row[11] or 0)  # fmt: skip


def _execution(row: tuple[Any, ...]) -> ExecutionRecord:
    return ExecutionRecord(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6], row[7],
                           json.loads(row[8] or "{}"))  # fmt: skip
