"""The step runners of the local engine, by step type."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import Protocol

from sagelab.definition import PipelineDefinition
from sagelab.engines.local.job import Job, StepResult
from sagelab.errors import Problem


class StepRunner(Protocol):
    def run(self, job: Job) -> StepResult: ...


# Step type → the module (under sagelab.engines.local), class and arguments of its runner.
# Adding a step type is adding a runner module and a line here.
_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Processing": ("processing", "ProcessingRunner", ()),
    "Training": ("training", "TrainingRunner", ()),
    "Condition": ("condition", "ConditionRunner", ()),
    "Fail": ("condition", "FailRunner", ()),
    "RegisterModel": ("register", "RegisterModelRunner", ()),
    "Model": ("hosting", "RecordRunner", ("model", "ModelName")),
    "EndpointConfig": ("hosting", "RecordRunner", ("endpoint-config", "EndpointConfigName")),
    "Endpoint": ("hosting", "EndpointRunner", ()),
    "Transform": ("transform", "TransformRunner", ()),
    "Tuning": ("tuning", "TuningRunner", ()),
    "QualityCheck": ("checks", "CheckRunner", ()),
    "ClarifyCheck": ("checks", "CheckRunner", ()),
    "EMR": ("emr", "EMRRunner", ()),
}
# Quick steps that start no process: they run on the scheduler's own thread.
INLINE = {"Condition", "Fail", "RegisterModel", "Model", "EndpointConfig"}


class _Runners(Mapping[str, StepRunner]):
    """Step type → runner, each made (its module imported) when a step of its type first runs.

    A pipeline of Processing steps never imports the serving stack, the registry or the check
    containers, so `sagelab run` starts faster.
    """

    def __init__(self) -> None:
        self._made: dict[str, StepRunner] = {}
        self._lock = threading.Lock()

    def __getitem__(self, step_type: str) -> StepRunner:
        with self._lock:
            if step_type not in self._made:
                module, name, arguments = _SPECS[step_type]
                self._made[step_type] = getattr(importlib.import_module(f"sagelab.engines.local.{module}"), name)(*arguments)
            return self._made[step_type]

    def __iter__(self) -> Iterator[str]:
        return iter(_SPECS)

    def __len__(self) -> int:
        return len(_SPECS)


RUNNERS = _Runners()


def unsupported_steps(definition: PipelineDefinition) -> list[Problem]:
    """A problem for each step the local engine cannot run, so nothing is ever silently skipped."""
    problems = [
        Problem(f"{step.pointer}/Type", f"step {step.name}: {step.type} steps do not run locally yet; sagelab runs {', '.join(RUNNERS)}")
        for step in definition.all_steps()
        if step.type not in RUNNERS
    ]
    emr_steps = [step for step in definition.all_steps() if step.type == "EMR"]
    if emr_steps:  # only then: the EMR runner's module imports the Spark parts
        from sagelab.engines.local.emr import command_problem

        problems += [problem for step in emr_steps if (problem := command_problem(step)) is not None]
    return problems
