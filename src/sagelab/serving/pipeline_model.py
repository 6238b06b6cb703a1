"""Pipeline models: several containers answering one request in turn, as SageMaker's inference pipelines.

A model whose CreateModel `Containers` (or whose registered InferenceSpecification) lists more
than one container is described to the server by a small JSON file, written by the local
engine: each container's model (a folder or model.tar.gz on this machine), its environment
(SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY, ... and the framework its image implies), its
hostname, and the InferenceExecutionConfig mode:

    {"Kind": "sagelab/pipeline-model", "Mode": "Serial",
     "Containers": [{"ContainerHostname": "preprocess", "Image": "...", "Model": "/path/model.tar.gz",
                     "Environment": {"SAGEMAKER_PROGRAM": "inference.py", ...}}, ...]}

`python -m sagelab.serving FILE.json` serves it (chain.py), and batch transform runs through it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.errors import ModelError
from sagelab.serving.protocol import ServingSettings

KIND = "sagelab/pipeline-model"
MODES = ("Serial", "Direct")


@dataclass(frozen=True)
class ContainerModel:
    """One container of a pipeline model, as its own inference server runs it."""

    hostname: str
    model: str  # a model folder or model.tar.gz on this machine
    environment: dict[str, str] = field(default_factory=dict)
    image: str = ""

    @property
    def label(self) -> str:
        """How errors and logs name the container: its hostname and image."""
        return f"{self.hostname} ({self.image.rsplit('/', 1)[-1]})" if self.image else self.hostname

    @property
    def settings(self) -> ServingSettings:
        """What the container's own environment asks of its server."""
        return ServingSettings.from_env(self.environment)

    def default_accept(self) -> str:
        """The response type of this container for a request without Accept."""
        from sagelab.serving.archive import resolve_model
        from sagelab.serving.defaults import defaults_for, detect_framework

        settings = self.settings
        framework = settings.framework if settings.framework != "auto" else detect_framework(resolve_model(self.model))
        return defaults_for(framework, settings.default_accept, settings.program is not None).default_accept


@dataclass(frozen=True)
class PipelineModel:
    """The containers of a model, in order, and how a request runs through them (Serial or Direct)."""

    containers: tuple[ContainerModel, ...]
    mode: str = "Serial"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ModelError(f"InferenceExecutionConfig Mode must be Serial or Direct, got {self.mode!r}")
        if not self.containers:
            raise ModelError("a pipeline model needs at least one container")
        names = [c.hostname for c in self.containers]
        if len(set(names)) != len(names):
            raise ModelError(f"the containers' ContainerHostname values must differ, got {', '.join(names)}")

    def save(self, path: Path) -> Path:
        """Write the description atomically; returns `path`."""
        document: dict[str, Any] = {
            "Kind": KIND,
            "Mode": self.mode,
            "Containers": [{"ContainerHostname": c.hostname, "Image": c.image, "Model": c.model, "Environment": c.environment}
                           for c in self.containers],
        }  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(document, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> PipelineModel:
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the pipeline model {path}: {exc}") from None
        if not isinstance(document, dict) or document.get("Kind") != KIND:
            raise ModelError(f"{path} is not a pipeline model description (its Kind is not {KIND!r})")
        containers = tuple(
            ContainerModel(str(c["ContainerHostname"]), str(c["Model"]), {str(k): str(v) for k, v in c.get("Environment", {}).items()},
                           str(c.get("Image", "")))  # fmt: skip
            for c in document.get("Containers", [])
        )
        return cls(containers, str(document.get("Mode", "Serial")))


def is_pipeline_model(path: Path | str) -> bool:
    """Whether `path` is a pipeline model description (a .json file) rather than a model folder or archive."""
    path = Path(path)
    return path.suffix == ".json" and path.is_file()
