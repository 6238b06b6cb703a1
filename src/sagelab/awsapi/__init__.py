"""`sagelab api`: SageMaker's control plane and S3 on 127.0.0.1, over this machine's runs, registry and store.

boto3 and SageMaker SDK code written for AWS runs against it unchanged once the shell has the
variables `sagelab env` prints (`AWS_ENDPOINT_URL`, a region, and throwaway credentials):

    $ sagelab api &
    $ eval "$(sagelab env)"
    $ python -c 'import boto3; print(boto3.client("sagemaker").list_pipelines())'

Modules: `app` (routing by service), `auth` (the credentials and SigV4), `shapes` (botocore's
service model as the contract), `operations` (the handler registry), one module per resource family
(`pipelines`, `executions`, `registry`, `jobs` over `job_records`, `hosting`, and CloudWatch Logs' `logs`),
`runtime` (sagemaker-runtime's InvokeEndpoint, answered by the endpoint's server), `s3`
(the store's S3 handler on the same port), `state` (what only the API keeps), `server`, `env`.
docs/local-api.md says what is served and what is not yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.awsapi.app import request_line
    from sagelab.awsapi.env import DEFAULT_PORT, exports, unsets
    from sagelab.awsapi.server import ApiServer

__all__ = ["ApiServer", "DEFAULT_PORT", "exports", "request_line", "unsets"]
_MODULES = {"ApiServer": "server", "DEFAULT_PORT": "env", "exports": "env", "request_line": "app", "unsets": "env"}


def __getattr__(name: str) -> Any:
    """Names are imported on first use: `sagelab env` needs neither uvicorn nor botocore."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
