"""`training`: a SageMaker training job as a pipeline step, in script mode or with an image's own algorithm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.pipeline.expressions import Property, Value, as_text
from sagelab.pipeline.steps import BuildContext, Resources, Step, image_for, source_of


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
        dependencies: Local folders shipped beside the script, each under its own name (as the
            SDK's `dependencies`): `["../src/my_package"]` makes `import my_package` work in the
            image, which does not have the project installed.
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
        dependencies: list[str | Path] | None = None,
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
        self.shipped = self.dependencies(dependencies)
        if self.shipped and self.entry_point is None:
            raise self.error("dependencies ship beside an entry_point; give one")
        self.framework, self.image = framework, image
        self.channels = {k: v if isinstance(v, Channel) else Channel(v, content_type) for k, v in (channels or {}).items()}
        self.hyperparameters = dict(hyperparameters or {})
        self.metrics = dict(metrics or {})
        self.output_path, self.env = output_path, dict(env or {})
        self.resources = Resources(instance, instance_count, volume_gb)
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
                "sagemaker_submit_directory": as_text(context.artifacts.sourcedir(self.entry_point, self.source_dir, self.shipped)),
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
        }
        if self.channels:  # CreateTrainingJob refuses an empty InputDataConfig; a job without data omits it
            arguments["InputDataConfig"] = [self._channel(name, channel, context) for name, channel in self.channels.items()]
        arguments["HyperParameters"] = hyperparameters
        if self.env:
            arguments["Environment"] = self.env
        return arguments

    def _channel(self, name: str, channel: Channel, context: BuildContext) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source_of(self, channel.source, context),
                                            "S3DataDistributionType": "FullyReplicated"}},  # fmt: skip
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        return entry


def training(name: str, **options: Any) -> TrainingStep:
    """A Training step. See `TrainingStep` for the options."""
    return TrainingStep(name, **options)


