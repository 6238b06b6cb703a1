"""The SageMaker pipeline definition format: typed model, parser, validator, expressions."""

from sagelab.definition.expressions import ExpressionError, Scope, evaluate, evaluate_conditions
from sagelab.definition.graph import dependencies
from sagelab.definition.model import Parameter, PipelineDefinition, PropertyFile, Step
from sagelab.definition.parser import parse, parse_file
from sagelab.definition.validator import find_problems, validate

__all__ = [
    "ExpressionError",
    "Parameter",
    "PipelineDefinition",
    "PropertyFile",
    "Scope",
    "Step",
    "dependencies",
    "evaluate",
    "evaluate_conditions",
    "find_problems",
    "parse",
    "parse_file",
    "validate",
]
