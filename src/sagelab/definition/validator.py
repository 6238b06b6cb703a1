"""Checks that need the whole definition: names, references, property paths, visibility, cycles."""

from __future__ import annotations

import json
from difflib import get_close_matches
from functools import cache
from importlib import resources
from typing import Any

from sagelab.definition.expressions import Reference
from sagelab.definition.graph import dependencies, find_cycle, step_references
from sagelab.definition.model import EXECUTION_VARIABLES, PipelineDefinition, Step
from sagelab.definition.requests import request_problems
from sagelab.errors import DefinitionError, Problem

# Properties of step types whose shape is not a Describe* response.
_OTHER_SHAPES: dict[str, Any] = {
    "Condition": {"Outcome": "boolean"},
    "Fail": {},
    "Lambda": {"OutputParameters": ["map", "string"]},
    "Callback": {"OutputParameters": ["map", "string"]},
    # The S3 URIs SageMaker gives check steps (the SDK's QualityCheckStep/ClarifyCheckStep.properties).
    "QualityCheck": {
        "CalculatedBaselineConstraints": "string",
        "CalculatedBaselineStatistics": "string",
        "BaselineUsedForDriftCheckConstraints": "string",
        "BaselineUsedForDriftCheckStatistics": "string",
    },
    "ClarifyCheck": {"CalculatedBaselineConstraints": "string", "BaselineUsedForDriftCheckConstraints": "string"},
}


@cache
def describe_shapes() -> dict[str, Any]:
    """Step type → the shape of its properties, generated from botocore (tools/gen_describe_shapes.py)."""
    text = resources.files("sagelab.definition").joinpath("describe_shapes.json").read_text()
    return {**json.loads(text), **_OTHER_SHAPES}


def validate(definition: PipelineDefinition, source: str = "the definition") -> None:
    """Raise `DefinitionError` listing every problem, or return if there is none."""
    problems = find_problems(definition)
    if problems:
        raise DefinitionError(problems, source)


def find_problems(definition: PipelineDefinition) -> list[Problem]:
    problems: list[Problem] = []
    steps: dict[str, Step] = {}
    for step in definition.all_steps():
        if step.name in steps:
            problems.append(Problem(f"{step.pointer}/Name", f"step name {step.name} is used twice; step names must be unique"))
        steps.setdefault(step.name, step)
    for step in definition.all_steps():
        problems.extend(request_problems(step.type, step.arguments, f"{step.pointer}/Arguments"))
        for found in step_references(step):
            if isinstance(found, tuple):
                problems.append(Problem(*found))
            else:
                problems.extend(_check_reference(found, step, steps, definition))
        for index, name in enumerate(step.depends_on):
            pointer = f"{step.pointer}/DependsOn/{index}"
            if name == step.name:
                problems.append(Problem(pointer, f"step {step.name} depends on itself; remove it from its own DependsOn"))
            elif name not in steps:
                problems.append(Problem(pointer, f"step {step.name} depends on {name}, which does not exist{_hint(name, steps)}"))
            elif not _visible(steps[name], step):
                problems.append(Problem(pointer, _invisible(step, steps[name])))
    cycle = find_cycle(dependencies(definition))
    if cycle:
        first = steps[cycle[0]]
        problems.append(Problem(first.pointer, f"dependency cycle {' → '.join(cycle)}; remove one of these references or DependsOn entries"))
    return problems


def _check_reference(ref: Reference, step: Step, steps: dict[str, Step], definition: PipelineDefinition) -> list[Problem]:
    if ref.kind == "Parameters" and ref.name not in definition.parameters:
        declared = ", ".join(definition.parameters) or "none"
        return [Problem(ref.pointer, f"parameter {ref.name} is not declared{_hint(ref.name, definition.parameters)}; declared: {declared}")]
    if ref.kind == "Execution" and ref.name not in EXECUTION_VARIABLES:
        return [Problem(ref.pointer, f"Execution.{ref.name} is not an execution variable; use one of {', '.join(EXECUTION_VARIABLES)}")]
    if ref.kind != "Steps":
        return []
    target = steps.get(ref.name)
    if target is None:
        return [Problem(ref.pointer, f"{ref.text} names step {ref.name}, which does not exist{_hint(ref.name, steps)}")]
    if target is step:
        return [Problem(ref.pointer, f"step {step.name} refers to its own properties ({ref.text}), which only exist after it ran")]
    if not _visible(target, step):
        return [Problem(ref.pointer, _invisible(step, target))]
    if ref.path[:1] == ("PropertyFiles",):
        names = [f.name for f in target.property_files]
        if len(ref.path) != 2 or ref.path[1] not in names:
            return [Problem(ref.pointer, f"{ref.text}: step {target.name} declares property files {names or 'none'}")]
        return []
    message = _check_path(ref.path, target.type)
    return [Problem(ref.pointer, f"{ref.text}: {message}")] if message else []


def _check_path(path: tuple[str | int, ...], step_type: str) -> str | None:
    """Why `path` is not a property of a `step_type` step, or None when it is."""
    shape: Any = describe_shapes().get(step_type)
    if shape is None:  # a step type whose properties we do not model
        return None
    if not path:
        return f"name a property of the {step_type} step, for example {next(iter(shape), 'Outcome')}"
    walked: list[str | int] = []
    for token in path:
        if isinstance(shape, dict):
            if token not in shape:
                hint = _hint(str(token), shape)
                where = ".".join(map(str, walked)) or f"a {step_type} step"
                return f"{token} is not a property of {where}{hint}"
            shape = shape[token]
        elif isinstance(shape, list) and (shape[0] == "list" or isinstance(token, str)):
            shape = shape[1]  # a list takes [n] or ['name']; a map takes ['key']
        else:
            return f"{'.'.join(map(str, walked))} is a {shape if isinstance(shape, str) else shape[0]} and has no [{token!r}]"
        walked.append(token)
    return None


def _visible(target: Step, step: Step) -> bool:
    """A step sees top-level steps and steps of its own branch (or of branches enclosing it)."""
    return step.branch[: len(target.branch)] == target.branch


def _invisible(step: Step, target: Step) -> str:
    where = " / ".join(target.branch).replace(":if", " IfSteps").replace(":else", " ElseSteps")
    return (
        f"step {step.name} depends on {target.name}, which runs only inside the {where} branch; "
        f"move {step.name} into that branch or {target.name} out of it"
    )


def _hint(name: str, choices: Any) -> str:
    close = get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
