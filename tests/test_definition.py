"""Parsing and validation: every problem is reported with its JSON location."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLE, definition, processing_step
from sagelab.definition import parse, parse_file, validate
from sagelab.definition.parser import parse as parse_json
from sagelab.errors import DefinitionError, ParameterError


def problems(document: Any) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        validate(parse_json(document))
    return [str(p) for p in info.value.problems]


def test_example_parses_and_validates() -> None:
    parsed = parse_file(EXAMPLE / "pipeline.json")
    validate(parsed)
    assert [s.name for s in parsed.all_steps()] == ["Preprocess", "Train", "Evaluate", "CheckMse", "Register", "MseTooHigh"]
    assert parsed.step("MseTooHigh").branch == ("CheckMse:else",)
    assert parsed.parameters["NEstimators"].default == 150


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"Version": "2020-12-01",\n "Steps": [}')
    with pytest.raises(DefinitionError, match=r"(?s)broken.json.*not valid JSON.*line 2"):
        parse_file(broken)
    with pytest.raises(DefinitionError, match="cannot read"):
        parse_file(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "/: a definition is a JSON object"),
        ({"Version": "2019", "Steps": [{"Name": "A", "Type": "Fail"}]}, '/Version: must be "2020-12-01"'),
        ({"Version": "2020-12-01", "Steps": []}, "/Steps: must be a non-empty list"),
        ({"Version": "2020-12-01", "Steps": [{"Name": "bad name!", "Type": "Fail"}]}, "/Steps/0/Name: 'bad name!' is not a valid step name"),
        ({"Version": "2020-12-01", "Steps": [{"Name": "x" * 65, "Type": "Fail"}]}, "/Steps/0/Name"),
        ({"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Teleport"}]}, "/Steps/0/Type: step A has unknown type 'Teleport'"),
        ({"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Fail", "Arguments": []}]}, "/Steps/0/Arguments: step A: Arguments must be an object"),
        ({"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Fail", "DependsOn": "B"}]}, "/Steps/0/DependsOn"),
        (
            {"Version": "2020-12-01", "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": "3"}], "Steps": [{"Name": "A", "Type": "Fail"}]},
            "/Parameters/0/DefaultValue: parameter N is Integer but its default is '3'",
        ),
        (
            {"Version": "2020-12-01", "Parameters": [{"Name": "N", "Type": "Number"}], "Steps": [{"Name": "A", "Type": "Fail"}]},
            "/Parameters/0/Type: parameter N has type 'Number'",
        ),
        (
            {"Version": "2020-12-01", "Steps": [{"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Bigger"}]}}]},
            "/Steps/0/Arguments/Conditions/0: unknown condition 'Bigger'",
        ),
        (
            {"Version": "2020-12-01", "Steps": [{"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Equals", "LeftValue": 1}]}}]},
            "RightValue is missing",
        ),
        (
            {"Version": "2020-12-01", "Steps": [{"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Not", "Condition": {"Type": "Or", "Conditions": [{"Type": "X"}]}}]}}]},
            "/Steps/0/Arguments/Conditions/0/Condition/Conditions/0: unknown condition 'X'",
        ),
        (
            {"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Fail", "CacheConfig": {"Enabled": "yes"}}]},
            "/Steps/0/CacheConfig",
        ),
        (
            {"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Fail", "PropertyFiles": [{"PropertyFileName": "R"}]}]},
            "/Steps/0/PropertyFiles/0: a property file needs",
        ),
    ],
)
def test_structural_problems(document: Any, expected: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse(document)
    assert any(expected in str(p) for p in info.value.problems), info.value


def test_all_problems_are_reported_at_once() -> None:
    document = {"Version": "1", "Steps": [{"Name": "A!", "Type": "Fail"}, {"Name": "B", "Type": "Nope"}]}
    with pytest.raises(DefinitionError) as info:
        parse(document)
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value)


def test_duplicate_names_including_branches() -> None:
    condition = {"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}], "IfSteps": [{"Name": "A", "Type": "Fail"}]}}
    found = problems(definition({"Name": "A", "Type": "Fail"}, condition))
    assert found == ["/Steps/1/Arguments/IfSteps/0/Name: step name A is used twice; step names must be unique"]


def test_missing_step_parameter_and_variable() -> None:
    step = processing_step("P", "pass", inputs={
        "a": {"Get": "Steps.Trian.ModelArtifacts.S3ModelArtifacts"},
        "b": {"Get": "Parameters.Treshold"},
        "c": {"Std:Join": {"On": "/", "Values": [{"Get": "Execution.StartTime"}]}},
    })
    train = {"Name": "Train", "Type": "Training", "Arguments": {}}
    found = problems(definition(step, train, parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": 1.0}]))
    assert any("S3Input/S3Uri/Get: Steps.Trian.ModelArtifacts.S3ModelArtifacts names step Trian, which does not exist (did you mean Train?)" in p for p in found)
    assert any("parameter Treshold is not declared (did you mean Threshold?)" in p for p in found)
    assert any("/Values/0/Get: Execution.StartTime is not an execution variable" in p for p in found)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("Steps.Train.ModelArtifact.S3ModelArtifacts", "ModelArtifact is not a property of a Training step (did you mean ModelArtifacts?)"),
        ("Steps.Train.ModelArtifacts.S3ModelArtifacts.Deeper", "S3ModelArtifacts is a string and has no ['Deeper']"),
        ("Steps.Train", "name a property of the Training step"),
        ("Steps.Prep.ProcessingOutputConfig.Output['x']", "Output is not a property of ProcessingOutputConfig (did you mean Outputs?)"),
        ("Steps.Prep.PropertyFiles.Missing", "step Prep declares property files ['Report']"),
        ("Steps.Check.Result", "Result is not a property of a Condition step"),
    ],
)
def test_property_paths_are_checked_against_describe_shapes(path: str, message: str) -> None:
    prep = processing_step("Prep", "pass", outputs=["x"], PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "x", "FilePath": "r.json"}])
    train = {"Name": "Train", "Type": "Training", "Arguments": {}}
    check = {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}]}}
    user = processing_step("User", "pass", inputs={"a": {"Get": path}})
    found = problems(definition(prep, train, check, user))
    assert any(message in p for p in found), found


def test_valid_property_paths_pass() -> None:
    prep = processing_step("Prep", "pass", outputs=["train"])
    train = {"Name": "Train", "Type": "Training", "Arguments": {"RoleArn": "arn:aws:iam::000000000000:role/R", "OutputDataConfig": {"S3OutputPath": "s3://b/m"}}}
    user = processing_step("User", "pass", inputs={
        "a": {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
        "b": {"Get": "Steps.Train.FinalMetricDataList['train:mse'].Value"},
        "c": {"Get": "Steps.Train.HyperParameters['n']"},
        "d": {"Get": "Steps.Prep.ProcessingInputs[0].S3Input.S3Uri"},
    })
    validate(parse(definition(prep, train, user)))


def test_cycles_are_reported_with_their_path() -> None:
    a = processing_step("A", "pass", inputs={"x": {"Get": "Steps.B.ProcessingJobName"}})
    b = processing_step("B", "pass", DependsOn=["A"])
    found = problems(definition(a, b))
    assert found == ["/Steps/0: dependency cycle A → B → A; remove one of these references or DependsOn entries"]


def test_self_reference_and_unknown_depends_on() -> None:
    a = processing_step("A", "pass", inputs={"x": {"Get": "Steps.A.ProcessingJobName"}}, DependsOn=["Ghost"])
    found = problems(definition(a))
    assert any("refers to its own properties" in p for p in found)
    assert any("/Steps/0/DependsOn/0: step A depends on Ghost, which does not exist" in p for p in found)


def test_branch_visibility() -> None:
    inner = processing_step("Inner", "pass")
    sibling = processing_step("Sibling", "pass", DependsOn=["Inner"])  # same branch: fine
    other = processing_step("Other", "pass", inputs={"x": {"Get": "Steps.Inner.ProcessingJobName"}})  # else branch
    condition = {"Name": "C", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 1}], "IfSteps": [inner, sibling], "ElseSteps": [other]}}
    outside = processing_step("Outside", "pass", DependsOn=["Inner"])
    found = problems(definition(condition, outside))
    assert len(found) == 2, found
    assert any(p.startswith("/Steps/0/Arguments/ElseSteps/0/Arguments/ProcessingInputs/0/S3Input/S3Uri/Get: step Other depends on Inner, which runs only inside the C IfSteps branch") for p in found)
    assert any(p.startswith("/Steps/1/DependsOn/0: step Outside depends on Inner") for p in found)


def test_malformed_get() -> None:
    step = processing_step("A", "pass", inputs={"x": {"Get": "Steps..Bad"}, "y": {"Get": 3}})
    found = problems(definition(step))
    assert any("/S3Input/S3Uri/Get: cannot parse" in p for p in found)
    assert any("a Get must name a string" in p for p in found)


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [("Integer", "7", 7), ("Float", "0.5", 0.5), ("Float", "3", 3.0), ("Boolean", "TRUE", True), ("Boolean", "false", False), ("String", "x=1", "x=1")],
)
def test_parameter_values_are_typed(kind: str, given: str, expected: Any) -> None:
    parsed = parse(definition({"Name": "A", "Type": "Fail"}, parameters=[{"Name": "P", "Type": kind}]))
    assert parsed.typed_parameters({"P": given}) == {"P": expected}


@pytest.mark.parametrize(("kind", "given"), [("Integer", "7.5"), ("Integer", "seven"), ("Float", "x"), ("Boolean", "yes")])
def test_parameter_type_mismatch(kind: str, given: str) -> None:
    parsed = parse(definition({"Name": "A", "Type": "Fail"}, parameters=[{"Name": "P", "Type": kind, "DefaultValue": None}]))
    with pytest.raises(ParameterError, match=f"parameter P is {kind}; got '{given}'"):
        parsed.typed_parameters({"P": given})


def test_unknown_and_missing_parameters() -> None:
    parsed = parse(definition({"Name": "A", "Type": "Fail"}, parameters=[{"Name": "Threshold", "Type": "Float"}]))
    with pytest.raises(ParameterError, match=r"unknown parameter Treshold \(did you mean Threshold\?\)"):
        parsed.typed_parameters({"Treshold": "1"})
    with pytest.raises(ParameterError, match="has no default value; pass --param Threshold=VALUE"):
        parsed.typed_parameters({})


def test_enum_values() -> None:
    parsed = parse(definition({"Name": "A", "Type": "Fail"}, parameters=[{"Name": "S", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]}]))
    assert parsed.typed_parameters({"S": "b"}) == {"S": "b"}
    with pytest.raises(ParameterError, match="must be one of a, b"):
        parsed.typed_parameters({"S": "c"})


def test_raw_json_string_parses() -> None:
    assert parse(json.dumps(definition({"Name": "A", "Type": "Fail"}))).steps[0].name == "A"


def test_example_json_is_the_generated_definition() -> None:
    """examples/diabetes/pipeline.json is `sagelab definition` of pipeline.py, kept in step."""
    from sagelab.definition.loader import load

    loaded = load(f"{EXAMPLE}/pipeline.py:pipeline")
    assert (EXAMPLE / "pipeline.json").read_text() == json.dumps(loaded.definition.raw, indent=2) + "\n", (
        "regenerate it: sagelab definition examples/diabetes/pipeline.py:pipeline --out examples/diabetes/pipeline.json"
    )


def test_a_step_that_depends_on_itself_is_refused() -> None:
    step = processing_step("A", "pass", DependsOn=["A"])
    with pytest.raises(DefinitionError, match="/Steps/0/DependsOn/0: step A depends on itself; remove it from its own DependsOn"):
        validate(parse(definition(step)))


def test_retry_policy_numbers_are_checked_all_at_once() -> None:
    policy = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "MaxAttempts": "lots", "IntervalSeconds": "x", "BackoffRate": 0.5}
    with pytest.raises(DefinitionError) as caught:
        parse(definition(processing_step("A", "pass", RetryPolicies=[policy])))
    message = str(caught.value)
    assert "/Steps/0/RetryPolicies/0: retry policy: IntervalSeconds must be a number of seconds above 0, at most 300; got 'x'" in message
    assert "BackoffRate must be a number of at least 1; got 0.5" in message and "MaxAttempts must be a whole number from 1 to 20; got 'lots'" in message


def test_files_in_other_encodings_and_deep_nesting_give_one_clear_error(tmp_path: Path) -> None:
    document = definition(processing_step("A", "pass"))
    (tmp_path / "utf16.json").write_text(json.dumps(document), encoding="utf-16")  # a byte-order mark says so
    assert [step.name for step in parse_file(tmp_path / "utf16.json").steps] == ["A"]
    (tmp_path / "latin1.json").write_bytes(json.dumps(document, ensure_ascii=False).replace('"A"', '"caf\u00e9"').encode("latin-1"))
    with pytest.raises(DefinitionError, match=r"not UTF-8 text \(byte \d+ is b'\\xe9'\); save it as UTF-8"):
        parse_file(tmp_path / "latin1.json")
    nested = '"x"'
    for _ in range(40):
        nested = '{"Std:Join": {"On": "", "Values": [' + nested + "]}}"
    (tmp_path / "deep.json").write_text(json.dumps(document).replace('"pass"]', f'"pass", {nested}]'))
    with pytest.raises(DefinitionError, match=r"/Steps/0/Arguments/AppSpecification/ContainerEntrypoint/3/Std:Join/Values/0/.*nested more than 100 levels"):
        parse_file(tmp_path / "deep.json")
    (tmp_path / "deeper.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DefinitionError, match="nested too deeply to read"):
        parse_file(tmp_path / "deeper.json")


def test_arguments_are_checked_against_the_api_request_all_problems_at_once() -> None:
    """Each step's Arguments against its Create* request (shapes from botocore): names, types, enums, ranges, required members."""
    step = processing_step("P", "pass")
    resources = step["Arguments"]["ProcessingResources"]["ClusterConfig"]
    resources.update(InstanceCount="three", InstanceType="ml.m5.larg", VolumeSizeInGB=0)
    step["Arguments"]["ProcesingInputs"] = []
    step["Arguments"]["StoppingCondition"] = {"MaxRuntimeInSeconds": "soon"}
    del step["Arguments"]["RoleArn"]
    join = processing_step("J", "pass")
    join["Arguments"]["Environment"] = {"A": {"Std:Join": "x"}, "B": {"Std:JsonGet": {"Path": "a"}}}
    found = problems(definition(step, join))
    where = "/Steps/0/Arguments"
    assert found == [
        f"{where}/ProcessingResources/ClusterConfig/InstanceType: InstanceType 'ml.m5.larg' is not a valid value; did you mean ml.m5.large? (CreateProcessingJob)",
        f"{where}/ProcessingResources/ClusterConfig/InstanceCount: InstanceCount must be an integer; got the string 'three' (CreateProcessingJob)",
        f"{where}/ProcessingResources/ClusterConfig/VolumeSizeInGB: VolumeSizeInGB must be at least 1; got 0 (CreateProcessingJob)",
        f"{where}/ProcesingInputs: ProcesingInputs is not a member of Arguments; did you mean ProcessingInputs? (CreateProcessingJob)",
        f"{where}/StoppingCondition/MaxRuntimeInSeconds: MaxRuntimeInSeconds must be an integer; got the string 'soon' (CreateProcessingJob)",
        f"{where}: RoleArn is required in Arguments (CreateProcessingJob)",
        '/Steps/1/Arguments/Environment/A/Std:Join: a Std:Join is {"On": "<separator>", "Values": [...]}',
        '/Steps/1/Arguments/Environment/B/Std:JsonGet: a Std:JsonGet is {"PropertyFile": {"Get": "Steps.<step>.PropertyFiles.<name>"}, '
        '"Path": "<json path>"} (or S3Uri in place of PropertyFile)',
    ]


def test_expressions_and_sdk_local_instance_types_pass_the_request_check() -> None:
    step = processing_step("P", "pass")
    step["Arguments"]["ProcessingResources"]["ClusterConfig"].update(InstanceCount={"Get": "Parameters.N"}, InstanceType="local")
    step["Arguments"]["Environment"] = {"OUT": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}]}}}
    validate(parse(definition(step, parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1}])))


def test_definitions_the_sdk_wrote_pass_the_request_check() -> None:
    """Every SDK-written definition in the fixtures (v2, v3, the corpus) fits the API's requests."""
    fixtures = Path(__file__).parent / "fixtures"
    files = [*fixtures.glob("sdk/v*/*.json"), *fixtures.glob("corpus/definitions/*.json"), *fixtures.glob("parity/sdk_v2/*.json")]
    checked = 0
    for file in files:
        document = json.loads(file.read_text())
        if isinstance(document, dict) and "Steps" in document:
            validate(parse_file(file))
            checked += 1
    assert checked >= 15
