"""The toolkits' content types, array encoders and response object, as scripts' handlers use them.

Inference handlers written for the scikit-learn and legacy images import these at the top of
the same file that trains (`from sagemaker_containers.beta.framework import encoders, worker`),
so they must import in a training step and behave as the toolkit's: `encoders.encode(array,
"text/csv")`, `encoders.decode(body, "application/json")`, `worker.Response(body, mimetype=...)`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

JSON = "application/json"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
NPY = "application/x-npy"
UTF8_TYPES = [JSON, CSV]


class UnsupportedFormatError(Exception):
    """A content type the toolkit's encoders do not handle (the server answers 415)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(f"Content type {content_type} is not supported by this framework; the toolkit's encoders "
                         f"handle {', '.join((JSON, CSV, NPY))}. Define input_fn/output_fn for other types.")  # fmt: skip
        self.content_type = content_type


def array_to_npy(array_like: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array_like)
    return buffer.getvalue()


def npy_to_numpy(npy_array: bytes) -> Any:
    return np.load(io.BytesIO(npy_array), allow_pickle=False)


def array_to_json(array_like: Any) -> str:
    def default(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(array_like, default=default)


def json_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    return np.array(json.loads(string_like), dtype=dtype)


def csv_to_numpy(string_like: str | bytes, dtype: Any = None) -> Any:
    """Rows of a CSV body as an array (squeezed, so one row is 1-d), as the toolkit decodes it."""
    text = string_like.decode("utf-8") if isinstance(string_like, bytes) else string_like
    rows = list(csv.reader(io.StringIO(text), delimiter=",", quotechar='"', doublequote=True, strict=True))
    return np.array(rows).squeeze().astype(dtype)


def array_to_csv(array_like: Any) -> str:
    array = np.array(array_like)
    if array.ndim == 1:
        array = array.reshape(array.shape[0], 1)
    stream = io.StringIO()
    csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True).writerows(array)
    return stream.getvalue()


_ENCODERS: dict[str, Callable[[Any], Any]] = {NPY: array_to_npy, CSV: array_to_csv, JSON: array_to_json}
_DECODERS: dict[str, Callable[[Any], Any]] = {NPY: npy_to_numpy, CSV: csv_to_numpy, JSON: json_to_numpy}


def encode(array_like: Any, content_type: str) -> Any:
    """An array-like as the body of `content_type` (NPY bytes, CSV or JSON text)."""
    if content_type not in _ENCODERS:
        raise UnsupportedFormatError(content_type)
    return _ENCODERS[content_type](array_like)


def decode(obj: Any, content_type: str) -> Any:
    """A request body of `content_type` as a numpy array."""
    if content_type not in _DECODERS:
        raise UnsupportedFormatError(content_type)
    return _DECODERS[content_type](obj)


class Response:
    """What an output_fn returns in the toolkit's examples: a body, a status and a mimetype (Flask's Response there)."""

    default_mimetype = JSON

    def __init__(self, response: str | bytes | Iterable[str | bytes] | None = None, accept: str | None = None,
                 status: int = 200, headers: dict[str, str] | None = None, mimetype: str | None = None,
                 direct_passthrough: bool = False) -> None:  # fmt: skip
        parts = [] if response is None else [response] if isinstance(response, (str, bytes)) else list(response)
        self._data = b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in parts)
        self.status_code = status
        self.headers = dict(headers or {})
        self.mimetype = mimetype or self.default_mimetype

    @property
    def content_type(self) -> str:
        return self.mimetype

    def get_data(self, as_text: bool = False) -> str | bytes:
        return self._data.decode("utf-8") if as_text else self._data
