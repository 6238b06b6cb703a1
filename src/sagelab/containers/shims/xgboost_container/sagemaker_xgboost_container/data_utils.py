"""`sagemaker_xgboost_container.data_utils`: a channel read into a DMatrix as the built-in algorithm reads it.

The reading is sagelab's emulation of the algorithm (`sagelab.containers.xgboost.data`): the
label first, text/csv without a header and its delimiter sniffed, every file under the path
in name order with `_`-prefixed names skipped. Mistakes raise `UserError` saying where.
"""

from __future__ import annotations

import os
from pathlib import Path

import xgboost as xgb

from sagelab.containers.xgboost import data
from sagelab.containers.xgboost.data import CSV, LIBSVM, PARQUET, RECORDIO_PROTOBUF
from sagelab.containers.xgboost.errors import UserError
from sagelab.containers.xgboost.fitting import dmatrix

__all__ = ["CSV", "LIBSVM", "PARQUET", "RECORDIO_PROTOBUF", "get_content_type", "get_dmatrix"]


def get_content_type(content_type_cfg_val: str | None) -> str:
    """csv, libsvm, parquet or recordio-protobuf for a channel's ContentType; libsvm when it names none."""
    return data.content_type(content_type_cfg_val)


def get_dmatrix(
    data_path: str | os.PathLike[str], content_type: str, csv_weights: int = 0, is_pipe: bool = False
) -> xgb.DMatrix | None:
    """The data under `data_path` (a folder or a file) as a DMatrix; None when the path holds no data.

    `content_type` is what `get_content_type` returns (csv, libsvm, parquet); with
    `csv_weights=1` the second CSV column is the instance weight. Pipe-mode channels are
    delivered as files locally and read as such (LibSVM in Pipe mode fails, as in the image).
    """
    kind = content_type.lower()
    if kind not in (CSV, LIBSVM, PARQUET, RECORDIO_PROTOBUF):
        raise ValueError(f"get_dmatrix(content_type={content_type!r}): expected one of {CSV}, {LIBSVM}, {PARQUET}, "
                         f"{RECORDIO_PROTOBUF}; get_content_type turns a channel's ContentType into one")  # fmt: skip
    if is_pipe and kind == LIBSVM:
        raise UserError("Pipe mode not supported for LibSVM.")
    dataset = data.read_channel(Path(data_path), kind, csv_weights)
    if dataset is None:
        return None
    if dataset.rows == 0:
        raise UserError(f"Got input data without labels. Please check the input data set ({data_path}).")
    return dmatrix(dataset)
