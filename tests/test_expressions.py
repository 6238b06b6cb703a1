"""Every expression and condition form, resolved against a plain in-memory scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sagelab.definition import ExpressionError, evaluate, evaluate_conditions
from sagelab.definition.expressions import evaluate_condition, parse_get, parse_path


class Scope:
    def __init__(self) -> None:
        self.documents = {"s3://b/eval/evaluation.json": {"metrics": {"mse": {"value": 2.5}}, "list": [{"v": 1}, {"v": 2}]}}
        self.properties = {
            "Prep": {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
                        {"OutputName": "eval", "S3Output": {"S3Uri": "s3://b/eval"}},
                    ]
                },
                "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://b/code.py"}}],
            },
            "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}, "Tags": {"team": "ml"}},
        }

    def parameter(self, name: str) -> Any:
        return {"Threshold": 3.0, "Name": "abc", "Flag": True}[name]

    def execution_variable(self, name: str) -> Any:
        return {"PipelineExecutionId": "exec123", "PipelineName": "p"}[name]

    def step_properties(self, name: str) -> dict[str, Any]:
        return self.properties[name]

    def property_file_uri(self, step: str, name: str) -> str:
        assert (step, name) == ("Prep", "Report")
        return "s3://b/eval/evaluation.json"

    def read_json(self, uri: str) -> Any:
        return json.loads(json.dumps(self.documents[uri]))


scope = Scope()


def test_get_parameter_and_execution_variable() -> None:
    assert evaluate({"Get": "Parameters.Threshold"}, scope) == 3.0
    assert evaluate({"Get": "Execution.PipelineExecutionId"}, scope) == "exec123"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri", "s3://b/train"),
        ('Steps.Prep.ProcessingOutputConfig.Outputs["eval"].S3Output.S3Uri', "s3://b/eval"),
        ("Steps.Prep.ProcessingOutputConfig.Outputs[1].S3Output.S3Uri", "s3://b/eval"),
        ("Steps.Prep.ProcessingInputs['code'].S3Input.S3Uri", "s3://b/code.py"),
        ("Steps.Train.ModelArtifacts.S3ModelArtifacts", "s3://b/model.tar.gz"),
        ("Steps.Train.Tags['team']", "ml"),
    ],
)
def test_get_step_property_paths(path: str, expected: str) -> None:
    assert evaluate({"Get": path}, scope) == expected


def test_missing_property_names_where() -> None:
    with pytest.raises(ExpressionError, match=r"Outputs\.nope does not exist"):
        evaluate({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri"}, scope)
    with pytest.raises(ExpressionError, match="out of range"):
        evaluate({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs[5]"}, scope)


def test_join_nested_in_arguments() -> None:
    arguments = {
        "Outputs": [{"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, "x"]}}}],
        "Flag": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Flag"}]}},
        "Plain": [1, "two", None],
    }
    assert evaluate(arguments, scope) == {"Outputs": [{"S3Uri": "s3://b/exec123/x"}], "Flag": "true", "Plain": [1, "two", None]}


def test_json_get_property_file_and_s3uri_forms() -> None:
    by_file = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Prep.PropertyFiles.Report"}, "Path": "metrics.mse.value"}}
    assert evaluate(by_file, scope) == 2.5
    by_uri = {"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b/eval", "evaluation.json"]}}, "Path": "list[1].v"}}
    assert evaluate(by_uri, scope) == 2


def test_json_get_missing_path() -> None:
    with pytest.raises(ExpressionError, match="metrics.rmse does not exist"):
        evaluate({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Prep.PropertyFiles.Report"}, "Path": "metrics.rmse"}}, scope)


@pytest.mark.parametrize(
    ("kind", "left", "right", "expected"),
    [
        ("Equals", 3.0, 3, True),
        ("Equals", "abc", "abd", False),
        ("GreaterThan", 4, 3, True),
        ("GreaterThan", 3, 3, False),
        ("GreaterThanOrEqualTo", 3, 3, True),
        ("LessThan", 2, 3, True),
        ("LessThan", 3, 3, False),
        ("LessThanOrEqualTo", 3, 3, True),
        ("LessThanOrEqualTo", "2.5", 3, True),  # a number that arrived as a string compares as a number
    ],
)
def test_comparisons(kind: str, left: Any, right: Any, expected: bool) -> None:
    assert evaluate_condition({"Type": kind, "LeftValue": left, "RightValue": right}, scope) is expected


def test_in_not_or_and_lists() -> None:
    in_ = {"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "abc"]}
    assert evaluate_condition(in_, scope)
    assert not evaluate_condition({"Type": "Not", "Condition": in_}, scope)
    false = {"Type": "Equals", "LeftValue": 1, "RightValue": 2}
    assert evaluate_condition({"Type": "Or", "Conditions": [false, in_]}, scope)
    assert not evaluate_conditions([in_, false], scope)  # a list is ANDed
    assert evaluate_conditions([in_, {"Type": "Not", "Condition": false}], scope)


def test_condition_on_json_get_against_parameter() -> None:
    condition = {
        "Type": "LessThanOrEqualTo",
        "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Prep.PropertyFiles.Report"}, "Path": "metrics.mse.value"}},
        "RightValue": {"Get": "Parameters.Threshold"},
    }
    assert evaluate_condition(condition, scope)


def test_incomparable_values_are_an_error() -> None:
    with pytest.raises(ExpressionError, match="cannot compare"):
        evaluate_condition({"Type": "GreaterThan", "LeftValue": "abc", "RightValue": 1}, scope)


def test_parse_path_and_get() -> None:
    assert parse_path("A.B['k.x'][0].C") == ["A", "B", "k.x", 0, "C"]
    assert parse_get("Steps.My-Step.FinalMetricDataList['val:mse'].Value").path == ("FinalMetricDataList", "val:mse", "Value")
    for bad in ("Nope.X", "Parameters", "Parameters.X.Y", "Steps.A.[", ""):
        with pytest.raises(ValueError):
            parse_get(bad)
