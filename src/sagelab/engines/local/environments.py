"""`sagelab envs prepare`: build, ahead of a run, the image environments a pipeline's steps need.

For CI (a job that prepares, then runs offline) and for working without the network: every
Training, Processing and Tuning step's image is read from the definition — a literal URI, a
parameter's default, or another step's image through `Steps.X.AlgorithmSpecification.TrainingImage`
— and the environment of each image is built, or found built. A job's requirements.txt lives in
its code, which exists only when the step runs; its environment is built by the first run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sagelab.containers import environments, images
from sagelab.containers.environments.cache import StepLog
from sagelab.definition import PipelineDefinition, Step

__all__ = ["Prepared", "prepare_environments", "step_images"]


@dataclass(frozen=True)
class Prepared:
    """One image a pipeline uses, and what sagelab does for it."""

    image: str  # the image URI
    steps: tuple[str, ...]  # the steps on it
    environment: str  # "the image's environment <hash>", or why the steps run on sagelab's packages


def step_images(definition: PipelineDefinition) -> Iterator[tuple[Step, str]]:
    """(step, image URI) for every step that runs a container, where the image is known before the run."""
    by_step: dict[str, str] = {}
    for step in definition.all_steps():
        for spec in _algorithms(step):
            uri = _literal(spec.get("TrainingImage") or spec.get("ImageUri"), definition, by_step)
            if uri:
                by_step.setdefault(step.name, uri)
                yield step, uri


def prepare_environments(definition: PipelineDefinition, mode: str, log: StepLog) -> list[Prepared]:
    """Build the environment of every image the pipeline's steps name (each once), logging to `log`."""
    steps: dict[str, list[str]] = {}
    for step, uri in step_images(definition):
        steps.setdefault(uri, []).append(step.name)
    prepared = []
    for uri, names in steps.items():
        chosen = environments.plan(images.identify(uri), None, mode=mode)
        if chosen.spec is None:
            prepared.append(Prepared(uri, tuple(names), chosen.warning or 'sagelab\'s own packages (environment = "host")'))
            continue
        log.log(f"{chosen.spec.image} (steps {', '.join(names)})")
        runtime = environments.prepare(log, images.identify(uri), None, mode=mode)
        environments.prepare(log, images.identify(uri), None, mode=mode, serving=True)  # for the models it trains
        prepared.append(Prepared(uri, tuple(names), f"the image's environment {runtime.python}"))
    return prepared


def _algorithms(step: Step) -> Iterator[dict[str, Any]]:
    arguments = step.arguments
    if step.type == "Training":
        yield arguments.get("AlgorithmSpecification") or {}
    elif step.type == "Processing":
        yield arguments.get("AppSpecification") or {}
    elif step.type == "Tuning":
        for definition in [arguments.get("TrainingJobDefinition"), *(arguments.get("TrainingJobDefinitions") or [])]:
            if isinstance(definition, dict):
                yield definition.get("AlgorithmSpecification") or {}


def _literal(value: Any, definition: PipelineDefinition, by_step: dict[str, str]) -> str | None:
    """The image a value names before the run: a string, a parameter's default, or an earlier step's image."""
    if isinstance(value, str):
        return value
    reference = value.get("Get") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return None
    if reference.startswith("Parameters."):
        parameter = definition.parameters.get(reference.split(".", 1)[1])
        default = parameter.default if parameter is not None else None
        return default if isinstance(default, str) else None
    parts = reference.split(".")
    if len(parts) >= 3 and parts[0] == "Steps":
        return by_step.get(parts[1])
    return None
