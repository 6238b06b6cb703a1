"""`spark_processing` and `emr`: a Spark job as a pipeline step, on SageMaker's Spark image or an EMR cluster.

`spark_processing` compiles to what the SDK's PySparkProcessor and SparkJarProcessor make: the
image's `smspark-submit` with `--class`, `--py-files`, `--jars`, `--files` channels, a `conf`
input holding configuration.json, and the event logs as a Continuous output. `emr` compiles to
the SDK's EMRStep with `command-runner.jar spark-submit ...`. Both run locally on local Spark and
unchanged on SageMaker and EMR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagelab.pipeline.expressions import ExecutionVariables, Join, Value
from sagelab.pipeline.processing import ProcessingStep
from sagelab.pipeline.steps import PROCESSING_BASE, BuildContext, Step, s3_input

# The classifications the SDK accepts (sagemaker/spark/processing.py, SparkConfigUtils).
CLASSIFICATIONS = ("core-site", "hadoop-env", "hadoop-log4j", "hive-env", "hive-log4j", "hive-exec-log4j", "hive-site", "spark-defaults",
                   "spark-env", "spark-log4j", "spark-hive-site", "spark-metrics", "yarn-env", "yarn-site", "export")  # fmt: skip
EVENT_LOGS_PATH = f"{PROCESSING_BASE}/spark-events/"
EVENT_LOGS_OUTPUT = "spark-events"
_CHANNELS = {"py_files": "py-files", "jars": "jars", "files": "files"}  # option → the image's channel and spark-submit option


class SparkProcessingStep(ProcessingStep):
    """A Spark job on SageMaker's Spark processing image: `smspark-submit` runs `code` (a .py file, or a jar with `main_class`).

    Args:
        name: The step name.
        code: The application: a local .py file (PySparkProcessor's submit_app) or a .jar (SparkJarProcessor's).
        main_class: The jar's main class (`--class`); required for a jar, refused for Python.
        py_files, jars, files: Local files or s3:// URIs for `--py-files`, `--jars`, `--files`.
        configuration: EMR's application configuration: a classification or a list of them, e.g.
            `[{"Classification": "spark-defaults", "Properties": {"spark.executor.memory": "4g"}}]`.
        event_logs: An s3:// URI (or pipeline value) the Spark event logs are written to, or True
            for `<bucket>/<pipeline>/<execution>/<step>/spark-events`.
        spark: The image's Spark version, e.g. "3.5" (`image=` overrides it).
        inputs, outputs, reports, arguments, env, instance, instance_count, volume_gb,
        max_runtime and the common options: as for `processing`.
    """

    def __init__(
        self,
        name: str,
        *,
        code: str | Path,
        main_class: str | None = None,
        py_files: list[str | Path] | None = None,
        jars: list[str | Path] | None = None,
        files: list[str | Path] | None = None,
        configuration: dict[str, Any] | list[dict[str, Any]] | None = None,
        event_logs: Value | bool = None,
        spark: str = "3.5",
        **options: Any,
    ) -> None:
        for option in ("command", "source_dir", "dependencies", "framework"):
            if option in options:
                raise TypeError(f"spark_processing() takes no {option}=: smspark-submit runs the code, with py_files= beside it")
        super().__init__(name, code=code, framework=f"spark:{spark}", **options)
        assert self.code is not None
        if self.code.suffix == ".jar" and not main_class:
            raise self.error("a jar application needs main_class= (spark-submit's --class)")
        if self.code.suffix != ".jar" and main_class:
            raise self.error("main_class= is for a jar application; code is a Python file")
        self.main_class = main_class
        self.submitted = {option: [self._dependency(value) for value in values or []]
                          for option, values in (("py_files", py_files), ("jars", jars), ("files", files))}  # fmt: skip
        self.configuration = configuration
        if configuration is not None:
            self._check_configuration(configuration)
        self.event_logs = event_logs

    def _dependency(self, value: str | Path) -> str | Path:
        return value if isinstance(value, str) and value.startswith(("s3://", "s3a://")) else self.local_path(value)

    def _check_configuration(self, configuration: Any) -> None:
        """The SDK's checks: each entry has Classification and Properties, and a known classification."""
        for entry in configuration if isinstance(configuration, list) else [configuration]:
            if not isinstance(entry, dict) or "Classification" not in entry or "Properties" not in entry:
                raise self.error("each configuration is a dict with Classification and Properties (EMR's application configuration)")
            if entry["Classification"] not in CLASSIFICATIONS:
                raise self.error(f"unknown classification {entry['Classification']!r}; one of {', '.join(CLASSIFICATIONS)}")
            unknown = set(entry) - {"Classification", "Properties", "Configurations"}
            if unknown:
                raise self.error(f"unknown configuration key {sorted(unknown)[0]!r}; use Classification, Properties and Configurations")
            for nested in entry.get("Configurations") or []:
                self._check_configuration(nested)

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        self.command = ["smspark-submit", *self._submit_options(context)]
        arguments = super().arguments(context)
        code_input = arguments["ProcessingInputs"].pop()  # the SDK puts the dependencies and the configuration before the code
        arguments["ProcessingInputs"] += [*self._channels(context), *self._configuration(context), code_input]
        if self.event_logs is not None and self.event_logs is not False:
            target = self._event_logs_uri(context)
            output = {"OutputName": EVENT_LOGS_OUTPUT, "AppManaged": False,
                      "S3Output": {"S3Uri": target, "LocalPath": EVENT_LOGS_PATH, "S3UploadMode": "Continuous"}}  # fmt: skip
            arguments.setdefault("ProcessingOutputConfig", {"Outputs": []})["Outputs"].append(output)
        return arguments

    def _submit_options(self, context: BuildContext) -> list[str]:
        options = ["--class", self.main_class] if self.main_class else []
        for option, values in self.submitted.items():
            if values:
                remote = [value for value in values if isinstance(value, str)]
                local = [f"{PROCESSING_BASE}/input/{_CHANNELS[option]}"] if len(remote) < len(values) else []
                options += [f"--{_CHANNELS[option]}", ",".join([*remote, *local])]
        if self.event_logs is not None and self.event_logs is not False:
            options += ["--local-spark-event-logs-dir", EVENT_LOGS_PATH]
        return options

    def _channels(self, context: BuildContext) -> list[dict[str, Any]]:
        """An input per option with local files: the files under one content-addressed prefix."""
        inputs = []
        for option, values in self.submitted.items():
            local = [value for value in values if isinstance(value, Path)]
            if local:
                channel = _CHANNELS[option]
                inputs.append(s3_input(channel, context.artifacts.files(local, channel), f"{PROCESSING_BASE}/input/{channel}"))
        return inputs

    def _configuration(self, context: BuildContext) -> list[dict[str, Any]]:
        if self.configuration is None:
            return []
        data = json.dumps(self.configuration).encode()
        return [s3_input("conf", context.artifacts.data("configuration.json", data), f"{PROCESSING_BASE}/input/conf")]

    def _event_logs_uri(self, context: BuildContext) -> Value:
        if self.event_logs is True:
            return Join("/", ["s3:/", context.bucket, context.pipeline, ExecutionVariables.PIPELINE_EXECUTION_ID, self.name, "spark-events"])
        return self.event_logs


class EMRStep(Step):
    """A Spark application run by `spark-submit` on an EMR cluster (`command-runner.jar`), as the SDK's EMRStep sends it.

    Args:
        name: The step name.
        code: The application: a local .py or .jar file (uploaded with the pipeline) or an s3:// URI.
        arguments: The application's arguments (pipeline values allowed).
        cluster_id: An existing cluster's id (j-...), or
        cluster: a new cluster's RunJobFlow configuration (Instances, ReleaseLabel, ...), made for the step.
        main_class, py_files, jars, files: spark-submit's --class, --py-files, --jars, --files (local files or s3:// URIs).
        conf: Spark properties (spark-submit --conf).
        execution_role: The runtime role (ExecutionRoleArn) for a cluster that uses them; with cluster_id only.
        depends_on, display_name, description, cache, retry: As for every step.
    """

    type = "EMR"

    def __init__(
        self,
        name: str,
        *,
        code: str | Path,
        arguments: list[Value] | None = None,
        cluster_id: Value = None,
        cluster: dict[str, Any] | None = None,
        main_class: str | None = None,
        py_files: list[str | Path] | None = None,
        jars: list[str | Path] | None = None,
        files: list[str | Path] | None = None,
        conf: dict[str, str] | None = None,
        execution_role: Value = None,
        **common: Any,
    ) -> None:
        super().__init__(name, **common)
        if (cluster_id is None) == (cluster is None):
            raise self.error("give cluster_id= (an existing cluster) or cluster= (a new cluster's configuration), not both")
        if execution_role is not None and cluster_id is None:
            raise self.error("execution_role= needs cluster_id=: a cluster the step creates has no runtime roles")
        if cluster is not None and ("Instances" not in cluster or {"Name", "Steps", "AutoTerminationPolicy"} & set(cluster)):
            raise self.error("cluster= is RunJobFlow's configuration with Instances, and without Name, Steps or AutoTerminationPolicy "
                             "(the pipeline sets those)")  # fmt: skip
        self.app = self._resource(code)
        self.application_arguments = list(arguments or [])
        self.cluster_id, self.cluster, self.execution_role = cluster_id, cluster, execution_role
        self.main_class = main_class
        self.submitted = {option: [self._resource(value) for value in values or []]
                          for option, values in (("py_files", py_files), ("jars", jars), ("files", files))}  # fmt: skip
        self.conf = dict(conf or {})

    def _resource(self, value: str | Path) -> str | Path:
        return value if isinstance(value, str) and value.startswith(("s3://", "s3a://")) else self.local_path(value)

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        def uri(value: str | Path) -> str:
            return value if isinstance(value, str) else context.artifacts.file(value)

        args: list[Value] = ["spark-submit", "--deploy-mode", "cluster"]
        for key, value in self.conf.items():
            args += ["--conf", f"{key}={value}"]
        if self.main_class:
            args += ["--class", self.main_class]
        for option, values in self.submitted.items():
            if values:
                args += [f"--{_CHANNELS[option]}", ",".join(uri(value) for value in values)]
        args += [uri(self.app), *self.application_arguments]
        request: dict[str, Any] = {"StepConfig": {"HadoopJarStep": {"Jar": "command-runner.jar", "Args": args}}}
        if self.cluster_id is not None:
            request["ClusterId"] = self.cluster_id
            if self.execution_role is not None:
                request["ExecutionRoleArn"] = self.execution_role
        else:
            request["ClusterConfig"] = self.cluster
        return request


def spark_processing(name: str, **options: Any) -> SparkProcessingStep:
    """A Spark processing step (PySparkProcessor, or SparkJarProcessor with a jar). See `SparkProcessingStep`."""
    return SparkProcessingStep(name, **options)


def emr(name: str, **options: Any) -> EMRStep:
    """An EMR step running spark-submit on a cluster. See `EMRStep`."""
    return EMRStep(name, **options)
