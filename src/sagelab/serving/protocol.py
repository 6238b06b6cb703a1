"""The SageMaker inference container contract: environment variables, content types, request errors.

The names and defaults follow sagemaker-inference-toolkit (`parameters.py`, `environment.py`,
`content_types.py`) and sagemaker-containers (`_env.ServingEnv`, `_worker.Request`), which the
scikit-learn and XGBoost containers use. Nothing here imports anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from sagelab.errors import ModelError

# Environment variables a SageMaker model (CreateModel's Environment) sets for its container.
PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
# sagelab's own switches; not part of SageMaker's contract.
FRAMEWORK_ENV = "SAGELAB_SERVING_FRAMEWORK"
IMAGE_ENV = "SAGELAB_SERVING_IMAGE"  # the container's image, when known: its defaults apply exactly
MICRO_BATCHING_ENV = "SAGELAB_MICRO_BATCHING"
# The interpreter of an environment the local engine built with the model's requirements.txt: the
# process that starts the container's server starts it on this interpreter (spawn.interpreter).
PYTHON_ENV = "SAGELAB_SERVING_PYTHON"
# InvokeEndpoint's TargetContainerHostname: which container of a Direct-mode pipeline model answers.
TARGET_CONTAINER_HEADER = "x-amzn-sagemaker-target-container-hostname"
# InvokeEndpoint's CustomAttributes, to the model and back.
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"

DEFAULT_PROGRAM = "inference.py"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60
DEFAULT_MAX_PAYLOAD_MB = 6.0

# Content types (sagemaker_inference.content_types, plus the ones batch transform and XGBoost use).
JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
LIBSVM = "text/libsvm"
X_LIBSVM = "text/x-libsvm"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
# The toolkit hands these to input_fn / transform_fn as str, everything else as bytes.
UTF8_TYPES = frozenset({JSON, CSV})
FRAMEWORKS = ("auto", "sklearn", "xgboost", "pytorch")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer from the model side: status, body and its content type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def error(cls, status: int, message: str) -> Reply:
        return cls(status, (message.rstrip("\n") + "\n").encode("utf-8"))


class InvocationError(Exception):
    """A request the server refuses with a 4xx/5xx status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@lru_cache(maxsize=256)  # called several times a request with the same few headers
def media_type(content_type: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`: the part that selects a codec."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def parse_accept(accept: str) -> list[str]:
    """The media types of an Accept header in the order given (parameters such as q= dropped).

    The toolkit's `utils.parse_accept` splits on commas and tries each in turn; it does not sort by
    q-value, and neither does this.
    """
    return [media_type(part) for part in accept.split(",") if part.strip()]


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ModelError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ModelError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class ServingSettings:
    """What a model's environment variables ask of the inference server.

    Attributes:
        program: the user module's file name (SAGEMAKER_PROGRAM); None means inference.py if present.
        submit_directory: where that module lives when not in `<model>/code` (a folder or a .tar.gz).
        default_accept: the response type for a missing or `*/*` Accept; None means the
            framework's default (application/json; text/csv for the XGBoost defaults).
        max_payload_mb: the largest request body accepted (SAGEMAKER_MAX_PAYLOAD_IN_MB, default 6).
        workers: server processes (SAGEMAKER_MODEL_SERVER_WORKERS; from the environment, the CPU count by default, as
            the images' model servers start one worker per CPU).
        timeout: seconds a request may take in the model before it is answered 504.
        port: SAGEMAKER_BIND_TO_PORT, default 8080.
        framework: which default handlers to use: auto, sklearn, xgboost or pytorch.
        image: the container's image URI when sagelab knows it (a registered or recorded model);
            then the framework's defaults are the container's exactly, without local conveniences.
        micro_batching: whether concurrent requests to the default scikit-learn handlers may
            share one predict call.
    """

    program: str | None = None
    submit_directory: str | None = None
    default_accept: str | None = None
    max_payload_mb: float = DEFAULT_MAX_PAYLOAD_MB
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT
    port: int = DEFAULT_PORT
    framework: str = "auto"
    image: str | None = None
    micro_batching: bool = True

    @property
    def max_payload_bytes(self) -> int | None:
        """The body size limit in bytes, or None for no limit (MaxPayloadInMB 0, as batch transform allows)."""
        return int(self.max_payload_mb * 1024 * 1024) if self.max_payload_mb > 0 else None

    @property
    def module_name(self) -> str:
        """The importable name of the user module: `inference.py` -> `inference`."""
        program = self.program or DEFAULT_PROGRAM
        return program.removesuffix(".py")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Read the settings from environment variables (os.environ when `env` is None)."""
        env = os.environ if env is None else env
        framework = env.get(FRAMEWORK_ENV, "auto").strip().lower() or "auto"
        if framework not in FRAMEWORKS:
            raise ModelError(f"{FRAMEWORK_ENV} must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
        return cls(
            program=env.get(PROGRAM_ENV, "").strip() or None,
            submit_directory=env.get(SUBMIT_DIRECTORY_ENV, "").strip() or None,
            default_accept=env.get(DEFAULT_ACCEPT_ENV, "").strip() or None,
            max_payload_mb=_number(env, MAX_PAYLOAD_ENV, DEFAULT_MAX_PAYLOAD_MB, minimum=0),
            workers=int(_number(env, WORKERS_ENV, os.cpu_count() or 1, minimum=1)),
            timeout=_number(env, TIMEOUT_ENV, DEFAULT_TIMEOUT, minimum=1),
            port=int(_number(env, PORT_ENV, DEFAULT_PORT, minimum=0)),
            framework=framework,
            image=env.get(IMAGE_ENV, "").strip() or None,
            micro_batching=env.get(MICRO_BATCHING_ENV, "1").strip().lower() not in ("0", "false", "no", "off"),
        )
