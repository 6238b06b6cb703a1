"""The train and validation channels read as the built-in algorithm reads them (`data_utils.py`).

The label is the first column (CSV, Parquet) or the first field (LibSVM); text/csv has no
header row, its delimiter is sniffed from the first line, and with csv_weights=1 the second
column holds instance weights. Every data file under the channel's folder is read, in name
order; names starting with `_` are skipped and a hidden file fails the job, as on SageMaker.
Files are opened with Python's `open`, so the /opt/ml fallback sandbox sees them too.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import scipy.sparse  # type: ignore[import-untyped, unused-ignore]  # scipy ships no types

from sagelab.containers.contract import is_number
from sagelab.containers.xgboost.errors import UserError

CSV, LIBSVM, PARQUET, RECORDIO_PROTOBUF = "csv", "libsvm", "parquet", "recordio-protobuf"
DEFAULT_CONTENT_TYPE = "text/libsvm"  # what a channel without ContentType is read as
CONTENT_TYPES = {
    "csv": CSV, "text/csv": CSV,
    "libsvm": LIBSVM, "text/libsvm": LIBSVM, "text/x-libsvm": LIBSVM,
    "parquet": PARQUET, "application/x-parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF, "application/x-recordio-protobuf": RECORDIO_PROTOBUF,
}  # fmt: skip
_DELIMITERS = ",;\t| "
log = logging.getLogger("sagelab.containers.xgboost")

Floats = npt.NDArray[np.float64]


@dataclass
class Dataset:
    """A channel's rows: features (dense, NaN for missing, or CSR), label, optional weights and query ids."""

    features: Floats | scipy.sparse.csr_matrix
    label: Floats
    weight: Floats | None = None
    qid: npt.NDArray[np.int64] | None = None

    @property
    def rows(self) -> int:
        return int(self.label.shape[0])

    @property
    def columns(self) -> int:
        return int(self.features.shape[1])


def content_type(value: str | None) -> str:
    """csv, libsvm, parquet or recordio-protobuf for a channel's ContentType (text/libsvm when there is none)."""
    if value is None:
        return LIBSVM
    base, _, parameters = value.lower().partition(";")
    kind = CONTENT_TYPES.get(base.strip())
    if kind is None:
        raise UserError(f"{value} is not an accepted ContentType: {', '.join(CONTENT_TYPES)}.")
    for parameter in parameters.split(";"):
        key, _, setting = parameter.partition("=")
        if kind == CSV and key.strip() == "label_size" and setting.strip() != "1":
            raise UserError(f"{value} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1")
    return kind


def data_files(folder: Path) -> list[Path]:
    """The data files of a channel, in name order; fails on a hidden file as the algorithm does."""
    if not folder.exists():
        return []
    if folder.is_file():
        return [folder]
    found = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        for name in sorted(names):
            if name.startswith("."):
                raise UserError(f"Hidden file found in the data path! Remove that before training. ({Path(directory, name)})")
            if name.startswith("_") or (".cache" in name and ("dtrain" in name or "dval" in name)):
                continue
            found.append(Path(directory, name))
    return [path for path in found if path.stat().st_size > 0]


def read_channel(folder: Path, kind: str, csv_weights: int = 0, defaulted: bool = False) -> Dataset | None:
    """The channel's data, or None when it holds none.

    `defaulted` says the channel named no ContentType, so a parse error can say why LibSVM was expected.
    """
    files = data_files(folder)
    if not files:
        return None
    if kind == CSV:
        return _read_csv(files, csv_weights)
    if kind == LIBSVM:
        return _read_libsvm(files, defaulted)
    if kind == PARQUET:
        return _read_parquet(files)
    raise UserError(
        "application/x-recordio-protobuf channels are not emulated by sagelab (SageMaker reads them with mlio, "
        "which has no wheel on PyPI); convert the data to text/csv, text/libsvm or application/x-parquet to run locally"
    )


def align_columns(train: Dataset, validation: Dataset) -> None:
    """Make the two channels' feature columns agree, or fail saying how they differ."""
    if train.columns == validation.columns:
        return
    if isinstance(train.features, scipy.sparse.csr_matrix) and isinstance(validation.features, scipy.sparse.csr_matrix):
        width = max(train.columns, validation.columns)  # LibSVM rows are sparse: the widest index sets the width
        train.features.resize((train.rows, width))
        validation.features.resize((validation.rows, width))
        return
    raise UserError(f"the validation channel has {validation.columns} feature columns and the train channel "
                    f"{train.columns}: both need the same columns, with the label first")  # fmt: skip


def _delimiter(files: list[Path]) -> str:
    """The delimiter of the first line of the first file, found as the container finds it (csv.Sniffer)."""
    with open(files[0], encoding="utf-8", errors="ignore") as handle:
        line = handle.readline()
    try:
        delimiter = csv.Sniffer().sniff(line, delimiters=_DELIMITERS).delimiter
    except csv.Error as exc:
        raise UserError(f"Could not determine delimiter on line {line[:50]}:\n{exc}") from None
    log.info("Determined delimiter of CSV input is '%s'", delimiter)
    return delimiter


def _read_csv(files: list[Path], csv_weights: int) -> Dataset:
    delimiter = _delimiter(files)
    blocks = [_csv_file(path, delimiter) for path in files]
    widths = {block.shape[1] for block in blocks}
    if len(widths) > 1:
        counts = ", ".join(f"{path.name}: {block.shape[1]}" for path, block in zip(files, blocks))
        raise UserError(f"the CSV files of a channel must have the same number of columns ({counts})")
    table = np.vstack(blocks)
    first_feature = 2 if csv_weights == 1 else 1
    if table.shape[1] <= first_feature:
        raise UserError(f"text/csv rows need a label column and at least one feature column; {files[0].name} has {table.shape[1]}")
    return Dataset(table[:, first_feature:], table[:, 0], table[:, 1] if csv_weights == 1 else None)


def _csv_file(path: Path, delimiter: str) -> Floats:
    """One CSV file as floats: numpy's fast reader, and on any trouble a reader that says where it is."""
    try:
        with open(path, encoding="utf-8") as handle:
            table: Floats = np.loadtxt(handle, delimiter=delimiter, dtype=np.float64, ndmin=2, comments=None)
    except (ValueError, UnicodeDecodeError):
        return _csv_file_checked(path, delimiter)
    if table.size and np.isnan(table[:, 0]).any():
        return _csv_file_checked(path, delimiter)
    return table


def _csv_file_checked(path: Path, delimiter: str) -> Floats:
    rows: list[list[float]] = []
    width = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for number, cells in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if not cells or all(not cell.strip() for cell in cells):
                continue
            width = width or len(cells)
            if len(cells) != width:
                raise UserError(f"{path.name}, line {number}: {len(cells)} columns where the first line has {width}")
            rows.append([_csv_value(path, number, column, cell, cells) for column, cell in enumerate(cells)])
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)


def _csv_value(path: Path, number: int, column: int, cell: str, cells: list[str]) -> float:
    text = cell.strip()
    try:
        value = float(text) if text else math.nan
    except ValueError:
        value = None
    if value is not None and not (column == 0 and math.isnan(value)):
        return value
    where = f"{path.name}, line {number}"
    if column == 0:
        header = number == 1 and sum(is_number(c) for c in cells) < len(cells) / 2
        hint = " The first line looks like a header row: write the CSV without one (header=False)." if header else ""
        return _fail(
            f"{where}: the label column (the first) holds {text!r}, which is not numeric. The built-in XGBoost "
            f"algorithm reads text/csv with no header row and the label in the first column.{hint}"
        )
    return _fail(f"{where}, column {column + 1}: {text!r} is not a number; every text/csv column must be numeric "
                 "(encode categorical columns before training)")  # fmt: skip


def _fail(message: str) -> NoReturn:
    raise UserError(message)


def _read_libsvm(files: list[Path], defaulted: bool) -> Dataset:
    """`<label>[:<weight>] [qid:<id>] <index>:<value> ...` lines; indices are column numbers, as XGBoost reads them."""
    labels: list[float] = []
    weights: list[float] = []
    qids: list[int] = []
    indptr, indices, values = [0], [], []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    head, *fields = line.split()
                    label, _, weight = head.partition(":")
                    labels.append(float(label))
                    if weight:
                        weights.append(float(weight))
                    for field in fields:
                        key, separator, value = field.partition(":")
                        if not separator:
                            raise ValueError(field)
                        if key == "qid":
                            qids.append(int(value))
                        else:
                            indices.append(int(key))
                            values.append(float(value))
                except ValueError:
                    raise UserError(_libsvm_error(path, number, line, defaulted)) from None
                indptr.append(len(indices))
    width = max(indices, default=-1) + 1
    matrix = scipy.sparse.csr_matrix((np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64),
                                      np.asarray(indptr, dtype=np.int64)), shape=(len(labels), max(width, 1)))  # fmt: skip
    return Dataset(
        matrix,
        np.asarray(labels, dtype=np.float64),
        np.asarray(weights, dtype=np.float64) if weights and len(weights) == len(labels) else None,
        np.asarray(qids, dtype=np.int64) if qids and len(qids) == len(labels) else None,
    )


def _libsvm_error(path: Path, number: int, line: str, defaulted: bool) -> str:
    message = (f"Line {number} '{line[:50]}...' of file '{path.name}' is not 'LIBSVM' format. "
               "Please ensure the file is in 'LIBSVM' format.")  # fmt: skip
    if defaulted:
        message += (" The channel names no ContentType, and the algorithm then reads text/libsvm: for CSV data "
                    "set ContentType text/csv (TrainingInput(..., content_type='text/csv')).")  # fmt: skip
    return message


def _read_parquet(files: list[Path]) -> Dataset:
    try:
        import pyarrow.parquet as parquet  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise UserError("application/x-parquet channels need pyarrow, which is not installed here: pip install pyarrow") from None
    blocks = []
    for path in files:
        try:
            with open(path, "rb") as handle:
                table: Any = parquet.read_table(io.BytesIO(handle.read()))
            columns = [np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64) for column in table.columns]
        except (ValueError, TypeError) as exc:
            raise UserError(f"Failed to load parquet data with exception:\n{exc} ({path.name}; every column must be numeric)") from None
        except Exception as exc:  # pyarrow's own errors (ArrowInvalid, ...) have no common base outside pyarrow
            raise UserError(f"Failed to load parquet data with exception:\n{exc} ({path.name})") from None
        blocks.append(np.column_stack(columns) if columns else np.empty((0, 0)))
    table_ = np.vstack(blocks)
    if table_.ndim != 2 or table_.shape[1] < 2:
        raise UserError("application/x-parquet data needs a label column and at least one feature column")
    return Dataset(table_[:, 1:], table_[:, 0])
