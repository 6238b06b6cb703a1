"""botocore's exceptions → `AwsError`, naming the API call, the resource, and what to allow or configure."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sagelab.errors import AwsError

# IAM actions whose name is not the API call's own.
_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
_SERVICE_PREFIX = {"sagemaker": "sagemaker", "sagemaker-runtime": "sagemaker", "s3": "s3", "logs": "logs"}
# Calls that hand an IAM role to SageMaker: IAM checks iam:PassRole on that role as well.
PASSES_ROLE = frozenset({"CreatePipeline", "UpdatePipeline", "CreateModel"})

_DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation", "AuthorizationError"}
_BAD_CREDENTIALS = {
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidSignatureException", "IncompleteSignature",
}  # fmt: skip
_THROTTLED = {"ThrottlingException", "Throttling", "SlowDown", "TooManyRequestsException", "RequestLimitExceeded"}
_NOT_FOUND = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "404", "NotFound"}
_NOT_FOUND_TEXT = re.compile(r"could not find|does not exist|not found", re.IGNORECASE)
_PERFORM = re.compile(r"perform: ([a-z0-9-]+:[A-Za-z0-9]+)(?: on resource: (\S+))?")


@dataclass(frozen=True)
class Call:
    """What a failed call was about, for the message: service, API call, resource, and the profile in use."""

    service: str
    operation: str
    resource: str | None = None
    profile: str | None = None
    region: str | None = None
    role: str | None = None
    emulator: str | None = None  # the endpoint URL, when the client talks to something other than AWS (AWS_ENDPOINT_URL)


def iam_action(service: str, operation: str) -> str:
    """The IAM action an API call needs: `sagemaker:CreatePipeline`, `s3:GetObject` for HeadObject, ..."""
    return _ACTIONS.get(operation) or f"{_SERVICE_PREFIX.get(service, service)}:{operation}"


def is_not_found(error: AwsError) -> bool:
    """Whether AWS said the resource does not exist (SageMaker says so with a ValidationException)."""
    if error.code in _NOT_FOUND:
        return True
    return error.code == "ValidationException" and bool(_NOT_FOUND_TEXT.search(error.detail or ""))


def translate(exc: BaseException, call: Call) -> AwsError | None:
    """The `AwsError` for a botocore/boto3 exception, or None when it is not one (a bug keeps its traceback)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore import exceptions as bx

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, bx.ClientError):
        exc = exc.__context__  # s3transfer wraps the PutObject/UploadPart error without `from`
    if isinstance(exc, bx.ClientError):
        return _client_error(exc, call)
    what = f"{call.operation}" + (f" on {call.resource}" if call.resource else "")
    who = _identity(call)
    if isinstance(exc, bx.ProfileNotFound):
        profile = call.profile or exc.kwargs.get("profile", "")
        message = (
            f"AWS profile {profile!r} is not defined in ~/.aws/config or ~/.aws/credentials; create it with "
            f"`aws configure --profile {profile}` (access keys) or `aws configure sso --profile {profile}`, "
            "or change aws_profile in [tool.sagelab.profiles.<name>]"
        )
        return AwsError(message, operation=call.operation, resource=call.resource)
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        message = (
            f"{what}: no AWS credentials found for {who}. Configure them with `aws configure` (access keys), or "
            "`aws configure sso` then `aws sso login`; name the profile with aws_profile in "
            "[tool.sagelab.profiles.<name>] or AWS_PROFILE. On AWS compute the instance or task role is used."
        )
        return AwsError(message, operation=call.operation, resource=call.resource, code=type(exc).__name__)
    if isinstance(exc, (bx.CredentialRetrievalError, bx.TokenRetrievalError, bx.SSOError, bx.SSOTokenLoadError)):
        login = f"aws sso login --profile {call.profile}" if call.profile else "aws sso login"
        message = f"{what}: could not load the AWS credentials of {who}: {exc}. For an SSO profile, run `{login}`."
        return AwsError(message, operation=call.operation, resource=call.resource, code=type(exc).__name__)
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError)):
        endpoint = exc.kwargs.get("endpoint_url", "AWS")
        message = (
            f"{what}: could not reach {endpoint} ({type(exc).__name__}). Check the network or proxy settings, "
            f"and that region {call.region} offers the service."
        )
        return AwsError(message, operation=call.operation, resource=call.resource, code=type(exc).__name__)
    if isinstance(exc, bx.NoRegionError):
        message = f"{what}: no AWS region; set region in [tool.sagelab] or the profile"
        return AwsError(message, operation=call.operation, resource=call.resource, code=type(exc).__name__)
    return None


def _client_error(exc: BaseException, call: Call) -> AwsError:
    response = getattr(exc, "response", {}) or {}
    body = response.get("Error", {})
    code = str(body.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Unknown"))
    detail = str(body.get("Message") or "")
    what = f"{call.operation}" + (f" on {call.resource}" if call.resource else "")
    who = _identity(call)
    said = f"\nAWS said: {detail}" if detail else ""

    def error(message: str, action: str | None = None) -> AwsError:
        return AwsError(message, operation=call.operation, resource=call.resource, code=code, action=action, detail=detail)

    if code in _DENIED:
        action, on = iam_action(call.service, call.operation), call.resource
        if on and on.startswith("s3://"):  # IAM policies name objects by ARN
            on = "arn:aws:s3:::" + on.removeprefix("s3://")
        found = _PERFORM.search(detail)
        if found:  # AWS names the action it refused, e.g. iam:PassRole while creating a pipeline
            action, on = found.group(1), found.group(2) or on
        fix = f"allow {action}" + (f" on {on}" if on else "")
        if action == "iam:PassRole":
            fix = f"allow iam:PassRole on the execution role {on or call.role} (with iam:PassedToService sagemaker.amazonaws.com)"
        elif call.operation in PASSES_ROLE and call.role:
            fix += f", and iam:PassRole on the execution role {call.role}"
        elif call.operation == "HeadObject":
            bucket = (on or "").split("/", 1)[0]
            fix += f" and s3:ListBucket on {bucket} (without it S3 answers 403, not 404, for a missing key)"
        message = (
            f"{what} was denied ({code}): {fix} in the IAM policy of {who}. "
            f"docs/aws.md lists the permissions each sagelab command needs.{said}"
        )
        return error(message, action)
    if code in _BAD_CREDENTIALS:
        login = f" --profile {call.profile}" if call.profile else ""
        message = (
            f"{what}: AWS rejected the credentials of {who} ({code}). Refresh them: `aws sso login{login}` for SSO, "
            f"`aws configure{login}` for access keys; an expired signature can also mean a wrong system clock.{said}"
        )
        return error(message)
    if code in _THROTTLED:
        return error(f"{what} was throttled by AWS ({code}) even after retries; wait a minute and try again.{said}")
    if code == "ResourceLimitExceeded":
        message = f"{what}: an AWS quota is reached; stop unused resources or request an increase in Service Quotas.{said}"
        return error(message)
    if code == "NoSuchBucket":
        bucket = (call.resource or "").removeprefix("s3://").split("/", 1)[0]
        message = (
            f"{what}: bucket {bucket} does not exist. Create it (`aws s3 mb s3://{bucket} --region {call.region}`) "
            "or set bucket in [tool.sagelab] to one that does."
        )
        return error(message)
    if code in _NOT_FOUND or (code == "ValidationException" and _NOT_FOUND_TEXT.search(detail)):
        return error(f"{what}: it does not exist ({code}).{said}")
    if call.emulator:
        said = f"\n{call.emulator} said: {detail[:300]}" if detail else ""
        message = (f"{what} failed ({code}) at {call.emulator}, which is not AWS (AWS_ENDPOINT_URL or the profile's endpoint "
                   f"points there): an AWS emulator may not implement {call.operation}, which SageMaker itself does.{said}")  # fmt: skip
        return error(message)
    return error(f"{what} failed ({code}).{said}")


def _identity(call: Call) -> str:
    if call.profile:
        return f"AWS profile {call.profile!r}"
    if os.environ.get("AWS_PROFILE"):
        return f"AWS profile {os.environ['AWS_PROFILE']!r} (from AWS_PROFILE)"
    return "the identity from boto3's default credential chain"
