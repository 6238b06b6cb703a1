"""The typed model of a SageMaker pipeline definition (Version "2020-12-01").

Arguments stay the raw JSON of the matching Create* request: engines read the fields they
need after expressions are resolved, and an unknown field never breaks parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sagelab.errors import ParameterError

VERSION = "2020-12-01"
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
EXECUTION_VARIABLES = (
    "StartDateTime",
    "CurrentDateTime",
    "PipelineName",
    "PipelineArn",
    "PipelineExecutionId",
    "PipelineExecutionArn",
)
# Every step type SageMaker Pipelines knows; engines declare which of them they run.
STEP_TYPES = (
    "Processing",
    "Training",
    "Transform",
    "Tuning",
    "Model",
    "RegisterModel",
    "Condition",
    "Fail",
    "Lambda",
    "Callback",
    "EMR",
    "EMRServerless",
    "ClarifyCheck",
    "QualityCheck",
    "AutoML",
    "EndpointConfig",
    "Endpoint",
    "Notebook",
)
# A check step's settings sit beside its Arguments in the JSON; the parser keeps them with the
# step's arguments, so their expressions resolve, validate and key the cache like any argument's.
CHECK_SETTINGS = (
    "CheckType",
    "ModelPackageGroupName",
    "SkipCheck",
    "FailOnViolation",
    "RegisterNewBaseline",
    "SuppliedBaselineStatistics",
    "SuppliedBaselineConstraints",
    "ModelName",
)
CHECK_STEP_TYPES = ("QualityCheck", "ClarifyCheck")


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter; start-time values arrive as strings and are typed here."""

    name: str
    type: str
    default: Any = None
    enum_values: tuple[Any, ...] = ()

    def coerce(self, value: Any) -> Any:
        """The typed value of `value` (a string from the command line or a JSON value)."""
        try:
            typed = _COERCE[self.type](value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name} is {self.type}; got {value!r}, "
                f"which is not {_EXAMPLES[self.type]}"
            ) from None
        if self.enum_values and typed not in self.enum_values:
            allowed = ", ".join(map(str, self.enum_values))
            raise ParameterError(f"parameter {self.name} must be one of {allowed}; got {value!r}")
        return typed


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


_COERCE = {"String": _string, "Integer": _integer, "Float": _float, "Boolean": _boolean}
_EXAMPLES = {
    "String": "a string",
    "Integer": "a whole number such as 3",
    "Float": "a number such as 0.5",
    "Boolean": "true or false",
}


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool
    expire_after: str | None = None  # an ISO-8601 duration such as "P30D" or "PT1H"


@dataclass(frozen=True)
class RetryPolicy:
    exception_types: tuple[str, ...]
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_attempts: int | None = None
    expire_after_min: int | None = None


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file inside a processing output that conditions read with Std:JsonGet."""

    name: str
    output_name: str
    file_path: str


@dataclass
class Step:
    """One step; a Condition step holds its branches, parsed, in `if_steps`/`else_steps`."""

    name: str
    type: str
    arguments: dict[str, Any]
    pointer: str
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None
    cache_config: CacheConfig | None = None
    retry_policies: tuple[RetryPolicy, ...] = ()
    property_files: tuple[PropertyFile, ...] = ()
    if_steps: list[Step] = field(default_factory=list)
    else_steps: list[Step] = field(default_factory=list)
    branch: tuple[str, ...] = ()  # ("Check", "if") for a step in Check's IfSteps, nested deeper for nested conditions

    @property
    def conditions(self) -> list[Any]:
        return list(self.arguments.get("Conditions", []))


@dataclass
class PipelineDefinition:
    """A parsed definition; `raw` is the JSON it came from, kept for records and upload."""

    parameters: dict[str, Parameter]
    steps: list[Step]
    raw: dict[str, Any]
    version: str = VERSION

    def all_steps(self) -> Iterator[Step]:
        """Every step, condition branches included, parents before their branch steps."""
        pending = list(reversed(self.steps))
        while pending:
            step = pending.pop()
            yield step
            pending.extend(reversed(step.if_steps + step.else_steps))

    def step(self, name: str) -> Step:
        for step in self.all_steps():
            if step.name == name:
                return step
        raise KeyError(name)

    def typed_parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with start-time values, each typed by its declaration."""
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            from difflib import get_close_matches

            hints = []
            for name in unknown:
                close = get_close_matches(name, self.parameters, n=1)
                hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
            declared = ", ".join(self.parameters) or "none"
            raise ParameterError(f"unknown parameter {', '.join(hints)}; the pipeline declares: {declared}")
        values = {}
        for name, parameter in self.parameters.items():
            if name in given:
                values[name] = parameter.coerce(given[name])
            elif parameter.default is not None:
                values[name] = parameter.coerce(parameter.default)
            else:
                raise ParameterError(f"parameter {name} has no default value; pass --param {name}=VALUE")
        return values
