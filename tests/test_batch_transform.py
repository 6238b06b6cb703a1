"""Batch transform over folders: splitting, batching, assembling, DataProcessing filters, failures."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from sagelab.errors import ModelError
from sagelab.serving.batch import TransformConfig, transform
from sagelab.serving.dataprocessing import apply_path
from sagelab.serving.handlers import InferenceHandler

CSV_ROWS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that answers the sum of each row's features, so outputs are easy to check."""
    folder = tmp_path_factory.mktemp("sum-model")
    X = np.random.default_rng(1).normal(size=(40, 3))
    joblib.dump(LinearRegression().fit(X, X.sum(axis=1)), folder / "model.joblib")
    return folder


@pytest.fixture(scope="module")
def counting_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A transform_fn that answers one line per record it got: `<request number>:<row sum>`."""
    folder = tmp_path_factory.mktemp("counting-model")
    (folder / "code").mkdir()
    (folder / "code" / "inference.py").write_text(textwrap.dedent("""
        import itertools
        REQUESTS = itertools.count(1)

        def model_fn(model_dir):
            return None

        def transform_fn(model, input_data, content_type, accept):
            n = next(REQUESTS)
            lines = [line for line in input_data.split("\\n") if line]
            if any("bad" in line for line in lines):
                raise ValueError("a bad record")
            return "".join(f"{n}:{sum(map(float, line.split(',')))}\\n" for line in lines), "text/csv"
    """))  # fmt: skip
    return folder


def sums(rows: list[list[float]]) -> list[float]:
    return [sum(row) for row in rows]


def write_csv(path: Path, rows: list[list[float]], ids: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(([f"id{i}"] if ids else []) + [str(v) for v in row]) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def handler(model: Path) -> InferenceHandler:
    return InferenceHandler(model).load()


def test_split_none_sends_each_file_whole(model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS)
    write_csv(tmp_path / "in" / "nested" / "b.csv", CSV_ROWS[:2])
    config = TransformConfig(content_type="text/csv", accept="application/json")
    result = transform(handler(model), tmp_path / "in", tmp_path / "out", config)
    assert result.requests == 2 and result.records == 2
    np.testing.assert_allclose(json.loads((tmp_path / "out" / "a.csv.out").read_text()), sums(CSV_ROWS))
    np.testing.assert_allclose(json.loads((tmp_path / "out" / "nested" / "b.csv.out").read_text()), sums(CSV_ROWS[:2]))


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
def test_split_line_with_each_batch_strategy(counting_model: Path, tmp_path: Path, strategy: str) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS)
    config = TransformConfig(content_type="text/csv", accept="text/csv", split_type="Line", batch_strategy=strategy,
                             assemble_with="Line", max_payload_mb=30 / 1048576)  # fmt: skip  (30 bytes: two rows a request)
    result = transform(handler(counting_model), tmp_path / "in", tmp_path / "out", config)
    lines = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert [float(line.split(":")[1]) for line in lines] == sums(CSV_ROWS)
    requests = [int(line.split(":")[0]) for line in lines]
    if strategy == "SingleRecord":
        assert result.requests == 4 and len(set(requests)) == 4
    else:
        assert result.requests == 2 and requests[0] == requests[1] and requests[2] == requests[3]


def test_assemble_with_none_concatenates_responses(model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS[:2])
    config = TransformConfig(content_type="text/csv", accept="application/json", split_type="Line", batch_strategy="SingleRecord")
    transform(handler(model), tmp_path / "in", tmp_path / "out", config)
    text = (tmp_path / "out" / "a.csv.out").read_text()
    assert text.count("][") == 1 and "\n" not in text  # two JSON answers back to back

    config = TransformConfig(content_type="text/csv", accept="application/json", split_type="Line", batch_strategy="SingleRecord", assemble_with="Line")
    transform(handler(model), tmp_path / "in", tmp_path / "out2", config)
    assert len((tmp_path / "out2" / "a.csv.out").read_text().splitlines()) == 2


def test_csv_filters_and_join(model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS, ids=True)
    config = TransformConfig(content_type="text/csv", accept="text/csv", split_type="Line", batch_strategy="MultiRecord",
                             assemble_with="Line", input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]")  # fmt: skip
    transform(handler(model), tmp_path / "in", tmp_path / "out", config)
    lines = [line.split(",") for line in (tmp_path / "out" / "a.csv.out").read_text().splitlines()]
    assert [line[0] for line in lines] == ["id0", "id1", "id2", "id3"]
    np.testing.assert_allclose([float(line[1]) for line in lines], sums(CSV_ROWS), rtol=1e-5)


def test_jsonlines_filters_and_join(model: Path, tmp_path: Path) -> None:
    records = [{"id": i, "features": row, "note": "x"} for i, row in enumerate(CSV_ROWS)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    config = TransformConfig(content_type="application/jsonlines", accept="application/jsonlines", split_type="Line",
                             batch_strategy="MultiRecord", assemble_with="Line", input_filter="$.features",
                             join_source="Input", output_filter="$['id','SageMakerOutput']")  # fmt: skip
    transform(handler(model), tmp_path / "in", tmp_path / "out", config)
    out = [json.loads(line) for line in (tmp_path / "out" / "a.jsonl.out").read_text().splitlines()]
    assert [list(o) for o in out] == [["id", "SageMakerOutput"]] * 4
    assert [o["id"] for o in out] == [0, 1, 2, 3]
    np.testing.assert_allclose([o["SageMakerOutput"] for o in out], sums(CSV_ROWS), rtol=1e-5)


def test_json_document_join_without_splitting(model: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "doc.json").write_text(json.dumps({"features": CSV_ROWS[:2], "batch": "b1"}))
    config = TransformConfig(content_type="application/json", accept="application/json", input_filter="$.features", join_source="Input")
    transform(handler(model), tmp_path / "in", tmp_path / "out", config)
    joined = json.loads((tmp_path / "out" / "doc.json.out").read_text())
    assert joined["batch"] == "b1" and joined["features"] == CSV_ROWS[:2]
    np.testing.assert_allclose(joined["SageMakerOutput"], sums(CSV_ROWS[:2]), rtol=1e-5)


def test_jsonpath_subset() -> None:
    row = ["a", "b", "c", "d", "e", "f"]
    assert apply_path("$[1:4]", row) == ["b", "c", "d", "e"]  # SageMaker's slices include their end
    assert apply_path("$[:1]", row) == ["a", "b"] and apply_path("$[4:]", row) == ["e", "f"]
    assert apply_path("$[-1]", row) == "f" and apply_path("$[0,2]", row) == ["a", "c"]
    record = {"id": 7, "data": {"x": 1, "y": 2}}
    assert apply_path("$.data.x", record) == 1 and apply_path("$.data.*", record) == [1, 2]
    assert apply_path("$['id','data']", record) == record and apply_path("$", record) is record
    for unsupported in ("$..x", "$[?(@.x)]", "$[0:2,4:]", "id"):
        with pytest.raises(ModelError):
            TransformConfig(input_filter=unsupported)


def test_failures_name_the_file_and_record_and_skip_its_output(counting_model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "good.csv", CSV_ROWS)
    (tmp_path / "in" / "bad.csv").write_text("1,2,3\n4,5,6\nbad,7,8\n")
    config = TransformConfig(content_type="text/csv", accept="text/csv", split_type="Line", batch_strategy="SingleRecord", assemble_with="Line")
    with pytest.raises(ModelError, match=r"bad.csv: line 3: the model answered 500: the model raised ValueError: a bad record"):
        transform(handler(counting_model), tmp_path / "in", tmp_path / "out", config)
    assert (tmp_path / "out" / "good.csv.out").is_file()
    assert not (tmp_path / "out" / "bad.csv.out").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.csv.out"]  # no temp files left


def test_a_record_over_the_payload_limit_is_refused(model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS)
    config = TransformConfig(content_type="text/csv", max_payload_mb=10 / 1048576)
    with pytest.raises(ModelError, match=r"a.csv: the file is 51 bytes, more than MaxPayloadInMB allows \(10 bytes\); split it with SplitType Line"):
        transform(handler(model), tmp_path / "in", tmp_path / "out", config)


def test_command_line(model: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "in" / "a.csv", CSV_ROWS)
    (tmp_path / "in" / "b.csv").write_text("1,2\n")  # a row of the wrong width
    command = [sys.executable, "-m", "sagelab.serving.batch", "--model", str(model), "--input", str(tmp_path / "in"),
               "--output", str(tmp_path / "out"), "--content-type", "text/csv", "--accept", "text/csv",
               "--split-type", "Line", "--batch-strategy", "MultiRecord", "--assemble-with", "Line"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "b.csv: line 1: the model answered 500" in done.stderr and "1 of 2 files" in done.stderr
    np.testing.assert_allclose([float(v) for v in (tmp_path / "out" / "a.csv.out").read_text().split()], sums(CSV_ROWS), rtol=1e-5)
    (tmp_path / "in" / "b.csv").unlink()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "transformed 1 files (4 records, 1 requests)" in done.stderr
