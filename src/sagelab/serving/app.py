"""The inference server's HTTP surface, as a raw ASGI app: /ping, /invocations, /execution-parameters.

No framework sits between the server and this app: on a two-core machine routing and request
objects cost more than a small model's predict. The app only moves bytes; the inference runner
(batching.py) runs the model, on its inference thread so /ping answers while a prediction runs
(or, for a model that has proved fast, on the event loop). A request the model has not answered
within SAGEMAKER_MODEL_SERVER_TIMEOUT gets a 504; the model call itself cannot be interrupted and
keeps the inference thread until it returns (the containers' model servers would restart the
worker instead, as sagelab does for a model that hangs on the event loop). A pipeline model's
front process answers the same protocol by passing each request through its containers (chain.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sagelab.serving.batching import InferenceRunner
from sagelab.serving.capture import INFERENCE_ID_HEADER, DataCapture
from sagelab.serving.protocol import Reply

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ProtocolApp(ABC):
    """ASGI app answering SageMaker's container protocol; subclasses say how a request is answered."""

    def __init__(self, *, max_payload_bytes: int | None = 6 * 1024 * 1024) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._content_types: dict[str, bytes] = {}
        self.capture = DataCapture.from_env()  # the endpoint config's DataCaptureConfig, when it has one

    @abstractmethod
    def ready(self) -> bool:
        """Whether /ping answers 200."""

    @abstractmethod
    async def answer(self, body: bytes, content_type: str | None, accept: str | None, headers: dict[str, str]) -> Reply:
        """The Reply to one POST /invocations (never an exception)."""

    @abstractmethod
    async def execution_parameters(self) -> Reply:
        """The Reply to GET /execution-parameters."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not part of the protocol
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await self._send(send, Reply.error(405, "use POST /invocations"), allow=b"POST")
                return
            await self._invoke(scope, receive, send)
        elif path == "/ping":
            if method not in ("GET", "HEAD"):
                await self._send(send, Reply.error(405, "use GET /ping"), allow=b"GET")
                return
            await self._send(send, Reply(200, b"", "application/json") if self.ready() else Reply.error(503, "the model is loading"))
        elif path == "/execution-parameters" and method == "GET":
            await self._send(send, await self.execution_parameters())
        else:
            await self._send(send, Reply.error(404, f"no {method} {path}: the server answers GET /ping, POST /invocations "
                                                    "and GET /execution-parameters"))  # fmt: skip

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        content_type = headers.get("content-type", headers.get("contenttype"))
        accept = headers.get("accept")
        declared = headers.get("content-length", "")
        length = int(declared) if declared.isdigit() else -1
        limit = self.max_payload_bytes
        if limit is not None and length > limit:
            await self._too_large(send, length)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if limit is not None and size > limit:
                    await self._too_large(send, -1)
                    return
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        reply = await self.answer(body, content_type, accept, headers)
        await self._send(send, reply)
        if self.capture is not None and reply.status < 400:  # answered requests are captured, as SageMaker's are
            self.capture.record(body, content_type, reply.body, reply.content_type, headers.get(INFERENCE_ID_HEADER))

    async def _too_large(self, send: Send, size: int) -> None:
        limit_mb = (self.max_payload_bytes or 0) / (1024 * 1024)
        got = f"{size} bytes" if size >= 0 else "more"
        message = f"the request body is larger than SAGEMAKER_MAX_PAYLOAD_IN_MB ({limit_mb:g} MB): got {got}"
        await self._send(send, Reply.error(413, message), close=True)

    async def _send(self, send: Send, reply: Reply, *, allow: bytes | None = None, close: bool = False) -> None:
        content_type = self._content_types.get(reply.content_type)
        if content_type is None:
            content_type = self._content_types.setdefault(reply.content_type, reply.content_type.encode("latin-1"))
        headers = [(b"content-type", content_type), (b"content-length", str(len(reply.body)).encode())]
        if allow is not None:
            headers.append((b"allow", allow))
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


class InferenceApp(ProtocolApp):
    """The protocol answered by one model, through this process's inference runner."""

    def __init__(self, runner: InferenceRunner, *, workers: int = 1, max_payload_bytes: int | None = 6 * 1024 * 1024) -> None:
        super().__init__(max_payload_bytes=max_payload_bytes)
        self.runner = runner
        self.workers = workers

    def ready(self) -> bool:
        return self.runner.handler.loaded

    async def answer(self, body: bytes, content_type: str | None, accept: str | None, headers: dict[str, str]) -> Reply:
        return await self.runner.submit(body, content_type, accept, headers)

    async def execution_parameters(self) -> Reply:
        return self.runner.handler.execution_parameters(self.workers)

