"""Read and write S3 URIs from notebooks, on the store the profile names: the project's local store, or S3.

    >>> import sagelab.io
    >>> frame = sagelab.io.read("s3://my-bucket/raw/data.csv")                 # doctest: +SKIP
    >>> sagelab.io.write(frame, "s3://my-bucket/features/part-0.parquet")      # doctest: +SKIP
    >>> sagelab.io.read("s3://my-bucket/raw/data.csv", profile="aws")         # the same URI on S3  # doctest: +SKIP

The same code then reads the data a local run wrote and, with an AWS profile, what a SageMaker run wrote.
"""

from __future__ import annotations

import io
import json
from typing import Any

__all__ = ["read", "write"]


def read(uri: str, *, profile: str = "local", **read_options: Any) -> Any:
    """The object at `uri` (or the objects under it), as `Execution.read` gives it: a DataFrame for CSV,
    Parquet and JSON lines, a dict or list for JSON, else bytes. `read_options` go to pandas."""
    from sagelab.api.backends import backend_for
    from sagelab.api.reading import read_objects
    from sagelab.config import load_settings

    return read_objects(backend_for(load_settings(profile=profile)), uri, read_options)


def write(value: Any, uri: str, *, profile: str = "local", **write_options: Any) -> None:
    """Write `value` to `uri` in one piece: a DataFrame as CSV (no index), Parquet or JSON lines by the key's suffix,
    a dict or list as JSON, text as UTF-8, bytes as they are. `write_options` go to pandas.

    Raises:
        ExecutionError: a DataFrame to a key whose suffix names no table format, or a value of another kind.
    """
    from sagelab.api.backends import backend_for
    from sagelab.api.reading import kind_of
    from sagelab.config import load_settings
    from sagelab.errors import ExecutionError

    kind = kind_of(uri)
    if hasattr(value, "to_csv"):  # a pandas DataFrame
        buffer = io.BytesIO()
        if kind == "csv":
            value.to_csv(buffer, **{"index": False, **write_options})
        elif kind == "parquet":
            value.to_parquet(buffer, **write_options)
        elif kind == "jsonl":
            value.to_json(buffer, orient="records", lines=True, **write_options)
        else:
            raise ExecutionError(f"{uri}: a DataFrame is written as .csv, .parquet or .jsonl; name the key with one of them")
        data = buffer.getvalue()
    elif isinstance(value, (dict, list)):
        data = json.dumps(value).encode()
    elif isinstance(value, str):
        data = value.encode()
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        raise ExecutionError(f"{uri}: sagelab.io.write takes a DataFrame, a dict or list, text or bytes; got {type(value).__name__}")
    backend_for(load_settings(profile=profile)).store.put_bytes(uri, data)
