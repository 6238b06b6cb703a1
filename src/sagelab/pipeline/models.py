"""Builders for what comes after training: `register` (RegisterModel), `model` (Model), `transform`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sagelab.pipeline.expressions import Property, Value
from sagelab.pipeline.steps import BuildContext, Step, image_for, source_of
from sagelab.pipeline.training import TrainingStep


class _Serving:
    """How a model is served: its image, its model data, and its inference code."""

    def __init__(self, step: Step, model: TrainingStep | Value, framework: str | None, image: Value,
                 entry_point: str | Path | None, source_dir: str | Path | None, env: dict[str, Value] | None) -> None:  # fmt: skip
        self.step = step
        self.model_data = model.model_data if isinstance(model, TrainingStep) else model
        self.framework, self.image, self.env = framework, image, dict(env or {})
        self.entry_point, self.source_dir = step.source_code(entry_point, source_dir)

    def container(self, context: BuildContext, instance: Value) -> dict[str, Any]:
        env = dict(self.env)
        if self.entry_point is not None:  # as the SDK's framework models set it
            root = self.source_dir or self.entry_point.parent
            env.update({
                "SAGEMAKER_PROGRAM": self.entry_point.relative_to(root).as_posix(),
                "SAGEMAKER_SUBMIT_DIRECTORY": context.artifacts.sourcedir(self.entry_point, self.source_dir),
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": context.region,
            })
        container: dict[str, Any] = {
            "Image": image_for(self.step, self.framework, self.image, "inference", context, instance),
            "ModelDataUrl": source_of(self.step, self.model_data, context),
        }
        if env:
            container["Environment"] = env
        return container


class RegisterModelStep(Step):
    """Registers a model version in a model package group (the registry's CreateModelPackage).

    Args:
        name: The step name.
        model: The training step whose model to register, or a model.tar.gz S3 URI / value.
        group: The model package group; created when it does not exist.
        framework, image: The inference image ("sklearn:1.2-1" resolves for the region).
        entry_point, source_dir: Inference code (model_fn, input_fn, ...) shipped with the model.
        env: Environment variables of the inference container.
        content_types, response_types: What the model takes and returns.
        inference_instances, transform_instances: Instance types it may be deployed on.
        approval: "PendingManualApproval" (default), "Approved", "Rejected" or a parameter.
        metrics: The S3 URI of an evaluation report (e.g. `evaluate.report_uri("evaluation")`).
        description: The version's description.
    """

    type = "RegisterModel"

    def __init__(self, name: str, model: TrainingStep | Value, *, group: str, framework: str | None = None,
                 image: Value = None, entry_point: str | Path | None = None, source_dir: str | Path | None = None,
                 env: dict[str, Value] | None = None, content_types: list[str] | None = None,
                 response_types: list[str] | None = None, inference_instances: list[str] | None = None,
                 transform_instances: list[str] | None = None, approval: Value = "PendingManualApproval",
                 metrics: Value = None, **common: Any) -> None:  # fmt: skip
        super().__init__(name, **common)
        self.serving = _Serving(self, model, framework, image, entry_point, source_dir, env)
        self.group, self.approval, self.metrics = group, approval, metrics
        self.content_types = list(content_types or ["text/csv"])
        self.response_types = list(response_types or ["text/csv"])
        self.inference_instances = list(inference_instances or ["ml.m5.large"])
        self.transform_instances = list(transform_instances or ["ml.m5.large"])

    @property
    def package_arn(self) -> Property:
        """The registered version's ARN."""
        return self.properties.ModelPackageArn

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        instance = self.inference_instances[0] if self.inference_instances else None
        arguments: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "InferenceSpecification": {
                "Containers": [self.serving.container(context, instance)],
                "SupportedContentTypes": self.content_types,
                "SupportedResponseMIMETypes": self.response_types,
                "SupportedRealtimeInferenceInstanceTypes": self.inference_instances,
                "SupportedTransformInstanceTypes": self.transform_instances,
            },
            "ModelApprovalStatus": self.approval,
        }
        if self.metrics is not None:
            arguments["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": self.metrics}}}
        if self.description:
            arguments["ModelPackageDescription"] = self.description
        return arguments


class ModelStep(Step):
    """Creates a SageMaker model (CreateModel) for endpoints and transform jobs."""

    type = "Model"

    def __init__(self, name: str, model: TrainingStep | Value, *, framework: str | None = None, image: Value = None,
                 entry_point: str | Path | None = None, source_dir: str | Path | None = None,
                 env: dict[str, Value] | None = None, instance: str | None = None, **common: Any) -> None:  # fmt: skip
        super().__init__(name, **common)
        self.serving = _Serving(self, model, framework, image, entry_point, source_dir, env)
        self.instance = instance

    @property
    def model_name(self) -> Property:
        """The created model's name, for `transform(model=...)`."""
        return self.properties.ModelName

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        return {"ExecutionRoleArn": context.role, "PrimaryContainer": self.serving.container(context, self.instance)}


class TransformStep(Step):
    """A batch transform job over every object under `input`; results land as `<input>.out` files.

    Args:
        name: The step name.
        model: A model name, or a `ModelStep`.
        input: An s3:// URI, a pipeline value, or a local file or folder.
        output: Where results go (default: under the pipeline's execution in the bucket).
        content_type, accept: What the records are, and what to ask the model for.
        split_type: "Line" splits files into records; "None" sends whole files.
        strategy: "MultiRecord" (default) or "SingleRecord" per request.
        assemble_with: "Line" joins results with newlines; "None" concatenates.
        input_filter, output_filter, join_source: DataProcessing, as in CreateTransformJob.
        instance, instance_count: The job's resources.
    """

    type = "Transform"

    def __init__(self, name: str, model: ModelStep | Value, input: Value, *, output: Value = None,
                 content_type: str = "text/csv", accept: str | None = None, split_type: str = "Line",
                 strategy: str = "MultiRecord", assemble_with: str = "Line", input_filter: str | None = None,
                 output_filter: str | None = None, join_source: str | None = None, max_payload_mb: int = 6,
                 instance: Value = None, instance_count: Value = None, **common: Any) -> None:  # fmt: skip
        super().__init__(name, **common)
        self.model = model.model_name if isinstance(model, ModelStep) else model
        self.input, self.output = input, output
        self.content_type, self.accept = content_type, accept
        self.split_type, self.strategy, self.assemble_with = split_type, strategy, assemble_with
        self.filters = {"InputFilter": input_filter, "OutputFilter": output_filter, "JoinSource": join_source}
        self.max_payload_mb, self.instance, self.instance_count = max_payload_mb, instance, instance_count

    @property
    def output_path(self) -> Property:
        """Where the job wrote its results."""
        return self.properties.TransformOutput.S3OutputPath

    def arguments(self, context: BuildContext) -> dict[str, Any]:
        from sagelab.pipeline.expressions import ExecutionVariables, Join

        output = self.output if self.output is not None else Join(
            "/", ["s3:/", context.bucket, context.pipeline, ExecutionVariables.PIPELINE_EXECUTION_ID, self.name, "output"])
        transform_output: dict[str, Any] = {"S3OutputPath": output, "AssembleWith": self.assemble_with}
        if self.accept:
            transform_output["Accept"] = self.accept
        arguments: dict[str, Any] = {
            "ModelName": self.model,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source_of(self, self.input, context)}},
                "ContentType": self.content_type,
                "SplitType": self.split_type,
            },
            "TransformOutput": transform_output,
            "TransformResources": {
                "InstanceCount": 1 if self.instance_count is None else self.instance_count,
                "InstanceType": context.instance_type if self.instance is None else self.instance,
            },
            "BatchStrategy": self.strategy,
            "MaxPayloadInMB": self.max_payload_mb,
        }
        filters = {k: v for k, v in self.filters.items() if v is not None}
        if filters:
            arguments["DataProcessing"] = filters
        return arguments


def register(name: str, model: TrainingStep | Value, **options: Any) -> RegisterModelStep:
    """A RegisterModel step. See `RegisterModelStep` for the options."""
    return RegisterModelStep(name, model, **options)


def model(name: str, model: TrainingStep | Value, **options: Any) -> ModelStep:
    """A Model step (CreateModel). See `ModelStep` for the options."""
    return ModelStep(name, model, **options)


def transform(name: str, model: ModelStep | Value, input: Value, **options: Any) -> TransformStep:
    """A Transform step (batch transform). See `TransformStep` for the options."""
    return TransformStep(name, model, input, **options)



