"""`sagemaker_containers.beta.framework`: the names framework scripts import from the legacy toolkit."""

from __future__ import annotations

from typing import Any

from ... import _content_types as content_types
from ... import _encoders as encoders
from ... import _env as env
from ... import _modules as modules
from ... import _transformer as transformer
from ... import _worker as worker
from ... import entry_point

__all__ = ["content_types", "encoders", "entry_point", "env", "modules", "training_env", "transformer", "worker"]


def training_env(resource_config: dict[str, Any] | None = None, input_data_config: dict[str, Any] | None = None,
                 hyperparameters: dict[str, Any] | None = None) -> env.TrainingEnv:  # fmt: skip
    """The training job's environment; each part not given is read from /opt/ml/input/config."""
    return env.TrainingEnv(resource_config, input_data_config, hyperparameters)
