"""A check job's dataset, read as the analyzer reads it: CSV with or without a header, or JSON."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from sagelab.containers.monitor import MonitorError

Present = Union[str, int, float]
Value = Union[Present, None]
_INTEGRAL = re.compile(r"^[+-]?\d+$")
_FRACTIONAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


@dataclass
class Table:
    """Named columns of raw values; None is a missing value."""

    names: list[str]
    columns: list[list[Value]]

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, attribute: str, what: str) -> list[Value]:
        """The column an attribute names: a column name, Spark's `_c2`, or a 0-based index."""
        if attribute in self.names:
            return self.columns[self.names.index(attribute)]
        index = attribute[2:] if attribute.startswith("_c") else attribute
        if index.isdigit() and int(index) < len(self.names):
            return self.columns[int(index)]
        raise MonitorError(f"{what} {attribute!r} names no column of the dataset; its columns are {', '.join(self.names)}")


def kind(value: Value) -> str:
    """Integral, Fractional or String: the type Deequ infers for one present value."""
    if isinstance(value, bool):
        return "String"
    if isinstance(value, int):
        return "Integral"
    if isinstance(value, float):
        return "Fractional"
    text = str(value).strip()
    if _INTEGRAL.match(text):
        return "Integral"
    return "Fractional" if _FRACTIONAL.match(text) else "String"


def read(source: Path, dataset_format: str) -> Table:
    """Every file under `source` (hidden and `_` files skipped, as Spark does), in name order."""
    try:
        fmt = json.loads(dataset_format) if dataset_format else {"csv": {"header": True}}
    except ValueError:
        raise MonitorError(f"dataset_format is not JSON: {dataset_format!r}") from None
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    if not files:
        raise MonitorError(f"no data files under {source}")
    if "csv" in fmt:
        return _csv(files, bool((fmt["csv"] or {}).get("header", True)))
    if "json" in fmt:
        return _json(files, bool((fmt["json"] or {}).get("lines", True)))
    raise MonitorError(
        f"dataset_format {dataset_format} is not emulated locally; use DatasetFormat.csv(...) or DatasetFormat.json(...)"
    )


def _csv(files: list[Path], header: bool) -> Table:
    names: list[str] = []
    rows: list[list[str]] = []
    for file in files:
        with open(file, newline="", encoding="utf-8") as handle:
            lines = [row for row in csv.reader(handle) if row]
        if header and lines:
            names = names or lines[0]
            lines = lines[1:]
        rows.extend(lines)
    width = len(names) if header else max((len(row) for row in rows), default=0)
    names = names if header else [f"_c{i}" for i in range(width)]
    # Spark's permissive mode: a short row's missing fields are null, a long row's extra ones dropped.
    columns: list[list[Value]] = [[row[i] if i < len(row) and row[i] != "" else None for row in rows] for i in range(width)]
    return Table(names, columns)


def _json(files: list[Path], lines: bool) -> Table:
    records: list[object] = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        try:
            if lines:
                records.extend(json.loads(line) for line in text.splitlines() if line.strip())
            else:
                loaded = json.loads(text)
                records.extend(loaded if isinstance(loaded, list) else [loaded])
        except ValueError as exc:
            raise MonitorError(f"{file.name} is not valid JSON{' lines' if lines else ''}: {exc}") from None
    names: list[str] = []
    for record in records:
        if not isinstance(record, dict):
            raise MonitorError(f"a JSON record must be an object; found {json.dumps(record)[:80]}")
        names.extend(key for key in record if key not in names)
    columns = [[_scalar(record.get(name)) for record in records if isinstance(record, dict)] for name in names]
    return Table(names, columns)


def _scalar(value: object) -> Value:
    if value is None or isinstance(value, (str, int, float)):
        return value
    return json.dumps(value)
