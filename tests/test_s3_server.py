"""The local S3 server against the real clients step scripts use: boto3, s3fs/pandas, the AWS CLI.

Each test starts a real server on 127.0.0.1 over a LocalStore under tmp_path. Where a test
speaks raw HTTP, it sends what those clients send but a test cannot make them send on
demand (aws-chunked bodies, which botocore uses only over TLS; a client that stalls).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelab.store.local import LocalStore
from sagelab.store.s3_server import S3Server

BUCKET = "bucket"
MIB = 1024 * 1024
CREDENTIALS = {"aws_access_key_id": "sagelab", "aws_secret_access_key": "sagelab"}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def server(store: LocalStore) -> Iterator[S3Server]:
    """An endpoint that checks every request's signature, as a run's does: every client below signs with CREDENTIALS."""
    with S3Server(store, (CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])) as running:
        yield running


@pytest.fixture
def s3(server: S3Server) -> Any:
    # One attempt: a retried 500 would hide the first failure and slow the suite down.
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", config=config, **CREDENTIALS)


@pytest.fixture
def aws_env(server: S3Server, tmp_path: Path) -> dict[str, str]:
    """A step's environment: the endpoint and throwaway credentials, no AWS config files."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL_S3=server.endpoint,
        AWS_ACCESS_KEY_ID="sagelab",
        AWS_SECRET_ACCESS_KEY="sagelab",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def stored(store: LocalStore, key: str) -> Path:
    return store.root / BUCKET / key


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def signed(server: S3Server, method: str, path: str, body: Any = b"", headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` with a SigV4 signature made by botocore's signer with the server's credentials (if it has any)."""
    headers = dict(headers or {})
    if server.credentials:
        headers.setdefault("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "UNSIGNED-PAYLOAD")
        request = AWSRequest(method=method, url=f"{server.endpoint}{path}", headers=headers)
        S3SigV4Auth(Credentials(*server.credentials), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    return headers


def raw_request(
    server: S3Server, method: str, path: str, body: Any = b"", headers: dict[str, str] | None = None, sign: bool = True
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A request as written, signed (SigV4, botocore's signer) with the server's credentials unless `sign` is False."""
    port = int(server.endpoint.rsplit(":", 1)[1])
    headers = signed(server, method, path, body, headers) if sign else dict(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.01)


# -- the server itself -------------------------------------------------------------------


def test_start_returns_a_loopback_endpoint_and_stop_closes_it(store: LocalStore) -> None:
    server = S3Server(store)
    endpoint = server.start()
    assert endpoint == server.endpoint and endpoint.startswith("http://127.0.0.1:")
    assert raw_request(server, "GET", "/")[0] == 200
    server.stop()
    port = int(endpoint.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        server.endpoint
    assert server.start() != ""  # a stopped server starts again
    server.stop()


# -- objects with boto3 --------------------------------------------------------------------


def test_put_get_head_and_ranges(s3: Any, store: LocalStore) -> None:
    body = b"0123456789abcdefghij"
    put = s3.put_object(Bucket=BUCKET, Key="dir/file.txt", Body=body)
    assert stored(store, "dir/file.txt").read_bytes() == body

    head = s3.head_object(Bucket=BUCKET, Key="dir/file.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"] == store.head(f"s3://{BUCKET}/dir/file.txt").etag
    assert head["ContentType"] == "text/plain"
    assert isinstance(head["LastModified"], datetime)
    got = s3.get_object(Bucket=BUCKET, Key="dir/file.txt")
    assert (got["Body"].read(), got["ETag"]) == (body, put["ETag"])
    assert s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["ETag"] == put["ETag"]

    def ranged(spec: str) -> tuple[bytes, str]:
        got = s3.get_object(Bucket=BUCKET, Key="dir/file.txt", Range=spec)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        return got["Body"].read(), got["ContentRange"]

    assert ranged("bytes=0-3") == (b"0123", "bytes 0-3/20")
    assert ranged("bytes=15-") == (b"fghij", "bytes 15-19/20")
    assert ranged("bytes=-4") == (b"ghij", "bytes 16-19/20")
    assert ranged("bytes=18-100") == (b"ij", "bytes 18-19/20")
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="dir/file.txt", Range="bytes=20-")
    assert error_code(excinfo) == "InvalidRange"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416

    s3.put_object(Bucket=BUCKET, Key="blob.weird-extension", Body=b"")
    head = s3.head_object(Bucket=BUCKET, Key="blob.weird-extension")
    assert (head["ContentLength"], head["ContentType"]) == (0, "application/octet-stream")
    assert s3.get_object(Bucket=BUCKET, Key="blob.weird-extension")["Body"].read() == b""

    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="dir/missing.txt")
    assert error_code(excinfo) == "NoSuchKey"
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=BUCKET, Key="dir/missing.txt")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_conditional_gets(s3: Any) -> None:
    etag = s3.put_object(Bucket=BUCKET, Key="c.bin", Body=b"data")["ETag"]
    assert s3.get_object(Bucket=BUCKET, Key="c.bin", IfMatch=etag)["Body"].read() == b"data"
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="c.bin", IfMatch='"other"')
    assert error_code(excinfo) == "PreconditionFailed"
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="c.bin", IfNoneMatch=etag)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=BUCKET, Key="c.bin", IfNoneMatch='"other"')["Body"].read() == b"data"
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=BUCKET, Key="c.bin", Body=b"new", IfNoneMatch="*")
    assert error_code(excinfo) == "PreconditionFailed"


def test_buckets_exist_on_first_use(server: S3Server, s3: Any) -> None:
    s3.head_bucket(Bucket="never-created")
    assert s3.list_objects_v2(Bucket="never-created")["KeyCount"] == 0
    s3.create_bucket(Bucket="made", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"v")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET, "made"]
    assert s3.get_bucket_location(Bucket="made")["LocationConstraint"] is None  # us-east-1
    eu = boto3.client("s3", endpoint_url=server.endpoint, region_name="eu-west-1", **CREDENTIALS)
    assert eu.get_bucket_location(Bucket="made")["LocationConstraint"] == "eu-west-1"
    with pytest.raises(ClientError) as excinfo:
        s3.delete_bucket(Bucket=BUCKET)
    assert error_code(excinfo) == "BucketNotEmpty"
    s3.delete_bucket(Bucket="made")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    with pytest.raises(ClientError) as excinfo:
        s3.head_bucket(Bucket="Not_A_Bucket")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_v2_paginates_over_1000_keys(s3: Any, store: LocalStore) -> None:
    keys = sorted(f"many/{i:05d}.txt" for i in range(1203))
    for key in keys:
        store.put_bytes(f"s3://{BUCKET}/{key}", b"x")

    first = s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")
    assert (first["KeyCount"], first["IsTruncated"]) == (1000, True)
    second = s3.list_objects_v2(Bucket=BUCKET, Prefix="many/", ContinuationToken=first["NextContinuationToken"])
    assert (second["KeyCount"], second["IsTruncated"]) == (203, False)
    assert [o["Key"] for o in first["Contents"] + second["Contents"]] == keys

    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 250}))
    assert [len(p["Contents"]) for p in pages] == [250, 250, 250, 250, 203]
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys

    v1_pages = list(s3.get_paginator("list_objects").paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 500}))
    assert [o["Key"] for p in v1_pages for o in p["Contents"]] == keys

    after = s3.list_objects_v2(Bucket=BUCKET, StartAfter=keys[1199], FetchOwner=True)
    assert [o["Key"] for o in after["Contents"]] == keys[1200:]
    assert after["Contents"][0]["Owner"]["ID"] == "sagelab"
    assert s3.list_objects_v2(Bucket=BUCKET, MaxKeys=0)["KeyCount"] == 0


def test_delimiter_lists_common_prefixes(s3: Any) -> None:
    keys = [
        "data/readme.txt",
        "data/test/c.csv",
        "data/train/a.csv",
        "data/train/b.csv",
        "data/with space+plus/ü.csv",
        "top.txt",
    ]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="data/", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["data/test/", "data/train/", "data/with space+plus/"]
    assert [o["Key"] for o in listed["Contents"]] == ["data/readme.txt"]

    top = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/"]
    assert [o["Key"] for o in top["Contents"]] == ["top.txt"]

    # One entry a page: each common prefix is listed once, across page boundaries too.
    for operation in ("list_objects_v2", "list_objects"):
        pages = s3.get_paginator(operation).paginate(
            Bucket=BUCKET, Prefix="data/", Delimiter="/", PaginationConfig={"PageSize": 1}
        )
        entries = [e.get("Prefix") or e["Key"] for p in pages for e in p.get("CommonPrefixes", []) + p.get("Contents", [])]
        assert entries == ["data/readme.txt", "data/test/", "data/train/", "data/with space+plus/"]

    deep = s3.list_objects_v2(Bucket=BUCKET, Prefix="data/with space+plus/")
    assert [o["Key"] for o in deep["Contents"]] == ["data/with space+plus/ü.csv"]


def test_copy_object(s3: Any, store: LocalStore) -> None:
    s3.put_object(Bucket=BUCKET, Key="src/a b+ü.csv", Body=b"a,b\n1,2\n")
    copied = s3.copy_object(Bucket="other", Key="dst/copy.csv", CopySource={"Bucket": BUCKET, "Key": "src/a b+ü.csv"})
    assert (store.root / "other/dst/copy.csv").read_bytes() == b"a,b\n1,2\n"
    assert copied["CopyObjectResult"]["ETag"] == s3.head_object(Bucket="other", Key="dst/copy.csv")["ETag"]

    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="x", CopySource={"Bucket": BUCKET, "Key": "src/missing"})
    assert error_code(excinfo) == "NoSuchKey"
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="src/a b+ü.csv", CopySource={"Bucket": BUCKET, "Key": "src/a b+ü.csv"})
    assert error_code(excinfo) == "InvalidRequest"


def test_delete_and_delete_objects(s3: Any, store: LocalStore) -> None:
    for key in ("d/1", "d/2", "d/3", "d/4"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert s3.delete_object(Bucket=BUCKET, Key="d/1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.delete_object(Bucket=BUCKET, Key="d/never-there")  # as on S3: no error

    result = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "d/2"}, {"Key": "d/missing"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["d/2", "d/missing"]
    quiet = s3.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "d/3"}, {"Key": "d/../escape"}], "Quiet": True}
    )
    assert "Deleted" not in quiet
    assert [(e["Key"], e["Code"]) for e in quiet["Errors"]] == [("d/../escape", "InvalidArgument")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["d/4"]
    assert files_under(store.root / BUCKET) == [stored(store, "d/4")]


# -- multipart -------------------------------------------------------------------------------


def test_upload_file_and_download_file_in_parts(s3: Any, store: LocalStore, tmp_path: Path) -> None:
    data = payload(12 * MIB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)

    s3.upload_file(str(source), BUCKET, "big/big.bin", Config=config)
    assert stored(store, "big/big.bin").read_bytes() == data
    assert not files_under(store.root / ".multipart")

    target = tmp_path / "back.bin"
    s3.download_file(BUCKET, "big/big.bin", str(target), Config=config)
    assert target.read_bytes() == data

    # A managed copy of a large object goes through UploadPartCopy.
    s3.copy({"Bucket": BUCKET, "Key": "big/big.bin"}, BUCKET, "big/copy.bin", Config=config)
    assert stored(store, "big/copy.bin").read_bytes() == data


def test_multipart_calls_publish_only_on_completion(s3: Any, store: LocalStore) -> None:
    first, last = payload(5 * MIB, seed=1), payload(1000, seed=2)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/object.bin")["UploadId"]
    tags = [
        s3.upload_part(Bucket=BUCKET, Key="mp/object.bin", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, first), (2, last))
    ]
    listed = s3.list_parts(Bucket=BUCKET, Key="mp/object.bin", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [(1, 5 * MIB, tags[0]), (2, 1000, tags[1])]
    assert (store.root / ".multipart" / upload).is_dir()
    assert not stored(store, "mp/object.bin").exists()  # nothing visible before completion
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0

    def complete(parts: list[tuple[int, str]], upload_id: str = upload) -> Any:
        return s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="mp/object.bin",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": tag} for n, tag in parts]},
        )

    for parts, code in (
        ([(2, tags[1]), (1, tags[0])], "InvalidPartOrder"),
        ([(1, tags[0]), (2, '"0000"')], "InvalidPart"),
        ([(1, tags[0]), (3, tags[1])], "InvalidPart"),
    ):
        with pytest.raises(ClientError) as excinfo:
            complete(parts)
        assert error_code(excinfo) == code

    done = complete([(1, tags[0]), (2, tags[1])])
    assert done["ETag"] == s3.head_object(Bucket=BUCKET, Key="mp/object.bin")["ETag"]
    assert stored(store, "mp/object.bin").read_bytes() == first + last
    assert not (store.root / ".multipart" / upload).exists()
    with pytest.raises(ClientError) as excinfo:
        complete([(1, tags[0]), (2, tags[1])])
    assert error_code(excinfo) == "NoSuchUpload"

    small = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/small.bin")["UploadId"]
    small_tags = [
        s3.upload_part(Bucket=BUCKET, Key="mp/small.bin", UploadId=small, PartNumber=n, Body=b"tiny")["ETag"]
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(
            Bucket=BUCKET,
            Key="mp/small.bin",
            UploadId=small,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t} for n, t in zip((1, 2), small_tags)]},
        )
    assert error_code(excinfo) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mp/small.bin", UploadId=small)
    assert not (store.root / ".multipart" / small).exists()
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part(Bucket=BUCKET, Key="mp/small.bin", UploadId=small, PartNumber=3, Body=b"x")
    assert error_code(excinfo) == "NoSuchUpload"
    assert not stored(store, "mp/small.bin").exists()


# -- the resource API -----------------------------------------------------------------------


def test_resource_api(server: S3Server) -> None:
    resource = boto3.resource("s3", endpoint_url=server.endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = resource.Bucket(BUCKET)
    bucket.create()
    for key in ("models/a.tar.gz", "models/b.tar.gz", "other/c.txt"):
        bucket.put_object(Key=key, Body=key.encode())
    assert sorted(o.key for o in bucket.objects.filter(Prefix="models/")) == ["models/a.tar.gz", "models/b.tar.gz"]
    obj = resource.Object(BUCKET, "other/c.txt")
    assert obj.get()["Body"].read() == b"other/c.txt"
    assert obj.content_length == len(b"other/c.txt")
    bucket.objects.filter(Prefix="models/").delete()
    assert [o.key for o in bucket.objects.all()] == ["other/c.txt"]


# -- pandas and s3fs ------------------------------------------------------------------------


def test_pandas_with_storage_options(server: S3Server, store: LocalStore) -> None:
    import pandas as pd
    options = {"key": "sagelab", "secret": "sagelab", "client_kwargs": {"endpoint_url": server.endpoint}}
    frame = pd.DataFrame({"x": range(1000), "y": [f"row {i}" for i in range(1000)]})
    frame.to_csv(f"s3://{BUCKET}/frames/data.csv", index=False, storage_options=options)
    assert stored(store, "frames/data.csv").read_bytes().startswith(b"x,y\n0,row 0\n")
    back = pd.read_csv(f"s3://{BUCKET}/frames/data.csv", storage_options=options)
    pd.testing.assert_frame_equal(back, frame)


def test_s3fs_multipart_write_listing_and_delete(server: S3Server, store: LocalStore) -> None:
    import s3fs
    fs = s3fs.S3FileSystem(
        key="sagelab", secret="sagelab", client_kwargs={"endpoint_url": server.endpoint}, skip_instance_cache=True
    )
    data = payload(11 * MIB, seed=3)
    with fs.open(f"{BUCKET}/fs/big.bin", "wb", block_size=5 * MIB) as handle:  # more than a block: multipart
        handle.write(data)
    assert stored(store, "fs/big.bin").read_bytes() == data
    assert fs.cat(f"{BUCKET}/fs/big.bin") == data
    with fs.open(f"{BUCKET}/fs/big.bin", "rb", block_size=MIB) as handle:
        handle.seek(7 * MIB)
        assert handle.read(10) == data[7 * MIB : 7 * MIB + 10]
    fs.pipe(f"{BUCKET}/fs/sub/small.txt", b"small")
    assert sorted(fs.ls(f"{BUCKET}/fs", detail=False)) == [f"{BUCKET}/fs/big.bin", f"{BUCKET}/fs/sub"]
    assert fs.info(f"{BUCKET}/fs/sub")["type"] == "directory"
    assert fs.info(f"{BUCKET}/fs/big.bin")["size"] == len(data)
    fs.rm(f"{BUCKET}/fs", recursive=True)
    assert files_under(store.root / BUCKET) == []


def test_pandas_through_the_endpoint_environment_variable_alone(aws_env: dict[str, str], store: LocalStore) -> None:
    """A step script as written for SageMaker: no endpoint in its code, only in its environment."""
    script = (
        "import pandas as pd\n"
        f"pd.DataFrame({{'a': [1, 2, 3]}}).to_csv('s3://{BUCKET}/env/out.csv', index=False)\n"
        f"print(pd.read_csv('s3://{BUCKET}/env/out.csv')['a'].sum())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=aws_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6"
    assert stored(store, "env/out.csv").read_bytes() == b"a\n1\n2\n3\n"


# -- the AWS CLI ------------------------------------------------------------------------------


def aws(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "awscli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"aws {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def test_aws_cli_cp_ls_sync(aws_env: dict[str, str], store: LocalStore, tmp_path: Path) -> None:
    local = tmp_path / "up"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha")
    (local / "sub" / "b.csv").write_bytes(b"b\n1\n")
    (local / "big.bin").write_bytes(payload(9 * MIB, seed=4))  # over the CLI's 8 MB multipart threshold

    aws(aws_env, "s3", "cp", str(local / "a.txt"), f"s3://{BUCKET}/cli/a.txt")
    assert stored(store, "cli/a.txt").read_bytes() == b"alpha"
    aws(aws_env, "s3", "sync", str(local), f"s3://{BUCKET}/synced/")
    for name in ("a.txt", "sub/b.csv", "big.bin"):
        assert stored(store, f"synced/{name}").read_bytes() == (local / name).read_bytes()
    assert aws(aws_env, "s3", "sync", str(local), f"s3://{BUCKET}/synced/") == ""  # nothing changed

    assert BUCKET in aws(aws_env, "s3", "ls")
    listing = aws(aws_env, "s3", "ls", f"s3://{BUCKET}/synced/")
    assert "PRE sub/" in listing and "a.txt" in listing and str(9 * MIB) in listing
    assert "synced/sub/b.csv" in aws(aws_env, "s3", "ls", "--recursive", f"s3://{BUCKET}/")

    down = tmp_path / "down"
    aws(aws_env, "s3", "sync", f"s3://{BUCKET}/synced/", str(down))
    assert files_under(down) == [down / "a.txt", down / "big.bin", down / "sub" / "b.csv"]
    assert (down / "big.bin").read_bytes() == (local / "big.bin").read_bytes()
    aws(aws_env, "s3", "cp", f"s3://{BUCKET}/cli/a.txt", str(tmp_path / "a-copy.txt"))
    assert (tmp_path / "a-copy.txt").read_bytes() == b"alpha"

    aws(aws_env, "s3", "cp", f"s3://{BUCKET}/synced/big.bin", f"s3://{BUCKET}/copied/big.bin")  # multipart copy
    assert stored(store, "copied/big.bin").read_bytes() == (local / "big.bin").read_bytes()
    aws(aws_env, "s3", "rm", "--recursive", f"s3://{BUCKET}/synced/")
    assert not (store.root / BUCKET / "synced").exists()
    assert not files_under(store.root / ".multipart")


# -- bodies, atomicity and bad input ------------------------------------------------------------


def aws_chunked(data: bytes, trailer: bytes = b"", signed: bool = False) -> bytes:
    signature = b";chunk-signature=" + b"0" * 64 if signed else b""
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    framed = b"".join(b"%x%s\r\n%s\r\n" % (len(c), signature, c) for c in chunks)
    return framed + b"0%s\r\n%s\r\n" % (signature, trailer)


def test_aws_chunked_bodies_are_decoded(server: S3Server, store: LocalStore) -> None:
    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    data = payload(200_000, seed=5)
    trailer_headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": str(len(data)),
    }
    # What botocore sends with flexible checksums (over TLS), framed by botocore itself.
    wrapped = AwsChunkedWrapper(io.BytesIO(data), Crc32Checksum, "x-amz-checksum-crc32", chunk_size=65536).read()
    status, _, _ = raw_request(server, "PUT", f"/{BUCKET}/chunked/trailer.bin", wrapped, trailer_headers)
    assert status == 200 and stored(store, "chunked/trailer.bin").read_bytes() == data

    # The same inside HTTP chunked transfer coding, as when the length is not known up front.
    pieces = iter([wrapped[i : i + 10_000] for i in range(0, len(wrapped), 10_000)])
    status, _, _ = raw_request(server, "PUT", f"/{BUCKET}/chunked/transfer.bin", pieces, trailer_headers)
    assert status == 200 and stored(store, "chunked/transfer.bin").read_bytes() == data

    signed_headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": str(len(data)),
    }
    status, _, _ = raw_request(server, "PUT", f"/{BUCKET}/chunked/signed.bin", aws_chunked(data, signed=True), signed_headers)
    assert status == 200 and stored(store, "chunked/signed.bin").read_bytes() == data

    short = {**signed_headers, "x-amz-decoded-content-length": str(len(data) + 1)}
    status, _, body = raw_request(server, "PUT", f"/{BUCKET}/chunked/short.bin", aws_chunked(data, signed=True), short)
    assert status == 400 and b"<Code>IncompleteBody</Code>" in body
    assert not stored(store, "chunked/short.bin").exists()
    assert not files_under(store.root / ".tmp")


def test_a_wrong_content_md5_stores_nothing(s3: Any, store: LocalStore) -> None:
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=BUCKET, Key="md5.bin", Body=b"payload", ContentMD5=wrong)
    assert error_code(excinfo) == "BadDigest"
    assert not stored(store, "md5.bin").exists()


def test_an_upload_becomes_visible_only_when_complete(server: S3Server, store: LocalStore) -> None:
    data = payload(4 * MIB, seed=6)
    port = int(server.endpoint.rsplit(":", 1)[1])

    def head(name: str) -> bytes:
        lines = {"Content-Length": str(len(data)), **signed(server, "PUT", f"/{BUCKET}/{name}", data, {"Host": f"127.0.0.1:{port}"})}
        return (f"PUT /{BUCKET}/{name} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n").encode()

    temp = store.root / ".tmp"

    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(head("slow.bin") + data[: 3 * MIB])
        wait_for(lambda: any(f.stat().st_size > 0 for f in files_under(temp)) if temp.is_dir() else False)
        assert not stored(store, "slow.bin").exists()  # half-received bytes are never an object
        client.sendall(data[3 * MIB :])
        response = http.client.HTTPResponse(client)
        response.begin()
        assert response.status == 200
    assert stored(store, "slow.bin").read_bytes() == data
    assert not files_under(temp)

    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:  # a client that dies midway
        client.sendall(head("dropped.bin") + data[: 2 * MIB])
        wait_for(lambda: bool(files_under(temp)))
    wait_for(lambda: not files_under(temp))
    assert not stored(store, "dropped.bin").exists()


def test_keys_the_store_refuses_get_400_and_write_nothing(server: S3Server, s3: Any, tmp_path: Path) -> None:
    for path in (f"/{BUCKET}/a/../../../escape.txt", f"/{BUCKET}/..%2Fescape.txt", f"/{BUCKET}/a//b", f"/{BUCKET}/./x"):
        status, headers, body = raw_request(server, "PUT", path, b"evil")
        assert status == 400, path
        assert headers["Content-Type"] == "application/xml"
        assert b"<Code>InvalidArgument</Code>" in body
    status, _, body = raw_request(server, "PUT", "/../escape.txt", b"evil")
    assert status == 400 and b"<Code>InvalidBucketName</Code>" in body

    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=BUCKET, Key="../escape.txt", Body=b"evil")
    assert error_code(excinfo) == "InvalidArgument"
    for call in (
        lambda: s3.get_object(Bucket=BUCKET, Key="../escape.txt"),
        lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="a/../b"),
        lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix="../"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert files_under(tmp_path) == []
    assert raw_request(server, "GET", "/")[0] == 200  # and the server keeps serving


def test_unsupported_and_broken_requests_get_s3_errors(server: S3Server, s3: Any, store: LocalStore) -> None:
    s3.put_object(Bucket=BUCKET, Key="k.txt", Body=b"v")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object_tagging(Bucket=BUCKET, Key="k.txt", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert error_code(excinfo) == "NotImplemented"
    assert stored(store, "k.txt").read_bytes() == b"v"  # not overwritten by the tagging body
    status, _, body = raw_request(server, "POST", f"/{BUCKET}?delete", b"<Delete><Object>")
    assert status == 400 and b"<Code>MalformedXML</Code>" in body


class _FailingStore(LocalStore):
    """A store with a bug in one method, to see the server answer 500 and go on."""

    def open_with_info(self, uri: str) -> Any:
        raise RuntimeError("disk on fire")


def test_a_bug_is_a_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with S3Server(_FailingStore(tmp_path)) as server:
        config = Config(retries={"total_max_attempts": 1})
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", config=config, **CREDENTIALS)
        client.put_object(Bucket=BUCKET, Key="k", Body=b"v")
        with pytest.raises(ClientError) as excinfo:
            client.get_object(Bucket=BUCKET, Key="k")
        assert error_code(excinfo) == "InternalError"
        assert "disk on fire" in excinfo.value.response["Error"]["Message"]
        assert client.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_virtual_host_addressing(server: S3Server, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="dir/v.txt", Body=b"virtual")
    port = server.endpoint.rsplit(":", 1)[1]
    status, _, body = raw_request(server, "GET", "/dir/v.txt", headers={"Host": f"{BUCKET}.localhost:{port}"})
    assert (status, body) == (200, b"virtual")


def test_a_key_segment_too_long_for_a_file_name_is_a_400(s3: Any) -> None:
    for call in (
        lambda: s3.put_object(Bucket=BUCKET, Key="d/" + "x" * 300, Body=b"v"),
        lambda: s3.get_object(Bucket=BUCKET, Key="d/" + "x" * 300),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "KeyTooLongError"


def test_a_run_s_endpoint_serves_only_its_own_credentials(store: LocalStore) -> None:
    """Anonymous requests, other keys and signatures made without the run's secret are refused, as S3 does, before anything is read or written."""
    store.put_bytes("s3://code/p/code/abc/train.py", b"print('the real script')")
    config = Config(retries={"total_max_attempts": 1})
    with S3Server(store, ("SGLRUNKEY", "run-secret")) as keyed:

        def client(access_key: str, secret: str) -> Any:
            return boto3.client("s3", endpoint_url=keyed.endpoint, region_name="us-east-1", config=config,
                                aws_access_key_id=access_key, aws_secret_access_key=secret)  # fmt: skip

        own, other, forged = client("SGLRUNKEY", "run-secret"), client("SGLOTHER", "run-secret"), client("SGLRUNKEY", "guessed")
        for intruder, code in ((other, "InvalidAccessKeyId"), (forged, "SignatureDoesNotMatch")):
            with pytest.raises(ClientError) as refused:
                intruder.put_object(Bucket="code", Key="p/code/abc/train.py", Body=b"print('swapped')")
            assert refused.value.response["Error"]["Code"] == code
        assert raw_request(keyed, "DELETE", "/code/p/code/abc/train.py", sign=False)[0] == 403
        assert raw_request(keyed, "GET", "/code/p/code/abc/train.py", sign=False)[0] == 403
        assert own.get_object(Bucket="code", Key="p/code/abc/train.py")["Body"].read() == b"print('the real script')"
        own.put_object(Bucket="code", Key="p/out.txt", Body=b"ok")
        undeclared = AWSRequest(method="GET", url=f"{keyed.endpoint}/code/p/out.txt")  # SigV4 without x-amz-content-sha256
        SigV4Auth(Credentials("SGLRUNKEY", "run-secret"), "s3", "us-east-1").add_auth(undeclared)
        status, _, body = raw_request(keyed, "GET", "/code/p/out.txt", headers=dict(undeclared.headers.items()), sign=False)
        assert status == 400 and b"Missing required header for this request: x-amz-content-sha256" in body
        url = own.generate_presigned_url("get_object", Params={"Bucket": "code", "Key": "p/out.txt"}, ExpiresIn=60)
        with urllib.request.urlopen(url) as presigned:  # a presigned URL signs in its query
            assert presigned.read() == b"ok"
        with pytest.raises(urllib.error.HTTPError) as tampered:
            urllib.request.urlopen(url.replace("p/out.txt", "p/code/abc/train.py"))
        assert tampered.value.code == 403 and b"SignatureDoesNotMatch" in tampered.value.read()
    assert store.get_bytes("s3://code/p/code/abc/train.py") == b"print('the real script')"