"""The S3 protocol over a `LocalStore`: the request handler behind `S3Server`.

Imported on the server's own thread, so its dependencies (http.server, email, ssl, ...)
never delay the start of a run. See s3_server.py for what is served and how it differs
from S3.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hmac
import io
import mimetypes
import re
import secrets
import socket
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sagelab.errors import NoSuchKey, StoreError
from sagelab.store import s3_auth, s3_xml
from sagelab.store.base import ObjectInfo, S3Uri, check_bucket_name
from sagelab.store.local import KeyTooLong, LocalStore
from sagelab.store.s3_protocol import (
    CHUNK,
    Chunks,
    S3Error,
    buffered,
    byte_range,
    copy_range,
    dechunk,
    etag_in,
    exactly,
    http_date,
    list_page,
    malformed_xml,
    precondition_failed,
    verified,
)
from sagelab.store.s3_uploads import Uploads

# Subresources not served here: refused, rather than mistaken for plain object requests
# (a PUT ?tagging must not overwrite the object with its XML body).
_UNSUPPORTED = frozenset(
    "acl accelerate analytics attributes cors encryption intelligent-tiering inventory "
    "legal-hold lifecycle logging metrics notification object-lock ownershipControls policy "
    "policyStatus publicAccessBlock replication requestPayment restore retention select "
    "session tagging torrent versioning versions website".split()
)
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
# The signer's credential scope, AKID/YYYYMMDD/REGION/s3/aws4_request, in the Authorization header or X-Amz-Credential.
_CREDENTIAL = re.compile(r"(?:^|Credential=)([^/,\s]+)/\d{8}/([^/]+)/s3/")


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    timeout = 0  # handle_request() never waits: S3Server's loop calls it when a connection is ready

    def __init__(self, store: LocalStore, listening: socket.socket, credentials: tuple[str, str] | None = None) -> None:
        """Serve on a socket the caller already bound and put in listening state; with `credentials`
        (access key, secret key), only requests signed with them."""
        self.store = store
        self.credentials = credentials
        self.uploads = Uploads(store)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(listening.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listening
        # No reverse DNS lookup of the address (HTTPServer.server_bind): it can take seconds.
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End keep-alive connections, so no request is served after stop()."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a bug of ours: keep the traceback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end, so their threads do too
    server: HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request on stderr would drown the steps' own output

    def do_GET(self) -> None:
        self._sent = False
        self._raw: Chunks | None = None
        self._request_id = secrets.token_hex(8).upper()
        self._resource = urlsplit(self.path).path
        try:
            try:
                self._route()
            except NoSuchKey as exc:
                raise S3Error(404, "NoSuchKey", str(exc)) from exc
            except KeyTooLong as exc:
                raise S3Error(400, "KeyTooLongError", str(exc)) from exc
            except StoreError as exc:
                raise S3Error(400, "InvalidArgument", str(exc)) from exc
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                message = f"{self._resource} cannot be stored locally: a key segment is longer than a file name may be"
                raise S3Error(400, "KeyTooLongError", message) from exc
        except S3Error as exc:
            self._fail(exc)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug of ours; the client still gets an S3 answer
            self._fail(S3Error(500, "InternalError", f"{type(exc).__name__}: {exc}"))

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    # -- routing -----------------------------------------------------------------------

    def _route(self) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        self._query = {name: values[-1] for name, values in query.items()}
        self._authorize()
        bucket, key = self._address(split.path)
        unsupported = sorted(_UNSUPPORTED.intersection(self._query))
        if unsupported:
            raise S3Error(501, "NotImplemented", f"sagelab's local S3 server does not support ?{unsupported[0]}")
        method, q = self.command, self._query
        if not bucket:
            if method not in ("GET", "HEAD"):
                raise S3Error(405, "MethodNotAllowed", f"{method} / is not an S3 operation")
            return self._list_buckets()
        try:
            check_bucket_name(bucket)
        except StoreError as exc:
            raise S3Error(400, "InvalidBucketName", str(exc), BucketName=bucket) from None
        uploads = self.server.uploads
        if not key:
            if method == "GET" and "location" in q:
                return self._xml(s3_xml.location(self._region()))
            if method in ("GET", "HEAD") and "uploads" not in q:
                return self._list_objects(bucket) if method == "GET" else self._send(200)
            if method == "PUT":
                self.server.store.create_bucket(bucket)
                return self._send(200, headers={"Location": f"/{bucket}"})
            if method == "POST" and "delete" in q:
                return self._delete_objects(bucket)
            if method == "DELETE":
                return self._delete_bucket(bucket)
        elif "uploadId" in q:
            folder = uploads.folder(q["uploadId"], bucket, key)
            if method == "PUT":
                return self._upload_part(folder, self._part_number())
            if method == "GET":
                body = s3_xml.list_parts(bucket, key, q["uploadId"], uploads.parts(folder))
                return self._xml(body)
            if method == "POST":
                return self._complete_upload(folder, bucket, key)
            if method == "DELETE":
                uploads.abort(folder)
                return self._send(204)
        elif method == "POST" and "uploads" in q:
            upload_id = uploads.create(S3Uri(bucket, key))
            return self._xml(s3_xml.upload_started(bucket, key, upload_id))
        elif method in ("GET", "HEAD"):
            return self._get_object(f"s3://{bucket}/{key}")
        elif method == "PUT":
            return self._put_object(f"s3://{bucket}/{key}")
        elif method == "DELETE":
            self.server.store.delete(f"s3://{bucket}/{key}")
            return self._send(204)
        raise S3Error(501, "NotImplemented", f"sagelab's local S3 server does not serve {method} {split.path}")

    def _authorize(self) -> None:
        """Refuse requests not signed with the run's credentials (anonymous ones, another run's, any other process's)."""
        if self.server.credentials is None:
            return
        access_key, secret = self.server.credentials
        path, _, raw_query = self.path.partition("?")
        query = s3_auth.parse_query(raw_query)
        signature = s3_auth.read(self.headers, query)
        if signature is None:
            raise S3Error(403, "AccessDenied", "Access Denied: this endpoint serves the steps of one sagelab run; sign requests with its credentials")
        if not hmac.compare_digest(signature.access_key, access_key):
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                          AWSAccessKeyId=signature.access_key)  # fmt: skip
        if s3_auth.expired(signature):
            raise S3Error(403, "AccessDenied", "Request has expired")
        if not signature.payload_hash and signature.version == 4:  # as S3: a signed request declares its payload's hash
            raise S3Error(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        if signature.version == 2 and self._virtual_bucket():  # version 2 signs the path with its bucket
            path = f"/{self._virtual_bucket()}{path}"
        if not hmac.compare_digest(s3_auth.expected(secret, self.command, path, query, self.headers, signature), signature.value):
            raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. "
                          "Check your key and signing method.", AWSAccessKeyId=signature.access_key)  # fmt: skip

    def _address(self, path: str) -> tuple[str, str]:
        """(bucket, key) from a path-style or `bucket.localhost` virtual-host request."""
        bucket = self._virtual_bucket()
        if bucket:
            return bucket, unquote(path[1:])
        bucket, _, key = path[1:].partition("/")
        return unquote(bucket), unquote(key)

    def _virtual_bucket(self) -> str:
        """The bucket a `bucket.localhost` Host names, or '' for a path-style request."""
        host = self.headers.get("Host", "").rpartition(":")[0] or self.headers.get("Host", "")
        return next((host[: -len(suffix)] for suffix in (".localhost", ".127.0.0.1") if host.endswith(suffix)), "")

    def _credential(self) -> re.Match[str] | None:
        """The request's credential scope: the access key (group 1) and the region it was signed for (group 2)."""
        return _CREDENTIAL.search(self.headers.get("Authorization", "") or self._query.get("X-Amz-Credential", ""))

    def _region(self) -> str:
        """The region the client signed for, so GetBucketLocation agrees with its config."""
        found = self._credential()
        return found.group(2) if found else "us-east-1"

    # -- buckets -----------------------------------------------------------------------

    def _list_buckets(self) -> None:
        root, prefix = self.server.store.root, self._query.get("prefix", "")
        buckets = self.server.store.list_buckets()
        listed = [(name, (root / name).stat().st_mtime) for name in buckets if name.startswith(prefix)]
        self._xml(s3_xml.list_buckets(listed))

    def _delete_bucket(self, bucket: str) -> None:
        try:
            (self.server.store.root / bucket).rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty", BucketName=bucket) from None
        self._send(204)

    def _list_objects(self, bucket: str) -> None:
        q = self._query
        v2 = q.get("list-type") == "2"
        if q.get("encoding-type", "url") != "url":
            raise S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request")
        max_keys = q.get("max-keys", "1000")
        if not max_keys.isdigit():
            raise S3Error(400, "InvalidArgument", f"max-keys must be a non-negative integer, got {max_keys!r}")
        after = q.get("start-after", "") if v2 else q.get("marker", "")
        if v2 and "continuation-token" in q:
            try:
                after = base64.urlsafe_b64decode(q["continuation-token"].encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect") from None
        prefix = q.get("prefix", "")
        objects = self.server.store.list(f"s3://{bucket}/{prefix}")
        contents, prefixes, truncated, last = list_page(
            objects, prefix, q.get("delimiter", ""), after, min(int(max_keys), 1000)
        )
        body = s3_xml.list_objects(
            v2=v2,
            bucket=bucket,
            params=q,
            contents=contents,
            prefixes=prefixes,
            truncated=truncated,
            next_marker=base64.urlsafe_b64encode(last.encode()).decode() if v2 else last,
            owner=not v2 or q.get("fetch-owner") == "true",
            url_encode="encoding-type" in q,
        )
        self._xml(body)

    def _delete_objects(self, bucket: str) -> None:
        try:
            quiet, keys = s3_xml.parse_delete(self._body().read())
        except ValueError as exc:
            raise malformed_xml(exc) from None
        if len(keys) > 1000:
            raise malformed_xml(ValueError(f"at most 1000 keys per request, got {len(keys)}"))
        deleted, errors = [], []
        for key in keys:
            try:
                self.server.store.delete(f"s3://{bucket}/{key}")
                deleted.append(key)
            except StoreError as exc:
                errors.append((key, "InvalidArgument", str(exc)))
        self._xml(s3_xml.delete_result([] if quiet else deleted, errors))

    # -- objects -----------------------------------------------------------------------

    def _get_object(self, uri: str) -> None:
        stream, info = self.server.store.open_with_info(uri)
        with stream:
            headers = {
                "Content-Type": mimetypes.guess_type(info.key)[0] or "application/octet-stream",
                "ETag": info.etag,
                "Last-Modified": formatdate(info.modified, usegmt=True),
                "Accept-Ranges": "bytes",
            }
            headers.update({name: self._query[p] for p, name in _OVERRIDES.items() if p in self._query})
            if self._not_modified(info):
                return self._send(304, headers={"ETag": info.etag, "Last-Modified": headers["Last-Modified"]})
            span = byte_range(self.headers.get("Range"), info.size)
            first, last = span or (0, info.size - 1)
            if span:
                headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
            headers["Content-Length"] = str(last - first + 1)
            self._start(206 if span else 200, headers)
            if self.command == "GET" and last >= first:
                self.connection.sendfile(stream, first, last - first + 1)

    def _not_modified(self, info: ObjectInfo) -> bool:
        """Apply the conditional headers: raise 412, or say whether to answer 304."""
        if "If-Match" in self.headers:
            if not etag_in(self.headers["If-Match"], info.etag):
                raise precondition_failed("If-Match")
        elif (since := http_date(self.headers.get("If-Unmodified-Since"))) is not None and int(info.modified) > since:
            raise precondition_failed("If-Unmodified-Since")
        if "If-None-Match" in self.headers:
            return etag_in(self.headers["If-None-Match"], info.etag)
        since = http_date(self.headers.get("If-Modified-Since"))
        return since is not None and int(info.modified) <= since

    def _put_object(self, uri: str) -> None:
        store = self.server.store
        if "x-amz-copy-source" in self.headers:
            source = self._copy_source()
            replace = self.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
            if str(source) == uri and not replace:
                raise S3Error(
                    400,
                    "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself "
                    "without changing the object's metadata, storage class, website redirect "
                    "location or encryption attributes.",
                )
            stream, _ = store.open_with_info(str(source))
            with stream:
                return self._xml(s3_xml.copy_result(store.put_stream(uri, stream)))
        if self.headers.get("If-None-Match", "").strip() == "*":
            try:
                store.head(uri)
            except NoSuchKey:
                pass
            else:
                raise precondition_failed("If-None-Match")
        info = store.put_stream(uri, self._body())
        self._send(200, headers={"ETag": info.etag})

    def _copy_source(self) -> S3Uri:
        # "/bucket/key" or "bucket/key", URL-encoded, maybe with "?versionId=" after it.
        source = unquote(self.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
        bucket, _, key = source.partition("/")
        if not key:
            raise S3Error(400, "InvalidArgument", f"x-amz-copy-source {source!r} must be bucket/key")
        check_bucket_name(bucket)
        return S3Uri(bucket, key)

    # -- multipart uploads -----------------------------------------------------------

    def _part_number(self) -> int:
        number = self._query.get("partNumber", "")
        if not number.isdigit() or not 1 <= int(number) <= 10000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
        return int(number)

    def _upload_part(self, folder: Path, number: int) -> None:
        uploads = self.server.uploads
        if "x-amz-copy-source" not in self.headers:
            info = uploads.put_part(folder, number, self._body())
            return self._send(200, headers={"ETag": info.etag})
        stream, source = self.server.store.open_with_info(str(self._copy_source()))
        with stream:
            first, last = copy_range(self.headers.get("x-amz-copy-source-range"), source.size)
            stream.seek(first)
            part = buffered(exactly(stream, last - first + 1))
            self._xml(s3_xml.copy_result(uploads.put_part(folder, number, part), part=True))

    def _complete_upload(self, folder: Path, bucket: str, key: str) -> None:
        try:
            wanted = s3_xml.parse_complete(self._body().read())
        except ValueError as exc:
            raise malformed_xml(exc) from None
        info = self.server.uploads.complete(folder, S3Uri(bucket, key), wanted)
        location = f"http://{self.headers.get('Host', '127.0.0.1')}/{bucket}/{quote(key)}"
        self._xml(s3_xml.upload_completed(location, info))

    # -- request bodies ----------------------------------------------------------------

    def _body(self) -> BinaryIO:
        """The request body as the client meant it: without HTTP or aws-chunked framing."""
        stream: BinaryIO = io.BufferedReader(self._raw_body(), CHUNK)
        if self.command == "PUT" and self._raw is not None and self._raw.unsized:
            raise S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        sha256 = self.headers.get("x-amz-content-sha256", "")
        if "aws-chunked" in self.headers.get("Content-Encoding", "") or sha256.startswith("STREAMING-"):
            stream = buffered(dechunk(stream))
        decoded_length = self.headers.get("x-amz-decoded-content-length")
        return buffered(verified(stream, self.headers.get("Content-MD5"), decoded_length))

    def _raw_body(self) -> Chunks:
        if self._raw is None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._raw = Chunks(dechunk(self.rfile))
            else:
                length = self.headers.get("Content-Length")
                if length is not None and not length.strip().isdigit():
                    raise S3Error(400, "InvalidArgument", f"Content-Length {length!r} is not a byte count")
                self._raw = Chunks(exactly(self.rfile, int(length or 0)))
                self._raw.unsized = length is None
        return self._raw

    # -- responses ---------------------------------------------------------------------

    def _drain(self) -> None:
        """Read the rest of the request body, so the connection can carry the next request."""
        try:
            raw = self._raw_body()
            while raw.read(CHUNK):
                pass
            broken = raw.failed
        except S3Error:
            broken = True
        if broken:  # the framing is lost: the next request cannot be found on this connection
            self.close_connection = True

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._drain()
        self.send_response(status)
        self.send_header("x-amz-request-id", self._request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._sent = True

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if status not in (204, 304):
            headers["Content-Length"] = str(len(body))
        self._start(status, headers)
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _xml(self, body: bytes) -> None:
        self._send(200, body, {"Content-Type": "application/xml"})

    def _fail(self, error: S3Error) -> None:
        if self._sent:  # the error struck mid-body: cutting the connection is all that is left
            self.close_connection = True
            return
        body = s3_xml.error(error.code, error.message, self._request_id, {"Resource": self._resource, **error.details})
        headers = {"Content-Type": "application/xml"}
        if error.code == "InvalidRange":
            headers["Content-Range"] = f"bytes */{error.details['ActualObjectSize']}"
        try:
            self._send(error.status, body, headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
