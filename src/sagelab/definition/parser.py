"""JSON → `PipelineDefinition`, reporting every structural problem with its JSON pointer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagelab.definition.expressions import CONDITION_TYPES
from sagelab.definition.model import (
    CHECK_SETTINGS,
    CHECK_STEP_TYPES,
    PARAMETER_TYPES,
    STEP_TYPES,
    VERSION,
    CacheConfig,
    Parameter,
    PipelineDefinition,
    PropertyFile,
    RetryPolicy,
    Step,
)
from sagelab.errors import DefinitionError, Problem

STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Integer": (int,),
    "Float": (int, float),
    "Boolean": (bool,),
}


def parse_file(path: Path) -> PipelineDefinition:
    """Read and parse a definition file, naming the file in every error."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DefinitionError([Problem("", f"cannot read the file: {exc.strerror}")], str(path)) from None
    try:
        document = json.loads(_text(data))
    except UnicodeDecodeError as exc:
        problem = Problem("", f"not UTF-8 text (byte {exc.start} is {data[exc.start:exc.start + 1]!r}); save it as UTF-8, as the SDK writes it")
        raise DefinitionError([problem], str(path)) from None
    except json.JSONDecodeError as exc:
        problem = Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
        raise DefinitionError([problem], str(path)) from None
    except RecursionError:
        raise DefinitionError([Problem("", "nested too deeply to read (hundreds of levels); no pipeline needs that")], str(path)) from None
    return parse(document, source=str(path))


MAX_DEPTH = 100  # real definitions nest about 15 deep; far deeper ones would exhaust the stack of every recursive reader


def _too_deep(document: Any) -> str | None:
    """The JSON pointer of a value nested deeper than MAX_DEPTH, found without recursion; None if there is none."""
    pending: list[tuple[Any, str, int]] = [(document, "", 0)]
    while pending:
        value, pointer, depth = pending.pop()
        if depth > MAX_DEPTH:
            return pointer
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        pending.extend((item, f"{pointer}/{key}", depth + 1) for key, item in items)
    return None


def _text(data: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark), or UTF-16/32 where a byte-order mark says so."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return data.decode("utf-32")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def parse(document: Any, source: str = "the definition") -> PipelineDefinition:
    """Parse a definition given as a JSON string or as the decoded document."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise DefinitionError([Problem("", f"not valid JSON: {exc}")], source) from None
    too_deep = _too_deep(document)
    if too_deep is not None:
        raise DefinitionError([Problem(too_deep, f"nested more than {MAX_DEPTH} levels deep; no pipeline needs that many")], source)
    parser = _Parser()
    definition = parser.definition(document)
    if parser.problems:
        raise DefinitionError(parser.problems, source)
    assert definition is not None
    return definition


# SageMaker's bounds for a retry policy's numbers (the SDK's RetryPolicy checks the same).
_RETRY_NUMBERS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "IntervalSeconds": ("a number of seconds above 0, at most 300", lambda v: isinstance(v, (int, float)) and 0 < v <= 300),
    "BackoffRate": ("a number of at least 1", lambda v: isinstance(v, (int, float)) and v >= 1),
    "MaxAttempts": ("a whole number from 1 to 20", lambda v: isinstance(v, int) and 1 <= v <= 20),
    "ExpireAfterMin": ("a whole number of minutes from 0 to 14400", lambda v: isinstance(v, int) and 0 <= v <= 14400),
}


class _Parser:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    def definition(self, document: Any) -> PipelineDefinition | None:
        if not isinstance(document, dict):
            self.problem("", f"a definition is a JSON object with Version, Parameters and Steps; got {_kind(document)}")
            return None
        version = document.get("Version")
        if version != VERSION:
            self.problem("/Version", f'must be "{VERSION}"; got {version!r}')
        parameters = self.parameters(document.get("Parameters", []))
        raw_steps = document.get("Steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            self.problem("/Steps", f"must be a non-empty list of steps; got {_kind(raw_steps)}")
            raw_steps = []
        steps = [s for i, raw in enumerate(raw_steps) if (s := self.step(raw, f"/Steps/{i}", ())) is not None]
        return PipelineDefinition(parameters, steps, document, str(version))

    def parameters(self, raw: Any) -> dict[str, Parameter]:
        if not isinstance(raw, list):
            self.problem("/Parameters", f"must be a list; got {_kind(raw)}")
            return {}
        parameters: dict[str, Parameter] = {}
        for index, item in enumerate(raw):
            pointer = f"/Parameters/{index}"
            if not isinstance(item, dict):
                self.problem(pointer, f"a parameter is an object with Name and Type; got {_kind(item)}")
                continue
            name, kind = item.get("Name"), item.get("Type")
            if not isinstance(name, str) or not PARAMETER_NAME.match(name):
                self.problem(f"{pointer}/Name", f"{name!r} is not a valid parameter name (letters, digits, - and _)")
                continue
            if name in parameters:
                self.problem(f"{pointer}/Name", f"parameter {name} is declared twice")
            if kind not in PARAMETER_TYPES:
                self.problem(f"{pointer}/Type", f"parameter {name} has type {kind!r}; use one of {', '.join(PARAMETER_TYPES)}")
                continue
            default = item.get("DefaultValue")
            if default is not None and (
                not isinstance(default, _DEFAULT_TYPES[kind]) or (kind != "Boolean" and isinstance(default, bool))
            ):
                self.problem(f"{pointer}/DefaultValue", f"parameter {name} is {kind} but its default is {default!r}")
            parameters[name] = Parameter(name, kind, default, tuple(item.get("EnumValues") or ()))
        return parameters

    def step(self, raw: Any, pointer: str, branch: tuple[str, ...]) -> Step | None:
        if not isinstance(raw, dict):
            self.problem(pointer, f"a step is an object with Name, Type and Arguments; got {_kind(raw)}")
            return None
        name, kind = raw.get("Name"), raw.get("Type")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            self.problem(f"{pointer}/Name", f"{name!r} is not a valid step name: use 1-64 letters, digits, - and _")
            return None
        if kind not in STEP_TYPES:
            self.problem(f"{pointer}/Type", f"step {name} has unknown type {kind!r}; SageMaker's types are {', '.join(STEP_TYPES)}")
            return None
        arguments = raw.get("Arguments", {})
        if not isinstance(arguments, dict):
            self.problem(f"{pointer}/Arguments", f"step {name}: Arguments must be an object; got {_kind(arguments)}")
            arguments = {}
        if kind in CHECK_STEP_TYPES:
            arguments = {**arguments, **{key: raw[key] for key in CHECK_SETTINGS if key in raw}}
        depends_on = raw.get("DependsOn", [])
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            self.problem(f"{pointer}/DependsOn", f"step {name}: DependsOn must be a list of step names")
            depends_on = []
        step = Step(
            name=name,
            type=kind,
            arguments=arguments,
            pointer=pointer,
            depends_on=tuple(depends_on),
            display_name=raw.get("DisplayName"),
            description=raw.get("Description"),
            cache_config=self.cache_config(raw.get("CacheConfig"), f"{pointer}/CacheConfig"),
            retry_policies=self.retry_policies(raw.get("RetryPolicies", []), f"{pointer}/RetryPolicies"),
            property_files=self.property_files(raw.get("PropertyFiles", []), f"{pointer}/PropertyFiles"),
            branch=branch,
        )
        if kind == "Condition":
            self.condition_step(step)
        elif kind == "Fail" and "ErrorMessage" in arguments and not isinstance(arguments["ErrorMessage"], (str, dict)):
            self.problem(f"{pointer}/Arguments/ErrorMessage", f"step {name}: ErrorMessage must be a string or an expression")
        return step

    def condition_step(self, step: Step) -> None:
        arguments, pointer = step.arguments, f"{step.pointer}/Arguments"
        conditions = arguments.get("Conditions")
        if not isinstance(conditions, list) or not conditions:
            self.problem(f"{pointer}/Conditions", f"condition step {step.name} needs a non-empty Conditions list")
        else:
            for index, condition in enumerate(conditions):
                self.condition(condition, f"{pointer}/Conditions/{index}")
        for key, target, outcome in (("IfSteps", step.if_steps, "if"), ("ElseSteps", step.else_steps, "else")):
            branch = arguments.get(key, [])
            if not isinstance(branch, list):
                self.problem(f"{pointer}/{key}", f"must be a list of steps; got {_kind(branch)}")
                continue
            for index, raw in enumerate(branch):
                nested = self.step(raw, f"{pointer}/{key}/{index}", (*step.branch, f"{step.name}:{outcome}"))
                if nested is not None:
                    target.append(nested)

    def condition(self, condition: Any, pointer: str) -> None:
        if not isinstance(condition, dict) or condition.get("Type") not in CONDITION_TYPES:
            found = condition.get("Type") if isinstance(condition, dict) else _kind(condition)
            self.problem(pointer, f"unknown condition {found!r}; use one of {', '.join(CONDITION_TYPES)}")
            return
        kind = condition["Type"]
        required = {"In": ("QueryValue", "Values"), "Not": ("Condition",), "Or": ("Conditions",)}.get(
            kind, ("LeftValue", "RightValue")
        )
        for key in required:
            if key not in condition:
                self.problem(pointer, f"a {kind} condition needs {' and '.join(required)}; {key} is missing")
                return
        if kind == "Not":
            self.condition(condition["Condition"], f"{pointer}/Condition")
        elif kind == "Or":
            for index, item in enumerate(condition["Conditions"]):
                self.condition(item, f"{pointer}/Conditions/{index}")
        elif kind == "In" and not isinstance(condition["Values"], list):
            self.problem(f"{pointer}/Values", "the Values of an In condition must be a list")

    def cache_config(self, raw: Any, pointer: str) -> CacheConfig | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("Enabled"), bool):
            self.problem(pointer, 'CacheConfig must be {"Enabled": true|false, "ExpireAfter": "P30D"}')
            return None
        return CacheConfig(raw["Enabled"], raw.get("ExpireAfter"))

    def retry_policies(self, raw: Any, pointer: str) -> tuple[RetryPolicy, ...]:
        if not isinstance(raw, list):
            self.problem(pointer, "RetryPolicies must be a list")
            return ()
        policies = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("ExceptionType"), list):
                self.problem(f"{pointer}/{index}", "a retry policy needs an ExceptionType list")
                continue
            numbers: dict[str, Any] = {name: item.get(name, default) for name, default in
                                       (("IntervalSeconds", 1), ("BackoffRate", 2.0), ("MaxAttempts", None), ("ExpireAfterMin", None))}  # fmt: skip
            wrong = [f"{name} must be {rule}; got {numbers[name]!r}" for name, (rule, fits) in _RETRY_NUMBERS.items()
                     if numbers[name] is not None and (isinstance(numbers[name], bool) or not fits(numbers[name]))]  # fmt: skip
            if wrong:
                self.problem(f"{pointer}/{index}", f"retry policy: {'; '.join(wrong)}")
                continue
            policies.append(RetryPolicy(tuple(item["ExceptionType"]), float(numbers["IntervalSeconds"]), float(numbers["BackoffRate"]),
                                        numbers["MaxAttempts"], numbers["ExpireAfterMin"]))  # fmt: skip
        return tuple(policies)

    def property_files(self, raw: Any, pointer: str) -> tuple[PropertyFile, ...]:
        if not isinstance(raw, list):
            self.problem(pointer, "PropertyFiles must be a list")
            return ()
        files = []
        for index, item in enumerate(raw):
            keys = ("PropertyFileName", "OutputName", "FilePath")
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in keys):
                self.problem(f"{pointer}/{index}", f"a property file needs {', '.join(keys)} as strings")
                continue
            files.append(PropertyFile(item["PropertyFileName"], item["OutputName"], item["FilePath"]))
        return tuple(files)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}
    return names.get(type(value), "a number")
