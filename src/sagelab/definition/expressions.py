"""Expressions inside a definition: `Get`, `Std:Join`, `Std:JsonGet`, and conditions.

`references()` finds every expression (for validation and dependency edges);
`evaluate()` resolves them against a `Scope` the engine provides at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sagelab.errors import SagelabError

_TOKEN = re.compile(r"""\.?([A-Za-z0-9_\-:]+)|\[(\d+)\]|\[(['"])(.*?)\3\]""")
# Fields that name the elements of Describe* lists, so `Outputs['train']` finds OutputName == "train".
NAME_FIELDS = ("OutputName", "InputName", "ChannelName", "MetricName", "VariantName", "ModelName", "Name")
# An object with one of these as its only key is an expression, resolved at run time.
EXPRESSION_KEYS = ("Get", "Std:Join", "Std:JsonGet")


class ExpressionError(SagelabError):
    """An expression cannot be resolved at run time (missing property, wrong type, ...)."""


def parse_path(path: str) -> list[str | int]:
    """Split `A.B['k'][0].C` into `["A", "B", "k", 0, "C"]`; raises ValueError if malformed."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match or (match.group(0).startswith(".") and position == 0):
            raise ValueError(f"cannot parse {path!r} at character {position}")
        name, index, _, key = match.groups()
        tokens.append(name if name is not None else int(index) if index is not None else key)
        position = match.end()
    if not tokens:
        raise ValueError("empty path")
    return tokens


@dataclass(frozen=True)
class Reference:
    """A `Get` found in the definition: `kind` is Parameters, Execution or Steps."""

    pointer: str
    kind: str
    name: str
    path: tuple[str | int, ...] = ()
    text: str = ""  # the expression as written, for messages


def parse_get(expression: str, pointer: str = "") -> Reference:
    """Parse the string of a `{"Get": ...}`; raises ValueError if malformed."""
    tokens = parse_path(expression)
    kind = tokens[0]
    if kind not in ("Parameters", "Execution", "Steps") or len(tokens) < 2 or not isinstance(tokens[1], str):
        raise ValueError(f"{expression!r} must start with Parameters.<name>, Execution.<variable> or Steps.<step>")
    if kind != "Steps" and len(tokens) > 2:
        raise ValueError(f"{expression!r}: {kind} values have no properties")
    return Reference(pointer, str(kind), tokens[1], tuple(tokens[2:]), expression)


def references(value: Any, pointer: str = "") -> Iterator[Reference | tuple[str, str]]:
    """Every `Get` under `value`; a malformed one is yielded as `(pointer, message)`."""
    if isinstance(value, dict):
        if "Get" in value and len(value) == 1:
            if not isinstance(value["Get"], str):
                yield (f"{pointer}/Get", "a Get must name a string such as Parameters.X")
                return
            try:
                yield parse_get(value["Get"], f"{pointer}/Get")
            except ValueError as exc:
                yield (f"{pointer}/Get", str(exc))
            return
        if len(value) == 1 and (problem := _malformed(*next(iter(value.items())))):
            yield (f"{pointer}/{escape_pointer(next(iter(value)))}", problem)
        for key, item in value.items():
            yield from references(item, f"{pointer}/{escape_pointer(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references(item, f"{pointer}/{index}")


def _malformed(key: str, argument: Any) -> str | None:
    """Why a `Std:Join` or `Std:JsonGet` cannot be evaluated, or None (other keys are not expressions)."""
    if key == "Std:Join":
        if not isinstance(argument, dict) or not isinstance(argument.get("Values"), list) or not isinstance(argument.get("On", ""), str):
            return 'a Std:Join is {"On": "<separator>", "Values": [...]}'
        if set(argument) - {"On", "Values"}:
            return f"a Std:Join takes On and Values, not {', '.join(sorted(set(argument) - {'On', 'Values'}))}"
    if key == "Std:JsonGet":
        sources = [name for name in ("PropertyFile", "S3Uri") if isinstance(argument, dict) and name in argument]
        if not isinstance(argument, dict) or "Path" not in argument or len(sources) != 1:
            return 'a Std:JsonGet is {"PropertyFile": {"Get": "Steps.<step>.PropertyFiles.<name>"}, "Path": "<json path>"} (or S3Uri in place of PropertyFile)'
    return None


def escape_pointer(key: str) -> str:
    """`key` as one segment of a JSON pointer (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


class Scope(Protocol):
    """What an engine offers for resolving expressions during an execution."""

    def parameter(self, name: str) -> Any: ...

    def execution_variable(self, name: str) -> Any: ...

    def step_properties(self, name: str) -> dict[str, Any]: ...

    def property_file_uri(self, step: str, name: str) -> str: ...

    def read_json(self, uri: str) -> Any: ...


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression replaced by what it resolves to."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Get":
                return _get(argument, scope)
            if key == "Std:Join":
                items = [to_text(evaluate(item, scope)) for item in argument.get("Values", [])]
                return str(argument.get("On", "")).join(items)
            if key == "Std:JsonGet":
                return _json_get(argument, scope)
        return {key: evaluate(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    return value


def to_text(value: Any) -> str:
    """A value as text, as Std:Join and the pipeline service write it (True → "true", 0.8 → "0.8")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _get(expression: str, scope: Scope) -> Any:
    reference = parse_get(expression)
    if reference.kind == "Parameters":
        return scope.parameter(reference.name)
    if reference.kind == "Execution":
        return scope.execution_variable(reference.name)
    if reference.path[:1] == ("PropertyFiles",):
        return {"PropertyFile": (reference.name, reference.path[1])}
    return walk(scope.step_properties(reference.name), list(reference.path), f"Steps.{reference.name}")


def walk(document: Any, path: list[str | int], where: str) -> Any:
    """Follow `path` through a Describe* response (or any JSON document)."""
    current = document
    for token in path:
        where = f"{where}[{token}]" if isinstance(token, int) else f"{where}.{token}"
        if isinstance(current, list):
            current = _select(current, token, where)
        elif isinstance(current, dict) and isinstance(token, str) and token in current:
            current = current[token]
        else:
            raise ExpressionError(f"{where} does not exist")
    return current


def _select(items: list[Any], token: str | int, where: str) -> Any:
    if isinstance(token, int):
        if -len(items) <= token < len(items):
            return items[token]
        raise ExpressionError(f"{where} is out of range: the list has {len(items)} items")
    for item in items:
        if isinstance(item, dict) and any(item.get(field) == token for field in NAME_FIELDS):
            return item
    raise ExpressionError(f"{where} does not exist: no item is named {token!r}")


def _json_get(argument: dict[str, Any], scope: Scope) -> Any:
    path = str(evaluate(argument.get("Path", ""), scope))
    if "PropertyFile" in argument:
        target = evaluate(argument["PropertyFile"], scope)
        if not (isinstance(target, dict) and "PropertyFile" in target):
            raise ExpressionError("Std:JsonGet PropertyFile must be a Get of Steps.<step>.PropertyFiles.<name>")
        step, name = target["PropertyFile"]
        uri = scope.property_file_uri(step, name)
    else:
        uri = str(evaluate(argument.get("S3Uri"), scope))
    document = scope.read_json(uri)
    try:
        return walk(document, parse_path(path), uri)
    except ValueError as exc:
        raise ExpressionError(f"Std:JsonGet path {path!r}: {exc}") from None


_COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}
CONDITION_TYPES = (*_COMPARISONS, "In", "Not", "Or")


def evaluate_conditions(conditions: list[dict[str, Any]], scope: Scope) -> bool:
    """A condition list is true when all of its conditions are (SageMaker ANDs them)."""
    return all(evaluate_condition(condition, scope) for condition in conditions)


def evaluate_condition(condition: dict[str, Any], scope: Scope) -> bool:
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = _comparable(evaluate(condition["LeftValue"], scope), evaluate(condition["RightValue"], scope))
        try:
            return bool(_COMPARISONS[kind](left, right))
        except TypeError:
            raise ExpressionError(f"{kind} cannot compare {left!r} with {right!r}") from None
    if kind == "In":
        query = evaluate(condition["QueryValue"], scope)
        return any(_equal(query, evaluate(item, scope)) for item in condition.get("Values", []))
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], scope)
    if kind == "Or":
        return any(evaluate_condition(item, scope) for item in condition.get("Conditions", []))
    raise ExpressionError(f"unknown condition type {kind!r}")


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Compare numbers as numbers even when one side came out of a JSON string."""
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, str):
        return left, _number(right, right)
    if isinstance(right, numbers) and isinstance(left, str):
        return _number(left, left), right
    return left, right


def _number(text: str, fallback: Any) -> Any:
    try:
        return float(text)
    except ValueError:
        return fallback


def _equal(left: Any, right: Any) -> bool:
    left, right = _comparable(left, right)
    return bool(left == right)
