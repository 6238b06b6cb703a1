"""Load a model and its inference code the way SageMaker's inference toolkits do, and answer requests.

The user's module is SAGEMAKER_PROGRAM (default `inference.py`) in `<model>/code/`, or in
SAGEMAKER_SUBMIT_DIRECTORY (a local folder or .tar.gz); its folder goes first on sys.path.
`code/requirements.txt` is installed by the local engine (engines/local/deploy.py), which starts
the server on an environment built with it (SAGELAB_SERVING_PYTHON); a model served here without
one (`python -m sagelab.serving FOLDER`) gets a note and the packages of this environment.

From the module, as sagemaker-inference-toolkit's `Transformer` reads it:
- `model_fn(model_dir)`, `input_fn(input_data, content_type)`, `predict_fn(input_data, model)`,
  `output_fn(prediction, accept)`; each missing one is the framework's default (see defaults.py);
- or `transform_fn(model, input_data, content_type, accept)` alone: defining it together with
  input_fn, predict_fn or output_fn is an error;
- optional `pre_model_fn(model_dir)`, `model_warmup_fn(model_dir, model)` and
  `execution_parameters_fn()`;
- any of them may take one extra trailing `context` argument.
input_data is a str for application/json and text/csv, bytes otherwise. A missing Accept or
`*/*` means SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (else the framework's default); a missing
Content-Type means application/json (sagemaker-containers' rule).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.errors import ModelError
from sagelab.serving import protocol
from sagelab.serving.archive import code_dir, resolve_model
from sagelab.serving.defaults import defaults_for, detect_framework
from sagelab.serving.protocol import InvocationError, Reply, ServingSettings
from sagelab.serving.repeated_errors import RepeatedErrors

logger = logging.getLogger("sagelab.serving")
REPEATED_ERRORS = RepeatedErrors(logger)  # one per server process: its log shows each distinct model error once, then counts
HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn",
                 "pre_model_fn", "model_warmup_fn", "execution_parameters_fn")  # fmt: skip


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


@dataclass
class Context:
    """The `context` argument a handler may take: a small stand-in for the model server's context."""

    model_dir: str
    system_properties: dict[str, Any] = field(default_factory=dict)
    request_processor: list[_RequestProcessor] = field(default_factory=lambda: [_RequestProcessor({})])

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_processor[idx].get_request_properties().get(key.lower())


def _arity(func: Callable[..., Any]) -> int:
    return len(inspect.signature(func).parameters)


def _on_its_environment() -> bool:
    """Whether this server runs on the environment the local engine built with the model's requirements.txt."""
    from sagelab.serving.spawn import runs_on

    python = os.environ.get(protocol.PYTHON_ENV)
    return bool(python) and runs_on(str(python))


def _module_file(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / f"{name}.py", folder / name / "__init__.py") if p.is_file()), None)


def load_user_module(model_dir: Path, settings: ServingSettings) -> Any | None:
    """Import the user's inference module, or None when there is none (all defaults)."""
    folder = code_dir(model_dir, settings)
    name = settings.module_name
    if folder is None or (path := _module_file(folder, name)) is None:
        if settings.program is not None:
            where = folder if folder is not None else model_dir / "code"
            raise ModelError(f"{protocol.PROGRAM_ENV}={settings.program}, but there is no {name}.py in {where}")
        return None
    if (folder / "requirements.txt").is_file() and not _on_its_environment():
        logger.warning("note: %s is not installed by sagelab here (SageMaker pip-installs it when the container starts; "
                       "so does sagelab for a model served from a project); the model is served with this environment's "
                       "packages", folder / "requirements.txt")  # fmt: skip
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # as the toolkit puts the code folder on PYTHONPATH
    package = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a spec
        raise ModelError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise ModelError(f"importing the inference code {path} failed:\n{traceback.format_exc(limit=-3)}") from None
    return module


class InferenceHandler:
    """A loaded model with its handler functions: turns a request body into a Reply."""

    def __init__(self, model_dir: Path, settings: ServingSettings | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.settings = settings or ServingSettings()
        framework = self.settings.framework
        self.framework = detect_framework(self.model_dir) if framework == "auto" else framework
        self.defaults = defaults_for(self.framework, self.settings.default_accept, self.settings.program is not None)
        self.default_accept = self.defaults.default_accept
        self.context = Context(str(self.model_dir), {"model_dir": str(self.model_dir), "gpu_id": None})
        module = load_user_module(self.model_dir, self.settings)
        user = {n: getattr(module, n) for n in HANDLER_NAMES if module is not None and callable(getattr(module, n, None))}
        if "transform_fn" in user and {"input_fn", "predict_fn", "output_fn"} & user.keys():
            others = ", ".join(sorted({"input_fn", "predict_fn", "output_fn"} & user.keys()))
            source = getattr(module, "__file__", "the inference module")
            raise ModelError(f"{source} defines transform_fn and {others}: transform_fn replaces input_fn, predict_fn "
                             "and output_fn, so define either transform_fn alone or the others")  # fmt: skip
        self.user_functions = sorted(user)
        image = self.settings.image
        if image is not None and "model_fn" not in user and not self.defaults.container_has_model_fn:
            where = getattr(module, "__file__", None) or f"{protocol.PROGRAM_ENV} ({protocol.DEFAULT_PROGRAM})"
            raise ModelError(f"Please provide a model_fn implementation: the {self.framework} container {image} has no "
                             f"default model_fn, so SageMaker would fail to load this model; define model_fn(model_dir) "
                             f"in {where}")  # fmt: skip
        self._model_fn = self._bind(user, "model_fn", 1) or self.defaults.model_fn
        self._input_fn = self._bind(user, "input_fn", 2) or self.defaults.input_fn
        self._predict_fn = self._bind(user, "predict_fn", 2) or self.defaults.predict_fn
        self._output_fn = self._bind(user, "output_fn", 2) or self.defaults.output_fn
        self._transform_fn = self._bind(user, "transform_fn", 4)
        self._pre_model_fn = self._bind(user, "pre_model_fn", 1)
        self._warmup_fn = self._bind(user, "model_warmup_fn", 2)
        self._execution_parameters_fn = self._bind(user, "execution_parameters_fn", 0)
        self.model: Any = None
        self.loaded = False

    def _bind(self, user: dict[str, Callable[..., Any]], name: str, args: int) -> Callable[..., Any] | None:
        """The user's function, given `context` last if it takes one argument more (the toolkit's rule)."""
        func = user.get(name)
        if func is None:
            return None
        try:
            count = _arity(func)
        except (TypeError, ValueError):  # builtins without a signature: call as is
            return func
        if count == args:
            return func
        if count == args + 1:
            context = self.context
            return lambda *argv: func(*argv, context)
        raise ModelError(f"{name} takes {count} arguments, but SageMaker calls it with {args} (or {args} and a context)")

    def load(self) -> InferenceHandler:
        """Run pre_model_fn, model_fn and model_warmup_fn; errors there are the user's (ModelError)."""
        model_dir = str(self.model_dir)
        try:
            if self._pre_model_fn is not None:
                self._pre_model_fn(model_dir)
            self.model = self._model_fn(model_dir)
            if self._warmup_fn is not None:
                self._warmup_fn(model_dir, self.model)
        except ModelError:
            raise
        except Exception:
            raise ModelError(f"loading the model from {model_dir} failed:\n{traceback.format_exc(limit=-3)}") from None
        self.loaded = True
        return self

    # -- answering --------------------------------------------------------------------

    @property
    def batchable(self) -> bool:
        """Whether concurrent requests may share one predict call: only with the default scikit-learn
        input_fn, predict_fn and output_fn on a scikit-learn estimator, whose predict is row-wise."""
        if not self.settings.micro_batching or self.framework != "sklearn" or not self.loaded:
            return False
        if {"input_fn", "predict_fn", "output_fn", "transform_fn"} & set(self.user_functions):
            return False
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(self.model, base.BaseEstimator)

    def _request(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[bytes | str, str, str]:
        content_type = content_type or protocol.JSON
        if not accept or accept.strip() == protocol.ANY:
            accept = self.default_accept
        data: bytes | str = body
        if protocol.media_type(content_type) in protocol.UTF8_TYPES:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvocationError(400, f"the {content_type} payload is not UTF-8 text: {exc}") from None
        return data, content_type, accept

    def invoke(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        """Answer one request; raises InvocationError for a refused request, and whatever the model raises."""
        data, content_type, accept = self._request(body, content_type, accept)
        if headers is not None:
            self.context.request_processor = [_RequestProcessor(headers)]
        if self._transform_fn is not None:
            return self._reply(self._transform_fn(self.model, data, content_type, accept), accept)
        if "output_fn" not in self.user_functions:
            self.defaults.negotiate(accept)  # refuse an unanswerable Accept before predicting
        prediction = self._predict_fn(self._input_fn(data, content_type), self.model)
        return self._reply(self._output_fn(prediction, accept), accept)

    def handle(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        """`invoke`, with every error turned into an error Reply (the server never dies on input)."""
        try:
            return self.invoke(body, content_type, accept, headers)
        except BaseException as exc:  # even sys.exit() in user code must not stop the server
            return error_reply(exc)

    # Used by micro-batching, which runs the default handlers' steps itself.
    def prepare(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[Any, str]:
        """Decode one request with the default input_fn, and pick its response type."""
        data, content_type, accept = self._request(body, content_type, accept)
        media = self.defaults.negotiate(accept)
        return self.defaults.input_fn(data, content_type), media

    def predict(self, data: Any) -> Any:
        return self._predict_fn(data, self.model)

    def encode(self, prediction: Any, media: str) -> Reply:
        body, content_type = self.defaults.output_fn(prediction, media)
        return Reply(200, body, content_type)

    def execution_parameters(self, workers: int) -> Reply:
        """GET /execution-parameters: the user's execution_parameters_fn, else what the containers answer."""
        if self._execution_parameters_fn is not None:
            return self._reply(self._execution_parameters_fn(), protocol.JSON)
        parameters = {"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD",
                      "MaxPayloadInMB": int(self.settings.max_payload_mb)}  # fmt: skip
        return Reply(200, json.dumps(parameters).encode(), protocol.JSON)

    @staticmethod
    def _reply(result: Any, accept: str) -> Reply:
        """A handler's return value as a Reply: (body, content_type), a body, or a Flask-style response."""
        status, content_type = 200, (protocol.parse_accept(accept) or [accept])[0]
        if isinstance(result, tuple) and len(result) == 2:
            result, content_type = result
        elif hasattr(result, "get_data") and hasattr(result, "status_code"):  # sagemaker_containers worker.Response
            status, content_type = int(result.status_code), getattr(result, "content_type", None) or content_type
            result = result.get_data()
        elif isinstance(result, dict):  # an execution_parameters_fn may return the parameters
            result = json.dumps(result)
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, (bytes, bytearray, memoryview)):
            raise TypeError(f"the handler returned {type(result).__name__}; output_fn and transform_fn must return "
                            "bytes or str, or a (body, content_type) tuple")  # fmt: skip
        return Reply(status, bytes(result), str(content_type))


def error_reply(exc: BaseException) -> Reply:
    """The Reply for an exception: its status if it carries one (InvocationError, the toolkit's
    BaseInferenceToolkitError), else 500 with the traceback logged to stderr."""
    if isinstance(exc, InvocationError):
        return Reply.error(exc.status, exc.message)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        message = getattr(exc, "message", None) or str(exc)
        if status >= 500:
            REPEATED_ERRORS.report(f"the model answered {status}", exc)
        return Reply.error(status, str(message))
    REPEATED_ERRORS.report(f"the model raised {type(exc).__name__}", exc)
    return Reply.error(500, f"the model raised {type(exc).__name__}: {exc} (traceback in the server log)")


def load_handler(model: Path, settings: ServingSettings | None = None) -> InferenceHandler:
    """The handler for a model folder or archive, with its model loaded."""
    return InferenceHandler(resolve_model(model), settings).load()
