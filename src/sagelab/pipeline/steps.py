"""Steps: the `Step` base, what every step shares, and the control steps `condition` and `fail`.

Each builder returns a `Step` that remembers where the user built it; `Pipeline` compiles
steps into the Create* request JSON that SageMaker (and sagelab's local engine) runs. Job
steps live in processing.py, training.py and models.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.errors import PipelineError
from sagelab.pipeline._callsite import call_site, where
from sagelab.pipeline.artifacts import Artifacts
from sagelab.pipeline.expressions import (
    Condition,
    ConditionList,
    Expression,
    Property,
    Value,
    compile_value,
)

NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
PROCESSING_BASE = "/opt/ml/processing"


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a step on the given failure classes, waiting `interval` seconds times `backoff` each time."""

    exceptions: tuple[str, ...] = ("Step.SERVICE_FAULT", "Step.THROTTLING")
    interval: int = 1
    backoff: float = 2.0
    max_attempts: int | None = None
    expire_after_min: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry in a step's RetryPolicies."""
        policy: dict[str, Any] = {"BackoffRate": self.backoff, "ExceptionType": list(self.exceptions), "IntervalSeconds": self.interval}
        if self.max_attempts is not None:
            policy["MaxAttempts"] = self.max_attempts
        if self.expire_after_min is not None:
            policy["ExpireAfterMin"] = self.expire_after_min
        return policy


@dataclass(frozen=True)
class CacheConfig:
    """Reuse a previous run of the step with the same arguments for `expire_after` (ISO-8601, e.g. "P30D")."""

    expire_after: str = "P30D"
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        """A step's CacheConfig."""
        return {"Enabled": self.enabled, "ExpireAfter": self.expire_after}


@dataclass
class BuildContext:
    """What compiling a step needs to know about its pipeline and project."""

    pipeline: str
    bucket: str
    region: str
    role: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    artifacts: Artifacts = field(init=False)

    def __post_init__(self) -> None:
        self.artifacts = Artifacts(self.bucket, self.pipeline)


class Step:
    """A pipeline step: its name, its wiring, and where the user built it."""

    type = ""

    def __init__(
        self,
        name: str,
        *,
        depends_on: list[Step | str] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache: CacheConfig | None = None,
        retry: list[RetryPolicy] | None = None,
    ) -> None:
        self.site = call_site()
        if not isinstance(name, str) or not NAME.match(name):
            raise PipelineError(f"{where(self.site)}: {name!r} is not a valid step name: use 1-64 letters, digits, - and _")
        self.name = name
        self.depends_on = list(depends_on or [])
        self.display_name, self.description = display_name, description
        self.cache, self.retry = cache, list(retry or [])

    def __repr__(self) -> str:
        return f"<{self.type} step {self.name}>"

    @property
    def folder(self) -> Path:
        """The folder of the file that built this step: relative paths start there."""
        return self.site[0].parent

    @property
    def properties(self) -> Property:
        """The step's Describe* response, e.g. `step.properties.ProcessingJobName`."""
        return Property(self, (), self.property_shape())

    def property_shape(self) -> Any:
        """The shape of this step type's Describe* response (None where it is not modelled)."""
        from sagelab.definition.validator import describe_shapes

        return describe_shapes().get(self.type)

    def check_named_item(self, path: tuple[str | int, ...], name: str) -> None:
        """Refuse `List['name']` when the step declares no item of that name."""

    def error(self, message: str) -> PipelineError:
        """An error about this step, located where the user built it."""
        return PipelineError(f"{where(self.site)}: step {self.name}: {message}")

    def source_code(self, entry_point: str | Path | None, source_dir: str | Path | None, option: str = "entry_point") -> tuple[Path | None, Path | None]:
        """The entry point file (the `option` named it) and the source folder of script-mode code, both checked to exist."""
        folder = self.local_path(source_dir) if source_dir is not None else None
        if entry_point is None:
            return None, folder
        base = folder or self.folder
        script = Path(entry_point) if Path(entry_point).is_absolute() else base / entry_point
        if not script.is_file():
            raise self.error(f"{option} {entry_point} is not a file in {base}")
        return script, folder

    def dependencies(self, values: list[str | Path] | None) -> tuple[Path, ...]:
        """Local folders (or files) shipped beside the entry point, each under its own name, as the SDK's `dependencies`."""
        return tuple(self.local_path(value) for value in values or [])

    def local_path(self, value: str | Path) -> Path:
        """An existing local path; relative ones start at the folder of the step's file."""
        path = Path(value)
        path = path if path.is_absolute() else self.folder / path
        if not path.exists():
            raise self.error(f"{value} does not exist (relative paths start at {self.folder})")
        return path

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        """The Create* request of the step's job (expressions not yet compiled)."""
        raise NotImplementedError

    def compile(self, context: BuildContext) -> dict[str, Any]:
        """The step's entry in the definition's Steps list."""
        step: dict[str, Any] = {"Name": self.name, "Type": self.type, "Arguments": compile_value(self.arguments(context))}
        if self.depends_on:
            step["DependsOn"] = [d if isinstance(d, str) else d.name for d in self.depends_on]
        if self.display_name:
            step["DisplayName"] = self.display_name
        if self.description:
            step["Description"] = self.description
        if self.cache:
            step["CacheConfig"] = self.cache.to_json()
        if self.retry:
            step["RetryPolicies"] = [policy.to_json() for policy in self.retry]
        return step

    def branches(self) -> list[Step]:
        """Steps nested inside this one (a condition's branches)."""
        return []


class Resources:
    """Instance settings with project defaults."""

    def __init__(self, instance: Value, count: Value, volume_gb: Value) -> None:
        self.instance, self.count, self.volume_gb = instance, count, volume_gb

    def cluster(self, context: BuildContext) -> dict[str, Any]:
        return {
            "InstanceCount": context.instance_count if self.count is None else self.count,
            "InstanceType": context.instance_type if self.instance is None else self.instance,
            "VolumeSizeInGB": context.volume_size_gb if self.volume_gb is None else self.volume_gb,
        }


def image_for(step: Step, framework: str | None, image: Value, scope: str, context: BuildContext, instance: Value) -> Value:
    """The image URI: given outright, or resolved from `framework` for the pipeline's region."""
    if image is not None:
        return image
    if framework is None:
        raise step.error("give framework= (such as 'sklearn:1.2-1') or image= (an image URI)")
    from sagelab.pipeline.images import ImageError, image_uri

    try:
        return image_uri(framework, context.region, scope=scope, instance_type=instance if isinstance(instance, str) else None)
    except ImageError as exc:
        raise step.error(str(exc)) from None


def s3_input(name: str, uri: Value, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"},  # fmt: skip
    }


def source_of(step: Step, source: Value, context: BuildContext) -> Value:
    """An S3 URI or expression as it is; a local file or folder becomes a content-addressed upload."""
    if isinstance(source, (Expression, Condition)) or (isinstance(source, str) and source.startswith("s3://")):
        return source
    if isinstance(source, (str, Path)):
        path = step.local_path(source)
        return context.artifacts.folder(path) if path.is_dir() else context.artifacts.file(path, kind="data")
    raise step.error(f"an input must be an s3:// URI, a local path or a pipeline value; got {source!r}")


class ConditionStep(Step):
    """Runs `then` when all conditions hold, else `otherwise`."""

    type = "Condition"

    def __init__(self, name: str, conditions: Condition | list[Condition], *, then: list[Step] | None = None,
                 otherwise: list[Step] | None = None, **common: Any) -> None:  # fmt: skip
        super().__init__(name, **common)
        listed = conditions if isinstance(conditions, list) else [conditions]
        flat = ConditionList(listed).conditions
        for condition in flat:
            if not isinstance(condition, Condition):
                raise self.error(f"{condition!r} is not a condition; compare pipeline values, e.g. report(...) <= threshold")
        self.conditions, self.then, self.otherwise = flat, list(then or []), list(otherwise or [])

    @property
    def outcome(self) -> Property:
        """True or False once the condition has run."""
        return self.properties.Outcome

    def branches(self) -> list[Step]:
        return [*self.then, *self.otherwise]

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        return {
            "Conditions": [condition.to_json() for condition in self.conditions],
            "IfSteps": [step.compile(context) for step in self.then],
            "ElseSteps": [step.compile(context) for step in self.otherwise],
        }


class FailStep(Step):
    """Ends the execution as failed with `message` (a string or pipeline value)."""

    type = "Fail"

    def __init__(self, name: str, message: Value = "", **common: Any) -> None:
        super().__init__(name, **common)
        self.message = message

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        return {"ErrorMessage": self.message}


def condition(name: str, conditions: Condition | list[Condition], *, then: list[Step] | None = None,
              otherwise: list[Step] | None = None, **options: Any) -> ConditionStep:  # fmt: skip
    """A Condition step: `then` steps run when every condition holds, `otherwise` steps when not."""
    return ConditionStep(name, conditions, then=then, otherwise=otherwise, **options)


def fail(name: str, message: Value = "", **options: Any) -> FailStep:
    """A Fail step: ends the execution as failed with `message`."""
    return FailStep(name, message, **options)
