"""uvicorn's httptools protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the app sends them, then its body:
two send() calls a response and, with TCP_NODELAY, two TCP segments for the client to read. The
answers of this server are small and complete at once, so the headers are held until the body
follows (at the latest until the end of the event loop's turn) and both go out in one write.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose transport joins a response's headers and body into one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, JoiningTransport(transport, self.loop)))


class JoiningTransport:
    """A transport that holds a write until the next one (or the end of the loop turn) and sends both together."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = bytes(data)  # the caller may reuse a buffer it passed; bytes are kept as they are
            self._loop.call_soon(self._flush)
        else:
            held, self._held = self._held, None
            self._transport.write(b"".join((held, data)))

    def _flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():  # uvloop raises on a write to a closed transport
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)
