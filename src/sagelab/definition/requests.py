"""A step's Arguments against the request shape of the SageMaker API call it stands for.

SageMaker Pipelines passes a Processing step's Arguments to CreateProcessingJob, a Training
step's to CreateTrainingJob, and so on; the service rejects what that API rejects. The shapes
come from botocore's model (tools/gen_request_shapes.py), so a typo in a member name, a string
where an integer goes, an unknown enum value or an out-of-range number is found before a run,
with its JSON location, instead of failing a step minutes in (or, locally, passing unnoticed).

Before a run a value may still be an expression (`Get`, `Std:Join`, `Std:JsonGet`) and is not
checked; the engine checks the resolved request again when the step starts.
"""

from __future__ import annotations

import json
from difflib import get_close_matches
from functools import cache
from importlib import resources
from typing import Any

from sagelab.definition.expressions import EXPRESSION_KEYS, escape_pointer, to_text
from sagelab.definition.model import CHECK_SETTINGS, CHECK_STEP_TYPES
from sagelab.errors import Problem

# SageMaker SDK local mode's instance types: sagelab runs them as any other (they cannot run on SageMaker).
LOCAL_INSTANCE_TYPES = ("local", "local_gpu")
_SCALARS: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "integer": ((int,), "an integer"),
    "long": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "double": ((int, float), "a number"),
    "boolean": ((bool,), "true or false"),
    "timestamp": ((str, int, float), "a timestamp"),
    "blob": ((str,), "a base64 string"),
}


@cache
def _model() -> dict[str, Any]:
    text = resources.files("sagelab.definition").joinpath("request_shapes.json").read_text()
    return dict(json.loads(text))


def request_problems(step_type: str, arguments: dict[str, Any], pointer: str, resolved: bool = False) -> list[Problem]:
    """Every way `arguments` do not fit the step type's API request; [] for types with no request.

    `resolved` arguments have had their expressions evaluated: a number or boolean that a parameter
    put where the API takes a string is passed as its text, as SageMaker Pipelines does.
    """
    request = _model()["requests"].get(step_type)
    if request is None:
        return []
    name, shape, filled = request
    if step_type in CHECK_STEP_TYPES:  # the check's own settings sit beside the request
        arguments = {key: value for key, value in arguments.items() if key not in CHECK_SETTINGS}
    checker = _Checker(name, set(filled), resolved)
    checker.check(arguments, shape, pointer, "Arguments")
    return checker.problems


class _Checker:
    def __init__(self, operation: str, filled: set[str], resolved: bool) -> None:
        self.operation = operation
        self.filled = filled  # top-level members the pipeline service supplies
        self.resolved = resolved
        self.problems: list[Problem] = []

    def problem(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, f"{message} ({self.operation})"))

    def check(self, value: Any, ref: str, pointer: str, name: str) -> None:
        if _is_expression(value):
            return
        if ref in _SCALARS:
            self.scalar(value, ref, {}, pointer, name)
            return
        shape = _model()["shapes"][ref]
        kind = shape["type"]
        if kind == "structure":
            self.structure(value, shape, pointer, name, top=name == "Arguments")
        elif kind == "list":
            if not isinstance(value, list):
                self.problem(pointer, f"{name} must be a list; got {_describe(value)}")
                return
            self.size(len(value), shape, pointer, name, "items")
            for index, item in enumerate(value):
                self.check(item, shape["member"], f"{pointer}/{index}", f"{name}[{index}]")
        elif kind == "map":
            if not isinstance(value, dict):
                self.problem(pointer, f"{name} must be an object; got {_describe(value)}")
                return
            self.size(len(value), shape, pointer, name, "entries")
            for key, item in value.items():
                self.check(key, shape["key"], pointer, f"a key of {name}")
                self.check(item, shape["value"], f"{pointer}/{escape_pointer(key)}", f"{name}.{key}")
        else:
            self.scalar(value, kind, shape, pointer, name)

    def structure(self, value: Any, shape: dict[str, Any], pointer: str, name: str, top: bool) -> None:
        if not isinstance(value, dict):
            self.problem(pointer, f"{name} must be an object; got {_describe(value)}")
            return
        members = shape["members"]
        for key, item in value.items():
            if key in members:
                self.check(item, members[key], f"{pointer}/{escape_pointer(key)}", key)
            else:
                close = get_close_matches(key, members, n=1)
                hint = f"did you mean {close[0]}?" if close else f"{name} takes {', '.join(members)}"
                self.problem(f"{pointer}/{escape_pointer(key)}", f"{key} is not a member of {name}; {hint}")
        for member in shape.get("required", ()):
            if member not in value and not (top and member in self.filled):
                self.problem(pointer, f"{member} is required in {name}")

    def scalar(self, value: Any, kind: str, shape: dict[str, Any], pointer: str, name: str) -> None:
        if self.resolved and kind == "string" and isinstance(value, (bool, int, float)):
            value = to_text(value)
        types, wanted = _SCALARS[kind]
        if isinstance(value, bool) != (kind == "boolean") or not isinstance(value, types):
            self.problem(pointer, f"{name} must be {wanted}; got {_describe(value)}")
            return
        if isinstance(value, str):
            self.size(len(value), shape, pointer, name, "characters")
            if "enum" in shape and value not in shape["enum"] and value not in _local_types(name):
                self.problem(pointer, _not_in_enum(name, value, shape["enum"]))
        elif isinstance(value, (int, float)) and kind != "timestamp":
            if "min" in shape and value < shape["min"]:
                self.problem(pointer, f"{name} must be at least {shape['min']}; got {value}")
            elif "max" in shape and value > shape["max"]:
                self.problem(pointer, f"{name} must be at most {shape['max']}; got {value}")

    def size(self, count: int, shape: dict[str, Any], pointer: str, name: str, unit: str) -> None:
        if "min" in shape and count < shape["min"]:
            self.problem(pointer, f"{name} needs at least {shape['min']} {unit}; it has {count}")
        elif "max" in shape and count > shape["max"]:
            self.problem(pointer, f"{name} takes at most {shape['max']} {unit}; it has {count}")


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def _local_types(name: str) -> tuple[str, ...]:
    return LOCAL_INSTANCE_TYPES if name.endswith("InstanceType") else ()


def _not_in_enum(name: str, value: str, choices: list[str]) -> str:
    close = get_close_matches(value, choices, n=1, cutoff=0.8)
    if close:
        return f"{name} {value!r} is not a valid value; did you mean {close[0]}?"
    listed = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:6]) + f", ... ({len(choices)} values)"
    return f"{name} {value!r} is not a valid value; use one of {listed}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return "a list" if isinstance(value, list) else "an object"
