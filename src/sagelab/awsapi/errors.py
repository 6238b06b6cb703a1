"""The errors the local API answers with, in the AWS JSON 1.1 shape botocore turns into a `ClientError`.

Hierarchy:

    ApiError                    any error answered to a client: an HTTP status, a code (`__type`), a message
    ├── ValidationException     400: the request does not fit the operation's input shape, or the state
    ├── ResourceNotFound        400: SageMaker's code for a pipeline or execution that does not exist
    ├── ResourceInUse           400: the resource exists and is in use
    ├── ConflictException       400: the change conflicts with the resource's state
    ├── Throttling              400: ThrottlingException, more invocations at once than an endpoint takes
    ├── UnknownOperation        400: an operation the service does not have, or that sagelab does not serve yet
    └── AuthError               400/403: a request not signed with `sagelab env`'s credentials

Handlers raise these; a `SagelabError` escaping a handler is the user's mistake too and is answered
as a ValidationException with its message. Anything else is a bug in sagelab (500 InternalFailure).
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to the client: HTTP `status`, AWS error `code` and `message`."""

    status = 400
    code = "ValidationException"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict[str, str]:
        """The JSON error body: botocore reads the code from `__type` and the message from `message` (or `Message`)."""
        return {"__type": self.code, "message": self.message}


class ValidationException(ApiError):
    code = "ValidationException"


class ResourceNotFound(ApiError):
    code = "ResourceNotFound"


class ResourceInUse(ApiError):
    code = "ResourceInUse"


class ConflictException(ApiError):
    code = "ConflictException"


class Throttling(ApiError):
    """HTTP 400, as SageMaker answers it; botocore retries it with backoff."""

    code = "ThrottlingException"


class UnknownOperation(ApiError):
    code = "UnknownOperationException"


class AuthError(ApiError):
    """Refused before any operation runs: AWS's JSON services answer these codes (UnrecognizedClientException is a 400,
    InvalidSignatureException and MissingAuthenticationTokenException 403s)."""

    status = 403
    code = "InvalidSignatureException"
