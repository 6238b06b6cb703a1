"""`sagemaker_xgboost_container.encoder`: request bodies as DMatrix, for a script's input_fn.

Framework scripts import it next to their training code (`import
sagemaker_xgboost_container.encoder as xgb_encoders`) and call `csv_to_dmatrix` or `decode`
when serving. LibSVM bodies are read as the built-in algorithm reads LibSVM files.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from sagelab.containers.xgboost import data
from sagelab.containers.xgboost.fitting import dmatrix

from .constants import xgb_content_types


def csv_to_dmatrix(input: str | bytes, dtype: Any = None) -> xgb.DMatrix:
    """CSV rows (no label column) as a DMatrix; the delimiter is sniffed, empty cells are missing values."""
    text = input.decode() if isinstance(input, bytes) else input
    delimiter = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if delimiter.isalnum() else delimiter
    rows = [["nan" if cell == "" else cell for cell in line.split(delimiter)] for line in text.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(dtype or np.float64))


def libsvm_to_dmatrix(string_like: str | bytes) -> xgb.DMatrix:
    """LibSVM lines (`label index:value ...`) as a DMatrix, indices being column numbers."""
    text = string_like.decode("utf-8") if isinstance(string_like, (bytes, bytearray)) else string_like
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "payload").write_text(text)
        dataset = data.read_channel(Path(folder), data.LIBSVM)
    if dataset is None:
        return xgb.DMatrix(np.empty((0, 0)))
    return dmatrix(dataset)


_DECODERS: dict[str, Callable[[str | bytes], xgb.DMatrix]] = {
    "text/csv": csv_to_dmatrix,
    xgb_content_types.LIBSVM: libsvm_to_dmatrix,
    xgb_content_types.X_LIBSVM: libsvm_to_dmatrix,
}


def decode(obj: str | bytes, content_type: str) -> xgb.DMatrix:
    """A request body of `content_type` (text/csv, text/libsvm, text/x-libsvm) as a DMatrix."""
    media = content_type.split(";")[0].strip().lower()
    if media not in _DECODERS:
        raise ValueError(f"Content type {content_type} is not supported: the XGBoost container decodes "
                         f"{', '.join(_DECODERS)} (application/x-recordio-protobuf is not emulated)")  # fmt: skip
    return _DECODERS[media](obj)
