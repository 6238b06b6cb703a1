"""The step runners of the local engine, by step type."""

from __future__ import annotations

from typing import Protocol

from sagelab.definition import PipelineDefinition
from sagelab.engines.local.checks import CheckRunner
from sagelab.engines.local.condition import ConditionRunner, FailRunner
from sagelab.engines.local.hosting import EndpointRunner, RecordRunner
from sagelab.engines.local.job import Job, StepResult
from sagelab.engines.local.processing import ProcessingRunner
from sagelab.engines.local.register import RegisterModelRunner
from sagelab.engines.local.training import TrainingRunner
from sagelab.engines.local.transform import TransformRunner
from sagelab.engines.local.tuning import TuningRunner
from sagelab.errors import Problem


class StepRunner(Protocol):
    def run(self, job: Job) -> StepResult: ...


# Step type → runner. Adding a step type is adding a runner module and a line here.
RUNNERS: dict[str, StepRunner] = {
    "Processing": ProcessingRunner(),
    "Training": TrainingRunner(),
    "Condition": ConditionRunner(),
    "Fail": FailRunner(),
    "RegisterModel": RegisterModelRunner(),
    "Model": RecordRunner("model", "ModelName"),
    "EndpointConfig": RecordRunner("endpoint-config", "EndpointConfigName"),
    "Endpoint": EndpointRunner(),
    "Transform": TransformRunner(),
    "Tuning": TuningRunner(),
    "QualityCheck": CheckRunner(),
    "ClarifyCheck": CheckRunner(),
}
# Quick steps that start no process: they run on the scheduler's own thread.
INLINE = {"Condition", "Fail", "RegisterModel", "Model", "EndpointConfig"}


def unsupported_steps(definition: PipelineDefinition) -> list[Problem]:
    """A problem for each step the local engine cannot run, so nothing is ever silently skipped."""
    return [
        Problem(f"{step.pointer}/Type", f"step {step.name}: {step.type} steps do not run locally yet; sagelab runs {', '.join(RUNNERS)}")
        for step in definition.all_steps()
        if step.type not in RUNNERS
    ]
