"""Values known only when a pipeline runs: parameters, execution variables, step properties,
`Join` and `JsonGet`, and the conditions built from them with Python's comparison operators.

Each compiles to the JSON form SageMaker evaluates (`{"Get": ...}`, `{"Std:Join": ...}`, ...).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sagelab.errors import PipelineError
from sagelab.pipeline._callsite import call_site, where

if TYPE_CHECKING:
    from sagelab.pipeline.steps import Step

Value = Any  # a JSON value, or an Expression that resolves to one


class Expression:
    """A value resolved at run time. `<`, `<=`, `>`, `>=` build conditions; so do `equals` and `in_`."""

    def to_json(self) -> Any:
        """The JSON SageMaker evaluates for this value."""
        raise NotImplementedError

    def __lt__(self, other: Value) -> Condition:
        return Comparison("LessThan", self, other)

    def __le__(self, other: Value) -> Condition:
        return Comparison("LessThanOrEqualTo", self, other)

    def __gt__(self, other: Value) -> Condition:
        return Comparison("GreaterThan", self, other)

    def __ge__(self, other: Value) -> Condition:
        return Comparison("GreaterThanOrEqualTo", self, other)

    def equals(self, other: Value) -> Condition:
        """`self == other` at run time (Python's `==` keeps its usual meaning)."""
        return Comparison("Equals", self, other)

    def to_string(self) -> Expression:
        """This value as a string, as the SDK's `.to_string()` does."""
        return Join("", [self])

    def __bool__(self) -> bool:
        raise PipelineError(
            f"{where(call_site())}: a pipeline value has no truth value while the pipeline is being built; "
            "use condition(...) to branch on it when the pipeline runs"
        )

    __hash__ = object.__hash__


class Parameter(Expression):
    """A pipeline parameter; values given at start time are typed by `type`.

    Example:
        >>> threshold = Parameter.float("MseThreshold", 6.0)
        >>> threshold.to_json()
        {'Get': 'Parameters.MseThreshold'}
    """

    def __init__(self, name: str, type: str, default: Any = None, enum: list[Any] | None = None) -> None:
        self.name, self.type, self.default, self.enum = name, type, default, list(enum or [])

    @classmethod
    def string(cls, name: str, default: str | None = None, enum: list[str] | None = None) -> Parameter:
        """A String parameter, optionally limited to `enum` values."""
        return cls(name, "String", default, enum)

    @classmethod
    def integer(cls, name: str, default: int | None = None) -> Parameter:
        """An Integer parameter."""
        return cls(name, "Integer", default)

    @classmethod
    def float(cls, name: str, default: float | None = None) -> Parameter:
        """A Float parameter."""
        return cls(name, "Float", None if default is None else float(default))

    @classmethod
    def boolean(cls, name: str, default: bool | None = None) -> Parameter:
        """A Boolean parameter (given as true/false at start time)."""
        return cls(name, "Boolean", default)

    def declaration(self) -> dict[str, Any]:
        """The entry in the definition's Parameters list."""
        declared: dict[str, Any] = {"Name": self.name, "Type": self.type}
        if self.default is not None:
            declared["DefaultValue"] = self.default
        if self.enum:
            declared["EnumValues"] = self.enum
        return declared

    def to_json(self) -> Any:
        return {"Get": f"Parameters.{self.name}"}

    def to_string(self) -> Expression:
        return self if self.type == "String" else Join("", [self])  # as the SDK: a string needs no Join

    def __repr__(self) -> str:
        return f"Parameter.{self.type.lower()}({self.name!r}, {self.default!r})"


class ExecutionVariable(Expression):
    """A value of the running execution, such as its id."""

    def __init__(self, name: str) -> None:
        self.name = name

    def to_json(self) -> Any:
        return {"Get": f"Execution.{self.name}"}

    def __repr__(self) -> str:
        return f"ExecutionVariable({self.name!r})"


class ExecutionVariables:
    """The execution variables SageMaker offers, as in the SDK."""

    START_DATETIME = ExecutionVariable("StartDateTime")
    CURRENT_DATETIME = ExecutionVariable("CurrentDateTime")
    PIPELINE_NAME = ExecutionVariable("PipelineName")
    PIPELINE_ARN = ExecutionVariable("PipelineArn")
    PIPELINE_EXECUTION_ID = ExecutionVariable("PipelineExecutionId")
    PIPELINE_EXECUTION_ARN = ExecutionVariable("PipelineExecutionArn")


class Join(Expression):
    """Strings and values joined with `on`, e.g. `Join("/", ["s3://b", ExecutionVariables.PIPELINE_EXECUTION_ID])`."""

    def __init__(self, on: str, values: list[Value]) -> None:
        self.on, self.values = on, list(values)

    def to_json(self) -> Any:
        return {"Std:Join": {"On": self.on, "Values": [compile_value(v) for v in self.values]}}


class JsonGet(Expression):
    """A value read from a JSON file at run time: a step's report, or any S3 object."""

    def __init__(self, path: str, *, report: Property | None = None, s3_uri: Value = None) -> None:
        if (report is None) == (s3_uri is None):
            raise PipelineError(f"{where(call_site())}: JsonGet needs exactly one of report= and s3_uri=")
        self.path, self.report, self.s3_uri = path, report, s3_uri

    def to_json(self) -> Any:
        source = {"PropertyFile": self.report.to_json()} if self.report is not None else {"S3Uri": compile_value(self.s3_uri)}
        return {"Std:JsonGet": {**source, "Path": self.path}}


class Property(Expression):
    """A property of a step: a path through its Describe* response, as `step.properties.A.B['k']`.

    Each attribute or key is checked against the shape of the step's response as it is
    written, so a typo fails on the user's own line.
    """

    def __init__(self, step: Step, path: tuple[str | int, ...] = (), shape: Any = None) -> None:
        self._step, self._path, self._shape = step, path, shape

    @property
    def step(self) -> Step:
        return self._step

    def __getattr__(self, name: str) -> Property:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name)

    def __getitem__(self, key: str | int) -> Property:
        return self._child(key)

    def _child(self, token: str | int) -> Property:
        shape = self._shape
        if isinstance(shape, dict):
            if token not in shape:
                from difflib import get_close_matches

                close = get_close_matches(str(token), list(shape), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise PipelineError(f"{where(call_site())}: {self._text(token)} is not a property of a {self._step.type} step{hint}")
            shape = shape[token]
        elif isinstance(shape, list):
            if shape[0] == "list" and isinstance(token, str):
                self._step.check_named_item(self._path, token)
            shape = shape[1]
        elif shape is not None and shape != "any":
            raise PipelineError(f"{where(call_site())}: {self._text(token)}: {'.'.join(map(str, self._path))} is a {shape} and has no parts")
        return Property(self._step, (*self._path, token), shape)

    def _text(self, token: str | int | None = None) -> str:
        text = f"Steps.{self._step.name}"
        for item in (*self._path, *(() if token is None else (token,))):
            text += f"[{item}]" if isinstance(item, int) else f".{item}" if item.isidentifier() else f"['{item}']"
        return text

    def to_json(self) -> Any:
        text = f"Steps.{self._step.name}"
        shape: Any = self._step.property_shape()
        for item in self._path:
            if isinstance(item, int):
                text += f"[{item}]"
            elif isinstance(shape, list):
                text += f"['{item}']"
            else:
                text += f".{item}"
            shape = _descend(shape, item)
        return {"Get": text}

    def __repr__(self) -> str:
        return f"<{self._text()}>"


def _descend(shape: Any, token: str | int) -> Any:
    if isinstance(shape, dict):
        return shape.get(token)
    if isinstance(shape, list):
        return shape[1]
    return None


class Condition:
    """A run-time test; combine with `&` (and), `|` (or), `~` (not), or `or_`, `not_`."""

    def to_json(self) -> dict[str, Any]:
        """The condition's JSON, as in a Condition step's Conditions list."""
        raise NotImplementedError

    def __and__(self, other: Condition) -> ConditionList:
        return ConditionList([self, other])

    def __or__(self, other: Condition) -> Condition:
        return Or([self, other])

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise PipelineError(f"{where(call_site())}: a condition is tested when the pipeline runs; pass it to condition(...)")


class Comparison(Condition):
    def __init__(self, kind: str, left: Value, right: Value) -> None:
        self.kind, self.left, self.right = kind, left, right

    def to_json(self) -> dict[str, Any]:
        return {"Type": self.kind, "LeftValue": compile_value(self.left), "RightValue": compile_value(self.right)}


class ConditionList(Condition):
    """Conditions that must all hold (SageMaker ANDs a condition list)."""

    def __init__(self, conditions: list[Condition]) -> None:
        self.conditions: list[Condition] = []
        for condition in conditions:
            self.conditions.extend(condition.conditions if isinstance(condition, ConditionList) else [condition])

    def to_json(self) -> dict[str, Any]:
        raise PipelineError("a list of conditions has no single JSON form; condition(...) writes it as its Conditions")


class In(Condition):
    def __init__(self, value: Value, options: list[Value]) -> None:
        self.value, self.options = value, list(options)

    def to_json(self) -> dict[str, Any]:
        return {"Type": "In", "QueryValue": compile_value(self.value), "Values": [compile_value(o) for o in self.options]}


class Not(Condition):
    def __init__(self, condition: Condition) -> None:
        self.condition = condition

    def to_json(self) -> dict[str, Any]:
        if isinstance(self.condition, ConditionList):  # not (a and b) == (not a) or (not b)
            return Or([Not(c) for c in self.condition.conditions]).to_json()
        return {"Type": "Not", "Condition": self.condition.to_json()}


class Or(Condition):
    def __init__(self, conditions: list[Condition]) -> None:
        self.conditions = list(conditions)

    def to_json(self) -> dict[str, Any]:
        return {"Type": "Or", "Conditions": [c.to_json() for c in self.conditions]}


def equals(left: Value, right: Value) -> Condition:
    """`left == right` when the pipeline runs."""
    return Comparison("Equals", left, right)


def in_(value: Value, options: list[Value]) -> Condition:
    """`value in options` when the pipeline runs."""
    return In(value, options)


def not_(condition: Condition) -> Condition:
    """True when `condition` is false."""
    return Not(condition)


def or_(*conditions: Condition) -> Condition:
    """True when any of `conditions` is."""
    return Or(list(conditions))


def compile_value(value: Value) -> Any:
    """A Python value with expressions (at any depth) replaced by their JSON form."""
    if isinstance(value, Expression):
        return value.to_json()
    if isinstance(value, Condition):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): compile_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [compile_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PipelineError(f"{type(value).__name__} values cannot go into a pipeline definition: {value!r}")


def as_text(value: Value) -> Any:
    """A hyperparameter-style string: JSON-encoded literals, expressions made strings with a Join."""
    if isinstance(value, Expression):
        return value.to_string().to_json()
    return json.dumps(value)
