"""S3 on the local API's port: the project's store, answered by the local S3 endpoint's own handler.

Each S3 request is handed, bytes as the client sent them, to `sagelab.store.s3_handler` (what a
run's steps talk to, see `s3_server.py` for what it serves and how it differs from S3) over a socket
pair, and its answer streamed back: the same operations, errors, signature checks (the handler
verifies SigV4 against the API's credentials) and streaming of large objects, with no second port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagelab.awsapi.app import Receive, Scope, Send
    from sagelab.store import LocalStore
    from sagelab.store.s3_handler import HTTPServer

_CHUNK = 1 << 16
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "server", "date"}


class S3Bridge:
    """Serves S3 requests arriving at the API's ASGI app with the store's S3 handler."""

    def __init__(self, store: LocalStore, credentials: tuple[str, str]) -> None:
        self.store = store
        self.credentials = credentials
        self._http: HTTPServer | None = None
        self._placeholder: socket.socket | None = None
        self._lock = threading.Lock()

    def _server(self) -> HTTPServer:
        with self._lock:
            if self._http is None:
                from sagelab.store.s3_handler import HTTPServer

                # The handler's server wants a bound address for its name; this socket never listens: requests come over socket pairs.
                self._placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._placeholder.bind(("127.0.0.1", 0))
                self._http = HTTPServer(self.store, self._placeholder, self.credentials)
            return self._http

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close_connections()
            http.server_close()  # closes the placeholder socket too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ours, theirs = socket.socketpair()
        self._server().process_request(theirs, ("127.0.0.1", 0))  # the handler answers on its own thread
        reader, writer = await asyncio.open_connection(sock=ours)
        try:
            if not await _forward(scope, receive, writer):
                return  # the client went away
            status, headers = await _head(reader)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            # The handler gives every answer with a body its Content-Length; without one, read to the end.
            remaining = 0 if scope["method"] == "HEAD" or status in (204, 304) else _length(headers)
            while remaining is None or remaining > 0:
                chunk = await reader.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            writer.close()


async def _forward(scope: Scope, receive: Receive, writer: asyncio.StreamWriter) -> bool:
    """Write the request as the client sent it: its raw path and query, its headers, its body (re-chunked if it came chunked)."""
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    lines = [scope["method"].encode() + b" " + target + b" HTTP/1.1"]
    chunked = False
    for name, value in scope["headers"]:
        lines.append(name + b": " + value)
        chunked = chunked or (name.lower() == b"transfer-encoding" and b"chunked" in value.lower())
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        body = message.get("body", b"")
        if body:
            writer.write(b"%x\r\n%s\r\n" % (len(body), body) if chunked else body)
            await writer.drain()
        if not message.get("more_body", False):
            break
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and headers of the handler's answer (interim 100 Continue answers skipped)."""
    while True:
        try:
            block = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return 500, [(b"content-type", b"application/xml"), (b"content-length", b"0")]  # the handler died: a bug of ours, in its log
        status_line, *header_lines = block[:-4].split(b"\r\n")
        status = int(status_line.split()[1])
        if status >= 200:
            break
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower().decode("latin-1") not in _HOP_BY_HOP:
            headers.append((name.strip().lower(), value.strip()))
    return status, headers


def _length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None
