"""The local API's ASGI app: one port, requests routed by the service they are meant for.

- An `X-Amz-Target: SageMaker.<Operation>` request (AWS JSON 1.1) is SageMaker's control plane:
  authenticated (`auth`), checked against the operation's input shape (`shapes`), answered by the
  operation's handler (`operations`) in a thread, and written to its output shape. CloudWatch Logs
  (`Logs_20140328.<Operation>`, the jobs' logs) is served the same way: `TARGETS` names each service.
- A request signed for `s3` (or unsigned, or anything else that is not one of the above) is S3,
  answered from the project's store (`s3`).
- sagemaker-runtime (REST-JSON, signed for `sagemaker`: `POST /endpoints/<name>/invocations`) is answered
  by the endpoint's own server (`runtime`), in a thread.
- Any other service gets an error that names what was asked and says it is not served.

Responses carry `x-amzn-RequestId`; errors are `{"__type": code, "message": ...}`, which botocore
raises as a `ClientError` with that code. A handler's `SagelabError` is a ValidationException; any
other exception is a bug in sagelab: 500 InternalFailure, its traceback on the server's stderr.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from sagelab.awsapi.auth import Credentials, Headers, authenticate
from sagelab.awsapi.errors import ApiError, UnknownOperation, ValidationException
from sagelab.awsapi.operations import Context, served
from sagelab.errors import SagelabError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Told of every answer to an AWS JSON request: (service, operation, HTTP status, the JSON body sent).
Observer = Callable[[str, str, int, dict[str, Any]], None]

# X-Amz-Target prefix → the botocore service it belongs to (its signing name is the model's).
TARGETS = {"SageMaker": "sagemaker", "Logs_20140328": "logs"}
MAX_BODY = 16 << 20
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_RUNTIME = re.compile(r"^/endpoints/[^/]+/(invocations|async-invocations|invocations-response-stream)$")


@lru_cache(maxsize=1)
def _invocations() -> ThreadPoolExecutor:
    """The threads InvokeEndpoint calls wait in for their model: as many as a serverless variant's largest MaxConcurrency,
    so that its ThrottlingException, not a short thread pool, bounds them (threads start as calls come)."""
    return ThreadPoolExecutor(max_workers=200, thread_name_prefix="sagelab-invoke")


def request_line(operation: str, status: int, body: dict[str, Any]) -> str:
    """A served request as `sagelab api` prints it: the operation, its status, and an error's code and message."""
    error = f"  {body.get('__type')}: {body.get('message')}" if status >= 300 else ""
    return f"{operation} {status}{error}"


class ApiApp:
    """SageMaker's control plane and S3 over the project's state, for boto3 and the SageMaker SDK."""

    def __init__(self, context: Context, credentials: Credentials, s3: Any, *, observers: tuple[Observer, ...] = ()) -> None:
        self.context = context
        self.credentials = credentials
        self.s3 = s3
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; no websockets
        headers = Headers(scope["headers"])
        target = headers.get("x-amz-target")
        if target is not None:
            await self._rpc(scope, headers, target, receive, send)
            return
        service = _signed_service(headers, scope.get("query_string", b"").decode("latin-1"))
        if service in (None, "s3"):
            await self.s3(scope, receive, send)
        elif service == "sagemaker" and _RUNTIME.match(scope["path"]):
            await self._runtime(scope, headers, receive, send)
        elif service == "sts":
            await self._sts(scope, headers, receive, send)
        else:
            await self._other(scope, headers, service, receive, send)

    async def _rpc(self, scope: Scope, headers: Headers, target: str, receive: Receive, send: Send) -> None:
        prefix, _, name = target.partition(".")
        service = TARGETS.get(prefix, prefix)
        try:
            body = await _body(receive)
            if scope["method"] != "POST" or scope["path"] != "/":
                raise ValidationException(f"AWS JSON requests are POST / with X-Amz-Target; got {scope['method']} {scope['path']}")
            answer = await self._answer(scope, headers, prefix, name, body)
            status = 200
        except ApiError as exc:
            status, answer = exc.status, exc.body()
        except SagelabError as exc:
            status, answer = 400, ValidationException(str(exc)).body()
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the client gets an AWS answer, the traceback goes to stderr
            print(f"sagelab's local API could not serve {target} (a bug in sagelab; please report it with this traceback):", file=sys.stderr)
            traceback.print_exc()
            status, answer = 500, {"__type": "InternalFailure", "message": f"sagelab could not serve {name}: {type(exc).__name__}: {exc}"}
        await _send_json(send, status, answer)
        for observer in self.observers:
            observer(service, name or target, status, answer)

    async def _answer(self, scope: Scope, headers: Headers, prefix: str, name: str, body: bytes) -> dict[str, Any]:
        from sagelab.awsapi.shapes import read_request, service_model, to_wire

        service = TARGETS.get(prefix)
        model = service_model(service) if service else None
        authenticate(self.credentials, region=self.context.settings.region, service=model.signing_name if model else _any_service(headers),
                     method=scope["method"], path=(scope.get("raw_path") or b"/").decode("latin-1"),
                     query=scope.get("query_string", b"").decode("latin-1"), headers=headers, body=body)  # fmt: skip
        if model is None:
            raise UnknownOperation(f"sagelab's local API does not serve {prefix}.{name}: it serves SageMaker's control plane "
                                   "(X-Amz-Target SageMaker.*), CloudWatch Logs (Logs_20140328.*) and S3")  # fmt: skip
        if name not in model.operation_names:
            raise UnknownOperation(f"{prefix} has no operation {name!r}")
        handlers = served(service or "")
        if name not in handlers:
            raise UnknownOperation(f"sagelab's local API does not serve {name} yet; it serves {', '.join(sorted(handlers))}")
        operation = model.operation_model(name)
        request = read_request(operation, body)
        result = await asyncio.to_thread(handlers[name], self.context, request)
        return to_wire(operation.output_shape, result) if operation.output_shape is not None else {}

    async def _runtime(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> None:
        """sagemaker-runtime's InvokeEndpoint, passed to the endpoint's server; its answer as sagemaker-runtime gives it."""
        from sagelab.awsapi import runtime

        try:
            body = await _body(receive)
            path, query = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"), scope.get("query_string", b"").decode("latin-1")
            reply = await asyncio.get_running_loop().run_in_executor(_invocations(), runtime.answer, self.context, self.credentials,
                                                                      scope["method"], path, query, headers, body)  # fmt: skip
        except ApiError as exc:  # a body over MAX_BODY
            reply = runtime.error_answer("InvokeEndpoint", exc.status, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug of ours, as in _rpc
            print("sagelab's local API could not serve InvokeEndpoint (a bug in sagelab; please report it with this traceback):", file=sys.stderr)
            traceback.print_exc()
            reply = runtime.error_answer("InvokeEndpoint", 500, "InternalFailure", f"sagelab could not serve InvokeEndpoint: {type(exc).__name__}: {exc}")
        await _send(send, reply.status, reply.body, b"", reply.headers)
        for observer in self.observers:
            observer(runtime.SERVICE, reply.operation, reply.status, reply.document)

    async def _sts(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> None:
        """STS GetCallerIdentity: the project's account and role (`aws sts get-caller-identity`, boto3's sts client); other STS
        actions are not served."""
        from sagelab.caller_identity import identity_xml

        body = await _body(receive)
        settings = self.context.settings
        try:
            authenticate(self.credentials, region=settings.region, service="sts", method=scope["method"],
                         path=(scope.get("raw_path") or b"/").decode("latin-1"), query=scope.get("query_string", b"").decode("latin-1"),
                         headers=headers, body=body)  # fmt: skip
        except ApiError as exc:  # STS's own word for a key it does not know
            unknown_key = exc.code == "UnrecognizedClientException"
            await _send_xml_error(send, 403 if unknown_key else exc.status, "InvalidClientTokenId" if unknown_key else exc.code, exc.message)
            return
        if ("Action", "GetCallerIdentity") not in _form(body):
            await self._other(scope, headers, "sts", receive, send, body)
            return
        await _send(send, 200, identity_xml(settings.account, settings.role_arn).encode(), b"text/xml")
        for observer in self.observers:
            observer("sts", "GetCallerIdentity", 200, {})

    async def _other(self, scope: Scope, headers: Headers, service: str | None, receive: Receive, send: Send, body: bytes | None = None) -> None:
        """A request for a service the API does not serve, answered in its protocol's error shape."""
        body = await _body(receive) if body is None else body
        action = next((value for name, value in _form(body) if name == "Action"), None)
        what = f"{service} {action}" if action else f"{service} ({scope['method']} {scope['path']})"
        message = f"sagelab's local API does not serve {what}: it serves SageMaker's control plane, CloudWatch Logs, S3 and STS GetCallerIdentity"
        if action is not None:  # the query protocol (STS, IAM, ...) answers in XML
            await _send_xml_error(send, 400, "UnknownOperationException", message)
        else:
            await _send_json(send, 400, UnknownOperation(message).body())


async def _send_xml_error(send: Send, status: int, code: str, message: str) -> None:
    """An error as the query protocol (STS, IAM, ...) sends it."""
    xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
           f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()  # fmt: skip
    await _send(send, status, xml, b"text/xml")


def _signed_service(headers: Headers, query: str) -> str | None:
    """The service a request was signed for (its SigV4 credential scope), or None when it is unsigned."""
    found = _SCOPE.search(headers.get("Authorization") or "")
    if found:
        return found.group(2)
    from urllib.parse import unquote

    credential = next((unquote(part.partition("=")[2]) for part in query.split("&") if part.startswith("X-Amz-Credential=")), "")
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else None


def _any_service(headers: Headers) -> str:
    found = _SCOPE.search(headers.get("Authorization") or "")
    return found.group(2) if found else ""


def _form(body: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    try:
        return parse_qsl(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []


async def _body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(f"the request body is larger than {MAX_BODY >> 20} MiB", code="SerializationException", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(send: Send, status: int, document: dict[str, Any]) -> None:
    await _send(send, status, json.dumps(document).encode(), b"application/x-amz-json-1.1")


async def _send(send: Send, status: int, body: bytes, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """`extra` headers come first (a content-type among them replaces `content_type`)."""
    headers = [*extra, *([] if any(name == b"content-type" for name, _ in extra) else [(b"content-type", content_type)]),
               (b"content-length", str(len(body)).encode()), (b"x-amzn-requestid", str(uuid.uuid4()).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
