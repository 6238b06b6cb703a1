"""Batch transform's DataProcessing: InputFilter, JoinSource and OutputFilter on CSV and JSON records.

The JSONPath subset is the one SageMaker documents ("Associate Prediction Results with Input
Records"): `$`, `.name`, `.*`, `[*]`, `['a','b']`, `[i]` and `[i,j,...]` (negative indices
count from the end) and one slice `[a:b]`. Following that page, a slice includes both ends:
`$[1:4]` is the second through fifth columns. Not supported (refused with a message):
recursive descent `..`, filter and script expressions `[?(...)]`, `[(...)]`, slices with a
step, and unions mixing slices with indices.

A CSV record is a JSON array of its fields (strings, kept as written), so only index paths
apply to it. A JSON record is any JSON value. Joining (JoinSource=Input) appends the output's
fields to the CSV row, or adds the output under `SageMakerOutput` to a JSON object (an input
that is not an object becomes `{"SageMakerInput": ..., "SageMakerOutput": ...}`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sagelab.errors import ModelError
from sagelab.serving import protocol

_SEGMENT = re.compile(r"""\.(?P<name>[A-Za-z_][\w-]*|\*)|\[(?P<bracket>[^\[\]]*)\]""")


@dataclass(frozen=True)
class _Step:
    kind: str  # name, names, all, indices, slice
    names: tuple[str, ...] = ()
    indices: tuple[int, ...] = ()
    start: int | None = None
    end: int | None = None


def _parse_bracket(body: str, path: str) -> _Step:
    body = body.strip()
    if body == "*":
        return _Step("all")
    if body.startswith(("?", "(")):
        raise ModelError(f"JSONPath {path!r}: filter and script expressions are not supported by batch transform")
    if body.startswith(("'", '"')):
        names = tuple(part.strip()[1:-1] for part in body.split(","))
        if any(not n or "." in n for n in names):
            raise ModelError(f"JSONPath {path!r}: write names as ['a','b'] (no nested paths inside brackets)")
        return _Step("names", names=names)
    if ":" in body:
        if "," in body or body.count(":") > 1:
            raise ModelError(f"JSONPath {path!r}: only a single range such as [1:5] is supported (no steps or unions)")
        start, end = (part.strip() for part in body.split(":"))
        try:
            return _Step("slice", start=int(start) if start else None, end=int(end) if end else None)
        except ValueError:
            raise ModelError(f"JSONPath {path!r}: slice bounds must be integers") from None
    try:
        return _Step("indices", indices=tuple(int(part) for part in body.split(",")))
    except ValueError:
        raise ModelError(f"JSONPath {path!r}: [{body}] is neither indices, a slice nor quoted names") from None


def compile_path(path: str) -> list[_Step]:
    """Parse a JSONPath of SageMaker's subset into steps; ModelError names what is not supported."""
    text = path.strip()
    if not text.startswith("$"):
        raise ModelError(f"JSONPath {path!r} must start with $")
    if ".." in text:
        raise ModelError(f"JSONPath {path!r}: recursive descent (..) is not supported by batch transform")
    steps, position = [], 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise ModelError(f"JSONPath {path!r}: cannot read {text[position:]!r}")
        if match.group("name") is not None:
            name = match.group("name")
            steps.append(_Step("all") if name == "*" else _Step("name", names=(name,)))
        else:
            steps.append(_parse_bracket(match.group("bracket"), path))
        position = match.end()
    return steps


def _select(value: Any, step: _Step, path: str) -> Any:
    if step.kind == "all":
        return list(value.values()) if isinstance(value, dict) else list(value)
    if step.kind in ("name", "names"):
        if not isinstance(value, dict):
            raise ValueError(f"{path}: a record that is not a JSON object has no attribute {step.names[0]!r}")
        missing = [n for n in step.names if n not in value]
        if missing:
            raise ValueError(f"{path}: the record has no attribute {missing[0]!r}")
        if step.kind == "name" or len(step.names) == 1:
            return value[step.names[0]]
        return {n: value[n] for n in step.names}
    if not isinstance(value, list):
        raise ValueError(f"{path}: index paths apply to arrays and CSV rows, not to {type(value).__name__}")
    if step.kind == "indices":
        try:
            picked = [value[i] for i in step.indices]
        except IndexError:
            raise ValueError(f"{path}: the record has {len(value)} elements") from None
        return picked[0] if len(picked) == 1 else picked
    size = len(value)
    start = 0 if step.start is None else (step.start + size if step.start < 0 else step.start)
    end = size - 1 if step.end is None else (step.end + size if step.end < 0 else step.end)
    return value[max(start, 0) : max(end + 1, 0)]  # SageMaker's slices include their end


def apply_path(path: str | None, value: Any) -> Any:
    """Apply a JSONPath to a record; ValueError says what did not match."""
    if path is None or path.strip() == "$":
        return value
    for step in compile_path(path):
        value = _select(value, step, path)
    return value


# -- records as CSV rows or JSON values ------------------------------------------------------


def record_format(content_type: str | None) -> str:
    """'csv' or 'json': how DataProcessing reads records of this content type."""
    media = protocol.media_type(content_type)
    if media == protocol.CSV:
        return "csv"
    if media in (protocol.JSON, protocol.JSONLINES):
        return "json"
    raise ModelError(f"InputFilter, JoinSource and OutputFilter work on text/csv, application/json and "
                     f"application/jsonlines data, not {content_type or '(no content type)'}")  # fmt: skip


def parse_record(raw: bytes, fmt: str) -> Any:
    text = raw.decode("utf-8").strip("\r\n")
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        if len(rows) != 1:
            raise ValueError(f"a CSV record must be one line, got {len(rows)} (embedded newlines are not supported)")
        return rows[0]
    return json.loads(text)


def dump_record(value: Any, fmt: str) -> bytes:
    if fmt == "csv":
        row = value if isinstance(value, list) else [value]
        stream = io.StringIO()
        csv.writer(stream, lineterminator="").writerow(["" if v is None else v for v in row])
        return stream.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def join(input_record: Any, output: bytes, fmt: str, output_fmt: str) -> Any:
    """JoinSource=Input: the input record with the output attached."""
    text = output.decode("utf-8").strip("\r\n")
    if fmt == "csv":
        extra = next(csv.reader([text])) if output_fmt == "csv" else [text]
        return list(input_record) + extra
    result = [_json_value(v) for v in next(csv.reader([text]))] if output_fmt == "csv" else _json_value(text)
    if isinstance(input_record, dict):
        return {**input_record, "SageMakerOutput": result}
    return {"SageMakerInput": input_record, "SageMakerOutput": result}


Filter = Callable[[bytes], bytes]


def input_filter(path: str | None, content_type: str | None) -> Filter | None:
    """A function applying InputFilter to one raw record, or None when there is nothing to do."""
    if path is None or path.strip() == "$":
        return None
    compile_path(path)  # refuse an unsupported path before any record is read
    fmt = record_format(content_type)
    return lambda raw: dump_record(apply_path(path, parse_record(raw, fmt)), fmt)
