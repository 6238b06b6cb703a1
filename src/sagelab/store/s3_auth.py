"""AWS Signature Version 4 as the local S3 endpoint checks it: a request signed with the run's secret key, or refused.

The endpoint recomputes the signature the client made — over the method, the path as sent, the
query, the headers it signed and the payload hash it declared — with the secret key the run gave
its steps. A request with no signature, another access key, or a signature made with another
secret (or over other contents) is refused, as S3 refuses it. Both forms are read: the
`Authorization` header (SDKs, the CLI, s3fs) and query-string presigned URLs, including the
Signature Version 2 URLs boto3 still presigns by default. The payload hash is taken as declared
(`x-amz-content-sha256`, or `UNSIGNED-PAYLOAD`), not recomputed over the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"


class Headers(Protocol):
    """A request's headers, looked up without regard to case (http.server's message, or a case-insensitive dict)."""

    def get(self, name: str, /) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...

_HEADER = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)")


@dataclass(frozen=True)
class Signature:
    """What a request says about its signing: the credential scope, what was signed, and the signature."""

    access_key: str
    scope: str  # YYYYMMDD/region/service/aws4_request
    signed_headers: tuple[str, ...]
    value: str
    amz_date: str
    payload_hash: str
    in_query: bool  # a presigned URL
    version: int = 4  # 2: a Signature Version 2 presigned URL (`amz_date` holds its Expires)

    @property
    def region(self) -> str:
        return self.scope.split("/")[1] if self.scope.count("/") >= 2 else "us-east-1"


def read(headers: Headers, query: list[tuple[str, str]]) -> Signature | None:
    """The request's SigV4 signature, from its Authorization header or its presigned query; None if unsigned."""
    match = _HEADER.match(headers.get("Authorization") or "")
    if match:
        access_key, _, scope = match.group(1).partition("/")
        return Signature(access_key, scope, tuple(match.group(2).split(";")), match.group(3).lower(),
                         headers.get("X-Amz-Date") or "", headers.get("X-Amz-Content-SHA256") or "", in_query=False)  # fmt: skip
    fields = dict(query)
    if {"AWSAccessKeyId", "Signature", "Expires"} <= set(fields):
        return Signature(fields["AWSAccessKeyId"], "", (), fields["Signature"], fields["Expires"], "", in_query=True, version=2)
    if fields.get("X-Amz-Algorithm") != ALGORITHM or "X-Amz-Signature" not in fields:
        return None
    access_key, _, scope = fields.get("X-Amz-Credential", "").partition("/")
    return Signature(access_key, scope, tuple(fields.get("X-Amz-SignedHeaders", "host").split(";")), fields["X-Amz-Signature"].lower(),
                     fields.get("X-Amz-Date", ""), "UNSIGNED-PAYLOAD", in_query=True)  # fmt: skip


def parse_query(raw: str) -> list[tuple[str, str]]:
    """A raw query string as decoded (name, value) pairs, blanks kept, `+` left as is (SigV4 clients encode spaces as %20)."""
    pairs = []
    for part in raw.split("&") if raw else []:
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def expected(secret: str, method: str, path: str, query: list[tuple[str, str]], headers: Headers, signature: Signature) -> str:
    """The signature a client holding `secret` makes for this request (`path` with the bucket first, for version 2)."""
    if signature.version == 2:
        return _expected_v2(secret, method, path, query, headers, signature.amz_date)
    pairs = [(name, value) for name, value in query if not (signature.in_query and name == "X-Amz-Signature")]
    canonical_query = "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(pairs))
    canonical_headers = "".join(f"{name}:{' '.join((headers.get(name) or '').split())}\n" for name in signature.signed_headers)
    canonical_request = "\n".join(
        [method, path or "/", canonical_query, canonical_headers, ";".join(signature.signed_headers), signature.payload_hash]
    )
    to_sign = "\n".join([ALGORITHM, signature.amz_date, signature.scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in signature.scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def expired(signature: Signature) -> bool:
    """Whether a version 2 presigned URL is past its Expires (version 4 URLs are not checked for age)."""
    return signature.version == 2 and (not signature.amz_date.isdigit() or int(signature.amz_date) < time.time())


# The query parameters a version 2 signature covers (botocore's HmacV1Auth.QSAOfInterest).
_V2_SUBRESOURCES = frozenset(
    "accelerate acl cors defaultObjectAcl location logging partNumber policy requestPayment torrent versioning versionId "
    "versions website uploads uploadId response-content-type response-content-language response-expires "
    "response-cache-control response-content-disposition response-content-encoding delete lifecycle tagging restore "
    "storageClass notification replication analytics metrics inventory select select-type object-lock".split()
)


def _expected_v2(secret: str, method: str, path: str, query: list[tuple[str, str]], headers: Headers, expires: str) -> str:
    amz = sorted((name.lower(), " ".join(value.split())) for name, value in headers.items() if name.lower().startswith("x-amz-"))
    subresources = sorted((name, value) for name, value in query if name in _V2_SUBRESOURCES)
    resource = path + ("?" + "&".join(f"{n}={v}" if v else n for n, v in subresources) if subresources else "")
    to_sign = "\n".join([method, headers.get("Content-MD5") or "", headers.get("Content-Type") or "", expires,
                         *(f"{name}:{value}" for name, value in amz), resource])  # fmt: skip
    return base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")
