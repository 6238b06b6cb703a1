"""Write SageMaker pipelines in a few lines of Python; they compile to the definition JSON.

    from sagelab.pipeline import Pipeline, Parameter, processing, training, condition, fail
    from sagelab.pipeline import spark_processing, emr       # Spark on SageMaker's Spark image, or on an EMR cluster

Building a pipeline reads local files only: code and data referenced by path get
content-addressed S3 URIs, and the engine uploads them when the pipeline runs.
"""

from sagelab.pipeline.expressions import (
    Condition,
    ExecutionVariables,
    Expression,
    Join,
    JsonGet,
    Parameter,
    equals,
    in_,
    not_,
    or_,
)
from sagelab.pipeline.models import (
    ModelStep,
    RegisterModelStep,
    TransformStep,
    model,
    register,
    transform,
)
from sagelab.pipeline.pipeline import Pipeline
from sagelab.pipeline.processing import ProcessingStep, processing
from sagelab.pipeline.spark import EMRStep, SparkProcessingStep, emr, spark_processing
from sagelab.pipeline.steps import (
    CacheConfig,
    ConditionStep,
    FailStep,
    RetryPolicy,
    Step,
    condition,
    fail,
)
from sagelab.pipeline.training import Channel, TrainingStep, training

__all__ = [
    "CacheConfig",
    "Channel",
    "Condition",
    "ConditionStep",
    "EMRStep",
    "ExecutionVariables",
    "Expression",
    "FailStep",
    "Join",
    "JsonGet",
    "ModelStep",
    "Parameter",
    "Pipeline",
    "ProcessingStep",
    "RegisterModelStep",
    "RetryPolicy",
    "SparkProcessingStep",
    "Step",
    "TrainingStep",
    "TransformStep",
    "condition",
    "emr",
    "equals",
    "fail",
    "in_",
    "model",
    "not_",
    "or_",
    "processing",
    "register",
    "spark_processing",
    "training",
    "transform",
]
