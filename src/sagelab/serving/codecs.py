"""Request decoders and response encoders, a registry keyed by content type.

The defaults reproduce `sagemaker_inference.decoder` / `encoder` (and the scikit-learn
container's patched decoder): CSV and JSON become numpy arrays, `.npy` loads without pickles,
`.npz` loads a scipy sparse matrix; responses are JSON via `tolist()`, CSV as `numpy.savetxt`
writes it with `fmt="%s"`, or `.npy`. JSON Lines, libsvm and `.npz` responses are additions.
Parsing is plain Python and numpy (no pandas), which keeps small requests fast.

Add a content type with `register(Codec(...))`.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sagelab.serving import protocol
from sagelab.serving.protocol import InvocationError


class DecodeError(ValueError):
    """The payload is not what its content type promises; the message says where."""


@dataclass(frozen=True)
class Codec:
    """How one content type becomes data (`decode`) and data becomes that content type (`encode`)."""

    content_type: str
    decode: Callable[[bytes | str], Any] | None = None
    encode: Callable[[Any], bytes] | None = None
    expected: str = ""


_REGISTRY: dict[str, Codec] = {}


def register(codec: Codec) -> None:
    """Add or replace the codec for `codec.content_type`."""
    _REGISTRY[protocol.media_type(codec.content_type)] = codec


def codec_for(content_type: str | None) -> Codec | None:
    """The codec of a content type (parameters such as charset ignored), or None."""
    return _REGISTRY.get(protocol.media_type(content_type))


def decodable() -> list[str]:
    """Content types a request body may have."""
    return sorted(t for t, c in _REGISTRY.items() if c.decode is not None)


def encodable() -> list[str]:
    """Content types a response can be encoded to."""
    return sorted(t for t, c in _REGISTRY.items() if c.encode is not None)


def decode(data: bytes | str, content_type: str | None) -> Any:
    """Decode a request body; 415 for an unknown content type, 400 for a body that does not parse."""
    codec = codec_for(content_type)
    if codec is None or codec.decode is None:
        raise InvocationError(415, f"content type {content_type or '(none)'} is not supported by the default input_fn; "
                                   f"send one of {', '.join(decodable())}, or provide an input_fn")  # fmt: skip
    try:
        return codec.decode(data)
    except (DecodeError, ValueError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise InvocationError(400, f"the {codec.content_type} payload could not be decoded: {exc}; expected {codec.expected}") from None


def encode(prediction: Any, content_type: str) -> bytes:
    """Encode a prediction; 406 when no encoder exists for `content_type`."""
    codec = codec_for(content_type)
    if codec is None or codec.encode is None:
        raise InvocationError(406, f"cannot answer in {content_type}: the default output_fn encodes "
                                   f"{', '.join(encodable())}")  # fmt: skip
    return codec.encode(prediction)


def _text(data: bytes | str) -> str:
    return data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# -- CSV ---------------------------------------------------------------------------------


def _csv_field(value: str, row: int, column: int) -> float:
    value = value.strip().strip('"').strip()
    if value == "":
        return float("nan")  # a missing value, as numpy.genfromtxt reads it
    try:
        return float(value)
    except ValueError:
        raise DecodeError(f"row {row}, column {column}: {value[:40]!r} is not a number") from None


def csv_to_matrix(data: bytes | str) -> np.ndarray[Any, Any]:
    """Numeric CSV rows as a 2-D float64 array; empty fields are NaN, blank lines are skipped."""
    lines = [line for line in _text(data).splitlines() if line.strip()]
    if not lines:
        raise DecodeError("the body has no rows")
    rows = [line.split(",") if '"' not in line else next(csv.reader([line])) for line in lines]
    width = len(rows[0])
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            raise DecodeError(f"row {number} has {len(row)} values but row 1 has {width}")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:  # empty fields or stray text: convert field by field for NaN and a precise message
        return np.array([[_csv_field(v, r, c) for c, v in enumerate(row, 1)] for r, row in enumerate(rows, 1)], dtype=np.float64)


def csv_to_numpy(data: bytes | str) -> np.ndarray[Any, Any]:
    """CSV to an array shaped as `numpy.genfromtxt(delimiter=",")` shapes it: one row or one column is 1-D."""
    matrix = csv_to_matrix(data)
    return matrix.squeeze() if 1 in matrix.shape else matrix


def _csv_cell(value: Any) -> str:
    return str(value)  # what numpy.savetxt's fmt="%s" writes (format() would widen a float32)


def array_to_csv(prediction: Any) -> bytes:
    """As `numpy.savetxt(..., delimiter=",", fmt="%s")`: a 1-D array puts each value on its own line."""
    array = _dense(prediction)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim > 2:
        raise ValueError(f"cannot write a {array.ndim}-D prediction as CSV; return a 1-D or 2-D array")
    # float32/float16 print shorter as numpy scalars; every other dtype prints the same via tolist().
    values: Any = array if array.dtype.kind == "f" and array.dtype.itemsize < 8 else array.tolist()
    if array.ndim == 1:
        return ("\n".join(map(_csv_cell, values)) + "\n").encode("utf-8")
    return "".join(",".join(map(_csv_cell, row)) + "\n" for row in values).encode("utf-8")


# -- JSON and JSON Lines ----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if hasattr(value, "toarray"):  # scipy sparse
        return value.toarray().tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_to_numpy(data: bytes | str) -> np.ndarray[Any, Any]:
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON ({exc})") from None
    return np.array(document)


def array_to_json(prediction: Any) -> bytes:
    if isinstance(prediction, np.ndarray):
        return json.dumps(prediction.tolist()).encode("utf-8")
    return json.dumps(prediction, default=_json_default).encode("utf-8")


def jsonlines_to_numpy(data: bytes | str) -> np.ndarray[Any, Any]:
    records = []
    for number, line in enumerate(_text(data).splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DecodeError(f"line {number} is not valid JSON ({exc})") from None
    if not records:
        raise DecodeError("the body has no lines")
    return np.array(records)


def array_to_jsonlines(prediction: Any) -> bytes:
    if hasattr(prediction, "toarray"):
        prediction = prediction.toarray()
    rows = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
    if not isinstance(rows, list):
        rows = [rows]
    return "".join(json.dumps(row, default=_json_default) + "\n" for row in rows).encode("utf-8")


# -- numpy and scipy ------------------------------------------------------------------------


def _sparse() -> Any:
    """scipy.sparse, imported on first use (scipy ships no type information)."""
    return importlib.import_module("scipy.sparse")


def _dense(value: Any) -> np.ndarray[Any, Any]:
    return np.asarray(value.toarray() if hasattr(value, "toarray") else value)


def npy_to_numpy(data: bytes | str) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(np.load(io.BytesIO(_bytes(data)), allow_pickle=False))
    except ValueError as exc:
        raise DecodeError(f"not a .npy array without pickled objects ({exc})") from None


def array_to_npy(prediction: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _dense(prediction))
    return buffer.getvalue()


def npz_to_sparse(data: bytes | str) -> Any:
    """A scipy sparse matrix saved with `scipy.sparse.save_npz`; an .npz of one dense array also loads."""
    raw = _bytes(data)
    try:
        return _sparse().load_npz(io.BytesIO(raw))
    except Exception as sparse_error:  # untrusted bytes: zipfile, numpy and scipy each fail their own way
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
                names = list(archive.keys())
                if len(names) == 1:
                    return np.asarray(archive[names[0]])
        except Exception:  # reported below, as the sparse error
            pass
        raise DecodeError(f"not a scipy sparse matrix saved with save_npz ({sparse_error})") from None


def array_to_npz(prediction: Any) -> bytes:
    buffer = io.BytesIO()
    if hasattr(prediction, "tocsr"):
        _sparse().save_npz(buffer, prediction)
    else:
        np.savez(buffer, np.asarray(prediction))
    return buffer.getvalue()


def libsvm_to_sparse(data: bytes | str) -> Any:
    """libsvm rows (`label index:value ...`) as a CSR matrix; 1-based indices are shifted to 0-based.

    Tokens without a colon (the label) are ignored, as the XGBoost container's decoder ignores them.
    """
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    count = 0
    for number, line in enumerate(_text(data).strip().splitlines(), 1):
        for token in line.split():
            if ":" in token:
                index, value = token.split(":", 1)
                try:
                    cols.append(int(index))
                    values.append(float(value))
                except ValueError:
                    raise DecodeError(f"line {number}: {token!r} is not index:value") from None
                rows.append(count)
        count += 1
    if count == 0:
        raise DecodeError("the body has no rows")
    index_array = np.asarray(cols, dtype=np.int64)
    if index_array.size and index_array.min() >= 1:
        index_array = index_array - 1
    width = int(index_array.max()) + 1 if index_array.size else 0
    return _sparse().csr_matrix((np.asarray(values), (np.asarray(rows), index_array)), shape=(count, width))


def array_to_libsvm(prediction: Any) -> bytes:
    array = _dense(prediction)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    lines = [" ".join(f"{i + 1}:{v}" for i, v in enumerate(row) if v != 0) for row in array.tolist()]
    return ("\n".join(lines) + "\n").encode("utf-8")


_NUMBERS = "a numeric array such as [[5.1, 3.5, 1.4, 0.2]]"
for _codec in (
    Codec(protocol.CSV, csv_to_numpy, array_to_csv, "numeric CSV rows such as 5.1,3.5,1.4,0.2 (one record a line)"),
    Codec(protocol.JSON, json_to_numpy, array_to_json, f"JSON with {_NUMBERS}"),
    Codec(protocol.JSONLINES, jsonlines_to_numpy, array_to_jsonlines, "one JSON array a line, such as [5.1, 3.5, 1.4, 0.2]"),
    Codec(protocol.NPY, npy_to_numpy, array_to_npy, "an array saved with numpy.save (no pickled objects)"),
    Codec(protocol.NPZ, npz_to_sparse, array_to_npz, "a sparse matrix saved with scipy.sparse.save_npz"),
    Codec(protocol.LIBSVM, libsvm_to_sparse, array_to_libsvm, "libsvm rows such as '1 1:5.1 2:3.5'"),
    Codec(protocol.X_LIBSVM, libsvm_to_sparse, array_to_libsvm, "libsvm rows such as '1 1:5.1 2:3.5'"),
):
    register(_codec)
