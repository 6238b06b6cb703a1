"""`ConditionRunner` and `FailRunner`: the control-flow steps, which run no process."""

from __future__ import annotations

from typing import Any

from sagelab.definition import ExpressionError, evaluate_conditions
from sagelab.engines.local.job import Job, StepFailed, StepResult


class _Resolved:
    """The scope for arguments the engine has already resolved: nothing is left to look up."""

    def __getattr__(self, name: str) -> Any:
        raise ExpressionError(f"unresolved expression reached the condition ({name})")


class ConditionRunner:
    """Evaluates the (ANDed) conditions; the engine then runs IfSteps or ElseSteps."""

    def run(self, job: Job) -> StepResult:
        try:
            outcome = evaluate_conditions(job.arguments.get("Conditions", []), _Resolved())
        except (ExpressionError, KeyError) as exc:
            raise StepFailed(f"cannot evaluate the conditions: {exc}") from None
        return StepResult({"Outcome": outcome})


class FailRunner:
    """Stops the execution as failed, with the step's ErrorMessage as the reason."""

    def run(self, job: Job) -> StepResult:
        raise StepFailed(str(job.arguments.get("ErrorMessage", "")) or f"step {job.step.name} failed the execution")
