"""A local S3 endpoint over a `LocalStore`, so unmodified SageMaker step scripts run locally.

While a local run lasts the engine serves the run's store on 127.0.0.1 and points every
step at it (AWS_ENDPOINT_URL_S3 and friends); boto3, s3fs (pandas) and the AWS CLI then
read and write the store as if it were S3. Standard library only: it starts on every run.

It speaks ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
ListObjects v1 and v2, GetObject (one byte range; If-Match, If-None-Match and the date
conditions), HeadObject, PutObject (plain, HTTP-chunked and aws-chunked bodies),
CopyObject, DeleteObject, DeleteObjects and multipart uploads (create, upload part, upload
part copy, list parts, complete, abort), path-style and `bucket.localhost` addressed.
Other subresources (?tagging, ?versioning, ?acl, ListMultipartUploads, ...) answer
501 NotImplemented rather than being mistaken for plain object requests.

Where it differs from S3, on purpose:
- It binds loopback only and lives for one run. A run's endpoint serves only requests signed
  with the run's credentials (SigV4, checked in `s3_auth`); one made without credentials
  (`S3Server(store)`, for tests) serves any request.
- Every valid bucket name exists; a bucket is a folder made on first write.
- User metadata (x-amz-meta-*), tags, ACLs, storage classes and versions are not kept;
  Content-Type is guessed from the key's extension on every read.
- ETags are the store's (from size and modification time), not MD5s of the content, and
  a multipart object's ETag has no "-<parts>" suffix.
- Flexible checksums (x-amz-checksum-*) are not verified; Content-MD5 and the decoded
  length of aws-chunked bodies are.
- Keys a folder cannot hold ('a//b', '../x', both 'a' and 'a/b') get 400 InvalidArgument.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
from typing import TYPE_CHECKING

from sagelab.store.local import LocalStore

if TYPE_CHECKING:
    from sagelab.store.s3_handler import HTTPServer


class S3Server:
    """Serves a `LocalStore` over the S3 protocol on 127.0.0.1, in a daemon thread.

    Example:
        >>> with S3Server(LocalStore(tmp_path)) as server:  # doctest: +SKIP
        ...     boto3.client("s3", endpoint_url=server.endpoint).list_buckets()
    """

    def __init__(self, store: LocalStore, credentials: tuple[str, str] | None = None) -> None:
        """With `credentials` (access key, secret key), only requests signed with them are served (a run hands them to its steps); else any."""
        self.store = store
        self.credentials = credentials
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._http: HTTPServer | None = None
        self._wake_read = self._wake_write = -1  # a pipe stop() writes to, made by start()

    @property
    def endpoint(self) -> str:
        """The endpoint URL, `http://127.0.0.1:PORT`, while the server runs."""
        if self._socket is None:
            raise RuntimeError("the S3 server is not running; call start() first")
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def start(self) -> str:
        """Bind an ephemeral loopback port, serve in the background, return the endpoint.

        Only the socket is made here; the handler is imported on the server's thread when the
        first client connects (a run whose steps never use S3 never pays http.server's ~15 ms of
        imports). Clients that connect meanwhile wait in the listen backlog.
        """
        if self._socket is None:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(128)
            self._wake_read, self._wake_write = os.pipe()
            self._thread = threading.Thread(target=self._serve, args=(self._socket,), name="sagelab-s3", daemon=True)
            self._thread.start()
        return self.endpoint

    def _serve(self, listening: socket.socket) -> None:
        # Wait for a connection or for stop()'s byte on the wake-up pipe: no polling, so an idle
        # server costs nothing and stopping takes no time (a polled loop made every run wait ~25 ms).
        with selectors.DefaultSelector() as selector:
            selector.register(listening, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not any(key.fileobj == self._wake_read for key, _ in selector.select()):
                if self._http is None:
                    from sagelab.store.s3_handler import HTTPServer

                    self._http = HTTPServer(self.store, listening, self.credentials)
                self._http.handle_request()

    def stop(self) -> None:
        """Stop serving and cut open connections; a stopped server can be started again."""
        listening, thread, self._socket, self._thread = self._socket, self._thread, None, None
        if listening is None or thread is None:
            return
        os.write(self._wake_write, b"x")  # ends the serving loop at once
        thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)
        http, self._http = self._http, None
        if http is not None:
            http.close_connections()
            http.server_close()
        listening.close()

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


