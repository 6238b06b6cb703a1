"""The local API's credentials and how a request proves it holds them.

`sagelab env` hands out one access key and secret per project, made on first use and kept in
`.sagelab/api-credentials.json` (mode 0600, in the state folder projects keep out of git; made by
`sagelab.local_aws`, which `%sagelab local` uses too). They are not AWS credentials: they open this
machine's API and nothing else.

A SageMaker request is served only when its SigV4 signature verifies: the access key must be the
project's, and the signature is recomputed with its secret (the same check the local S3 endpoint
makes, `sagelab.store.s3_auth`), over the method, path, query, the headers it signed and the SHA-256
of the body as received. The scope must name the project's region and the service, and X-Amz-Date
must be within 15 minutes of now. Refusals use the codes AWS's JSON services answer with:
MissingAuthenticationTokenException (unsigned), IncompleteSignatureException (an Authorization
header that is not SigV4), UnrecognizedClientException (another access key),
InvalidSignatureException (another secret, altered contents, another region or service, stale).
A session token (X-Amz-Security-Token) is not checked.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import hmac
import time
from collections.abc import Iterable

from sagelab.awsapi.errors import AuthError
from sagelab.local_aws import CREDENTIALS_FILE as FILE
from sagelab.local_aws import Credentials, credentials

__all__ = ["FILE", "Credentials", "Headers", "authenticate", "credentials"]

_SKEW = 15 * 60  # seconds a signature's X-Amz-Date may be off, as AWS allows


class Headers:
    """A request's headers looked up without regard to case (ASGI gives them as a list of byte pairs)."""

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._pairs = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]
        self._first: dict[str, str] = {}
        for name, value in self._pairs:
            self._first.setdefault(name, value)

    def get(self, name: str, /) -> str | None:
        return self._first.get(name.lower())

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


def authenticate(creds: Credentials, *, region: str, service: str, method: str, path: str, query: str, headers: Headers,
                 body: bytes, now: float | None = None) -> None:  # fmt: skip
    """Refuse a request not signed (SigV4) by `creds` for `service` in `region`; return quietly otherwise.

    Raises:
        AuthError: with the code and status AWS answers.
    """
    from sagelab.store import s3_auth

    pairs = s3_auth.parse_query(query)
    signature = s3_auth.read(headers, pairs)
    if signature is None or signature.version != 4:
        if headers.get("Authorization"):
            raise AuthError("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters (AWS4-HMAC-SHA256)",
                            code="IncompleteSignatureException", status=400)  # fmt: skip
        raise AuthError("Missing Authentication Token: sign requests with the credentials `sagelab env` prints",
                        code="MissingAuthenticationTokenException")  # fmt: skip
    if not hmac.compare_digest(signature.access_key, creds.access_key):
        raise AuthError("The security token included in the request is invalid. (sagelab's local API takes the credentials "
                        '`sagelab env` prints: eval "$(sagelab env)")', code="UnrecognizedClientException", status=400)  # fmt: skip
    _, signed_region, signed_service, *_ = (signature.scope.split("/") + ["", "", ""])[:4]
    if signed_service != service:
        raise AuthError(f"Credential should be scoped to correct service: '{service}'.")
    if signed_region != region:
        raise AuthError(f"Credential should be scoped to a valid region, not '{signed_region}': this local API serves the project's "
                        f"region, {region} (AWS_DEFAULT_REGION as `sagelab env` sets it)")  # fmt: skip
    _check_date(signature.amz_date, time.time() if now is None else now)
    digest = hashlib.sha256(body).hexdigest()
    if not signature.payload_hash:  # botocore signs a JSON service's body without sending its hash
        signature = dataclasses.replace(signature, payload_hash=digest)
    elif signature.payload_hash != "UNSIGNED-PAYLOAD" and not hmac.compare_digest(signature.payload_hash, digest):
        raise AuthError("The provided 'x-amz-content-sha256' header does not match what was computed.")
    expected = s3_auth.expected(creds.secret_key, method, path, pairs, headers, signature)
    if not hmac.compare_digest(expected, signature.value):
        raise AuthError("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
                        "Access Key and signing method. Consult the service documentation for details.")  # fmt: skip


def _check_date(amz_date: str, now: float) -> None:
    try:
        signed = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise AuthError(f"X-Amz-Date {amz_date!r} is not a date such as 20261206T230100Z", code="IncompleteSignatureException",
                        status=400) from None  # fmt: skip
    if abs(now - signed) > _SKEW:
        raise AuthError(f"Signature expired: {amz_date} is more than 15 minutes from the time here "
                        f"({time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))})")  # fmt: skip
