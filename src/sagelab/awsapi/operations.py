"""The operations the local API serves: a handler function per operation name, one module per resource family.

Serving another operation is writing one function in its family's module:

    @operation("DescribePipeline")
    def describe_pipeline(context: Context, request: dict[str, Any]) -> dict[str, Any]:
        ...

The request arrives checked against the operation's input shape (botocore's model); the dict handed
back is written to the output shape (members it lacks are dropped, timestamps become epoch seconds).
A handler raises `sagelab.awsapi.errors` for the client, or lets a `SagelabError` through (a
ValidationException carrying its message). A new family module is added to `FAMILIES`.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sagelab.awsapi.errors import ValidationException

if TYPE_CHECKING:
    from sagelab.api.backends import LocalBackend
    from sagelab.api.runs import Runs
    from sagelab.awsapi.state import State
    from sagelab.config import Settings

FAMILIES = ("sagelab.awsapi.pipelines", "sagelab.awsapi.executions", "sagelab.awsapi.registry", "sagelab.awsapi.jobs", "sagelab.awsapi.logs",
            "sagelab.awsapi.hosting", "sagelab.awsapi.monitoring")

Handler = Callable[["Context", dict[str, Any]], dict[str, Any]]
_H = TypeVar("_H", bound=Handler)
_SERVED: dict[str, dict[str, Handler]] = {}  # service (botocore's name) → operation → handler
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """What every handler gets: the project's settings, the API's own state, and the workers running executions."""

    settings: Settings
    state: State
    runs: Runs

    @property
    def backend(self) -> LocalBackend:
        """The Python API's view of this machine's executions, store and registry."""
        from sagelab.api.backends import LocalBackend

        return LocalBackend(self.settings)

    def arn(self, resource: str) -> str:
        """`arn:aws:sagemaker:<region>:<account>:<resource>`, in the project's region and account (as the local engine makes them)."""
        return f"arn:aws:sagemaker:{self.settings.region}:{self.settings.account}:{resource}"


def operation(name: str, service: str = "sagemaker") -> Callable[[_H], _H]:
    """Register the decorated function as the handler of operation `name` of `service`."""

    def register(handler: _H) -> _H:
        _SERVED.setdefault(service, {})[name] = handler
        return handler

    return register


def served(service: str) -> dict[str, Handler]:
    """Operation name → handler, for every operation of `service` the local API serves."""
    for module in FAMILIES:
        importlib.import_module(module)
    return _SERVED.get(service, {})


def page(items: Sequence[T], request: dict[str, Any], default: int = 10) -> tuple[list[T], str | None]:
    """One page of `items` as MaxResults and NextToken ask; the token for the next page, if there is one.

    Tokens are opaque to the client (an offset inside); one that this API did not make is a ValidationException.
    """
    start = 0
    token = request.get("NextToken")
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ValidationException(f"Invalid pagination token {token!r}: pass the NextToken of the previous page unchanged") from None
    size = int(request.get("MaxResults") or default)
    end = start + size
    following = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
    return list(items[start:end]), following


def newest_first(request: dict[str, Any], default: str = "Descending") -> bool:
    """Whether SortOrder (or, when it is absent, the operation's `default` order) is descending."""
    return bool(request.get("SortOrder", default) == "Descending")


def created_between(when: float, request: dict[str, Any], after: str = "CreatedAfter", before: str = "CreatedBefore") -> bool:
    """Whether `when` (epoch seconds) is inside the request's creation-time filter."""
    low, high = request.get(after), request.get(before)
    return (low is None or when > low.timestamp()) and (high is None or when < high.timestamp())
