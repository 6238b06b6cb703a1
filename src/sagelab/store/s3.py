"""`S3Store`: the object store on Amazon S3 (or an S3-compatible server), through boto3.

It implements the same `ObjectStore` protocol as `LocalStore`. boto3 is imported on first
use, so `import sagelab.store` stays light. Large objects move as concurrent multipart
transfers (boto3's TransferConfig); throttled and transient requests are retried
(botocore's "standard" mode, 10 attempts); botocore's errors are translated here, at the
boundary, into `StoreError`s that name the bucket, the key and the IAM action denied.

Where it differs from `LocalStore`:
- A bucket must exist: reading from, listing or writing to a missing bucket raises a
  `StoreError` (LocalStore makes a bucket on first write and lists a missing one as empty).
- A console "folder" (a key ending in "/") is a real empty object that `list` returns;
  `download_prefix` skips it, as LocalStore, which keeps only the folder, does.
- `publish_dir` cannot be all-or-nothing: S3 has no multi-object commit. Each object is
  still atomic (readers see an old or a new object, never part of one), and no `_SUCCESS`
  marker is written: readers rely on the step that wrote the outputs having completed.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from sagelab.errors import NoSuchKey, StoreError
from sagelab.store.base import ObjectInfo, Progress, S3Uri, check_bucket_name, parse_s3_uri, relative_key, sha256_of

_MiB = 1024 * 1024
_SHA256 = "sha256"  # user metadata (x-amz-meta-sha256) that identifies multipart uploads' content
_CREDENTIALS_HELP = (
    "boto3 looks for them in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, "
    "~/.aws/config (including SSO: `aws sso login`) and instance or container roles; run `aws configure`, "
    "or name a configured profile with aws_profile in [tool.sagelab.profiles.<name>]"
)
# The IAM action each S3 operation needs, to say which permission a 403 is missing.
_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "CopyObject": "s3:GetObject and s3:PutObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "CreateBucket": "s3:CreateBucket",
    "ListBuckets": "s3:ListAllMyBuckets",
    "GetBucketLocation": "s3:GetBucketLocation",
}
_BUCKET_ACTIONS = {"ListObjectsV2", "ListObjects", "HeadBucket", "CreateBucket", "GetBucketLocation"}


class S3Store:
    """An object store on Amazon S3 or an S3-compatible server such as SeaweedFS or MinIO.

    Args:
        region: the AWS region of the buckets (and of the client).
        endpoint_url: an S3-compatible endpoint (path-style addressing); None for AWS.
        profile: the boto3 profile; None uses boto3's default credential chain.
        client: a ready boto3 S3 client to use instead of making one from the above.
        multipart_threshold, multipart_chunksize, max_concurrency: boto3's TransferConfig;
            `max_concurrency` also bounds how many files a folder transfer moves at once.

    Example:
        >>> store = S3Store("eu-west-1", profile="ml-dev")  # doctest: +SKIP
        >>> store.put_bytes("s3://my-team-bucket/notes.txt", b"hello").size  # doctest: +SKIP
        5
    """

    def __init__(self, region: str, endpoint_url: str | None = None, profile: str | None = None, client: Any = None,
                 *, multipart_threshold: int = 64 * _MiB, multipart_chunksize: int = 16 * _MiB,
                 max_concurrency: int = 8) -> None:  # fmt: skip
        self.region, self.endpoint_url, self.profile = region, endpoint_url, profile
        self.multipart_threshold, self.multipart_chunksize = multipart_threshold, multipart_chunksize
        self.max_concurrency = max_concurrency
        self._client = client
        self._transfer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(region={self.region!r}, endpoint_url={self.endpoint_url!r}, profile={self.profile!r})"

    # -- the boto3 client, made on first use -------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client; making it imports boto3, so it waits for the first request."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        import boto3  # type: ignore[import-untyped,unused-ignore]
        from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
        from botocore.exceptions import ProfileNotFound  # type: ignore[import-untyped,unused-ignore]

        try:
            session = boto3.Session(profile_name=self.profile, region_name=self.region)
        except ProfileNotFound:
            known = ", ".join(sorted(boto3.Session().available_profiles)) or "none"
            raise StoreError(
                f"AWS profile {self.profile!r} (aws_profile in [tool.sagelab]) is not configured in ~/.aws/config "
                f"or ~/.aws/credentials; configured profiles: {known}. Create it with `aws configure --profile {self.profile}`"
            ) from None
        config = Config(
            retries={"mode": "standard", "max_attempts": 10},  # retries after the first attempt: 11 in all
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            max_pool_connections=max(10, 2 * self.max_concurrency),
        )
        return session.client("s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config)

    def _transfer_config(self) -> Any:
        if self._transfer is None:
            from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped,unused-ignore]

            self._transfer = TransferConfig(
                multipart_threshold=self.multipart_threshold,
                multipart_chunksize=self.multipart_chunksize,
                max_concurrency=self.max_concurrency,
            )
        return self._transfer

    # -- buckets ---------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        with self._translated(""):
            return sorted(bucket["Name"] for bucket in self.client.list_buckets().get("Buckets", []))

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket in the store's region; creating one you already own succeeds."""
        check_bucket_name(bucket)
        arguments: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":  # us-east-1 refuses its own name as a LocationConstraint
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with self._translated(bucket):
            try:
                self.client.create_bucket(**arguments)
            except self.client.exceptions.BucketAlreadyOwnedByYou:
                pass

    # -- reads -----------------------------------------------------------------------

    def head(self, uri: str) -> ObjectInfo:
        parsed = parse_s3_uri(uri)
        with self._translated(parsed.bucket, parsed.key):
            response = self.client.head_object(Bucket=parsed.bucket, Key=parsed.key)
        return _info(parsed, response)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with the prefix, in the order S3 lists them, page by page."""
        parsed = parse_s3_uri(prefix)
        with self._translated(parsed.bucket, parsed.key):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=parsed.bucket, Prefix=parsed.key)
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item["LastModified"].timestamp()
                    yield ObjectInfo(parsed.bucket, item["Key"], item["Size"], modified, item["ETag"])

    def open(self, uri: str) -> BinaryIO:
        return self.open_with_info(uri)[0]

    def open_with_info(self, uri: str) -> tuple[BinaryIO, ObjectInfo]:
        """Open an object for reading, described by the very response being read."""
        parsed = parse_s3_uri(uri)
        with self._translated(parsed.bucket, parsed.key):
            response = self.client.get_object(Bucket=parsed.bucket, Key=parsed.key)
        stream = io.BufferedReader(_Body(self, parsed, response["Body"]), _MiB)
        return stream, _info(parsed, response)

    def get_bytes(self, uri: str) -> bytes:
        with self.open(uri) as stream:
            return stream.read()

    def download_file(self, uri: str, path: Path, progress: Progress | None = None) -> None:
        """Download one object; boto3 writes a temporary file and renames it into place."""
        parsed = parse_s3_uri(uri)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self._translated(parsed.bucket, parsed.key):
            self.client.download_file(parsed.bucket, parsed.key, str(path), Config=self._transfer_config(), Callback=progress)

    def download_prefix(self, prefix: str, path: Path, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Copy every object under `prefix` into `path`, keeping the key layout below it.

        A prefix that names one object exactly downloads that object into `path`; folder
        markers (keys ending in "/") are skipped.
        """
        parsed = parse_s3_uri(prefix)
        chosen: list[tuple[ObjectInfo, Path]] = []
        for info in self.list(prefix):
            relative = relative_key(parsed.key, info.key)
            if not relative or relative.endswith("/"):
                continue
            chosen.append((info, Path(path, *_safe_parts(info, relative))))
        self._each(lambda item: self.download_file(item[0].uri, item[1], progress), chosen)
        return [info for info, _ in chosen]

    # -- writes ----------------------------------------------------------------------

    def put_stream(self, uri: str, stream: BinaryIO) -> ObjectInfo:
        parsed = parse_s3_uri(uri)
        with self._translated(parsed.bucket, parsed.key):
            self.client.upload_fileobj(stream, parsed.bucket, parsed.key, Config=self._transfer_config())
        return self.head(uri)

    def put_bytes(self, uri: str, data: bytes) -> ObjectInfo:
        parsed = parse_s3_uri(uri)
        metadata = {_SHA256: hashlib.sha256(data).hexdigest()}
        with self._translated(parsed.bucket, parsed.key):
            self.client.put_object(Bucket=parsed.bucket, Key=parsed.key, Body=data, Metadata=metadata)
        return self.head(uri)

    def put_file(self, uri: str, path: Path, progress: Progress | None = None) -> ObjectInfo:
        """Upload a file, multipart above the threshold, recording its SHA-256 as x-amz-meta-sha256."""
        return self._put_file(parse_s3_uri(uri), Path(path), _digests(Path(path))[1], progress)

    def _put_file(self, parsed: S3Uri, path: Path, sha256: str, progress: Progress | None = None) -> ObjectInfo:
        extra = {"Metadata": {_SHA256: sha256}}
        with self._translated(parsed.bucket, parsed.key):
            self.client.upload_file(str(path), parsed.bucket, parsed.key, ExtraArgs=extra,
                                    Config=self._transfer_config(), Callback=progress)  # fmt: skip
        return self.head(str(parsed))

    def publish_file(self, uri: str, path: Path) -> ObjectInfo:
        """Upload a finished file as `uri`, then remove it from `path`, as LocalStore's move does."""
        info = self.put_file(uri, path)
        Path(path).unlink()
        return info

    def upload_dir(self, path: Path, prefix: str, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Upload every file below `path` to `prefix/<relative path>`, several at once."""
        base = parse_s3_uri(prefix)
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        return self._each(lambda file: self.put_file(str(base.join(file.relative_to(path).as_posix())), file, progress), files)

    def publish_dir(self, path: Path, prefix: str, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Upload a folder to its final keys.

        S3 cannot make a set of objects appear at once, so unlike LocalStore this is not
        all-or-nothing: each object is atomic, and readers must rely on the writing step
        having completed (no `_SUCCESS` marker is written, as SageMaker writes none).
        """
        return self.upload_dir(path, prefix, progress)

    def sync_dir(self, path: Path, prefix: str) -> builtins.list[ObjectInfo]:
        """Upload the files below `path` that differ from the objects under `prefix`; return those uploaded.

        A file is unchanged when the object has the same size and the same content: its
        MD5 equals a single-part object's ETag, or its SHA-256 equals the x-amz-meta-sha256
        this store records on upload (multipart ETags are not an MD5, nor are ETags under
        SSE-KMS). Objects with no local file are left alone.
        """
        base = parse_s3_uri(prefix)
        folder = base.key.strip("/")
        remote = {info.key: info for info in self.list(f"s3://{base.bucket}/{folder}/" if folder else f"s3://{base.bucket}/")}

        def sync(file: Path) -> ObjectInfo | None:
            target = base.join(file.relative_to(path).as_posix())
            md5, sha256 = _digests(file)
            existing = remote.get(target.key)
            if existing is not None and existing.size == file.stat().st_size:
                if existing.etag.strip('"') == md5 or self._stored_sha256(target) == sha256:
                    return None
            return self._put_file(target, file, sha256)

        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        return [info for info in self._each(sync, files) if info is not None]

    def sha256(self, uri: str) -> str:
        """The object's SHA-256: the one this store recorded when it uploaded it, else read from its bytes."""
        recorded = self._stored_sha256(parse_s3_uri(uri))
        if recorded:
            return recorded
        with self.open(uri) as stream:
            return sha256_of(stream)

    def _stored_sha256(self, uri: S3Uri) -> str | None:
        with self._translated(uri.bucket, uri.key):
            metadata: dict[str, str] = self.client.head_object(Bucket=uri.bucket, Key=uri.key).get("Metadata", {})
        return metadata.get(_SHA256)

    def delete(self, uri: str) -> None:
        """Delete an object; deleting a missing key succeeds (a missing bucket does not)."""
        parsed = parse_s3_uri(uri)
        with self._translated(parsed.bucket, parsed.key):
            self.client.delete_object(Bucket=parsed.bucket, Key=parsed.key)

    def _each(self, work: Callable[[Any], Any], items: builtins.list[Any]) -> builtins.list[Any]:
        """Apply `work` to every item, `max_concurrency` at a time, results in the items' order."""
        if len(items) <= 1:
            return [work(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(self.max_concurrency, len(items)), thread_name_prefix="sagelab-s3") as pool:
            return builtins.list(pool.map(work, items))

    # -- errors ----------------------------------------------------------------------

    @contextmanager
    def _translated(self, bucket: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore's errors into sagelab's, naming bucket, key and the denied action."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            error = self._translate(exc, bucket, key)
            if error is None:
                raise
            raise error from exc

    def _translate(self, exc: BaseException, bucket: str, key: str | None) -> StoreError | None:
        from boto3.exceptions import RetriesExceededError, S3UploadFailedError  # type: ignore[import-untyped,unused-ignore]
        from botocore import exceptions as botocore  # type: ignore[import-untyped,unused-ignore]

        # boto3's transfers wrap the request's error; we want to map the most specific one.
        if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
            exc = exc.__context__
        elif isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
            exc = exc.last_exception
        where = f"s3://{bucket}/{key}" if key is not None else (f"s3://{bucket}" if bucket else "S3")
        if isinstance(exc, botocore.ClientError):
            return self._client_error(exc, bucket, key, where)
        if isinstance(exc, (botocore.NoCredentialsError, botocore.PartialCredentialsError)):
            profile = f" for AWS profile {self.profile!r}" if self.profile else ""
            return StoreError(f"cannot access {where}: no usable AWS credentials{profile} ({exc}); {_CREDENTIALS_HELP}")
        if isinstance(exc, (botocore.TokenRetrievalError, botocore.SSOError, botocore.CredentialRetrievalError)):
            login = f"aws sso login --profile {self.profile}" if self.profile else "aws sso login"
            return StoreError(f"cannot access {where}: the AWS credentials could not be loaded ({exc}); run `{login}`")
        if isinstance(exc, (botocore.ConnectionError, botocore.HTTPClientError)):
            endpoint = self.endpoint_url or (self._client.meta.endpoint_url if self._client is not None else "of AWS")
            return StoreError(
                f"cannot reach the S3 endpoint {endpoint} for {where} ({exc}); check that it is up and reachable"
                + (" and s3_endpoint_url in [tool.sagelab]" if self.endpoint_url else "")
            )
        return None

    def _client_error(self, exc: Any, bucket: str, key: str | None, where: str) -> StoreError:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), error.get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and key is None):
            return _no_bucket(bucket)
        if code in ("NoSuchKey", "404", "NotFound"):
            # HEAD answers have no body: a missing bucket and a missing key look alike.
            if operation == "HeadObject" and not self._bucket_exists(bucket):
                return _no_bucket(bucket)
            return NoSuchKey(f"{where} does not exist: no key {key!r} in bucket {bucket!r}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return StoreError(f"S3 refused the AWS credentials for {where} ({code}: {message}); {_CREDENTIALS_HELP}")
        if code in ("AccessDenied", "AllAccessDisabled", "Forbidden", "403") or status == 403:
            action = _ACTIONS.get(operation, f"the permission for {operation}")
            resource = f"arn:aws:s3:::{bucket}" if operation in _BUCKET_ACTIONS or key is None else f"arn:aws:s3:::{bucket}/{key}"
            hint = " (without s3:ListBucket, S3 also answers 403 for a key that does not exist)" if action == "s3:GetObject" else ""
            return StoreError(
                f"access denied to {where}: {operation} needs IAM permission {action} on {resource}{hint}; "
                f"grant it to the identity in use{f' (AWS profile {self.profile!r})' if self.profile else ''}"
            )
        if code == "BucketAlreadyExists":
            return StoreError(f"bucket {bucket} already exists and belongs to another AWS account; choose another bucket name")
        return StoreError(f"S3 {operation} on {where} failed: {code or status}: {message}")

    def _bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound")
        return True


class _Body(io.RawIOBase):
    """A GetObject response body whose read errors are translated like any other request's."""

    def __init__(self, store: S3Store, uri: S3Uri, body: Any) -> None:
        self._store, self._uri, self._body = store, uri, body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._store._translated(self._uri.bucket, self._uri.key):
            data: bytes = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _info(uri: S3Uri, response: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(uri.bucket, uri.key, response["ContentLength"], response["LastModified"].timestamp(), response["ETag"])


def _no_bucket(bucket: str) -> StoreError:
    return StoreError(f"bucket {bucket} does not exist (create it or set [tool.sagelab] bucket)")


def _digests(path: Path) -> tuple[str, str]:
    """The file's MD5 (what a single-part ETag is) and SHA-256, read once."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_MiB):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def _safe_parts(info: ObjectInfo, relative: str) -> builtins.list[str]:
    """The path segments of a key below a download folder, refusing keys that would leave it."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\x00" in relative:
        raise StoreError(
            f"{info.uri} cannot be downloaded to a folder: keys with empty, '.' or '..' path segments "
            "would escape or alias the folder; rename the key"
        )
    return parts
