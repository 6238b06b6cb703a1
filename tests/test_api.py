"""The Python API (sagelab.run, sagelab.execution, sagelab.executions) on the local engine, and the CLI's --json on top of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sagelab
from conftest import definition, processing_step, write
from conftest import sagelab as run_cli
from sagelab.errors import DefinitionError, ExecutionError

# Writes a header-less CSV (as SageMaker's algorithms want) and an evaluation report, as the templates' steps do.
PREPARE = (
    "import json, os\n"
    "os.makedirs('/opt/ml/processing/output/train', exist_ok=True)\n"
    "open('/opt/ml/processing/output/train/part-0.csv', 'w').write('1,2\\n3,4\\n')\n"
    "open('/opt/ml/processing/output/train/part-1.csv', 'w').write('5,6\\n')\n"
    "os.makedirs('/opt/ml/processing/output/evaluation', exist_ok=True)\n"
    "mse = float(os.environ['MSE'])\n"
    "json.dump({'regression_metrics': {'mse': {'value': mse}}, 'ok': True}, open('/opt/ml/processing/output/evaluation/evaluation.json', 'w'))\n"
    "print('prepared')\n"
)


def pipeline() -> dict[str, Any]:
    step = processing_step("Prepare", PREPARE, outputs=["train", "evaluation"])
    step["Arguments"]["Environment"] = {"MSE": {"Get": "Parameters.Mse"}}
    step["PropertyFiles"] = [{"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    for output in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]:  # one folder per execution, as the SDK's defaults give
        name = output["OutputName"]
        output["S3Output"]["S3Uri"] = {"Std:Join": {"On": "/", "Values": ["s3://test-bucket", {"Get": "Execution.PipelineExecutionId"}, name]}}
    return definition(step, parameters=[{"Name": "Mse", "Type": "String", "DefaultValue": "2.5"}])


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    write(project / "demo.json", pipeline())
    return project


def test_run_returns_the_execution_with_its_outputs_data_metrics_and_logs(in_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    execution = sagelab.run("demo.json", parameters={"Mse": "1.5"})
    assert isinstance(execution, sagelab.Execution)
    assert execution.status == "Succeeded" and execution.pipeline == "demo" and execution.parameters == {"Mse": "1.5"}
    assert "demo " + execution.id + " Prepare: Succeeded" in capsys.readouterr().out  # progress, one line a change
    prefix = f"s3://test-bucket/{execution.id}"
    assert execution.outputs == {"Prepare": {"train": f"{prefix}/train", "evaluation": f"{prefix}/evaluation"}}
    table = execution.read("Prepare/train", header=None)  # both files of the output, one DataFrame
    assert table.values.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert execution.read(f"{prefix}/evaluation/evaluation.json")["regression_metrics"]["mse"]["value"] == 1.5
    assert execution.metrics == {"Prepare.Evaluation.regression_metrics.mse.value": 1.5}  # booleans are not metrics
    assert "prepared" in execution.logs("Prepare")
    step = execution.steps["Prepare"]
    assert step.properties["ProcessingJobStatus"] == "Completed" and step.duration is not None and step.duration >= 0
    assert sagelab.execution("latest").id == execution.id == sagelab.execution(execution.id[:6]).id


def test_executions_compare_parameters_and_metrics_across_runs(in_project: Path) -> None:
    first = sagelab.run("demo.json", parameters={"Mse": "3"}, progress=False)
    second = sagelab.run("demo.json", parameters={"Mse": "2"}, progress=False)
    frame = sagelab.executions("demo")
    assert list(frame["id"]) == [second.id, first.id]  # newest first
    assert list(frame["params.Mse"]) == ["2", "3"]
    assert list(frame["metrics.Prepare.Evaluation.regression_metrics.mse.value"]) == [2.0, 3.0]
    assert list(frame.columns[:6]) == ["id", "pipeline", "status", "started", "ended", "duration"]


def test_a_run_in_the_background_and_pipelines_given_as_objects(in_project: Path) -> None:
    handle = sagelab.run("demo.json", wait=False, progress=False)
    assert isinstance(handle, sagelab.api.Run)
    assert handle.wait(120).status == "Succeeded" and handle.done
    from_dict = sagelab.run(pipeline(), name="from-dict", progress=False)
    assert from_dict.pipeline == "from-dict" and from_dict.status == "Succeeded"
    with pytest.raises(DefinitionError):
        sagelab.run({"Version": "2020-12-01", "Steps": "not a list"}, progress=False)
    broken = sagelab.run("demo.json", parameters={"Nope": "1"}, wait=False, progress=False)
    with pytest.raises(Exception, match="Nope"):
        broken.wait(60)


def test_reading_names_what_is_wrong(in_project: Path) -> None:
    execution = sagelab.run("demo.json", progress=False)
    with pytest.raises(ExecutionError, match="no step 'Train'; its steps: Prepare"):
        execution.read("Train/model")
    with pytest.raises(ExecutionError, match="no output 'model'; its outputs: train, evaluation"):
        execution.read("Prepare/model")
    with pytest.raises(ExecutionError, match="nothing is stored at s3://test-bucket/none"):
        execution.read("s3://test-bucket/none")
    with pytest.raises(ExecutionError, match="no execution 'zzz'"):
        sagelab.execution("zzz")


def test_the_cli_prints_json_for_scripts(in_project: Path) -> None:
    assert json.loads(run_cli("executions", "--json", cwd=in_project).stdout) == []  # nothing ran yet: an empty list
    execution = sagelab.run("demo.json", progress=False)
    listed = json.loads(run_cli("executions", "--json", cwd=in_project).stdout)
    assert [item["id"] for item in listed] == [execution.id]
    assert set(listed[0]) == {"id", "arn", "pipeline", "status", "started", "ended", "duration", "failure_reason", "parameters"}
    shown = json.loads(run_cli("status", execution.id, "--json", cwd=in_project).stdout)
    assert shown["status"] == "Succeeded" and shown["parameters"] == {"Mse": "2.5"}
    [step] = shown["steps"]
    assert step["name"] == "Prepare" and step["outputs"]["train"] == f"s3://test-bucket/{execution.id}/train"


def test_import_sagelab_stays_light() -> None:
    """`import sagelab` loads nothing of the API until it is used."""
    import subprocess
    import sys

    code = "import sys, sagelab; print('sagelab.api' in sys.modules, 'sagelab.engines' in sys.modules); sagelab.run; print('sagelab.api' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False", "True"]


def test_sagelab_urls_read_and_write_the_local_store_through_fsspec(in_project: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import fsspec
    import pandas as pd

    from sagelab.config import load_settings
    from sagelab.store import LocalStore

    execution = sagelab.run("demo.json", progress=False)
    uri = execution.outputs["Prepare"]["train"].replace("s3://", "sagelab://") + "/part-0.csv"
    assert pd.read_csv(uri, header=None).values.tolist() == [[1, 2], [3, 4]]  # what the step wrote, by URL
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_parquet("sagelab://features/v1/part-0.parquet")
    store = LocalStore(load_settings().store)
    assert store.head("s3://features/v1/part-0.parquet").size > 0  # an object like any other: steps see it at s3://
    assert pd.read_parquet("sagelab://features/v1/part-0.parquet").equals(frame)
    fs = fsspec.filesystem("sagelab")
    assert fs.ls("features/v1", detail=False) == ["features/v1/part-0.parquet"]
    assert ".tmp" not in fs.ls("", detail=False)  # the store's half-written objects are not listed
    with pytest.raises(RuntimeError), fs.open("features/v1/part-0.parquet", "wb") as half:
        half.write(b"half an object")
        raise RuntimeError("the writer failed")
    assert pd.read_parquet("sagelab://features/v1/part-0.parquet").equals(frame)  # the object is as it was
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # a notebook outside the project names it
    other = fsspec.filesystem("sagelab", project=str(in_project), skip_instance_cache=True)
    assert other.exists("features/v1/part-0.parquet")


def test_sagelab_io_reads_and_writes_by_profile(in_project: Path) -> None:
    import pandas as pd

    import sagelab.io

    frame = pd.DataFrame({"x": [1.5, 2.5]})
    sagelab.io.write(frame, "s3://data/a.csv")
    sagelab.io.write(frame, "s3://data/b.parquet")
    sagelab.io.write({"k": 1}, "s3://data/c.json")
    assert sagelab.io.read("s3://data/a.csv").equals(frame) and sagelab.io.read("s3://data/b.parquet").equals(frame)
    assert sagelab.io.read("s3://data/c.json") == {"k": 1}
    with pytest.raises(ExecutionError, match="as .csv, .parquet or .jsonl"):
        sagelab.io.write(frame, "s3://data/d.bin")
    with pytest.raises(ExecutionError, match="holds 3 objects of different kinds"):
        sagelab.io.read("s3://data/")
