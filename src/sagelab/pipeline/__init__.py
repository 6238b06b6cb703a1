"""Write SageMaker pipelines in a few lines of Python; they compile to the definition JSON.

    from sagelab.pipeline import Pipeline, Parameter, processing, training, condition, fail

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
from sagelab.pipeline.pipeline import Pipeline
from sagelab.pipeline.steps import (
    CacheConfig,
    Channel,
    ConditionStep,
    FailStep,
    ProcessingStep,
    RetryPolicy,
    Step,
    TrainingStep,
    condition,
    fail,
    processing,
    training,
)

__all__ = [
    "CacheConfig",
    "Channel",
    "Condition",
    "ConditionStep",
    "ExecutionVariables",
    "Expression",
    "FailStep",
    "Join",
    "JsonGet",
    "Parameter",
    "Pipeline",
    "ProcessingStep",
    "RetryPolicy",
    "Step",
    "TrainingStep",
    "condition",
    "equals",
    "fail",
    "in_",
    "not_",
    "or_",
    "processing",
    "training",
]
