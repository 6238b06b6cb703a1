"""Errors a user can cause. The CLI prints them without a traceback and exits non-zero.

Hierarchy:

    SagelabError
    ├── DefinitionError     a pipeline definition is malformed or invalid (lists every problem)
    ├── ParameterError      a --param value does not fit the definition
    ├── PipelineError       a pipeline written with sagelab.pipeline is wrong (names file:line)
    ├── ConfigError         [tool.sagelab] in pyproject.toml is wrong
    ├── StoreError          an object store request failed
    │   └── NoSuchKey       the object does not exist
    ├── ExecutionError      an execution or step cannot be found or run
    ├── RegistryError       a model package group or version is missing or cannot change so
    ├── EndpointError       a local model, endpoint config or endpoint is missing or failed
    ├── ModelError          a model archive, its inference code or its serving settings are wrong
    ├── PlottingError       a plot cannot be made: a bad argument, a missing column, or no drawing library
    └── AwsError            an AWS request failed: names the API call, the resource and, when
                            access was denied, the IAM action to allow

Anything else that escapes is a bug in sagelab and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class SagelabError(Exception):
    """Root of every error a user can cause and fix."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, located by a JSON pointer."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class DefinitionError(SagelabError):
    """A pipeline definition is malformed or fails validation."""

    def __init__(self, problems: list[Problem], source: str = "the definition") -> None:
        self.problems = problems
        self.source = source
        if len(problems) == 1:  # one line
            problem = problems[0]
            super().__init__(f"{source}: {problem.message}" if not problem.pointer else f"{source} is not a valid pipeline definition: {problem}")
            return
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source} is not a valid pipeline definition ({len(problems)} problems):\n{lines}")


class ParameterError(SagelabError):
    """A parameter value given at start time does not fit the definition."""


class PipelineError(SagelabError):
    """A pipeline written with `sagelab.pipeline` is wrong; the message names the user's file:line."""


class ConfigError(SagelabError):
    """The [tool.sagelab] configuration is wrong."""


class StoreError(SagelabError):
    """An object store request failed."""


class NoSuchKey(StoreError):
    """The requested object does not exist."""


class ExecutionError(SagelabError):
    """An execution or step cannot be found or run."""


class RegistryError(SagelabError):
    """A model package group or version is missing, or cannot change as asked."""


class EndpointError(SagelabError):
    """A local model, endpoint config or endpoint is missing, or did not start."""


class ModelError(SagelabError):
    """A model cannot be served: an unsafe or unreadable archive, broken inference code, bad settings."""


class PlottingError(SagelabError):
    """A plot cannot be made: a bad argument, a missing column, or a drawing library that is not installed."""


class AwsError(SagelabError):
    """An AWS request failed (denied, no credentials, unreachable, rejected); the message says how to fix it.

    `operation` is the API call (CreatePipeline), `resource` what it was about, `code` the
    AWS error code when AWS answered, `action` the IAM action to allow when access was denied.
    """

    def __init__(self, message: str, *, operation: str, resource: str | None = None, code: str | None = None,
                 action: str | None = None, detail: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.operation = operation
        self.resource = resource
        self.code = code
        self.action = action
        self.detail = detail  # AWS's own message, unchanged
