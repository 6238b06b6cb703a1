"""botocore's service models as the local API's contract: requests read and checked against an operation's
input shape, responses written to (and checked against) its output shape.

A request is checked as SageMaker checks it, in two passes:
- botocore's own `ParamValidator` (required members, types, unknown members, minimum lengths and values):
  its report is the ValidationException's message, word for word what boto3 would have said client-side;
- the constraints botocore's validator leaves to the service (enum values, maximum lengths and values, and
  the regular expressions of names and ARNs), in SageMaker's words: "1 validation error detected: Value 'x'
  at 'pipelineName' failed to satisfy constraint: ...". Patterns are checked on names and ARNs only (shapes
  whose name ends in Name or Arn): free-text patterns are written for Java's regex engine, and a pattern
  Python's `re` cannot read is skipped.

On the wire (AWS JSON 1.1) timestamps are epoch seconds and blobs base64; handlers see datetimes and bytes,
and hand back datetimes, ISO strings or epoch numbers, which `to_wire` writes as epoch seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sagelab.awsapi.errors import ApiError, ValidationException

_IDENTIFIER = re.compile(r"(Name|Arn)$")


@lru_cache(maxsize=None)
def service_model(name: str) -> Any:
    """botocore's model of a service ("sagemaker", "logs", ...), loaded once (the SageMaker model takes ~0.2 s)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def read_request(operation: Any, body: bytes) -> dict[str, Any]:
    """The request's parameters, checked against the operation's input shape.

    Raises:
        ApiError: SerializationException for a body that is not a JSON object, ValidationException for
            parameters the operation does not accept.
    """
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(f"the request body is not JSON: {exc}", code="SerializationException") from None
    if not isinstance(document, dict):
        raise ApiError(f"the request body must be a JSON object, not {type(document).__name__}", code="SerializationException")
    shape = operation.input_shape
    if shape is None:
        return {}
    return check(shape, _from_wire(shape, document))


def check(shape: Any, params: dict[str, Any]) -> dict[str, Any]:
    """`params` (as a handler takes them) checked against an input shape, in the two passes above.

    Raises:
        ValidationException: parameters the operation does not accept.
    """
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ValidationException(f"Parameter validation failed:\n{report.generate_report()}")
    problems = list(_constraints(shape, params, ""))
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        raise ValidationException(count + "; ".join(problems))
    return dict(params)


def _from_wire(shape: Any, value: Any) -> Any:
    """JSON values as botocore's validator and the handlers take them; nulls count as absent, as AWS counts them."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {key: _from_wire(members[key], item) if key in members else item for key, item in value.items() if item is not None}
    if kind == "list" and isinstance(value, list):
        return [_from_wire(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _from_wire(shape.value, item) for key, item in value.items()}
    if kind == "timestamp" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value  # the validator accepts a string for a blob; the handler sees it as sent
    return value


def _constraints(shape: Any, value: Any, path: str) -> Any:
    """The service-side constraints `value` breaks, each as SageMaker words it."""
    kind = shape.type_name
    limit = shape.metadata.get("max")
    if kind == "structure":
        for key, item in value.items():
            if key in shape.members:
                yield from _constraints(shape.members[key], item, f"{path}.{key[:1].lower()}{key[1:]}".lstrip("."))
    elif kind == "list":
        if limit is not None and len(value) > limit:
            yield f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {limit}"
        for index, item in enumerate(value, 1):
            yield from _constraints(shape.member, item, f"{path}.{index}.member")
    elif kind == "map":
        for key, item in value.items():
            yield from _constraints(shape.value, item, f"{path}.{key}")
    elif kind == "string" and isinstance(value, str):
        shown = value if len(value) <= 200 else value[:200] + "..."
        if shape.enum and value not in shape.enum:
            yield f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        elif limit is not None and len(value) > limit:
            yield f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {limit}"
        elif _IDENTIFIER.search(shape.name) and not _matches(shape.metadata.get("pattern"), value):
            yield f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {shape.metadata['pattern']}"
    elif kind in ("integer", "long") and isinstance(value, int) and limit is not None and value > limit:
        yield f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {limit}"


@lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # Java-only syntax (\p{...}): not checked here


def _matches(pattern: str | None, value: str) -> bool:
    compiled = _pattern(pattern) if pattern else None
    return compiled is None or compiled.fullmatch(value) is not None


def to_wire(shape: Any, value: Any) -> Any:
    """A handler's answer as the output shape has it on the wire: members the shape lacks dropped (as the service's
    model drops them), None left out, timestamps as epoch seconds, blobs as base64."""
    kind = shape.type_name
    if kind == "structure":
        return {name: to_wire(member, value[name]) for name, member in shape.members.items() if value.get(name) is not None}
    if kind == "list":
        return [to_wire(shape.member, item) for item in value]
    if kind == "map":
        return {str(key): to_wire(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return epoch(value)
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def epoch(value: Any) -> float:
    """A datetime, an ISO-8601 string or a number as epoch seconds, to the millisecond (as SageMaker gives them)."""
    if isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    elif isinstance(value, str):
        seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    else:
        seconds = float(value)
    return round(seconds, 3)


_WIRE_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (int, float),
    "blob": (str,),
}


def output_problems(shape: Any, value: Any, path: str = "") -> list[str]:
    """Where a response body breaks the output shape: a required member missing, a member the shape does not have,
    a value of the wrong wire type, a string outside its enum. An empty list: botocore reads it as the service's.

    Example:
        >>> output_problems(service_model("sagemaker").operation_model("CreatePipeline").output_shape, {"Arn": 1})
        ["/Arn: not a member of CreatePipelineResponse (members: PipelineArn)"]  # doctest: +SKIP
    """
    kind = shape.type_name
    where = path or "/"
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: {shape.name} must be an object, got {type(value).__name__}"]
        problems = [f"{path}/{key}: not a member of {shape.name} (members: {', '.join(shape.members)})" for key in value if key not in shape.members]
        problems += [f"{path}/{key}: required by {shape.name} but missing" for key in shape.required_members if key not in value]
        for key, item in value.items():
            if key in shape.members:
                problems += output_problems(shape.members[key], item, f"{path}/{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: {shape.name} must be a list, got {type(value).__name__}"]
        return [problem for index, item in enumerate(value) for problem in output_problems(shape.member, item, f"{path}/{index}")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: {shape.name} must be an object, got {type(value).__name__}"]
        return [problem for key, item in value.items() for problem in output_problems(shape.value, item, f"{path}/{key}")]
    wanted = _WIRE_TYPES.get(kind, (object,))
    if not isinstance(value, wanted) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{where}: {shape.name} is a {kind}, got {type(value).__name__} {value!r}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{where}: {value!r} is not one of {shape.name}'s values ({', '.join(shape.enum)})"]
    return []
