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
With SAGEMAKER_PROGRAM the same image runs in framework mode (`serving.py`): the user's module,
and for what it omits the same input_fn and predict_fn, an output_fn that encodes JSON, CSV or
NPY, and a missing Accept meaning application/json; there is no default model_fn.

`PyTorchDefaults` follows sagemaker-pytorch-inference-toolkit (`default_pytorch_inference_handler.py`,
2.0.7 and later): model_fn loads the TorchScript `model.pt` (else the folder's only .pt/.pth file)
with `torch.jit.load` on the CPU; input_fn makes a float32 tensor of JSON or CSV (`torch.from_numpy`
for NPY); predict_fn calls `model(data)` in eval mode under `torch.no_grad()`; output_fn encodes
JSON, CSV or NPY. torch is optional.

Where the real container has no default model_fn (scikit-learn, XGBoost framework mode), a
model whose image sagelab knows (`ServingSettings.image`) must bring one, as on SageMaker; the
local model_fn conveniences serve only models without an image (a folder given to the server).
"""

from __future__ import annotations

import importlib
import pickle
from abc import ABC, abstractmethod
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
PYTORCH_MODEL_FILE = "model.pt"  # the toolkit's DEFAULT_MODEL_FILENAME
_TEXT_TYPES = frozenset({protocol.JSON, protocol.CSV, protocol.JSONLINES})
# What sagemaker_inference's and sagemaker_containers' encoders write (and, but for .npz, their decoders read).
_TOOLKIT_TYPES = frozenset({protocol.JSON, protocol.CSV, protocol.NPY})
_NEGOTIATIONS_KEPT = 64


def negotiate(accept: str, default_accept: str, encodes: frozenset[str] | None = None) -> str:
    """The first type in `accept` that the default output_fn can encode (`*/*` means the default).

    Args:
        encodes: the types the container's output_fn writes; None means every registered codec.

    Raises:
        InvocationError: 406 when none can be encoded.
    """
    for media in protocol.parse_accept(accept):
        if media == protocol.ANY:
            media = protocol.media_type(default_accept)
        codec = codecs.codec_for(media)
        if codec is not None and codec.encode is not None and (encodes is None or media in encodes):
            return media
    listed = ", ".join(sorted(encodes) if encodes is not None else codecs.encodable())
    raise InvocationError(406, f"cannot answer with Accept: {accept}; the default output_fn encodes {listed} "
                               "(or provide an output_fn)")  # fmt: skip


class Defaults(ABC):
    """What every framework's defaults share: the response type for a missing Accept, and output_fn."""

    name = ""
    framework_accept = protocol.JSON
    encodes: frozenset[str] | None = None  # what output_fn writes; None: every registered codec
    container_has_model_fn = True  # False: the real container raises without the user's model_fn

    def __init__(self, default_accept: str | None = None) -> None:
        self.default_accept = default_accept or self.framework_accept
        self._negotiated: dict[str, str] = {}  # Accept header -> response type, for the few headers clients send

    def negotiate(self, accept: str) -> str:
        media = self._negotiated.get(accept)
        if media is None:
            media = negotiate(accept, self.default_accept, self.encodes)
            if len(self._negotiated) < _NEGOTIATIONS_KEPT:
                self._negotiated[accept] = media
        return media

    @staticmethod
    @abstractmethod
    def model_fn(model_dir: str) -> Any:
        """Load the model from its folder."""

    @staticmethod
    @abstractmethod
    def input_fn(input_data: bytes | str, content_type: str) -> Any:
        """Decode a request body."""

    @staticmethod
    @abstractmethod
    def predict_fn(input_data: Any, model: Any) -> Any:
        """Predict on decoded input."""

    def output_fn(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        media = self.negotiate(accept)
        return codecs.encode(prediction, media), media


class SklearnDefaults(Defaults):
    """Default handlers of the SageMaker scikit-learn container (plus a local default model_fn)."""

    name = "sklearn"
    container_has_model_fn = False

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


def _xgboost() -> Any:
    try:
        xgboost = importlib.import_module("xgboost")
    except ImportError:
        raise ModelError("the XGBoost default handlers need the xgboost package, which is not installed: "
                         "pip install xgboost (or xgboost-cpu), or provide model_fn/input_fn/predict_fn") from None  # fmt: skip
    return xgboost


class XGBoostDefaults(Defaults):
    """Default handlers of the SageMaker XGBoost container (algorithm mode)."""

    name = "xgboost"
    framework_accept = protocol.CSV

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


class XGBoostFrameworkDefaults(XGBoostDefaults):
    """The XGBoost container in framework mode (SAGEMAKER_PROGRAM set): what the user's module omits."""

    framework_accept = protocol.JSON
    encodes = _TOOLKIT_TYPES
    container_has_model_fn = False


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise ModelError("the PyTorch default handlers need the torch package, which is not installed: "
                         "pip install torch, or provide model_fn/input_fn/predict_fn/output_fn") from None  # fmt: skip


class PyTorchDefaults(Defaults):
    """Default handlers of the SageMaker PyTorch inference container."""

    name = "pytorch"
    encodes = _TOOLKIT_TYPES

    @staticmethod
    def model_fn(model_dir: str) -> Any:
        torch = _torch()
        folder = Path(model_dir)
        path = folder / PYTORCH_MODEL_FILE
        if not path.is_file():
            files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".pt", ".pth"))
            if len(files) != 1:
                raise ModelError(f"Exactly one .pth or .pt file is required for PyTorch models: {files} in {model_dir}; "
                                 f"save the TorchScript model as {PYTORCH_MODEL_FILE} or provide model_fn")  # fmt: skip
            path = folder / files[0]
        try:
            return torch.jit.load(str(path), map_location=torch.device("cpu"))
        except RuntimeError as exc:
            raise ModelError(f"Failed to load {path}. Please ensure model is saved using torchscript "
                             f"(torch.jit.script or torch.jit.trace, then .save), or provide model_fn: {exc}") from None  # fmt: skip

    @staticmethod
    def input_fn(input_data: bytes | str, content_type: str) -> Any:
        torch = _torch()
        media = protocol.media_type(content_type)
        if media not in _TOOLKIT_TYPES:
            raise InvocationError(415, f"content type {content_type} is not supported by the PyTorch default input_fn; "
                                       f"send {', '.join(sorted(_TOOLKIT_TYPES))}, or provide an input_fn")  # fmt: skip
        array = codecs.decode(input_data, media)
        if media in protocol.UTF8_TYPES:
            try:
                return torch.tensor(np.asarray(array, dtype=np.float32))
            except (TypeError, ValueError):
                raise InvocationError(400, f"the {media} payload is not numeric; the PyTorch default input_fn "
                                           "makes a float tensor of it") from None  # fmt: skip
        return torch.from_numpy(array)

    @staticmethod
    def predict_fn(input_data: Any, model: Any) -> Any:
        torch = _torch()
        with torch.no_grad():
            model.eval()
            return model(input_data)

    def output_fn(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        if hasattr(prediction, "detach"):  # a tensor, as the toolkit converts it
            prediction = prediction.detach().cpu().numpy().tolist()
        return super().output_fn(prediction, accept)


FRAMEWORK_DEFAULTS: dict[str, type[Defaults]] = {
    SklearnDefaults.name: SklearnDefaults,
    XGBoostDefaults.name: XGBoostDefaults,
    PyTorchDefaults.name: PyTorchDefaults,
}


def defaults_for(framework: str, default_accept: str | None, framework_mode: bool) -> Defaults:
    """The defaults of `framework`; XGBoost's framework mode when the model names a SAGEMAKER_PROGRAM."""
    if framework == XGBoostDefaults.name and framework_mode:
        return XGBoostFrameworkDefaults(default_accept)
    return FRAMEWORK_DEFAULTS[framework](default_accept)


def detect_framework(model_dir: Path) -> str:
    """`xgboost` when the folder holds `xgboost-model`, `pytorch` for `model.pt`, else `sklearn`."""
    if (model_dir / XGBOOST_MODEL_FILE).is_file():
        return XGBoostDefaults.name
    if (model_dir / PYTORCH_MODEL_FILE).is_file():
        return PyTorchDefaults.name
    return SklearnDefaults.name
