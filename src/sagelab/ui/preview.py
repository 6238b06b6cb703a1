"""A small object's first rows, for a step's outputs in the UI: CSV, JSON (and JSON lines), Parquet, or text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sagelab.ui.views import Preview

MAX_BYTES = 5 * 1024 * 1024  # larger objects are offered for download, not read for a preview
ROWS = 20


def preview(uri: str, data: bytes) -> Preview:
    """The first `ROWS` rows of `data` (the object at `uri`), by its name's extension; binary and large objects get none."""
    size = len(data)
    name = uri.rsplit("/", 1)[-1].lower()
    if size > MAX_BYTES:
        return Preview(uri=uri, size=size, kind="binary", truncated=True)
    try:
        if name.endswith(".parquet"):
            return _parquet(uri, data)
        text = data.decode("utf-8")
    except (UnicodeDecodeError, ImportError, ValueError, OSError):
        return Preview(uri=uri, size=size, kind="binary")
    if name.endswith((".csv", ".tsv")) or (name.endswith(".out") and "," in text.partition("\n")[0]):
        return _csv(uri, text, size, "\t" if name.endswith(".tsv") else ",")
    if name.endswith((".json", ".jsonl")):
        return _json(uri, text, size)
    lines = text.splitlines()
    return Preview(uri=uri, size=size, kind="text", text="\n".join(lines[:ROWS]), truncated=len(lines) > ROWS)


def _csv(uri: str, text: str, size: int, delimiter: str) -> Preview:
    rows: list[list[str]] = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        if len(rows) > ROWS:
            break
        rows.append(row)
    width = max((len(r) for r in rows), default=0)
    return Preview(uri=uri, size=size, kind="csv", columns=[str(i) for i in range(width)], rows=[list(r) for r in rows[:ROWS]],
                   truncated=len(rows) > ROWS)  # fmt: skip


def _json(uri: str, text: str, size: int) -> Preview:
    try:
        document = json.loads(text)
    except ValueError:  # JSON lines
        lines = [line for line in text.splitlines() if line.strip()]
        return Preview(uri=uri, size=size, kind="json", text="\n".join(lines[:ROWS]), truncated=len(lines) > ROWS)
    shown = json.dumps(document, indent=2)
    lines = shown.splitlines()
    return Preview(uri=uri, size=size, kind="json", text="\n".join(lines[: ROWS * 5]), truncated=len(lines) > ROWS * 5)


def _parquet(uri: str, data: bytes) -> Preview:
    import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]

    table = pq.read_table(io.BytesIO(data))
    head = table.slice(0, ROWS).to_pylist()
    rows: list[list[Any]] = [[_cell(row[name]) for name in table.column_names] for row in head]
    return Preview(uri=uri, size=len(data), kind="parquet", columns=table.column_names, rows=rows, truncated=table.num_rows > ROWS)


def _cell(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
