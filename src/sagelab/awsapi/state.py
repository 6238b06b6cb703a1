"""What the local API keeps beside the project's execution records and registry: `.sagelab/api.db`.

The records (`sagelab.db`) say what ran and the registry (`registry.db`) what was registered; this file
holds what only the API knows: pipelines as CreatePipeline/UpdatePipeline left them (each definition
version), pipelines deleted, and the display name, description and client token an execution was
started with. Every write is one SQLite transaction, so a crash never leaves half a pipeline.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.database import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT PRIMARY KEY,
    display_name TEXT,
    description TEXT,
    role_arn TEXT,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    parallelism INTEGER,
    tags TEXT NOT NULL,
    client_token TEXT
);
CREATE TABLE IF NOT EXISTS pipeline_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS deleted_pipelines (
    name TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    display_name TEXT,
    description TEXT,
    client_token TEXT,
    version INTEGER
);
CREATE INDEX IF NOT EXISTS executions_by_token ON executions (pipeline, client_token);
"""


@dataclass(frozen=True)
class PipelineRow:
    """A pipeline as CreatePipeline and UpdatePipeline left it."""

    name: str
    definition: str
    role_arn: str
    created: float
    modified: float
    version: int = 1
    display_name: str | None = None
    description: str | None = None
    parallelism: int | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    client_token: str | None = None


@dataclass(frozen=True)
class ExecutionRow:
    """What StartPipelineExecution was given beyond what the execution records keep."""

    id: str
    pipeline: str
    display_name: str | None = None
    description: str | None = None
    client_token: str | None = None
    version: int | None = None


_PIPELINE_COLUMNS = "name, definition, role_arn, created, modified, version, display_name, description, parallelism, tags, client_token"


class State:
    """`.sagelab/api.db`, shared by the server's threads (one connection, one lock)."""

    def __init__(self, state_dir: Path) -> None:
        self._db = open_database(state_dir / "api.db", _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- pipelines -------------------------------------------------------------------------

    def pipeline(self, name: str) -> PipelineRow | None:
        rows = self._rows(f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE name = ?", (name,))
        return _pipeline(rows[0]) if rows else None

    def pipelines(self) -> list[PipelineRow]:
        return [_pipeline(row) for row in self._rows(f"SELECT {_PIPELINE_COLUMNS} FROM pipelines")]

    def create_pipeline(self, row: PipelineRow) -> bool:
        """Add a pipeline (version 1 of its definition); False if one of that name exists."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"INSERT INTO pipelines ({_PIPELINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (row.name, row.definition, row.role_arn, row.created, row.modified, row.version, row.display_name,
                                  row.description, row.parallelism, json.dumps(row.tags), row.client_token))  # fmt: skip
            except sqlite3.IntegrityError:
                return False
            self._db.execute("INSERT OR REPLACE INTO pipeline_versions VALUES (?, ?, ?, ?)", (row.name, row.version, row.definition, row.modified))
            self._db.execute("DELETE FROM deleted_pipelines WHERE name = ?", (row.name,))
        return True

    def update_pipeline(self, row: PipelineRow) -> None:
        """Replace a pipeline's row; a new version's definition is kept beside the earlier ones."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"INSERT OR REPLACE INTO pipelines ({_PIPELINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (row.name, row.definition, row.role_arn, row.created, row.modified, row.version, row.display_name,
                              row.description, row.parallelism, json.dumps(row.tags), row.client_token))  # fmt: skip
            self._db.execute("INSERT OR IGNORE INTO pipeline_versions VALUES (?, ?, ?, ?)", (row.name, row.version, row.definition, row.modified))

    def definition(self, name: str, version: int) -> str | None:
        """The definition a pipeline had at `version`."""
        rows = self._rows("SELECT definition FROM pipeline_versions WHERE name = ? AND version = ?", (name, version))
        return str(rows[0][0]) if rows else None

    def delete_pipeline(self, name: str, at: float) -> None:
        """Forget a pipeline; executions recorded before `at` no longer count as its own (a later run makes it anew)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM pipelines WHERE name = ?", (name,))
            self._db.execute("DELETE FROM pipeline_versions WHERE name = ?", (name,))
            self._db.execute("INSERT OR REPLACE INTO deleted_pipelines VALUES (?, ?)", (name, at))

    def deletions(self) -> dict[str, float]:
        """Pipeline name → when it was last deleted."""
        return {str(name): float(at) for name, at in self._rows("SELECT name, at FROM deleted_pipelines")}

    # -- executions ------------------------------------------------------------------------

    def add_execution(self, row: ExecutionRow) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO executions VALUES (?, ?, ?, ?, ?, ?)",
                             (row.id, row.pipeline, row.display_name, row.description, row.client_token, row.version))  # fmt: skip

    def execution(self, execution_id: str) -> ExecutionRow | None:
        rows = self._rows("SELECT id, pipeline, display_name, description, client_token, version FROM executions WHERE id = ?", (execution_id,))
        return ExecutionRow(*rows[0]) if rows else None

    def executions(self) -> dict[str, ExecutionRow]:
        """Every execution started through the API, by id."""
        rows = self._rows("SELECT id, pipeline, display_name, description, client_token, version FROM executions")
        return {row[0]: ExecutionRow(*row) for row in rows}

    def by_token(self, pipeline: str, token: str) -> str | None:
        """The execution a StartPipelineExecution with this ClientRequestToken started (a retried request gets it again)."""
        rows = self._rows("SELECT id FROM executions WHERE pipeline = ? AND client_token = ?", (pipeline, token))
        return str(rows[0][0]) if rows else None


def _pipeline(row: tuple[Any, ...]) -> PipelineRow:
    return PipelineRow(name=row[0], definition=row[1], role_arn=row[2], created=row[3], modified=row[4], version=row[5],
                       display_name=row[6], description=row[7], parallelism=row[8], tags=json.loads(row[9]), client_token=row[10])  # fmt: skip
