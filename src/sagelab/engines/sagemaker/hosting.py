"""SageMaker endpoints: deploy a registered version (model, endpoint config, endpoint) and invoke it."""

from __future__ import annotations

import builtins
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagelab.config import Settings
from sagelab.engines.sagemaker.aws_errors import is_not_found
from sagelab.engines.sagemaker.clients import AwsClients, clean
from sagelab.engines.sagemaker.registry import ModelRegistry
from sagelab.errors import AwsError, EndpointError

if TYPE_CHECKING:
    from sagelab.serving.endpoints import Invocation

Progress = Callable[[str], None]
RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_FAILED = ("Failed", "UpdateRollbackFailed")


@dataclass(frozen=True)
class Deployment:
    """What a deploy made: the endpoint, and the model and endpoint config created for it."""

    endpoint: str
    endpoint_arn: str
    status: str  # InService when waited for; Creating or Updating otherwise
    model: str
    endpoint_config: str
    model_package_arn: str
    updated: bool  # the endpoint existed and was updated in place (UpdateEndpoint)


class Endpoints:
    """Endpoints on SageMaker: deploy registered versions, describe, list, delete, invoke."""

    def __init__(self, settings: Settings, session: Any | None = None, *, endpoint_url: str | None = None,
                 clients: AwsClients | None = None, registry: ModelRegistry | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.clients = clients or AwsClients(settings, session, endpoint_url=endpoint_url)
        self.registry = registry or ModelRegistry(settings, clients=self.clients)

    def deploy(self, group_or_ref: str, name: str, instance_type: str = "ml.m5.large", instance_count: int = 1,
               wait: bool = True, progress: Progress | None = None, *, poll: float = 15.0,
               timeout: float = 3600.0, capture: float | None = None) -> Deployment:  # fmt: skip
        """Serve a registered version on endpoint `name`: created, or updated in place when it exists.

        `group_or_ref` is `GROUP` (its latest Approved version), `GROUP/VERSION` or a version ARN.
        Each deploy creates a model (`Containers=[{"ModelPackageName": arn}]`) and an endpoint
        config of its own, named `<name>-<UTC time>-<random>`. With `wait`, returns once the
        endpoint is InService; a Failed endpoint or a rolled-back update raises EndpointError
        with SageMaker's FailureReason.
        """
        report = progress or (lambda _message: None)
        if not RESOURCE_NAME.match(name):
            raise EndpointError(f"endpoint name {name!r} is not valid on SageMaker: letters, digits and hyphens, "
                                "starting with a letter or digit, at most 63 characters")  # fmt: skip
        package_arn = self.registry.arn(group_or_ref)
        package = clean(self.clients.call("sagemaker", "DescribeModelPackage", package_arn, ModelPackageName=package_arn))
        if package.get("ModelApprovalStatus") == "Rejected":
            raise EndpointError(f"{group_or_ref} ({package_arn}) is Rejected; approve it or deploy another version")
        tags = [{"Key": key, "Value": value} for key, value in self.settings.tags]
        extra: dict[str, Any] = {"Tags": tags} if tags else {}
        unique = f"{name[:42]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
        self.clients.call("sagemaker", "CreateModel", f"model {unique}", ModelName=unique,
                          Containers=[{"ModelPackageName": package_arn}], ExecutionRoleArn=self.settings.role_arn, **extra)  # fmt: skip
        report(f"model {unique}: created from {package_arn}")
        variant = {"VariantName": "AllTraffic", "ModelName": unique, "InitialInstanceCount": instance_count,
                   "InstanceType": instance_type, "InitialVariantWeight": 1.0}  # fmt: skip
        if capture is not None:
            from sagelab.serving.capture import quick_config

            extra_config = {**extra, "DataCaptureConfig": quick_config(capture, f"s3://{self.settings.default_bucket}/datacapture")}
        else:
            extra_config = extra
        self.clients.call("sagemaker", "CreateEndpointConfig", f"endpoint config {unique}", EndpointConfigName=unique,
                          ProductionVariants=[variant], **extra_config)  # fmt: skip
        report(f"endpoint config {unique}: {instance_count} x {instance_type}")
        updated = self._exists(name)
        if updated:
            self.clients.call("sagemaker", "UpdateEndpoint", f"endpoint {name}", EndpointName=name, EndpointConfigName=unique)
            report(f"endpoint {name}: updating to {unique}")
        else:
            self.clients.call("sagemaker", "CreateEndpoint", f"endpoint {name}", EndpointName=name, EndpointConfigName=unique, **extra)
            report(f"endpoint {name}: creating")
        described = self.wait(name, unique, report, poll=poll, timeout=timeout) if wait else self.describe(name)
        return Deployment(name, str(described.get("EndpointArn", "")), str(described.get("EndpointStatus", "")),
                          unique, unique, package_arn, updated)  # fmt: skip

    def wait(self, name: str, endpoint_config: str | None = None, progress: Progress | None = None, *,
             poll: float = 15.0, timeout: float = 3600.0) -> dict[str, Any]:  # fmt: skip
        """Poll DescribeEndpoint until the endpoint is InService (on `endpoint_config`, when given).

        Raises EndpointError when it fails, when an update rolls back to the previous config,
        or after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        last, moved = None, False
        while True:
            described = self.describe(name)
            status = str(described.get("EndpointStatus"))
            reason = described.get("FailureReason")
            if status != last and progress is not None:
                progress(f"endpoint {name}: {status}")
            last, moved = status, moved or status != "InService"
            if status in _FAILED:
                raise EndpointError(f"endpoint {name} is {status}: {reason or 'no reason given'}. "
                                    f"The container's log is in CloudWatch log group /aws/sagemaker/Endpoints/{name}.")  # fmt: skip
            if status == "InService":
                current = described.get("EndpointConfigName")
                if endpoint_config is None or current == endpoint_config:
                    return described
                if moved:  # an update that failed went back to the previous config
                    raise EndpointError(f"endpoint {name} rolled back to {current}: {reason or 'the update failed'}. "
                                        f"The container's log is in CloudWatch log group /aws/sagemaker/Endpoints/{name}.")  # fmt: skip
            if time.monotonic() > deadline:
                raise EndpointError(f"endpoint {name} is still {status} after {timeout:.0f} s; it may yet become InService "
                                    f"(`aws sagemaker describe-endpoint --endpoint-name {name}`)")  # fmt: skip
            time.sleep(poll)

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeEndpoint."""
        return clean(self.clients.call("sagemaker", "DescribeEndpoint", f"endpoint {name}", EndpointName=name))

    def list(self) -> list[dict[str, Any]]:
        """EndpointSummary dicts (EndpointName, EndpointStatus, CreationTime, ...), newest first."""
        pages = self.clients.pages("sagemaker", "ListEndpoints", "endpoints", SortBy="CreationTime", SortOrder="Descending")
        return [endpoint for page in pages for endpoint in page.get("Endpoints", [])]

    def overview(self) -> builtins.list[dict[str, Any]]:
        """Each endpoint with what it runs on, newest first: EndpointName, EndpointStatus, CreationTime, EndpointConfigName and
        Instances (`2 × ml.m5.xlarge` per production variant; serverless variants say so). Two calls an endpoint."""
        found = []
        for summary in self.list():
            name = summary["EndpointName"]
            described = self.describe(name)
            config = described.get("EndpointConfigName", "")
            variants = clean(self.clients.call("sagemaker", "DescribeEndpointConfig", f"endpoint config {config}",
                                               EndpointConfigName=config)).get("ProductionVariants", [])  # fmt: skip
            instances = [f"{v.get('InitialInstanceCount', 1)} × {v['InstanceType']}" if "InstanceType" in v else "serverless" for v in variants]
            found.append({**summary, "EndpointConfigName": config, "Instances": instances})
        return found

    def delete(self, name: str) -> None:
        """DeleteEndpoint (its models and endpoint configs stay, as on SageMaker)."""
        self.clients.call("sagemaker", "DeleteEndpoint", f"endpoint {name}", EndpointName=name)

    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None = None, target_variant: str | None = None) -> Invocation:
        """InvokeEndpoint through sagemaker-runtime (to `target_variant`, else as the weights split); the model's own
        errors raise AwsError with its message."""
        from sagelab.serving.endpoints import Invocation

        request: dict[str, Any] = {"EndpointName": name, "Body": body, "ContentType": content_type}
        if accept:
            request["Accept"] = accept
        if target_variant:
            request["TargetVariant"] = target_variant
        response = self.clients.call("sagemaker-runtime", "InvokeEndpoint", f"endpoint {name}", **request)
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 200))
        return Invocation(status, str(response.get("ContentType", "")), response["Body"].read(), None, response.get("InvokedProductionVariant"))

    def _exists(self, name: str) -> bool:
        try:
            self.describe(name)
        except AwsError as exc:
            if is_not_found(exc):
                return False
            raise
        return True
