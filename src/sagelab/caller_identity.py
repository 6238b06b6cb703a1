"""STS GetCallerIdentity answered inside botocore, for code that asks AWS which account it runs in while no AWS is there.

The SageMaker SDK's `default_bucket()` asks STS for the account (`sagemaker-<region>-<account>`), at
STS's regional endpoint, named explicitly: no AWS_ENDPOINT_URL redirects it. So the answer comes from
a handler that botocore's sessions register themselves: `botocore.handlers.BUILTIN_HANDLERS`, which
every session made from then on copies, gets a `before-call.sts.GetCallerIdentity` handler that
short-circuits the call with the account and role given here. Two places use it: `sagelab run`
while it builds an SDK pipeline's definition offline (`engines/local/offline_aws.py`), and a
notebook's `%sagelab local` (`notebook/local_api.py`).

Standard library only; botocore is not imported here (the finder waits for it to be imported).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec


def identity(account: str, role: str) -> dict[str, str]:
    """GetCallerIdentity's answer: the account, as the role the project names (an ARN ending in the role's name)."""
    return {"UserId": "AROASAGELABLOCAL:sagelab", "Account": account, "Arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[-1]}/sagelab"}


def identity_xml(account: str, role: str) -> str:
    """GetCallerIdentity's answer as STS's query protocol sends it, for the servers that answer STS (the local API, the offline stand-in)."""
    from xml.sax.saxutils import escape

    fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in identity(account, role).items())
    return ('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
            f"{fields}</GetCallerIdentityResult><ResponseMetadata><RequestId>sagelab</RequestId></ResponseMetadata></GetCallerIdentityResponse>")  # fmt: skip


class CallerIdentity(importlib.abc.MetaPathFinder):
    """Answers STS GetCallerIdentity in botocore itself, whatever endpoint a client names, while it is active.

    The handler joins botocore's built-in handlers now if botocore is loaded, else as soon as it is
    (this finder wraps the loading of `botocore.handlers`, so a process that never imports botocore
    never pays for it). Sessions made before `activate()` do not have it.

    Example:
        >>> with CallerIdentity("123456789012", "arn:aws:iam::123456789012:role/R"):  # doctest: +SKIP
        ...     boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
        '123456789012'
    """

    _MODULE = "botocore.handlers"
    _EVENT = "before-call.sts.GetCallerIdentity"

    def __init__(self, account: str, role: str) -> None:
        self.account, self.role = account, role
        self.active = False

    def activate(self) -> CallerIdentity:
        """Answer from now on, in sessions made from now on."""
        self.active = True
        if self._MODULE in sys.modules:
            self._register(sys.modules[self._MODULE])
        elif self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self

    def deactivate(self) -> None:
        """Answer nothing any more: sessions made meanwhile keep the handler, which lets their calls through to STS."""
        self.active = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        handlers = getattr(sys.modules.get(self._MODULE), "BUILTIN_HANDLERS", None)
        if handlers is not None and (self._EVENT, self._answer) in handlers:
            handlers.remove((self._EVENT, self._answer))

    def __enter__(self) -> CallerIdentity:
        return self.activate()

    def __exit__(self, *exc_info: object) -> None:
        self.deactivate()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != self._MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                execute(module)
                self._register(module)

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def _register(self, handlers: ModuleType) -> None:
        if (self._EVENT, self._answer) not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append((self._EVENT, self._answer))

    def _answer(self, **kwargs: Any) -> tuple[Any, dict[str, Any]] | None:
        """botocore's short-circuit: an (HTTP response, parsed response) pair in place of the call."""
        if not self.active:
            return None
        from botocore.awsrequest import AWSResponse

        parsed = {**identity(self.account, self.role), "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "sagelab"}}
        return AWSResponse("https://sts.amazonaws.com/", 200, {}, None), parsed
