"""sagemaker-runtime's InvokeEndpoint on the local API's port, answered by the endpoint's own server (as `sagelab invoke` reaches it).

botocore sends it as REST-JSON signed for the service `sagemaker`: POST /endpoints/{EndpointName}/invocations
with the body as it is, and ContentType, Accept, CustomAttributes, TargetVariant and TargetContainerHostname
in headers. The answer is the model's body and Content-Type, the variant that answered in
x-Amzn-Invoked-Production-Variant, and the model's CustomAttributes if it sent any. Errors are
sagemaker-runtime's (the code in x-amzn-ErrorType, `Message` and the modeled members in the JSON body):
- ModelError (424) when the model answers with an error status: OriginalStatusCode, OriginalMessage (the
  model's body), LogStreamArn, and SageMaker's words, `Received client error (400) from primary with
  message "..."`, ending with the endpoint's log file where SageMaker names CloudWatch;
- ValidationError (400) for an endpoint that does not exist (`Endpoint x of account y not found.`), one that
  does not serve yet (Creating, Failed), a TargetVariant it does not have, and a request that does not fit the
  operation's input shape (a body over 6 MB too);
- ThrottlingException (400) when a serverless variant is answering its MaxConcurrency already (concurrency.py);
- the control plane's authentication errors (`auth`). InvokeEndpointWithResponseStream is not served:
  UnknownOperationException, naming it.

InvokeEndpointAsync (POST /endpoints/{EndpointName}/async-invocations) answers 202 with the OutputLocation and
FailureLocation headers at once, for an endpoint whose config has an AsyncInferenceConfig, and queues the
request (concurrency.py: MaxConcurrentInvocationsPerInstance at the model at once, RequestTTLSeconds in the
queue at most); the input is read from InputLocation in the project's store and the answer written where
OutputLocation says, or where FailureLocation says when the model fails, the request expires in the queue, or
the model takes longer than InvocationTimeoutSeconds (15 minutes unless given, as on SageMaker, where
InvokeEndpoint waits 60 s).
"""

from __future__ import annotations

import base64
import json
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sagelab.awsapi.auth import Credentials, Headers, authenticate
from sagelab.awsapi.concurrency import REQUEST_TTL, AsyncRequest, async_queue, serverless_slot
from sagelab.awsapi.errors import ApiError, UnknownOperation, ValidationException
from sagelab.errors import EndpointError, SagelabError

if TYPE_CHECKING:
    from sagelab.awsapi.operations import Context

SERVICE = "sagemaker-runtime"
MAX_BODY = 6291456  # InvokeEndpoint's Body: at most 6 MB (botocore's model)
ASYNC_TIMEOUT = 900  # seconds an asynchronous invocation may take when InvocationTimeoutSeconds is not given (SageMaker's default)
_OPERATIONS = {"invocations": "InvokeEndpoint", "async-invocations": "InvokeEndpointAsync",
               "invocations-response-stream": "InvokeEndpointWithResponseStream"}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to a sagemaker-runtime request, and what the app's observers are told of it."""

    operation: str
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    document: dict[str, Any]  # the output's members (the body in base64), or the error's {"__type", "message"}


def answer(context: Context, credentials: Credentials, method: str, raw_path: str, query: str, headers: Headers, body: bytes) -> Answer:
    """The answer to one sagemaker-runtime request (`raw_path` as sent: /endpoints/{EndpointName}/invocations)."""
    _, _, encoded, kind = raw_path.split("/", 3)
    operation = _OPERATIONS.get(kind, kind)
    try:
        authenticate(credentials, region=context.settings.region, service="sagemaker", method=method, path=raw_path, query=query,
                     headers=headers, body=body)  # fmt: skip
        if operation not in ("InvokeEndpoint", "InvokeEndpointAsync"):
            raise UnknownOperation(f"sagelab's local API does not serve {operation} yet; of sagemaker-runtime it serves InvokeEndpoint "
                                   "and InvokeEndpointAsync")  # fmt: skip
        if method != "POST":
            raise ValidationException(f"{operation} is POST /endpoints/{{EndpointName}}/{kind}; got {method}")
        if operation == "InvokeEndpointAsync":
            return _invoke_async(context, _request(unquote(encoded), headers, body, operation))
        return _invoke(context, _request(unquote(encoded), headers, body))
    except ApiError as exc:
        code = "ValidationError" if exc.code == "ValidationException" else exc.code  # sagemaker-runtime's name for it
        return error_answer(operation, exc.status, code, exc.message)


def _request(name: str, headers: Headers, body: bytes, operation: str = "InvokeEndpoint") -> dict[str, Any]:
    """The operation's parameters from the path, the headers and the body, checked against its input shape."""
    from sagelab.awsapi.shapes import check, service_model

    shape = service_model(SERVICE).operation_model(operation).input_shape
    params: dict[str, Any] = {"EndpointName": name, **({"Body": body} if "Body" in shape.members else {})}
    for member, member_shape in shape.members.items():
        value = headers.get(member_shape.serialization.get("name", "")) if member_shape.serialization.get("location") == "header" else None
        if value is not None:  # a header is text; an integer member (RequestTTLSeconds, InvocationTimeoutSeconds) is sent as digits
            params[member] = int(value) if member_shape.type_name == "integer" and value.strip().lstrip("-").isdigit() else value
    if len(body) > MAX_BODY:
        raise ValidationException(f"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length "
                                  f"less than or equal to {MAX_BODY}")  # fmt: skip
    return check(shape, params)


def _invoke(context: Context, request: dict[str, Any]) -> Answer:
    from sagelab.api.local_hosting import LocalHosting

    name, account = request["EndpointName"], context.settings.account
    hosting = LocalHosting(context.settings)
    state = hosting.endpoint(name)
    if state is None:
        raise ValidationException(f"Endpoint {name} of account {account} not found.")
    if not state.serving:
        reason = f" ({state.failure_reason})" if state.failure_reason else ""
        raise ValidationException(f"Endpoint {name} of account {account} is {state.status}{reason}: it answers invocations once InService.")
    for member, what in (("TargetModel", "multi-model endpoints"), ("InferenceComponentName", "inference components"),
                         ("SessionId", "stateful sessions")):  # fmt: skip
        if member in request:
            raise ValidationException(f"{member}: sagelab's local endpoints serve one model, without {what}")
    target = request.get("TargetVariant")
    if target is not None and target not in state.variant_names:
        raise ValidationException(f"Endpoint {name} of account {account} has no production variant {target!r}; "
                                  f"it serves {', '.join(state.variant_names)}.")  # fmt: skip
    log = context.settings.state_dir / "endpoints" / name / "endpoint.log"
    serverless = {str(v.get("VariantName")): v["ServerlessConfig"] for v in state.variants if v.get("ServerlessConfig")}
    try:
        if serverless and target is None:
            target = hosting.pick_variant(name)  # drawn here, so the variant's concurrency can be counted
        sizing = serverless.get(str(target)) if target is not None else None  # the variant's ServerlessConfig
        with serverless_slot(name, str(target), int(sizing["MaxConcurrency"])) if sizing else nullcontext():
            invocation = hosting.invoke(name, request["Body"], request.get("ContentType", "application/octet-stream"), request.get("Accept"),
                                        target_container=request.get("TargetContainerHostname"),
                                        custom_attributes=request.get("CustomAttributes"), inference_id=request.get("InferenceId"),
                                        target_variant=target)  # fmt: skip
    except EndpointError as exc:  # its server did not answer: never retried (a 5xx would be, four times over)
        return _model_error(context, name, f"Received server error from primary: {exc}. See {log} for more information.", {})
    if not 200 <= invocation.status < 300:
        text = invocation.body.decode("utf-8", "replace")
        side = "server" if invocation.status >= 500 else "client"
        message = f'Received {side} error ({invocation.status}) from primary with message "{text.rstrip()}". See {log} for more information.'
        return _model_error(context, name, message, {"OriginalStatusCode": invocation.status, "OriginalMessage": text})
    content_type = invocation.content_type or "application/octet-stream"
    variant = invocation.variant or state.variant_names[0]
    headers = [(b"content-type", content_type.encode("latin-1")), (b"x-amzn-invoked-production-variant", variant.encode("latin-1"))]
    members = {"ContentType": content_type, "InvokedProductionVariant": variant}
    if invocation.custom_attributes is not None:
        headers.append((b"x-amzn-sagemaker-custom-attributes", invocation.custom_attributes.encode("latin-1")))
        members["CustomAttributes"] = invocation.custom_attributes
    return Answer("InvokeEndpoint", 200, invocation.body, headers, {**members, "Body": base64.b64encode(invocation.body).decode()})


def _invoke_async(context: Context, request: dict[str, Any]) -> Answer:
    """Answer 202 at once with where the output will be; a thread invokes the endpoint with the InputLocation object and writes
    the answer to `<S3OutputPath>/<InferenceId>.out` (an error to `<S3FailurePath>/<InferenceId>-error.out`), as SageMaker does."""
    from sagelab.api.local_hosting import LocalHosting
    from sagelab.store import LocalStore

    name, account = request["EndpointName"], context.settings.account
    hosting = LocalHosting(context.settings)
    state = hosting.endpoint(name)
    if state is None:
        raise ValidationException(f"Endpoint {name} of account {account} not found.")
    config = hosting.record("endpoint-config", state.config) if state.config else None
    output = ((config.request.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}) if config else {}
    if not output.get("S3OutputPath"):
        raise ValidationException(f"Endpoint {name} of account {account} is not an asynchronous endpoint: its endpoint config has no "
                                  "AsyncInferenceConfig; call InvokeEndpoint")  # fmt: skip
    store = LocalStore(context.settings.store)
    location = request["InputLocation"]
    try:
        body = store.get_bytes(location)
    except SagelabError:
        raise ValidationException(f"InputLocation {location} cannot be read: no such object in the project's store") from None
    inference_id = request.get("InferenceId") or str(uuid.uuid4())
    extension = request.get("S3OutputPathExtension", "").strip("/")
    base = "/".join(part for part in (str(output["S3OutputPath"]).rstrip("/"), extension) if part)
    succeeded = f"{base}/{inference_id}.out"
    failed = f"{str(output.get('S3FailurePath') or base).rstrip('/')}/{inference_id}-error.out"

    timeout = float(request.get("InvocationTimeoutSeconds", ASYNC_TIMEOUT))

    def work() -> None:
        try:
            answer = hosting.invoke(name, body, request.get("ContentType", "application/octet-stream"), request.get("Accept"),
                                    custom_attributes=request.get("CustomAttributes"), inference_id=inference_id, timeout=timeout)  # fmt: skip
            store.put_bytes(succeeded if 200 <= answer.status < 300 else failed, answer.body)
        except SagelabError as exc:
            store.put_bytes(failed, f"{exc}\n".encode())

    def expire(reason: str) -> None:
        store.put_bytes(failed, f"{reason}\n".encode())

    client = ((config.request.get("AsyncInferenceConfig") or {}).get("ClientConfig") or {}) if config else {}
    instances = sum(int(v.get("InitialInstanceCount") or 1) for v in state.variants) or 1
    queue = async_queue(name, client.get("MaxConcurrentInvocationsPerInstance"), instances)
    queue.put(AsyncRequest(work, expire, float(request.get("RequestTTLSeconds", REQUEST_TTL))))
    headers = [(b"content-type", b"application/json"), (b"x-amzn-sagemaker-outputlocation", succeeded.encode()),
               (b"x-amzn-sagemaker-failurelocation", failed.encode())]  # fmt: skip
    document = {"InferenceId": inference_id}
    return Answer("InvokeEndpointAsync", 202, json.dumps(document).encode(), headers, {**document, "OutputLocation": succeeded, "FailureLocation": failed})


def _model_error(context: Context, name: str, message: str, original: dict[str, Any]) -> Answer:
    stream = f"arn:aws:logs:{context.settings.region}:{context.settings.account}:log-group:/aws/sagemaker/Endpoints/{name}"
    return error_answer("InvokeEndpoint", 424, "ModelError", message, {**original, "LogStreamArn": stream})


def error_answer(operation: str, status: int, code: str, message: str, members: dict[str, Any] | None = None) -> Answer:
    """An error as sagemaker-runtime answers it: the code in x-amzn-ErrorType, `Message` and the modeled `members` in the body."""
    body = json.dumps({"Message": message, **(members or {})}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", code.encode())]
    return Answer(operation, status, body, headers, {"__type": code, "message": message})
