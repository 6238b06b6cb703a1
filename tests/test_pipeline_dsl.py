"""The authoring API: what it compiles to, and the mistakes it catches on the user's line."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sagelab.definition import parse, validate
from sagelab.errors import PipelineError
from sagelab.pipeline import (
    ExecutionVariables,
    Join,
    JsonGet,
    Parameter,
    equals,
    in_,
    not_,
    or_,
)

IMAGE = "123.dkr.ecr.us-east-1.amazonaws.com/img:1"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a step script and a data file; builds run from its own module file."""
    (tmp_path / "pyproject.toml").write_text('[tool.sagelab]\nbucket = "team-bucket"\ninstance_type = "ml.c5.xlarge"\n')
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "prep.py").write_text("print('prep')\n")
    (tmp_path / "steps" / "train.py").write_text("print('train')\n")
    (tmp_path / "steps" / "util.py").write_text("X = 1\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def build(folder: Path, source: str, name: str = "mod") -> Any:
    """Import `source` as a module file in `folder`, as a user's pipeline module is."""
    import importlib

    (folder / f"{name}.py").write_text("from sagelab.pipeline import *\n" + textwrap.dedent(source))
    return importlib.import_module(name)


def test_processing_compiles_to_the_create_request(folder: Path) -> None:
    module = build(folder, """
        prep = processing("Prep", code="steps/prep.py", image="IMG", arguments=["--x", "1"],
                          inputs={"raw": "s3://b/raw/", "local": "data.csv"}, outputs=["train"], env={"A": "1"})
        pipeline = Pipeline("p", [prep])
    """.replace("IMG", IMAGE), "mod_processing")
    document = module.pipeline.to_dict()
    args = document["Steps"][0]["Arguments"]
    assert args["AppSpecification"] == {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/prep.py"], "ContainerArguments": ["--x", "1"]}
    assert args["ProcessingResources"] == {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.c5.xlarge", "VolumeSizeInGB": 30}}
    assert args["RoleArn"] == "arn:aws:iam::000000000000:role/SageMakerRole"
    assert [i["InputName"] for i in args["ProcessingInputs"]] == ["raw", "local", "code"]
    assert args["ProcessingInputs"][0]["S3Input"]["LocalPath"] == "/opt/ml/processing/input/raw"
    local_uri = args["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    code_uri = args["ProcessingInputs"][2]["S3Input"]["S3Uri"]
    assert local_uri.startswith("s3://team-bucket/p/data/") and local_uri.endswith("/data.csv")
    assert code_uri.startswith("s3://team-bucket/p/code/") and code_uri.endswith("/prep.py")
    assert module.pipeline.artifacts() == {local_uri: folder / "data.csv", code_uri: folder / "steps" / "prep.py"}
    output = args["ProcessingOutputConfig"]["Outputs"][0]
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output/train"
    assert output["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": ["s3:/", "team-bucket", "p", {"Get": "Execution.PipelineExecutionId"}, "Prep", "output", "train"]}}
    assert args["Environment"] == {"A": "1"}
    validate(parse(document))


def test_training_script_mode_and_properties(folder: Path) -> None:
    module = build(folder, """
        depth = Parameter.integer("Depth", 3)
        train = training("Train", entry_point="train.py", source_dir="steps", image="IMG", channels={"train": "s3://b/t/"},
                         hyperparameters={"depth": depth, "rate": 0.1, "name": "x"}, metrics={"loss": "loss=(.*)"},
                         instance="ml.m5.2xlarge", content_type="text/csv")
        pipeline = Pipeline("p", [train])
    """.replace("IMG", IMAGE), "mod_training")
    args = module.pipeline.to_dict()["Steps"][0]["Arguments"]
    hps = args["HyperParameters"]
    assert hps["depth"] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Depth"}]}}
    assert hps["rate"] == "0.1" and hps["name"] == '"x"' and hps["sagemaker_program"] == '"train.py"'
    submit = json.loads(hps["sagemaker_submit_directory"])
    assert submit.startswith("s3://team-bucket/p/code/") and submit.endswith("/sourcedir.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(module.pipeline.artifacts()[submit])) as archive:
        assert archive.getnames() == ["prep.py", "train.py", "util.py"]
        assert {m.mtime for m in archive.getmembers()} == {0}
    assert args["InputDataConfig"][0] == {"ChannelName": "train", "ContentType": "text/csv",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t/", "S3DataDistributionType": "FullyReplicated"}}}
    assert args["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss=(.*)"}]
    assert module.train.model_data.to_json() == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert module.pipeline.to_dict()["Parameters"] == [{"Name": "Depth", "Type": "Integer", "DefaultValue": 3}]


def test_dependencies_ship_a_package_beside_the_script_as_the_sdk_does(folder: Path) -> None:
    """Training packs them into sourcedir.tar.gz; processing takes FrameworkProcessor's form (sourcedir.tar.gz and runproc.sh)."""
    (folder / "src" / "mypkg" / "__pycache__").mkdir(parents=True)
    (folder / "src" / "mypkg" / "__init__.py").write_text("VALUE = 1\n")
    (folder / "src" / "mypkg" / "__pycache__" / "x.pyc").write_bytes(b"")
    module = build(folder, """
        prep = processing("Prep", code="steps/prep.py", image="IMG", dependencies=["src/mypkg"], arguments=["--x", "1"])
        train = training("Train", entry_point="steps/train.py", image="IMG", dependencies=["src/mypkg"])
        pipeline = Pipeline("p", [prep, train])
    """.replace("IMG", IMAGE), "mod_dependencies")
    prep, train = (step["Arguments"] for step in module.pipeline.to_dict()["Steps"])
    artifacts = module.pipeline.artifacts()

    def names(uri: str) -> list[str]:
        with tarfile.open(fileobj=io.BytesIO(artifacts[uri])) as archive:
            return archive.getnames()

    assert names(json.loads(train["HyperParameters"]["sagemaker_submit_directory"])) == ["mypkg/__init__.py", "train.py"]
    assert prep["AppSpecification"]["ContainerEntrypoint"] == ["/bin/bash", "/opt/ml/processing/input/entrypoint/runproc.sh"]
    code, entrypoint = ((i["InputName"], i["S3Input"]["LocalPath"], i["S3Input"]["S3Uri"]) for i in prep["ProcessingInputs"])
    assert code[:2] == ("code", "/opt/ml/processing/input/code/") and names(code[2]) == ["mypkg/__init__.py", "prep.py"]
    assert entrypoint[:2] == ("entrypoint", "/opt/ml/processing/input/entrypoint")
    launcher = artifacts[entrypoint[2]].decode()
    assert "tar -xzf sourcedir.tar.gz" in launcher and launcher.rstrip().endswith('python3 prep.py "$@"')
    validate(parse(module.pipeline.to_dict()))


def test_short_and_full_property_paths_compile_alike(folder: Path) -> None:
    module = build(folder, """
        prep = processing("Prep", code="steps/prep.py", image="IMG", outputs=["train"])
        short = prep.outputs["train"]
        full = prep.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
        indexed = prep.properties.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri
        tag = prep.properties.Environment["KEY"]
    """.replace("IMG", IMAGE), "mod_paths")
    expected = {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert module.short.to_json() == expected == module.full.to_json()
    assert module.indexed.to_json() == {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}
    assert module.tag.to_json() == {"Get": "Steps.Prep.Environment['KEY']"}


def test_conditions_and_functions() -> None:
    t = Parameter.float("T", 1.0)
    mode = Parameter.string("Mode", "a", enum=["a", "b"])
    assert (t <= 2).to_json() == {"Type": "LessThanOrEqualTo", "LeftValue": {"Get": "Parameters.T"}, "RightValue": 2}
    assert (t > 2).to_json()["Type"] == "GreaterThan" and (t >= 2).to_json()["Type"] == "GreaterThanOrEqualTo" and (t < 2).to_json()["Type"] == "LessThan"
    assert equals(mode, "a").to_json() == {"Type": "Equals", "LeftValue": {"Get": "Parameters.Mode"}, "RightValue": "a"}
    assert in_(mode, ["a", "b"]).to_json() == {"Type": "In", "QueryValue": {"Get": "Parameters.Mode"}, "Values": ["a", "b"]}
    assert not_(t > 1).to_json() == {"Type": "Not", "Condition": (t > 1).to_json()}
    assert or_(t > 1, t < 0).to_json() == {"Type": "Or", "Conditions": [(t > 1).to_json(), (t < 0).to_json()]}
    assert (~((t > 1) & (t < 5))).to_json() == or_(not_(t > 1), not_(t < 5)).to_json()
    assert Join("/", ["s3://b", ExecutionVariables.PIPELINE_EXECUTION_ID]).to_json() == {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}]}}
    assert JsonGet("a.b", s3_uri="s3://b/x.json").to_json() == {"Std:JsonGet": {"S3Uri": "s3://b/x.json", "Path": "a.b"}}
    with pytest.raises(PipelineError, match="no truth value"):
        if t:
            pass


def test_condition_step_with_branches_cache_and_retry(folder: Path) -> None:
    module = build(folder, """
        t = Parameter.float("T", 2.0)
        prep = processing("Prep", code="steps/prep.py", image="IMG", outputs=["ev"], reports={"ev": "evaluation.json"},
                          cache=CacheConfig("PT1H"), retry=[RetryPolicy(max_attempts=3)])
        after = processing("After", command=["python3", "-c", "pass"], image="IMG", depends_on=[prep])
        gate = condition("Gate", [prep.report("ev", "m.v") <= t, t > 0], then=[after],
                         otherwise=[fail("Stop", Join(" ", ["too high:", prep.report("ev", "m.v")]))])
        pipeline = Pipeline("p", [prep, gate])
    """.replace("IMG", IMAGE), "mod_condition")
    document = module.pipeline.to_dict()
    prep, gate = document["Steps"]
    assert prep["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT1H"}
    assert prep["RetryPolicies"] == [{"BackoffRate": 2.0, "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"], "IntervalSeconds": 1, "MaxAttempts": 3}]
    assert prep["PropertyFiles"] == [{"PropertyFileName": "ev", "OutputName": "ev", "FilePath": "evaluation.json"}]
    assert len(gate["Arguments"]["Conditions"]) == 2
    assert gate["Arguments"]["IfSteps"][0]["DependsOn"] == ["Prep"]
    assert gate["Arguments"]["ElseSteps"][0]["Type"] == "Fail"
    validate(parse(document))


def test_definition_is_byte_identical_when_built_twice(folder: Path) -> None:
    source = """
        train = training("Train", entry_point="train.py", source_dir="steps", image="IMG", channels={"t": "data.csv"})
        pipeline = Pipeline("p", [train])
    """.replace("IMG", IMAGE)
    first = build(folder, source, "mod_twice_a").pipeline
    second = build(folder, source, "mod_twice_b").pipeline
    assert first.definition() == second.definition()
    assert first.artifacts() == second.artifacts()


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ('a = processing("A", code="steps/prep.py", image="I", outputs=["out"])\nx = a.outputs["otu"]', 3, "step A has no output 'otu'; outputs: out"),
        ('a = processing("A", code="steps/prep.py", image="I", outputs=["out"])\nx = a.report("out", "m")', 3, "step A declares no report 'out'"),
        ('a = processing("A", code="steps/prep.py", image="I")\nx = a.properties.ProcessingJobNam', 3, "Steps.A.ProcessingJobNam is not a property of a Processing step (did you mean ProcessingJobName?)"),
        ('a = processing("A b", code="steps/prep.py", image="I")', 2, "'A b' is not a valid step name"),
        ('a = processing("A", code="steps/missing.py", image="I")', 2, "step A: code steps/missing.py is not a file"),
        ('a = processing("A", code="steps/prep.py", image="I", outputs=["o"], reports={"x": "r.json"})', 2, "report 'x' names no output"),
        ('a = training("T", entry_point="nope.py", image="I")', 2, "entry_point nope.py is not a file"),
        ('a = processing("A", code="steps/prep.py", image="I")\nb = processing("A", code="steps/prep.py", image="I")\np = Pipeline("p", [a, b]).definition()', 3, "step name A is already used by the step built at"),
        ('a = processing("A", code="steps/prep.py", image="I", outputs=["o"])\nb = processing("B", code="steps/prep.py", image="I", inputs={"x": a.outputs["o"]})\np = Pipeline("p", [b]).definition()', 3, "step B uses A (built at"),
        ('a = processing("A", code="steps/prep.py", image="I", depends_on=["Ghost"])\np = Pipeline("p", [a]).definition()', 2, "depends on Ghost, which is not in pipeline p"),
        ('a = processing("A", code="steps/prep.py", image="I", depends_on=["B"])\nb = processing("B", code="steps/prep.py", image="I", depends_on=[a])\np = Pipeline("p", [a, b]).definition()', 2, "dependency cycle A → B → A"),
        ('a = processing("A", code="steps/prep.py")\np = Pipeline("p", [a]).definition()', 2, "give framework= (such as 'sklearn:1.2-1') or image="),
        ('p = Parameter.float("T", 1.0)\nq = Parameter.float("T", 2.0)\na = fail("F", Join(" ", [p, q]))\nPipeline("x", [a]).definition()', 4, "parameter T is declared twice, differently"),
    ],
)
def test_mistakes_are_reported_at_the_users_line(folder: Path, source: str, line: int, message: str) -> None:
    module_name = f"mod_mistake_{abs(hash(source))}"
    with pytest.raises(PipelineError) as info:
        build(folder, source, module_name)
    text = str(info.value)
    assert f"{module_name}.py:{line}: " in text, text
    assert message in text, text


def test_sagelab_validates_what_it_builds(folder: Path) -> None:
    module = build(folder, """
        prep = processing("Prep", code="steps/prep.py", image="IMG", outputs=["o"], inputs={"x": "s3://b/x"})
        pipeline = Pipeline("p", [prep])
    """.replace("IMG", IMAGE), "mod_valid")
    validate(parse(module.pipeline.definition()))


def test_parameters_are_found_wherever_they_are_used(folder: Path) -> None:
    module = build(folder, """
        count = Parameter.integer("Count", 2)
        limit = Parameter.float("Limit", 1.5)
        kind = Parameter.string("Kind", "a")
        prep = processing("Prep", code="steps/prep.py", image="IMG", instance_count=count, outputs=["o"], reports={"o": "r.json"})
        gate = condition("Gate", prep.report("o", "v") <= limit, otherwise=[fail("F", Join("-", [kind]))])
        pipeline = Pipeline("p", [prep, gate])
    """.replace("IMG", IMAGE), "mod_discovery")
    assert [p["Name"] for p in module.pipeline.to_dict()["Parameters"]] == ["Count", "Limit", "Kind"]


def test_to_string_matches_the_sdk() -> None:
    assert Parameter.string("S", "x").to_string().to_json() == {"Get": "Parameters.S"}
    assert Parameter.integer("N", 1).to_string().to_json() == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.N"}]}}
