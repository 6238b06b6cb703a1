"""Serving models as SageMaker does: the inference server, batch transform, local endpoints.

    python -m sagelab.serving MODEL            the inference server (GET /ping, POST /invocations)
    python -m sagelab.serving PIPELINE.json    a pipeline model: each request through its containers
    python -m sagelab.serving.batch ...        batch transform over a folder of files

Importing this package stays light: uvicorn, numpy and the model's framework load only when
a server or a handler is started.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sagelab.serving.archive import extract_model, resolve_model
from sagelab.serving.pipeline_model import ContainerModel, PipelineModel
from sagelab.serving.protocol import ServingSettings
from sagelab.serving.server import serve

if TYPE_CHECKING:
    from sagelab.serving.batch import TransformConfig, transform
    from sagelab.serving.handlers import InferenceHandler, load_handler

_LAZY = {
    "InferenceHandler": "sagelab.serving.handlers",
    "load_handler": "sagelab.serving.handlers",
    "TransformConfig": "sagelab.serving.batch",
    "transform": "sagelab.serving.batch",
}

__all__ = [
    "ContainerModel",
    "InferenceHandler",
    "PipelineModel",
    "ServingSettings",
    "TransformConfig",
    "extract_model",
    "load_handler",
    "resolve_model",
    "serve",
    "transform",
]


def __getattr__(name: str) -> Any:
    """Import the heavier parts (numpy, handlers) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sagelab.serving' has no attribute {name!r}")
