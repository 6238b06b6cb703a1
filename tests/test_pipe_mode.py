"""Pipe input mode and augmented manifests: channels streamed through FIFOs, one per pass, as SageMaker streams them."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from conftest import definition, python_code
from sagelab.config import load_settings
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine
from sagelab.engines.local.pipes import recordio

MAGIC = struct.pack("<I", 0xCED7230A)

# Reads every FIFO of every channel for two passes, as an algorithm would, and prints what came through.
READER = """
import json, os
seen = {'modes': {k: v['TrainingInputMode'] for k, v in json.load(open('/opt/ml/input/config/inputdataconfig.json')).items()}}
for channel in [k for k, mode in seen['modes'].items() if mode == 'Pipe']:
    seen[channel] = [open(f'/opt/ml/input/data/{channel}_{n}', 'rb').read().hex() for n in (0, 1)]
seen['train_files'] = sorted(os.listdir('/opt/ml/input/data/train')) if os.path.isdir('/opt/ml/input/data/train') else None
print('SEEN ' + json.dumps(seen))
"""


@pytest.fixture
def engine(project: Path) -> LocalEngine:
    return LocalEngine(load_settings(project))


def training(channels: list[dict[str, Any]], mode: str = "Pipe", code: str = READER) -> dict[str, Any]:
    return {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": "local/python", "TrainingInputMode": mode, "ContainerEntrypoint": python_code(code)},
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def channel(name: str, uri: str, data_type: str = "S3Prefix", **extra: Any) -> dict[str, Any]:
    source = {"S3DataType": data_type, "S3Uri": uri, **extra.pop("source", {})}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, **extra}


def run(engine: LocalEngine, step: dict[str, Any]):  # type: ignore[no-untyped-def]
    return engine.start(parse(definition(step)), "p", {}, None, {})


def seen(execution) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    state = execution.steps["Train"]
    log = Path(state.log_path).read_text()
    assert execution.status == "Succeeded", (state.failure_reason, log)
    return json.loads(next(line for line in log.splitlines() if line.startswith("SEEN "))[5:])


def test_recordio_records_are_dmlc_records_split_where_the_magic_number_occurs() -> None:
    assert recordio(b"hello") == MAGIC + struct.pack("<I", 5) + b"hello\0\0\0"
    assert recordio(b"") == MAGIC + struct.pack("<I", 0)
    # The magic number at an aligned offset splits the record (flags 1 then 3) and is left out; readers put it back.
    assert recordio(b"abcd" + MAGIC + b"xy") == (MAGIC + struct.pack("<I", 1 << 29 | 4) + b"abcd"
                                                 + MAGIC + struct.pack("<I", 3 << 29 | 2) + b"xy\0\0")  # fmt: skip
    # Unaligned, it is data.
    assert recordio(b"a" + MAGIC) == MAGIC + struct.pack("<I", 5) + b"a" + MAGIC + b"\0\0\0"


def test_pipe_channels_stream_each_pass_through_its_own_fifo(engine: LocalEngine) -> None:
    store = engine.store
    store.put_bytes("s3://test-bucket/train/b.csv", b"3,4\n")
    store.put_bytes("s3://test-bucket/train/a.csv", b"1,2\n")
    store.put_bytes("s3://test-bucket/training.csv", b"not under train/\n")
    store.put_bytes("s3://test-bucket/rec/one.bin", b"hello")
    execution = run(engine, training([
        channel("train", "s3://test-bucket/train"),  # the job's TrainingInputMode: Pipe
        channel("rec", "s3://test-bucket/rec/", RecordWrapperType="RecordIO"),
        channel("plain", "s3://test-bucket/rec/", InputMode="File"),
    ]))  # fmt: skip
    view = seen(execution)
    assert view["modes"] == {"train": "Pipe", "rec": "Pipe", "plain": "File"}
    assert view["train"] == [b"1,2\n3,4\n".hex()] * 2  # key order, every pass the same
    assert view["rec"] == [recordio(b"hello").hex()] * 2
    assert view["train_files"] == ["a.csv", "b.csv"]  # staged as files too


def test_a_file_mode_channel_gets_no_fifo(engine: LocalEngine) -> None:
    engine.store.put_bytes("s3://test-bucket/train/a.csv", b"1\n")
    code = "import os; print('SEEN ' + __import__('json').dumps(sorted(os.listdir('/opt/ml/input/data'))))"
    execution = run(engine, training([channel("train", "s3://test-bucket/train")], mode="File", code=code))
    assert seen(execution) == ["train"]


def test_an_augmented_manifest_streams_the_named_attributes_of_each_line(engine: LocalEngine) -> None:
    store = engine.store
    store.put_bytes("s3://test-bucket/img/1.jpg", b"IMG-ONE")
    store.put_bytes("s3://test-bucket/img/2.jpg", b"IMG-TWO")
    lines = [{"source-ref": "s3://test-bucket/img/1.jpg", "label": 1, "other": "ignored"},
             {"label": "cat", "source-ref": "s3://test-bucket/img/2.jpg"}]  # fmt: skip
    store.put_bytes("s3://test-bucket/manifest.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode())
    execution = run(engine, training([
        channel("train", "s3://test-bucket/manifest.jsonl", "AugmentedManifestFile", RecordWrapperType="RecordIO",
                source={"AttributeNames": ["source-ref", "label"]}),
        channel("raw", "s3://test-bucket/manifest.jsonl", "AugmentedManifestFile", source={"AttributeNames": ["label"]}),
    ]))  # fmt: skip
    view = seen(execution)
    expected = recordio(b"IMG-ONE") + recordio(b"1") + recordio(b"IMG-TWO") + recordio(b"cat")
    assert view["train"] == [expected.hex()] * 2
    assert view["raw"] == [b"1cat".hex()] * 2
    assert view["train_files"] is None  # an augmented manifest is streamed only


@pytest.mark.parametrize(
    ("manifest", "mode", "message"),
    [
        ('{"source-ref": "s3://test-bucket/img/1.jpg"}\n', "File", "needs InputMode Pipe"),
        ('{"source-ref": "s3://test-bucket/img/1.jpg"}\n', "Pipe", "line 1 of s3://test-bucket/m.jsonl has no attribute 'label'"),
        ('{"source-ref": "/local/1.jpg", "label": 0}\n', "Pipe", "source-ref must be an s3:// URI"),
        ("[1, 2]\n", "Pipe", "line 1 of s3://test-bucket/m.jsonl is not a JSON object"),
    ],
)
def test_a_bad_augmented_manifest_fails_the_step_before_it_starts(engine: LocalEngine, manifest: str, mode: str, message: str) -> None:
    engine.store.put_bytes("s3://test-bucket/m.jsonl", manifest.encode())
    step = training([channel("train", "s3://test-bucket/m.jsonl", "AugmentedManifestFile", source={"AttributeNames": ["source-ref", "label"]})],
                    mode=mode, code="print('started')")  # fmt: skip
    execution = run(engine, step)
    state = execution.steps["Train"]
    assert execution.status == "Failed" and message in state.failure_reason, state.failure_reason
    assert "started" not in Path(state.log_path).read_text()


def test_a_reader_that_stops_early_ends_its_pass_and_the_job(engine: LocalEngine) -> None:
    """An algorithm that reads only the start of a pass (or never opens a pipe) does not keep the job waiting."""
    engine.store.put_bytes("s3://test-bucket/big/blob.bin", b"x" * (4 << 20))
    code = "f = open('/opt/ml/input/data/train_0', 'rb'); f.read(10); f.close(); print('SEEN ' + '\"ok\"')"
    execution = run(engine, training([channel("train", "s3://test-bucket/big/"), channel("unread", "s3://test-bucket/big/")], code=code))
    assert seen(execution) == "ok"
