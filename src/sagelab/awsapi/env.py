"""What `sagelab env` prints: the variables that point boto3, the AWS CLI and the SageMaker SDK at the local API.

Standard library only: `sagelab env` runs in every shell that evals it.
"""

from __future__ import annotations

import json
import shlex

from sagelab.config import Settings

DEFAULT_PORT = 8765
PORT_FILE = "api.json"  # in .sagelab/: the port and process of a running `sagelab api`
VARIABLES = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def running_port(settings: Settings) -> int | None:
    """The port of the project's running `sagelab api`, if one runs."""
    from sagelab.processes import alive

    try:
        note = json.loads((settings.state_dir / PORT_FILE).read_text())
        return int(note["port"]) if alive(int(note["pid"])) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def exports(settings: Settings, port: int | None = None) -> str:
    """`export AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=...` for the project's local API on `port` (default: the running server's, else 8765).

    The credentials are the project's throwaway ones (made on first use, `.sagelab/api-credentials.json`).
    """
    from sagelab.awsapi.auth import credentials

    creds = credentials(settings.state_dir)
    port = port or running_port(settings) or DEFAULT_PORT
    values = (f"http://127.0.0.1:{port}", settings.region, settings.region, creds.access_key, creds.secret_key)
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in zip(VARIABLES, values))


def unsets() -> str:
    """`unset ...`: what `sagelab env --unset` prints, to point the shell back at AWS."""
    return "unset " + " ".join(VARIABLES)
