"""SageMaker hosting over the project's local endpoints: models, endpoint configs and endpoints (what `sagelab endpoints` shows).

CreateModel, DescribeModel, DeleteModel, ListModels, CreateEndpointConfig, DescribeEndpointConfig,
DeleteEndpointConfig, ListEndpointConfigs, CreateEndpoint, DescribeEndpoint, UpdateEndpoint,
DeleteEndpoint and ListEndpoints, over `sagelab.api.local_hosting`: the records a pipeline's Model and
EndpointConfig steps make are the same ones, and an endpoint is a real server on 127.0.0.1 that
`sagelab invoke` and sagemaker-runtime's InvokeEndpoint (`runtime`) reach. CreateEndpoint and
UpdateEndpoint answer at once; the endpoint is Creating (Updating), then InService, or Failed with a
FailureReason, as the SDK's `deploy()` and boto3's `endpoint_in_service` waiter expect. Errors are
ValidationExceptions worded as SageMaker words them. Where sagelab differs from SageMaker:
- each production variant is one server (its instance type and count are kept and described, not
  acted on); InvokeEndpoint splits requests by InitialVariantWeight, or sends them to TargetVariant;
  DataCaptureConfig captures requests and answers into the store (`sagelab.serving.capture`);
  AsyncInferenceConfig serves InvokeEndpointAsync; ServerlessConfig variants are served as any other;
  shadow variants, KMS and VPC settings are kept and described but not acted on;
- an endpoint's model is checked when the endpoint is created (SageMaker checks the image and
  model data then too), except ModelDataUrl, which CreateModel checks in the store;
- Tags are accepted and not served back (no tagging operation is served yet); DeploymentConfig and the
  RetainAllVariantProperties family of UpdateEndpoint are accepted and ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab.awsapi.errors import ValidationException
from sagelab.awsapi.operations import Context, created_between, newest_first, operation, page
from sagelab.awsapi.shapes import epoch
from sagelab.errors import EndpointError, StoreError

if TYPE_CHECKING:
    from sagelab.api.local_hosting import EndpointState, LocalHosting, Record

_KINDS = {"model": "model", "endpoint-config": "endpoint configuration"}  # a record's kind → SageMaker's word for it


def _hosting(context: Context) -> LocalHosting:
    from sagelab.api.local_hosting import LocalHosting

    return LocalHosting(context.settings)


def _arn(context: Context, kind: str, name: str) -> str:
    return context.arn(f"{kind}/{name.lower()}")


def _found(context: Context, kind: str, name: str) -> Record:
    """The model or endpoint config of that name.

    Raises:
        ValidationException: there is none (SageMaker's words: `Could not find model "arn:..."`).
    """
    record = _hosting(context).record(kind, name)
    if record is None:
        raise ValidationException(f'Could not find {_KINDS[kind]} "{_arn(context, kind, name)}".')
    return record


def _listed(records: list[Any], request: dict[str, Any], name: Any, created: Any) -> list[Any]:
    """Records filtered by NameContains and the creation-time window, sorted as SortBy and SortOrder ask (newest first by default)."""
    contains = request.get("NameContains", "")
    chosen = [r for r in records if contains in name(r) and created_between(created(r), request, "CreationTimeAfter", "CreationTimeBefore")]
    by_name = request.get("SortBy") == "Name"
    chosen.sort(key=lambda r: name(r) if by_name else created(r), reverse=newest_first(request))
    return chosen


# -- models ------------------------------------------------------------------------------------


@operation("CreateModel")
def create_model(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Record a model; its ModelDataUrl must be in the store (a prefix, S3Prefix, is not checked)."""
    name = request["ModelName"]
    containers = [request["PrimaryContainer"]] if "PrimaryContainer" in request else list(request.get("Containers", []))
    if not containers:
        raise ValidationException("Either PrimaryContainer or Containers must be specified.")
    for container in containers:
        url = container.get("ModelDataUrl")
        if url and url.startswith("s3://") and not url.endswith("/"):
            try:
                context.backend.store.head(url)
            except StoreError:
                raise ValidationException(f"Could not find model data at {url}.") from None
    if not _hosting(context).create_record("model", name, _plain(request)):
        raise ValidationException(f'Cannot create already existing model "{_arn(context, "model", name)}".')
    return {"ModelArn": _arn(context, "model", name)}


@operation("DescribeModel")
def describe_model(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    record = _found(context, "model", request["ModelName"])
    return {**record.request, "ModelName": record.name, "ModelArn": _arn(context, "model", record.name), "CreationTime": record.created}


@operation("DeleteModel")
def delete_model(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Forget a model; endpoints serving it keep serving (as on SageMaker)."""
    name = request["ModelName"]
    if not _hosting(context).delete_record("model", name):
        raise ValidationException(f'Could not find model "{_arn(context, "model", name)}".')
    return {}


@operation("ListModels")
def list_models(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    chosen = _listed(_hosting(context).records("model"), request, lambda r: r.name, lambda r: r.created)
    shown, following = page(chosen, request)
    return {"Models": [{"ModelName": r.name, "ModelArn": _arn(context, "model", r.name), "CreationTime": r.created} for r in shown],
            "NextToken": following}  # fmt: skip


# -- endpoint configs --------------------------------------------------------------------------


@operation("CreateEndpointConfig")
def create_endpoint_config(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Record an endpoint config; each production variant's model must exist (SageMaker checks it here too)."""
    name = request["EndpointConfigName"]
    for variant in request["ProductionVariants"]:
        if variant.get("ModelName"):
            _found(context, "model", variant["ModelName"])
    if not _hosting(context).create_record("endpoint-config", name, _plain(request)):
        raise ValidationException(f'Cannot create already existing endpoint configuration "{_arn(context, "endpoint-config", name)}".')
    return {"EndpointConfigArn": _arn(context, "endpoint-config", name)}


@operation("DescribeEndpointConfig")
def describe_endpoint_config(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    record = _found(context, "endpoint-config", request["EndpointConfigName"])
    return {**record.request, "EndpointConfigName": record.name, "EndpointConfigArn": _arn(context, "endpoint-config", record.name),
            "CreationTime": record.created}  # fmt: skip


@operation("DeleteEndpointConfig")
def delete_endpoint_config(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Forget an endpoint config, also one an endpoint uses (SageMaker allows it: the endpoint keeps serving)."""
    name = request["EndpointConfigName"]
    if not _hosting(context).delete_record("endpoint-config", name):
        raise ValidationException(f'Could not find endpoint configuration "{_arn(context, "endpoint-config", name)}".')
    return {}


@operation("ListEndpointConfigs")
def list_endpoint_configs(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    chosen = _listed(_hosting(context).records("endpoint-config"), request, lambda r: r.name, lambda r: r.created)
    shown, following = page(chosen, request)
    summaries = [{"EndpointConfigName": r.name, "EndpointConfigArn": _arn(context, "endpoint-config", r.name), "CreationTime": r.created}
                 for r in shown]  # fmt: skip
    return {"EndpointConfigs": summaries, "NextToken": following}


# -- endpoints ---------------------------------------------------------------------------------


def _servable(context: Context, config_name: str) -> None:
    """Refuse, before anything starts, a config that does not exist or that one local endpoint cannot serve."""
    variants = _found(context, "endpoint-config", config_name).request.get("ProductionVariants") or []
    if not variants or not all(v.get("ModelName") for v in variants):
        raise ValidationException(f"endpoint configuration {config_name} names no model; sagelab serves models (not inference components)")


def _endpoint(context: Context, name: str) -> EndpointState:
    state = _hosting(context).endpoint(name)
    if state is None:
        raise ValidationException(f'Could not find endpoint "{_arn(context, "endpoint", name)}".')
    return state


@operation("CreateEndpoint")
def create_endpoint(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Create the endpoint; it is Creating when this answers, then InService or Failed (DescribeEndpoint tells)."""
    name, config = request["EndpointName"], request["EndpointConfigName"]
    _servable(context, config)
    if not _hosting(context).create_endpoint(name, config, list(request.get("Tags", []))):
        raise ValidationException(f'Cannot create already existing endpoint "{_arn(context, "endpoint", name)}".')
    return {"EndpointArn": _arn(context, "endpoint", name)}


@operation("UpdateEndpoint")
def update_endpoint(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Move an InService endpoint to another config; the previous model serves until the new one is ready."""
    name, config = request["EndpointName"], request["EndpointConfigName"]
    state = _endpoint(context, name)
    _servable(context, config)
    if state.status in ("Creating", "Updating"):
        raise ValidationException(f'Cannot update in-progress endpoint "{_arn(context, "endpoint", name)}".')
    if state.status != "InService" or not _hosting(context).update_endpoint(name, config):
        raise ValidationException(f'Cannot update endpoint "{_arn(context, "endpoint", name)}": it is {state.status}, not InService; '
                                  "delete it and create it again")  # fmt: skip
    return {"EndpointArn": _arn(context, "endpoint", name)}


@operation("DescribeEndpoint")
def describe_endpoint(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    state = _endpoint(context, request["EndpointName"])
    return {
        "EndpointName": state.name,
        "EndpointArn": _arn(context, "endpoint", state.name),
        "EndpointConfigName": state.config,
        "ProductionVariants": _variants(state) if state.serving else None,
        "EndpointStatus": state.status,
        "FailureReason": state.failure_reason,
        "CreationTime": state.created,
        "LastModifiedTime": state.modified,
    }


def _variants(state: EndpointState) -> list[dict[str, Any]]:
    """The variants the endpoint serves, as its config had them when it was deployed (without a config: one AllTraffic variant)."""
    described = []
    for variant, name in zip(state.variants or ({},), state.variant_names):
        count = int(variant.get("InitialInstanceCount") or 1)
        weight = float(variant.get("InitialVariantWeight", 1.0))
        images = [{"SpecifiedImage": image, "ResolutionTime": state.modified} for image in variant.get("Images", [])]
        summary: dict[str, Any] = {"VariantName": name, "DeployedImages": images or None, "CurrentWeight": weight, "DesiredWeight": weight}
        if variant.get("ServerlessConfig"):
            summary["CurrentServerlessConfig"] = summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
        else:
            summary.update({"CurrentInstanceCount": count, "DesiredInstanceCount": count})
        described.append(summary)
    return described


@operation("DeleteEndpoint")
def delete_endpoint(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Stop the endpoint's server and forget the endpoint (its config and model stay); refused while it is Creating or Updating."""
    name = request["EndpointName"]
    try:
        if not _hosting(context).delete_endpoint(name):
            raise ValidationException(f'Could not find endpoint "{_arn(context, "endpoint", name)}".')
    except EndpointError:
        raise ValidationException(f'Cannot delete in-progress endpoint "{_arn(context, "endpoint", name)}"; wait until it is InService '
                                  "or Failed") from None  # fmt: skip
    return {}


@operation("ListEndpoints")
def list_endpoints(context: Context, request: dict[str, Any]) -> dict[str, Any]:
    """Endpoint summaries, newest first by default (SortBy Name, CreationTime or Status), 10 a page."""
    status = request.get("StatusEquals")
    states = [s for s in _hosting(context).endpoints() if (status is None or s.status == status)
              and created_between(s.modified, request, "LastModifiedTimeAfter", "LastModifiedTimeBefore")]  # fmt: skip
    by_status = request.get("SortBy") == "Status"
    chosen = _listed(states, {**request, "SortBy": "Name"} if by_status else request, lambda s: s.name, lambda s: s.created)
    if by_status:  # by status, then by name (a stable sort)
        chosen.sort(key=lambda s: s.status, reverse=newest_first(request))
    shown, following = page(chosen, request)
    summaries = [{"EndpointName": s.name, "EndpointArn": _arn(context, "endpoint", s.name), "CreationTime": s.created,
                  "LastModifiedTime": s.modified, "EndpointStatus": s.status} for s in shown]  # fmt: skip
    return {"Endpoints": summaries, "NextToken": following}


def _plain(value: Any) -> Any:
    """A request as JSON keeps it: timestamps (datetimes) as epoch seconds."""
    from datetime import datetime

    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return epoch(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return value
