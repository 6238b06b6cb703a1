"""What a step does, read from its Create* arguments: inputs, outputs, resources, image, code.

Values that are expressions are written out as text (`Parameters.InstanceType`,
`s3://bucket/{Execution.PipelineExecutionId}/...`); a value that names another step's output
says which step and output it is, for the pages to link.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.definition import Step
from sagelab.definition.expressions import Reference, parse_get, references

_OPERATORS = {
    "Equals": "==",
    "GreaterThan": ">",
    "GreaterThanOrEqualTo": ">=",
    "LessThan": "<",
    "LessThanOrEqualTo": "<=",
}
LANGUAGES = {".py": "python", ".sh": "bash", ".r": "r", ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".sql": "sql"}
MAX_CODE_BYTES = 200_000


@dataclass(frozen=True)
class Value:
    """A value as text, and the step it comes from when it is another step's property."""

    text: str
    step: str | None = None
    what: str | None = None  # e.g. "output train", "model", for a value from `step`
    local: str | None = None  # the local file a content-addressed S3 URI was made from


@dataclass(frozen=True)
class Port:
    """One input or output: its name, where its data comes from or goes, and the container path."""

    name: str
    value: Value
    path: str | None = None


@dataclass(frozen=True)
class CodeFile:
    name: str
    text: str | None  # None when it cannot be shown (binary, too large, not local)
    language: str = "text"
    note: str | None = None


@dataclass
class Facts:
    """What a step page shows."""

    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    settings: list[tuple[str, Value]] = field(default_factory=list)
    hyperparameters: list[tuple[str, Value]] = field(default_factory=list)
    environment: list[tuple[str, Value]] = field(default_factory=list)
    metrics: list[tuple[str, Value]] = field(default_factory=list)
    code: list[CodeFile] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    conditions: list[Value] = field(default_factory=list)


def value(raw: Any, artifacts: Mapping[str, Path | bytes] | None = None, root: Path | None = None) -> Value:
    """`raw` (a plain value or an expression) as text, with the step it refers to, if any."""
    if isinstance(raw, dict) and set(raw) == {"Get"} and isinstance(raw["Get"], str):
        return _get(raw["Get"])
    if isinstance(raw, dict) and "Std:Join" in raw and len(raw["Std:Join"].get("Values", [])) == 1:
        return value(raw["Std:Join"]["Values"][0], artifacts, root)  # how the SDK turns a value into a string
    if isinstance(raw, dict):
        steps = {ref.name for ref in references(raw) if isinstance(ref, Reference) and ref.kind == "Steps"}
        if len(steps) == 1:  # e.g. a report's URI: the step's output joined with a file name
            return Value(text(raw), steps.pop())
    if isinstance(raw, str) and artifacts and raw in artifacts:
        source = artifacts[raw]
        return Value(raw, local=_relative(source, root) if isinstance(source, Path) else None)
    return Value(text(raw))


def text(raw: Any) -> str:
    """An expression written out: `Get` as its path, `Std:Join` with `{}` around the run-time
    parts, `Std:JsonGet` as `JsonGet(file, path)`, conditions with operators."""
    if isinstance(raw, dict):
        if set(raw) == {"Get"}:
            return str(raw["Get"])
        if "Std:Join" in raw:
            join = raw["Std:Join"]
            if len(join.get("Values", [])) == 1:
                return text(join["Values"][0])
            parts = [part if isinstance(part, str) else "{" + text(part) + "}" for part in join.get("Values", [])]
            return str(join.get("On", "")).join(str(p) for p in parts)
        if "Std:JsonGet" in raw:
            get = raw["Std:JsonGet"]
            return f"JsonGet({text(get.get('PropertyFile'))}, {get.get('Path')})"
        if "Type" in raw and ("LeftValue" in raw or "Condition" in raw or "Conditions" in raw or "QueryValue" in raw):
            return condition(raw)
        return json.dumps(raw, sort_keys=True)
    if isinstance(raw, list):
        return "[" + ", ".join(text(item) for item in raw) + "]"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def condition(raw: Mapping[str, Any]) -> str:
    """One entry of a Condition step's Conditions as text, e.g. `JsonGet(...) <= Parameters.MseThreshold`."""
    kind = raw.get("Type")
    if kind in _OPERATORS:
        return f"{text(raw.get('LeftValue'))} {_OPERATORS[kind]} {text(raw.get('RightValue'))}"
    if kind == "In":
        return f"{text(raw.get('QueryValue'))} in {text(raw.get('Values'))}"
    if kind == "Not":
        return f"not ({condition(raw.get('Condition', {}))})"
    if kind == "Or":
        return " or ".join(f"({condition(c)})" for c in raw.get("Conditions", []))
    return json.dumps(raw, sort_keys=True)


def facts(step: Step, artifacts: Mapping[str, Path | bytes], root: Path | None = None) -> Facts:
    """The inputs, outputs, settings and code of one step."""
    arguments = step.arguments
    found = Facts()

    def v(raw: Any) -> Value:
        return value(raw, artifacts, root)

    if step.type == "Processing":
        for item in arguments.get("ProcessingInputs", []):
            s3 = item.get("S3Input", {})
            if item.get("InputName") == "code":
                found.code.extend(_code(s3.get("S3Uri"), artifacts, None))
            found.inputs.append(Port(str(item.get("InputName")), v(s3.get("S3Uri")), s3.get("LocalPath")))
        for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
            s3 = item.get("S3Output", {})
            found.outputs.append(Port(str(item.get("OutputName")), v(s3.get("S3Uri")), s3.get("LocalPath")))
        cluster = arguments.get("ProcessingResources", {}).get("ClusterConfig", {})
        _resources(found, v, cluster.get("InstanceType"), cluster.get("InstanceCount"))
        app = arguments.get("AppSpecification", {})
        _setting(found, "Image", app.get("ImageUri"), v)
        command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        if command:
            found.settings.append(("Command", Value(" ".join(text(part) for part in command))))
        _environment(found, arguments.get("Environment"), v)
        for report in step.property_files:
            found.settings.append(("Report", Value(f"{report.file_path} in output {report.output_name} (property file {report.name})")))
    elif step.type == "Training":
        for channel in arguments.get("InputDataConfig", []):
            source = channel.get("DataSource", {}).get("S3DataSource", {})
            found.inputs.append(Port(str(channel.get("ChannelName")), v(source.get("S3Uri")), f"/opt/ml/input/data/{channel.get('ChannelName')}"))
        output = arguments.get("OutputDataConfig", {}).get("S3OutputPath")
        found.outputs.append(Port("model", Value(f"{text(output).rstrip('/')}/<job name>/output/model.tar.gz"), "/opt/ml/model"))
        resources = arguments.get("ResourceConfig", {})
        _resources(found, v, resources.get("InstanceType"), resources.get("InstanceCount"))
        algorithm = arguments.get("AlgorithmSpecification", {})
        _setting(found, "Image", algorithm.get("TrainingImage"), v)
        hyperparameters = arguments.get("HyperParameters", {})
        for key, raw in hyperparameters.items():
            if not key.startswith("sagemaker_"):
                found.hyperparameters.append((key, v(_unquote(raw))))
        for metric in algorithm.get("MetricDefinitions", []):
            found.metrics.append((str(metric.get("Name")), Value(f"log lines matching {metric.get('Regex')}")))
        program = _unquote(hyperparameters.get("sagemaker_program"))
        _sourcedir(found, _unquote(hyperparameters.get("sagemaker_submit_directory")), program, artifacts)
        _environment(found, arguments.get("Environment"), v)
    elif step.type in ("RegisterModel", "Model"):
        containers = arguments.get("InferenceSpecification", {}).get("Containers", [])
        if step.type == "Model":
            containers = [arguments.get("PrimaryContainer", {}), *arguments.get("Containers", [])]
        for container in (c for c in containers if c):
            found.inputs.append(Port("model", v(container.get("ModelDataUrl"))))
            _setting(found, "Image", container.get("Image"), v)
            environment = dict(container.get("Environment", {}))
            _sourcedir(found, environment.pop("SAGEMAKER_SUBMIT_DIRECTORY", None), environment.pop("SAGEMAKER_PROGRAM", None), artifacts)
            _environment(found, environment, v)
        statistics = arguments.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        if statistics:
            found.inputs.append(Port("metrics", v(statistics.get("S3Uri"))))
        if step.type == "RegisterModel":
            found.outputs.append(Port("model package", Value(f"a new version in group {text(arguments.get('ModelPackageGroupName'))}")))
            _setting(found, "Approval", arguments.get("ModelApprovalStatus"), v)
            spec = arguments.get("InferenceSpecification", {})
            for key, label in (("SupportedContentTypes", "Content types"), ("SupportedRealtimeInferenceInstanceTypes", "Inference instances")):
                if spec.get(key):
                    found.settings.append((label, Value(", ".join(text(x) for x in spec[key]))))
        else:
            found.outputs.append(Port("model", Value("a SageMaker model (CreateModel)")))
    elif step.type == "Transform":
        source = arguments.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {})
        found.inputs.append(Port("data", v(source.get("S3Uri"))))
        found.inputs.append(Port("model", v(arguments.get("ModelName"))))
        found.outputs.append(Port("predictions", v(arguments.get("TransformOutput", {}).get("S3OutputPath"))))
        resources = arguments.get("TransformResources", {})
        _resources(found, v, resources.get("InstanceType"), resources.get("InstanceCount"))
    elif step.type == "Condition":
        found.conditions = [Value(condition(c)) for c in step.conditions]
    elif step.type == "Fail":
        found.settings.append(("Error message", Value(text(arguments.get("ErrorMessage", "")))))
    return found


def _get(expression: str) -> Value:
    try:
        reference = parse_get(expression)
    except ValueError:
        return Value(expression)
    if reference.kind != "Steps":
        return Value(expression)
    path = reference.path
    if len(path) == 5 and path[:2] == ("ProcessingOutputConfig", "Outputs") and path[3:] == ("S3Output", "S3Uri"):
        return Value(expression, reference.name, f"output {path[2]}")
    if path == ("ModelArtifacts", "S3ModelArtifacts"):
        return Value(expression, reference.name, "model")
    if len(path) == 2 and path[0] == "PropertyFiles":
        return Value(expression, reference.name, f"report {path[1]}")
    return Value(expression, reference.name, ".".join(str(p) for p in path) or None)


def _resources(found: Facts, v: Any, instance: Any, count: Any) -> None:
    if instance is not None:
        shown = v(instance)
        times = f" × {text(count)}" if count not in (None, 1) else ""
        found.settings.append(("Instance", Value(shown.text + times, shown.step, shown.what)))


def _setting(found: Facts, label: str, raw: Any, v: Any) -> None:
    if raw is not None:
        found.settings.append((label, v(raw)))


def _environment(found: Facts, environment: Any, v: Any) -> None:
    for key, raw in (environment or {}).items():
        found.environment.append((key, v(raw)))


def _unquote(raw: Any) -> Any:
    """The SDK JSON-encodes hyperparameters: '"train.py"' means train.py."""
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            return raw
        return decoded if isinstance(decoded, (str, int, float)) else raw
    return raw


def _code(uri: Any, artifacts: Mapping[str, Path | bytes], name: str | None) -> list[CodeFile]:
    if not isinstance(uri, str):
        return [CodeFile(name or "code", None, note=f"computed when the pipeline runs: {text(uri)}")]
    source = artifacts.get(uri)
    filename = name or uri.rstrip("/").rsplit("/", 1)[-1]
    if source is None:
        return [CodeFile(filename, None, note=f"at {uri}, not in this project")]
    data = source.read_bytes() if isinstance(source, Path) else source
    return [_file(filename, data)]


def _sourcedir(found: Facts, uri: Any, program: Any, artifacts: Mapping[str, Path | bytes]) -> None:
    if not isinstance(uri, str):
        return
    source = artifacts.get(uri)
    if source is None or not uri.endswith(".tar.gz"):
        found.code.extend(_code(uri, artifacts, str(program) if program else None))
        return
    data = source.read_bytes() if isinstance(source, Path) else source
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: (m.name != program, m.name))
        for member in members:
            if member.name == program:
                extracted = archive.extractfile(member)
                found.code.append(_file(member.name, extracted.read() if extracted else b""))
            else:
                found.other_files.append(member.name)


def _file(name: str, data: bytes) -> CodeFile:
    language = LANGUAGES.get(Path(name).suffix.lower(), "text")
    if len(data) > MAX_CODE_BYTES:
        return CodeFile(name, None, language, f"{len(data):,} bytes: too large to show")
    try:
        return CodeFile(name, data.decode("utf-8"), language)
    except UnicodeDecodeError:
        return CodeFile(name, None, language, "not text")


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.absolute().relative_to(root.absolute()).as_posix()
        except ValueError:
            pass
    return path.as_posix()
