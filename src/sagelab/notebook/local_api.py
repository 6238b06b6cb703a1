"""`%sagelab local` and `%sagelab aws`: this kernel's AWS clients pointed at the local API (`sagelab api`), and back.

`use_local` does for a kernel what `eval "$(sagelab env)"` does for a shell: it sets AWS_ENDPOINT_URL,
the region and the project's throwaway credentials in `os.environ`. It also answers STS
GetCallerIdentity with the project's account inside botocore (`sagelab.caller_identity`), for the boto3
sessions made from then on: the SageMaker SDK's `default_bucket()` asks STS at STS's own regional
endpoint, which AWS_ENDPOINT_URL does not redirect, and so would reach for AWS. boto3's default session
is dropped, so the next `boto3.client(...)` (and the next `sagemaker.Session()`) reads the new values.
`use_aws` puts the variables back as they were and stops answering STS.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from sagelab.caller_identity import CallerIdentity

_saved: dict[str, str | None] | None = None  # the variables as they were before `use_local`
_identity: CallerIdentity | None = None


def use_local(port: int | None = None, profile: str = "local") -> str:
    """Point this process's AWS clients at the project's local API on 127.0.0.1:`port` (default: the running server's, else 8765).

    Returns:
        A line saying where they point (and, when nothing answers there, how to start the server).
    """
    global _saved, _identity
    from sagelab.config import load_settings
    from sagelab.local_aws import values

    settings = load_settings(profile=profile)
    chosen = values(settings, port)
    if _saved is None:
        _saved = {name: os.environ.get(name) for name in chosen}
    os.environ.update(chosen)
    if _identity is not None:
        _identity.deactivate()
    _identity = CallerIdentity(settings.account, settings.role_arn).activate()
    _forget_default_session()
    endpoint = chosen["AWS_ENDPOINT_URL"]
    line = (f"AWS clients made in this kernel now reach sagelab's local API at {endpoint} (region {settings.region}, account "
            f"{settings.account}); %sagelab aws points them back at AWS")  # fmt: skip
    if not _answers(endpoint):
        line += f"\nnothing answers at {endpoint} yet: start it with `sagelab api --port {endpoint.rsplit(':', 1)[1]}` in a terminal"
    return line


def use_aws() -> str:
    """Put back the variables `use_local` changed, and stop answering STS here."""
    global _saved, _identity
    if _identity is not None:
        _identity.deactivate()
        _identity = None
    if _saved is None:
        return "AWS clients made in this kernel reach AWS (%sagelab local had not pointed them elsewhere)"
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved = None
    _forget_default_session()
    return "AWS clients made in this kernel from now on reach AWS, with the credentials and region they had before %sagelab local"


def _forget_default_session() -> None:
    """boto3's default session keeps the credentials and region it first read: drop it, so the next client reads them again."""
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None


def _answers(endpoint: str) -> bool:
    host, _, port = endpoint.removeprefix("http://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False
