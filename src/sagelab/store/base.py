"""The object store protocol and S3 URI parsing shared by every backend."""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sagelab.errors import StoreError

Progress = Callable[[int], None]  # called with the bytes moved since the last call

# Bucket naming rules of Amazon S3 (general purpose buckets), without the IP-address rule.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Uri:
    """A parsed `s3://bucket/key` URI; `key` may be empty or a prefix."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        """The URI of `parts` below this one, joined with single slashes."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Uri(self.bucket, key)


def parse_s3_uri(uri: str) -> S3Uri:
    """Split `s3://bucket/key`, refusing anything that is not an S3 URI."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise StoreError(f"{uri!r} is not an S3 URI; expected s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    check_bucket_name(bucket)
    return S3Uri(bucket, key)


def check_bucket_name(bucket: str) -> None:
    """Refuse bucket names S3 would refuse, so local runs fail where AWS would."""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise StoreError(
            f"{bucket!r} is not a valid S3 bucket name: use 3-63 lowercase letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit"
        )


def relative_key(prefix: str, key: str) -> str | None:
    """Where an object lands when the objects under `prefix` are downloaded into a folder.

    A key equal to the prefix lands under its own name, a key below `prefix/` under the
    rest of its key; a key that merely starts with the same characters (`data/training.csv`
    for `data/train`) is not under the prefix: None.
    """
    if key == prefix:
        return key.rpartition("/")[2]
    base = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    return key[len(base) :] if key.startswith(base) else None


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or HEAD tells about one object."""

    bucket: str
    key: str
    size: int
    modified: float  # seconds since the epoch
    etag: str  # quoted, as S3 returns it

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ObjectStore(Protocol):
    """What engines, commands and the S3 protocol server need from an object store."""

    def list_buckets(self) -> list[str]: ...

    def create_bucket(self, bucket: str) -> None: ...

    def head(self, uri: str) -> ObjectInfo: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def open(self, uri: str) -> BinaryIO: ...

    def open_with_info(self, uri: str) -> tuple[BinaryIO, ObjectInfo]: ...

    def get_bytes(self, uri: str) -> bytes: ...

    def put_stream(self, uri: str, stream: BinaryIO) -> ObjectInfo: ...

    def put_bytes(self, uri: str, data: bytes) -> ObjectInfo: ...

    def put_file(self, uri: str, path: Path) -> ObjectInfo: ...

    def publish_file(self, uri: str, path: Path) -> ObjectInfo: ...

    def download_file(self, uri: str, path: Path, progress: Progress | None = None) -> None: ...

    def delete(self, uri: str) -> None: ...

    def upload_dir(self, path: Path, prefix: str) -> builtins.list[ObjectInfo]: ...

    def publish_dir(self, path: Path, prefix: str, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Put a finished folder (a step's outputs) under `prefix`; the files may be moved away from `path`."""
        ...

    def download_prefix(self, prefix: str, path: Path, progress: Progress | None = None) -> builtins.list[ObjectInfo]: ...

    def sha256(self, uri: str) -> str: ...


def sha256_of(stream: BinaryIO) -> str:
    """The hex SHA-256 of what is left in `stream`, read a megabyte at a time."""
    digest = hashlib.sha256()
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()
