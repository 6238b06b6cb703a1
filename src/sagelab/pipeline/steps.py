"""Step builders: `processing`, `training`, `condition`, `fail`.

Each builder returns a `Step` that remembers where the user built it; `Pipeline` compiles
steps into the Create* request JSON that SageMaker (and sagelab's local engine) runs.
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
    ExecutionVariables,
    Join,
    JsonGet,
    Property,
    Value,
    as_text,
    compile_value,
)

_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
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
        if not isinstance(name, str) or not _NAME.match(name):
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

    def source_code(self, entry_point: str | Path | None, source_dir: str | Path | None) -> tuple[Path | None, Path | None]:
        """The entry point file and the source folder of script-mode code, both checked to exist."""
        folder = self.local_path(source_dir) if source_dir is not None else None
        if entry_point is None:
            return None, folder
        base = folder or self.folder
        script = Path(entry_point) if Path(entry_point).is_absolute() else base / entry_point
        if not script.is_file():
            raise self.error(f"entry_point {entry_point} is not a file in {base}")
        return script, folder

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


class _Resources:
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


class ProcessingStep(Step):
    """A processing job: inputs at /opt/ml/processing/input/<name>, outputs from /opt/ml/processing/output/<name>.

    Args:
        name: The step name (1-64 letters, digits, - and _).
        code: A local script, run as `python3 /opt/ml/processing/input/code/<file>`.
        framework: "sklearn:1.2-1", "xgboost:1.7-1", ...: the image, resolved for the region.
        image: An image URI instead of `framework`.
        command: The container command (with `code`, the interpreter; default `python3`).
        arguments: Arguments after the script (ContainerArguments).
        inputs: Name → an s3:// URI, a pipeline value (e.g. `other.outputs["x"]`), or a local
            file or folder, uploaded by content when the pipeline runs.
        outputs: Output names (stored under the pipeline's execution), or name → S3 URI.
        reports: Output name → a JSON file inside it that conditions read with `report()`.
        env: Environment variables of the job.
        instance, instance_count, volume_gb: The job's resources; defaults from [tool.sagelab].
        max_runtime: Seconds before the job is stopped.
        depends_on, display_name, description, cache, retry: As for every step.
    """

    type = "Processing"

    def __init__(
        self,
        name: str,
        *,
        code: str | Path | None = None,
        framework: str | None = None,
        image: Value = None,
        command: list[str] | None = None,
        arguments: list[Value] | None = None,
        inputs: dict[str, Value] | None = None,
        outputs: list[str] | dict[str, Value] | None = None,
        reports: dict[str, str] | None = None,
        env: dict[str, Value] | None = None,
        instance: Value = None,
        instance_count: Value = None,
        volume_gb: Value = None,
        max_runtime: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(name, **common)
        self.code = self.local_path(code) if code is not None else None
        if self.code is not None and not self.code.is_file():
            raise self.error(f"code {code} is not a file")
        self.framework, self.image, self.command = framework, image, command
        self.container_arguments = list(arguments or [])
        self.inputs = dict(inputs or {})
        declared = outputs if isinstance(outputs, dict) else {o: None for o in outputs or []}
        self.output_targets: dict[str, Value] = dict(declared)
        self.reports = dict(reports or {})
        for output in self.reports:
            if output not in self.output_targets:
                raise self.error(f"report {output!r} names no output; outputs: {', '.join(self.output_targets) or 'none'}")
        for key in [*self.inputs, *self.output_targets]:
            if not _NAME.match(key) or key == "code":
                raise self.error(f"{key!r} cannot name an input or output: use letters, digits, - and _ (and not 'code')")
        self.env = dict(env or {})
        self.resources = _Resources(instance, instance_count, volume_gb)
        self.max_runtime = max_runtime

    @property
    def outputs(self) -> _Outputs:
        """`step.outputs['train']`: the S3 URI of a declared output."""
        return _Outputs(self)

    def report(self, output: str, path: str) -> JsonGet:
        """A value inside a JSON report the step writes, e.g. `report("evaluation", "metrics.mse.value")`."""
        if output not in self.reports:
            raise PipelineError(
                f"{where(call_site())}: step {self.name} declares no report {output!r}; "
                f"declare it with reports={{{output!r}: 'file.json'}} ({', '.join(self.reports) or 'none declared'})"
            )
        return JsonGet(path, report=Property(self, ("PropertyFiles", output)))

    def report_uri(self, output: str) -> Join:
        """The S3 URI of a declared report file, e.g. for a registered model's metrics."""
        if output not in self.reports:
            raise PipelineError(f"{where(call_site())}: step {self.name} declares no report {output!r}")
        return Join("/", [self.outputs[output], self.reports[output]])

    def check_named_item(self, path: tuple[str | int, ...], name: str) -> None:
        if path == ("ProcessingOutputConfig", "Outputs") and name not in self.output_targets:
            raise PipelineError(
                f"{where(call_site())}: step {self.name} has no output {name!r}; outputs: {', '.join(self.output_targets) or 'none'}"
            )

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        inputs = [self._input(name, source, context) for name, source in self.inputs.items()]
        if self.code is not None:
            inputs.append(_s3_input("code", context.artifacts.file(self.code), f"{PROCESSING_BASE}/input/code"))
            entrypoint = [*(self.command or ["python3"]), f"{PROCESSING_BASE}/input/code/{self.code.name}"]
        elif self.command:
            entrypoint = list(self.command)
        else:
            raise self.error("give code= (a script to run) or command= (the container command)")
        app: dict[str, Any] = {"ImageUri": image_for(self, self.framework, self.image, "processing", context, self.resources.instance),
                               "ContainerEntrypoint": entrypoint}  # fmt: skip
        if self.container_arguments:
            app["ContainerArguments"] = self.container_arguments
        arguments: dict[str, Any] = {
            "ProcessingResources": {"ClusterConfig": self.resources.cluster(context)},
            "AppSpecification": app,
            "RoleArn": context.role,
            "ProcessingInputs": inputs,
        }
        if self.output_targets:
            arguments["ProcessingOutputConfig"] = {"Outputs": [self._output(name, target, context) for name, target in self.output_targets.items()]}
        if self.env:
            arguments["Environment"] = self.env
        if self.max_runtime:
            arguments["StoppingCondition"] = {"MaxRuntimeInSeconds": self.max_runtime}
        return arguments

    def _input(self, name: str, source: Value, context: BuildContext) -> dict[str, Any]:
        return _s3_input(name, _source(self, source, context), f"{PROCESSING_BASE}/input/{name}")

    def _output(self, name: str, target: Value, context: BuildContext) -> dict[str, Any]:
        if target is None:  # where the SDK puts an output that names no destination
            target = Join("/", ["s3:/", context.bucket, context.pipeline, ExecutionVariables.PIPELINE_EXECUTION_ID, self.name, "output", name])
        return {"OutputName": name, "AppManaged": False,
                "S3Output": {"S3Uri": target, "LocalPath": f"{PROCESSING_BASE}/output/{name}", "S3UploadMode": "EndOfJob"}}  # fmt: skip

    def compile(self, context: BuildContext) -> dict[str, Any]:
        step = super().compile(context)
        if self.reports:
            step["PropertyFiles"] = [
                {"PropertyFileName": output, "OutputName": output, "FilePath": file} for output, file in self.reports.items()
            ]
        return step


class _Outputs:
    def __init__(self, step: ProcessingStep) -> None:
        self._step = step

    def __getitem__(self, name: str) -> Property:
        return self._step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    def __iter__(self) -> Any:
        return iter(self._step.output_targets)


def _s3_input(name: str, uri: Value, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"},  # fmt: skip
    }


def _source(step: Step, source: Value, context: BuildContext) -> Value:
    """An S3 URI or expression as it is; a local file or folder becomes a content-addressed upload."""
    if isinstance(source, (Expression, Condition)) or (isinstance(source, str) and source.startswith("s3://")):
        return source
    if isinstance(source, (str, Path)):
        path = step.local_path(source)
        return context.artifacts.folder(path) if path.is_dir() else context.artifacts.file(path, kind="data")
    raise step.error(f"an input must be an s3:// URI, a local path or a pipeline value; got {source!r}")


@dataclass(frozen=True)
class Channel:
    """A training channel with settings beyond its source."""

    source: Value
    content_type: str | None = None


class TrainingStep(Step):
    """A training job in script mode (`entry_point`) or with an image's own algorithm.

    Args:
        name: The step name.
        entry_point: The training script, relative to `source_dir` when one is given.
        source_dir: A local folder shipped with the script (packed as sourcedir.tar.gz).
        framework: "sklearn:1.2-1", "pytorch:2.1", ...: the image, resolved for the region.
        image: An image URI instead of `framework`.
        channels: Channel name → an s3:// URI, a pipeline value, a local path, or a `Channel`.
        hyperparameters: Values passed to the script as `--key value` (JSON-encoded, as the SDK does).
        metrics: Metric name → regex over the log, giving FinalMetricDataList.
        output_path: Where model.tar.gz goes (default: the bucket root, as in the SDK).
        env: Environment variables of the job.
        content_type: The content type of every channel that does not set its own.
        instance, instance_count, volume_gb: The job's resources; defaults from [tool.sagelab].
        max_runtime: Seconds before the job is stopped (default one day, as in the SDK).
        depends_on, display_name, description, cache, retry: As for every step.
    """

    type = "Training"

    def __init__(
        self,
        name: str,
        *,
        entry_point: str | Path | None = None,
        source_dir: str | Path | None = None,
        framework: str | None = None,
        image: Value = None,
        channels: dict[str, Value | Channel] | None = None,
        hyperparameters: dict[str, Value] | None = None,
        metrics: dict[str, str] | None = None,
        output_path: Value = None,
        env: dict[str, Value] | None = None,
        content_type: str | None = None,
        instance: Value = None,
        instance_count: Value = None,
        volume_gb: Value = None,
        max_runtime: int = 86400,
        **common: Any,
    ) -> None:
        super().__init__(name, **common)
        self.entry_point, self.source_dir = self.source_code(entry_point, source_dir)
        self.framework, self.image = framework, image
        self.channels = {k: v if isinstance(v, Channel) else Channel(v, content_type) for k, v in (channels or {}).items()}
        self.hyperparameters = dict(hyperparameters or {})
        self.metrics = dict(metrics or {})
        self.output_path, self.env = output_path, dict(env or {})
        self.resources = _Resources(instance, instance_count, volume_gb)
        self.max_runtime = max_runtime

    @property
    def model_data(self) -> Property:
        """The S3 URI of the trained model.tar.gz."""
        return self.properties.ModelArtifacts.S3ModelArtifacts

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        hyperparameters = {key: as_text(value) for key, value in self.hyperparameters.items()}
        if self.entry_point is not None:
            root = self.source_dir or self.entry_point.parent
            hyperparameters.update({
                "sagemaker_container_log_level": "20",
                "sagemaker_program": as_text(self.entry_point.relative_to(root).as_posix()),
                "sagemaker_region": as_text(context.region),
                "sagemaker_submit_directory": as_text(context.artifacts.sourcedir(self.entry_point, self.source_dir)),
            })
        algorithm: dict[str, Any] = {"TrainingImage": image_for(self, self.framework, self.image, "training", context, self.resources.instance),
                                     "TrainingInputMode": "File"}  # fmt: skip
        if self.metrics:
            algorithm["MetricDefinitions"] = [{"Name": name, "Regex": regex} for name, regex in self.metrics.items()]
        # The SDK's default: the model lands at s3://<bucket>/<training job name>/output/model.tar.gz
        output = self.output_path if self.output_path is not None else f"s3://{context.bucket}/"
        arguments: dict[str, Any] = {
            "AlgorithmSpecification": algorithm,
            "OutputDataConfig": {"S3OutputPath": output},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime},
            "ResourceConfig": self.resources.cluster(context),
            "RoleArn": context.role,
            "InputDataConfig": [self._channel(name, channel, context) for name, channel in self.channels.items()],
            "HyperParameters": hyperparameters,
        }
        if self.env:
            arguments["Environment"] = self.env
        return arguments

    def _channel(self, name: str, channel: Channel, context: BuildContext) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": _source(self, channel.source, context),
                                            "S3DataDistributionType": "FullyReplicated"}},  # fmt: skip
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        return entry


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


def processing(name: str, **options: Any) -> ProcessingStep:
    """A Processing step. See `ProcessingStep` for the options.

    Example:
        >>> prep = processing("Prep", command=["python3", "-c", "print(1)"], image="img:1")
        >>> prep.type
        'Processing'
    """
    return ProcessingStep(name, **options)


def source_of(step: Step, source: Value, context: BuildContext) -> Value:
    """An input's S3 URI: URIs and pipeline values as they are, local paths uploaded by content."""
    return _source(step, source, context)


def training(name: str, **options: Any) -> TrainingStep:
    """A Training step. See `TrainingStep` for the options."""
    return TrainingStep(name, **options)


def condition(name: str, conditions: Condition | list[Condition], *, then: list[Step] | None = None,
              otherwise: list[Step] | None = None, **options: Any) -> ConditionStep:  # fmt: skip
    """A Condition step: `then` steps run when every condition holds, `otherwise` steps when not."""
    return ConditionStep(name, conditions, then=then, otherwise=otherwise, **options)


def fail(name: str, message: Value = "", **options: Any) -> FailStep:
    """A Fail step: ends the execution as failed with `message`."""
    return FailStep(name, message, **options)
