"""Reading what an execution wrote into Python values: DataFrames for tables, dicts for JSON, else bytes."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from sagelab.errors import ExecutionError
from sagelab.store.base import parse_s3_uri, relative_key

if TYPE_CHECKING:
    from sagelab.api.backends import Backend

# How each kind of file is read; the suffix of its key names its kind.
_TABLES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def kind_of(key: str) -> str:
    """csv, parquet, jsonl, json or bytes, from the key's suffix (a `.gz` after it is read through)."""
    name = key.lower().removesuffix(".gz")
    if name.endswith(".json"):
        return "json"
    return next((kind for suffix, kind in _TABLES.items() if name.endswith(suffix)), "bytes")


def read_objects(backend: Backend, uri: str, options: dict[str, Any]) -> Any:
    """The object at `uri`, or the objects under it as one value (several tables of one kind: one DataFrame)."""
    key = parse_s3_uri(uri).key
    objects = sorted((o for o in backend.list(uri) if relative_key(key, o.key) is not None), key=lambda o: o.key)
    if not objects:
        raise ExecutionError(f"nothing is stored at {uri}")
    kinds = {kind_of(o.key) for o in objects}
    if len(objects) == 1:
        return _read(backend.get_bytes(objects[0].uri), kind_of(objects[0].key), objects[0].key.endswith(".gz"), options)
    if len(kinds) == 1 and kinds <= {"csv", "parquet", "jsonl"}:
        import pandas as pd

        return pd.concat([_read(backend.get_bytes(o.uri), kind_of(o.key), o.key.endswith(".gz"), options) for o in objects], ignore_index=True)
    listing = ", ".join(o.uri for o in objects[:5]) + (" ..." if len(objects) > 5 else "")
    raise ExecutionError(f"{uri} holds {len(objects)} objects of different kinds ({listing}); read one of them by its URI")


def _read(data: bytes, kind: str, gzipped: bool, options: dict[str, Any]) -> Any:
    if gzipped and kind != "bytes":
        import gzip

        data = gzip.decompress(data)
    if kind == "json":
        return json.loads(data)
    if kind == "bytes":
        return data
    try:
        import pandas as pd
    except ImportError:
        raise ExecutionError(f"reading a {kind} file into a DataFrame needs pandas: pip install pandas") from None
    if kind == "csv":
        return pd.read_csv(io.BytesIO(data), **options)
    if kind == "parquet":
        return pd.read_parquet(io.BytesIO(data), **options)
    return pd.read_json(io.BytesIO(data), lines=True, **options)
