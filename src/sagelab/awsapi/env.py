"""What `sagelab env` prints: the variables that point boto3, the AWS CLI and the SageMaker SDK at the local API.

Standard library only: `sagelab env` runs in every shell that evals it.
"""

from __future__ import annotations

import shlex

from sagelab.config import Settings
from sagelab.local_aws import DEFAULT_PORT, PORT_FILE, VARIABLES, running_port, values

__all__ = ["DEFAULT_PORT", "PORT_FILE", "VARIABLES", "exports", "running_port", "unsets", "values"]


def exports(settings: Settings, port: int | None = None) -> str:
    """`export AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=...`: `values()` as a shell line (what `sagelab env` prints)."""
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in values(settings, port).items())


def unsets() -> str:
    """`unset ...`: what `sagelab env --unset` prints, to point the shell back at AWS."""
    return "unset " + " ".join(VARIABLES)
