"""`processing`: a SageMaker processing job as a pipeline step."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from sagelab.errors import PipelineError
from sagelab.pipeline._callsite import call_site, where
from sagelab.pipeline.expressions import (
    ExecutionVariables,
    Join,
    JsonGet,
    Property,
    Value,
)
from sagelab.pipeline.steps import (
    NAME,
    PROCESSING_BASE,
    BuildContext,
    Resources,
    Step,
    image_for,
    s3_input,
    source_of,
)


class ProcessingStep(Step):
    """A processing job: inputs at /opt/ml/processing/input/<name>, outputs from /opt/ml/processing/output/<name>.

    Args:
        name: The step name (1-64 letters, digits, - and _).
        code: A local script, run as `python3 /opt/ml/processing/input/code/<file>`; relative to
            `source_dir` when one is given.
        source_dir: A local folder shipped with the script, as the SDK's FrameworkProcessor
            ships it: packed as sourcedir.tar.gz, unpacked in the job by a launcher
            (runproc.sh) that first installs the folder's requirements.txt.
        dependencies: Local folders shipped beside the script, each under its own name (packed
            and launched the same way): `["../src/my_package"]` makes `import my_package` work
            in the image, which does not have the project installed.
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
        source_dir: str | Path | None = None,
        dependencies: list[str | Path] | None = None,
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
        self.code, self.source_dir = self.source_code(code, source_dir, "code")
        self.shipped = self.dependencies(dependencies)
        if (self.source_dir or self.shipped) and self.code is None:
            raise self.error("source_dir and dependencies ship with code=; give the script to run")
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
            if not NAME.match(key) or key == "code":
                raise self.error(f"{key!r} cannot name an input or output: use letters, digits, - and _ (and not 'code')")
        self.env = dict(env or {})
        self.resources = Resources(instance, instance_count, volume_gb)
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
        if self.code is not None and (self.source_dir or self.shipped):
            inputs.extend(self._framework_code(context))
            entrypoint = ["/bin/bash", f"{PROCESSING_BASE}/input/entrypoint/runproc.sh"]
        elif self.code is not None:
            inputs.append(s3_input("code", context.artifacts.file(self.code), f"{PROCESSING_BASE}/input/code"))
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

    def _framework_code(self, context: BuildContext) -> list[dict[str, Any]]:
        """The SDK FrameworkProcessor's inputs: sourcedir.tar.gz at input/code/, and the runproc.sh that unpacks and runs it."""
        assert self.code is not None
        script = self.code.relative_to(self.source_dir or self.code.parent).as_posix()
        launcher = _RUNPROC.format(command=" ".join(shlex.quote(part) for part in self.command or ["python3"]), script=shlex.quote(script))
        return [
            s3_input("code", context.artifacts.sourcedir(self.code, self.source_dir, self.shipped), f"{PROCESSING_BASE}/input/code/"),
            s3_input("entrypoint", context.artifacts.data("runproc.sh", launcher.encode()), f"{PROCESSING_BASE}/input/entrypoint"),
        ]

    def _input(self, name: str, source: Value, context: BuildContext) -> dict[str, Any]:
        return s3_input(name, source_of(self, source, context), f"{PROCESSING_BASE}/input/{name}")

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


# What the SDK's FrameworkProcessor runs (sagemaker/processing.py, _generate_framework_script), less its CodeArtifact login.
_RUNPROC = """#!/bin/bash

cd /opt/ml/processing/input/code/
tar -xzf sourcedir.tar.gz

# Exit on any error. SageMaker uses error code to mark failed job.
set -e

if [[ -f 'requirements.txt' ]]; then
    # Some py3 containers has typing, which may breaks pip install
    pip uninstall --yes typing

    python -m pip install -r requirements.txt
fi

{command} {script} "$@"
"""


class _Outputs:
    def __init__(self, step: ProcessingStep) -> None:
        self._step = step

    def __getitem__(self, name: str) -> Property:
        return self._step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    def __iter__(self) -> Any:
        return iter(self._step.output_targets)


def processing(name: str, **options: Any) -> ProcessingStep:
    """A Processing step. See `ProcessingStep` for the options.

    Example:
        >>> prep = processing("Prep", command=["python3", "-c", "print(1)"], image="img:1")
        >>> prep.type
        'Processing'
    """
    return ProcessingStep(name, **options)


