"""What the Python API hands back: an execution and its steps, the same for a local run and a SageMaker one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sagelab.errors import ExecutionError

if TYPE_CHECKING:
    from sagelab.api.backends import Backend

FINISHED = ("Succeeded", "Failed", "Stopped", "CompletedWithFailures")


def timestamp(seconds: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (what pandas and notebooks show best)."""
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds else None


@dataclass
class Step:
    """One step of an execution.

    `properties` are its Describe* response (DescribeProcessingJob, DescribeTrainingJob, ...), as the
    pipeline's `Get` expressions see them; on SageMaker they are fetched when first read.
    """

    name: str
    type: str
    status: str
    started: datetime | None = None
    ended: datetime | None = None
    failure_reason: str | None = None
    job_name: str | None = None
    attempts: int = 0
    reused_from: str | None = None  # the execution whose results it took instead of running (a cache hit, or not selected)
    _properties: dict[str, Any] | None = field(default=None, repr=False)
    _load_properties: Any = field(default=None, repr=False, compare=False)  # () -> dict, for properties read lazily

    @property
    def properties(self) -> dict[str, Any]:
        """The step's Describe* response (read from SageMaker the first time, for a SageMaker execution)."""
        if self._properties is None:
            self._properties = self._load_properties() if self._load_properties else {}
        return self._properties

    @property
    def known_properties(self) -> dict[str, Any]:
        """The properties already at hand, without asking SageMaker for them."""
        return self._properties or {}

    @property
    def duration(self) -> float | None:
        """Seconds the step ran (so far, while it runs)."""
        return _elapsed(self.started, self.ended)

    @property
    def outputs(self) -> dict[str, str]:
        """Output name → S3 URI: a Processing step's outputs, a Training step's `model`, a Transform step's `output`."""
        return outputs_of(self.type, self.properties)

    @property
    def metrics(self) -> dict[str, float]:
        """A Training step's final metrics (FinalMetricDataList), by name."""
        return {str(m["MetricName"]): float(m["Value"]) for m in self.properties.get("FinalMetricDataList", []) if "Value" in m}


@dataclass
class Execution:
    """A pipeline execution and its steps, local or on SageMaker.

    Example:
        >>> execution = sagelab.execution("latest")  # doctest: +SKIP
        >>> execution.status, execution.outputs["Preprocess"]["train"]  # doctest: +SKIP
        ('Succeeded', 's3://sagemaker-us-east-1-000000000000/diabetes/.../Preprocess/output/train')
    """

    id: str
    pipeline: str
    status: str
    started: datetime | None
    ended: datetime | None
    failure_reason: str | None
    parameters: dict[str, Any]
    steps: dict[str, Step]
    arn: str = ""
    definition: dict[str, Any] = field(default_factory=dict, repr=False)
    _backend: Backend | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """Whether the execution has ended (Succeeded, Failed, Stopped or CompletedWithFailures)."""
        return self.status in FINISHED

    @property
    def duration(self) -> float | None:
        """Seconds the execution ran (so far, while it runs)."""
        return _elapsed(self.started, self.ended)

    @property
    def outputs(self) -> dict[str, dict[str, str]]:
        """Step → output name → S3 URI, for the steps that wrote something."""
        return {name: step.outputs for name, step in self.steps.items() if step.outputs}

    @property
    def metrics(self) -> dict[str, float]:
        """Numbers the execution reported, flat: `<step>.<metric>` for training metrics and
        `<step>.<property file>.<json path>` for the numbers in its property files (evaluation reports)."""
        found: dict[str, float] = {}
        for name, step in self.steps.items():
            for metric, value in step.metrics.items():
                found[f"{name}.{metric}"] = value
        for (step_name, file_name), uri in self.property_files().items():
            try:
                document = json.loads(self.read_bytes(uri))
            except (ValueError, ExecutionError):
                continue  # a missing or unreadable report adds no metrics
            for path, value in numbers(document):
                found[f"{step_name}.{file_name}.{path}"] = value
        return found

    def property_files(self) -> dict[tuple[str, str], str]:
        """(step, property file name) → the S3 URI of the JSON file, for the succeeded steps that declare them."""
        files = {}
        for raw in self.definition.get("Steps", []):
            step = self.steps.get(raw.get("Name", ""))
            if step is None or step.status != "Succeeded":
                continue
            outputs = step.outputs
            for declared in raw.get("PropertyFiles", []):
                output = outputs.get(declared.get("OutputName", ""))
                if output:
                    files[(step.name, declared["PropertyFileName"])] = f"{output.rstrip('/')}/{declared['FilePath']}"
        return files

    def read(self, target: str, **read_options: Any) -> Any:
        """What an output holds: a DataFrame for CSV, Parquet and JSON lines, a dict or list for JSON, else bytes.

        `target` is an S3 URI or `Step/output` (`Preprocess/train`); an output of several files of one
        tabular kind is read as one DataFrame. `read_options` go to pandas (`header=None` for the
        header-less CSV files SageMaker's algorithms expect).

        Raises:
            ExecutionError: no such step or output, or several files of different kinds (name one by its URI).
        """
        from sagelab.api.reading import read_objects

        return read_objects(self._require_backend(), self.resolve(target), read_options)

    def read_bytes(self, uri: str) -> bytes:
        """The bytes of one object."""
        return self._require_backend().get_bytes(uri)

    def resolve(self, target: str) -> str:
        """The S3 URI `target` names: itself, or a step's output (`Step/output`)."""
        if target.startswith("s3://"):
            return target
        step_name, _, output = target.partition("/")
        step = self.steps.get(step_name)
        if step is None:
            raise ExecutionError(f"execution {self.id} has no step {step_name!r}; its steps: {', '.join(self.steps)}")
        if output not in step.outputs:
            raise ExecutionError(f"step {step_name} has no output {output!r}; its outputs: {', '.join(step.outputs) or 'none'}")
        return step.outputs[output]

    def logs(self, step: str) -> str:
        """The step's log (on SageMaker: its job's CloudWatch log)."""
        if step not in self.steps:
            raise ExecutionError(f"execution {self.id} has no step {step!r}; its steps: {', '.join(self.steps)}")
        return "".join(f"{line}\n" for line in self._require_backend().log_lines(self, step))

    def refresh(self) -> Execution:
        """The execution as it is now (a new object)."""
        return self._require_backend().execution(self.arn or self.id)

    def summary(self) -> dict[str, Any]:
        """The execution without its steps, as JSON-ready values: an item of `sagelab executions --json`."""
        return {
            "id": self.id,
            "arn": self.arn,
            "pipeline": self.pipeline,
            "status": self.status,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "duration": self.duration,
            "failure_reason": self.failure_reason,
            "parameters": self.parameters,
        }

    def to_dict(self) -> dict[str, Any]:
        """The execution and its steps as JSON-ready values: what `sagelab status --json` prints."""
        return {
            **self.summary(),
            "steps": [
                {"name": s.name, "type": s.type, "status": s.status, "started": _iso(s.started), "ended": _iso(s.ended),
                 "duration": s.duration, "failure_reason": s.failure_reason, "job_name": s.job_name, "attempts": s.attempts,
                 "outputs": s.outputs}  # fmt: skip
                for s in self.steps.values()
            ],
        }

    def _require_backend(self) -> Backend:
        if self._backend is None:
            raise ExecutionError(f"execution {self.id} was not read through sagelab.execution(); it cannot read its data")
        return self._backend


def outputs_of(step_type: str, properties: dict[str, Any]) -> dict[str, str]:
    """Output name → S3 URI from a step's Describe* properties."""
    if step_type == "Processing":
        outputs = properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
        return {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs if "S3Output" in o and "OutputName" in o}
    if step_type == "Training" and "S3ModelArtifacts" in properties.get("ModelArtifacts", {}):
        return {"model": properties["ModelArtifacts"]["S3ModelArtifacts"]}
    if step_type == "Transform" and "S3OutputPath" in properties.get("TransformOutput", {}):
        return {"output": properties["TransformOutput"]["S3OutputPath"]}
    return {}


def numbers(document: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted path, value) of every number in a JSON document (booleans are not numbers)."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from numbers(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from numbers(value, f"{prefix}[{index}]")
    elif isinstance(document, (int, float)) and not isinstance(document, bool):
        yield prefix, float(document)


def _elapsed(started: datetime | None, ended: datetime | None) -> float | None:
    """Seconds from `started` to `ended` (to now, while it runs); None before it started."""
    if started is None:
        return None
    return ((ended or datetime.now(timezone.utc)) - started).total_seconds()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
