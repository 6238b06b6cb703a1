"""The framework containers' default handlers: what runs when the user's module omits a function.

`SklearnDefaults` follows sagemaker-scikit-learn-container (`handler_service.py`):
input_fn decodes with the default codecs, reshapes a 1-D array to one row and casts JSON/CSV
to float32; predict_fn is `model.predict`; output_fn encodes to the first supported Accept type.
The container has *no* default model_fn (it raises); sagelab's local default loads
`model.joblib`, `model.pkl` or `model.pickle` from the model folder when the user gives none.

`XGBoostDefaults` follows sagemaker-xgboost-container's algorithm mode (`serve_utils.py`,
`encoder.py`): model_fn loads `xgboost-model` (or the folder's only file) with pickle, else with
`Booster.load_model`; input_fn reads text/csv and text/libsvm into a DMatrix; predict_fn calls
`predict(dmatrix, validate_features=False)`; a missing Accept means text/csv. xgboost is optional.
"""

from __future__ import annotations

import importlib
import pickle
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.errors import ModelError
from sagelab.serving import codecs, protocol
from sagelab.serving.protocol import InvocationError

SKLEARN_MODEL_FILES = ("model.joblib", "model.pkl", "model.pickle")
XGBOOST_MODEL_FILE = "xgboost-model"
_TEXT_TYPES = frozenset({protocol.JSON, protocol.CSV, protocol.JSONLINES})


def negotiate(accept: str, default_accept: str) -> str:
    """The first type in `accept` that the default output_fn can encode (`*/*` means the default).

    Raises:
        InvocationError: 406 when none can be encoded.
    """
    for media in protocol.parse_accept(accept):
        if media == protocol.ANY:
            media = protocol.media_type(default_accept)
        codec = codecs.codec_for(media)
        if codec is not None and codec.encode is not None:
            return media
    raise InvocationError(406, f"cannot answer with Accept: {accept}; the default output_fn encodes "
                               f"{', '.join(codecs.encodable())} (or provide an output_fn)")  # fmt: skip


class SklearnDefaults:
    """Default handlers of the SageMaker scikit-learn container (plus a local default model_fn)."""

    name = "sklearn"
    framework_accept = protocol.JSON

    def __init__(self, default_accept: str | None = None) -> None:
        self.default_accept = default_accept or self.framework_accept

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        """Load model.joblib / model.pkl / model.pickle with joblib (a local convenience, see module doc)."""
        folder = Path(model_dir)
        for name in SKLEARN_MODEL_FILES:
            path = folder / name
            if path.is_file():
                try:
                    joblib = importlib.import_module("joblib")
                except ImportError:  # pragma: no cover - joblib comes with scikit-learn
                    with open(path, "rb") as stream:
                        return pickle.load(stream)
                return joblib.load(path)
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelError(textwrap.dedent(f"""\
            Please provide a model_fn implementation: {model_dir} has no {' / '.join(SKLEARN_MODEL_FILES)} \
            (it holds {found}). SageMaker's scikit-learn container has no default model_fn; define \
            model_fn(model_dir) in code/inference.py, or save the model as model.joblib."""))

    @staticmethod
    def input_fn(input_data: bytes | str, content_type: str) -> Any:
        array = codecs.decode(input_data, content_type)
        if hasattr(array, "tocsr"):  # a sparse matrix from .npz or libsvm is already 2-D
            return array
        if array.ndim <= 1:
            array = array.reshape(1, -1)
        if protocol.media_type(content_type) in _TEXT_TYPES:
            try:
                return array.astype(np.float32)
            except (TypeError, ValueError):
                raise InvocationError(400, f"the {protocol.media_type(content_type)} payload is not numeric "
                                           f"(got {array.dtype} values); the default input_fn expects numbers only, "
                                           "such as [[5.1, 3.5, 1.4, 0.2]] or 5.1,3.5,1.4,0.2") from None  # fmt: skip
        return array

    @staticmethod
    def predict_fn(input_data: Any, model: Any) -> Any:
        return model.predict(input_data)

    def output_fn(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        media = negotiate(accept, self.default_accept)
        return codecs.encode(prediction, media), media


def _xgboost() -> Any:
    try:
        xgboost = importlib.import_module("xgboost")
    except ImportError:
        raise ModelError("the XGBoost default handlers need the xgboost package, which is not installed: "
                         "pip install xgboost (or xgboost-cpu), or provide model_fn/input_fn/predict_fn") from None  # fmt: skip
    return xgboost


class XGBoostDefaults:
    """Default handlers of the SageMaker XGBoost container (algorithm mode)."""

    name = "xgboost"
    framework_accept = protocol.CSV

    def __init__(self, default_accept: str | None = None) -> None:
        self.default_accept = default_accept or self.framework_accept

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        xgb = _xgboost()
        folder = Path(model_dir)
        path = folder / XGBOOST_MODEL_FILE
        if not path.is_file():
            files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            if len(files) != 1:
                listed = ", ".join(p.name for p in files) or "no files"
                raise ModelError(f"{model_dir} has no {XGBOOST_MODEL_FILE} and not exactly one model file "
                                 f"({listed}); save the booster as {XGBOOST_MODEL_FILE} or provide model_fn")  # fmt: skip
            path = files[0]
        try:
            with open(path, "rb") as stream:
                model = pickle.load(stream)
        except Exception as pickle_error:
            model = xgb.Booster()
            try:
                with warnings.catch_warnings():  # `xgboost-model` has no extension: XGBoost warns that it guesses
                    warnings.filterwarnings("ignore", message=".*Unknown file format", category=UserWarning)
                    model.load_model(str(path))
            except Exception as xgb_error:
                raise ModelError(f"model {path} cannot be loaded:\npickle load error={pickle_error}\n"
                                 f"XGBoost load_model error={xgb_error}") from None  # fmt: skip
        if hasattr(model, "set_param"):
            model.set_param("nthread", 1)
        return model

    @staticmethod
    def input_fn(input_data: bytes | str, content_type: str) -> Any:
        xgb = _xgboost()
        media = protocol.media_type(content_type)
        if media not in (protocol.CSV, protocol.LIBSVM, protocol.X_LIBSVM):
            raise InvocationError(415, f"content type {content_type} is not supported by the XGBoost default input_fn; "
                                       "send text/csv or text/libsvm, or provide an input_fn")  # fmt: skip
        codec = codecs.codec_for(media)
        try:
            matrix = codecs.csv_to_matrix(input_data) if media == protocol.CSV else codecs.libsvm_to_sparse(input_data)
        except (ValueError, UnicodeDecodeError) as exc:
            expected = codec.expected if codec is not None else media
            raise InvocationError(400, f"the {media} payload could not be decoded: {exc}; expected {expected}") from None
        return xgb.DMatrix(matrix)

    @staticmethod
    def predict_fn(input_data: Any, model: Any) -> Any:
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        return booster.predict(input_data, validate_features=False)

    def output_fn(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        media = negotiate(accept, self.default_accept)
        return codecs.encode(prediction, media), media


FRAMEWORK_DEFAULTS: dict[str, type[SklearnDefaults | XGBoostDefaults]] = {
    SklearnDefaults.name: SklearnDefaults,
    XGBoostDefaults.name: XGBoostDefaults,
}


def detect_framework(model_dir: Path) -> str:
    """`xgboost` when the folder holds `xgboost-model`, else `sklearn`."""
    return XGBoostDefaults.name if (model_dir / XGBOOST_MODEL_FILE).is_file() else SklearnDefaults.name
