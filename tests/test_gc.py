"""`sagelab gc` deletes exactly what old executions wrote, never what merely shares a prefix, and never while a run is live."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import definition, processing_step, sagelab
from sagelab.config import load_settings
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine, locks
from sagelab.engines.local.gc import collect_garbage
from sagelab.errors import ExecutionError

WRITE = "import pathlib; pathlib.Path('/opt/ml/processing/output/out/part-0.csv').write_text('{}')"
# A script that writes an object of its own through the run's S3 endpoint, as scripts do with boto3.
PUT = """
import os, urllib.request
from botocore.session import get_session
from botocore.awsrequest import AWSRequest
from botocore.auth import S3SigV4Auth
url = os.environ["AWS_ENDPOINT_URL_S3"] + "/test-bucket/scripts-own/extra.txt"
request = AWSRequest(method="PUT", url=url, data=b"extra")
S3SigV4Auth(get_session().get_credentials(), "s3", "us-east-1").add_auth(request)
urllib.request.urlopen(urllib.request.Request(url, data=b"extra", method="PUT", headers=dict(request.headers)))
"""


def execution(engine: LocalEngine, code: str, name: str = "P"):  # type: ignore[no-untyped-def]
    return engine.start(parse(definition(processing_step(name, code, outputs=["out"]))), "gc-test")


def test_gc_deletes_only_objects_an_execution_wrote(project: Path) -> None:
    engine = LocalEngine(load_settings(project))
    old = execution(engine, WRITE.format("old"))
    assert old.status == "Succeeded"
    # The user's own data beside the step's output prefix s3://test-bucket/P/out
    for key in ("P/out.csv", "P/out_raw/x.csv", "P/outputs/y.csv"):
        engine.store.put_bytes(f"s3://test-bucket/{key}", b"mine")
    time.sleep(1.1)
    collected = collect_garbage(load_settings(project), 1.0)
    assert collected.executions == [old.id]
    assert [uri for uri, _ in collected.objects] == ["s3://test-bucket/P/out/part-0.csv"]
    remaining = sorted(info.key for info in engine.store.list("s3://test-bucket/"))
    assert remaining == ["P/out.csv", "P/out_raw/x.csv", "P/outputs/y.csv"]


def test_gc_keeps_what_a_kept_execution_wrote_over_or_reads(project: Path) -> None:
    engine = LocalEngine(load_settings(project))
    old = execution(engine, WRITE.format("old"))
    time.sleep(1.1)
    # A newer run writes the same fixed output path, and another reads the old run's output by prefix.
    newer = execution(engine, WRITE.format("new"))
    reader = processing_step("Reader", "pass", inputs={"data": "s3://test-bucket/P/out"})
    assert engine.start(parse(definition(reader)), "reader").status == "Succeeded"
    collected = collect_garbage(load_settings(project), 1.0)
    assert collected.executions == [old.id] and collected.objects == [] and collected.kept_objects == 1
    assert engine.store.get_bytes("s3://test-bucket/P/out/part-0.csv") == b"new"
    assert newer.status == "Succeeded"


def test_objects_a_script_puts_through_the_endpoint_are_collected_with_its_execution(project: Path) -> None:
    engine = LocalEngine(load_settings(project))
    engine.store.put_bytes("s3://test-bucket/scripts-own/before.txt", b"the user's")  # not written by a run
    old = execution(engine, PUT, name="Putter")
    assert old.status == "Succeeded", old.steps["Putter"].failure_reason
    assert engine.records.written(old.id) == ["s3://test-bucket/scripts-own/extra.txt"]
    time.sleep(1.1)
    collect_garbage(load_settings(project), 1.0)
    assert [info.key for info in engine.store.list("s3://test-bucket/scripts-own/")] == ["scripts-own/before.txt"]


def test_gc_refuses_while_a_run_is_live(project: Path) -> None:
    settings = load_settings(project)
    with locks.running(settings.state_dir), pytest.raises(ExecutionError, match="a run is live in this project"):
        collect_garbage(settings, 0.0)
    result = sagelab("gc", "--older-than", "1s", cwd=project)  # the lock is free again
    assert "removed 0 executions" in result.stdout


def test_dry_run_lists_each_object_and_folder_with_its_size(project: Path) -> None:
    engine = LocalEngine(load_settings(project))
    old = execution(engine, WRITE.format("a" * 1000))
    time.sleep(1.1)
    result = sagelab("gc", "--older-than", "1s", "--dry-run", cwd=project)
    assert "would remove s3://test-bucket/P/out/part-0.csv (0.0 MB)" in result.stdout
    assert f"would remove {project / '.sagelab' / 'executions' / old.id} (" in result.stdout
    assert "would remove 1 execution, 1 object, " in result.stdout
    assert engine.store.get_bytes("s3://test-bucket/P/out/part-0.csv")  # still there


def test_an_object_counts_as_read_when_a_kept_step_names_it_or_a_prefix_of_it() -> None:
    from sagelab.engines.local.gc import _Referenced

    used = _Referenced({"s3://b/data/tr", "s3://b/models/m.tar.gz", "s3://other"})
    assert used("s3://b/data/train.csv") and used("s3://b/data/tr") and used("s3://b/models/m.tar.gz")
    assert used("s3://other/anything")  # a whole bucket
    assert not used("s3://b/data/t.csv") and not used("s3://b/models/n.tar.gz") and not used("s3://c/data/train.csv")
