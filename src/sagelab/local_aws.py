"""How a client reaches the project's local API (`sagelab api`): its address and its throwaway credentials.

`sagelab env` prints them for a shell and `%sagelab local` sets them in a notebook's kernel; the server
checks requests against the same credentials. One access key and secret per project, made on first use
and kept in `.sagelab/api-credentials.json` (mode 0600, in the state folder projects keep out of git):
they are not AWS credentials and open nothing but this API. A running server notes its port and process
in `.sagelab/api.json`.

Standard library only: `sagelab env` runs in every shell that evals it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sagelab.processes import alive

if TYPE_CHECKING:
    from sagelab.config import Settings

CREDENTIALS_FILE = "api-credentials.json"  # in .sagelab/
_KEY_ALPHABET = string.ascii_uppercase + string.digits
DEFAULT_PORT = 8765
PORT_FILE = "api.json"  # in .sagelab/: the port and process of a running `sagelab api`
VARIABLES = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def running_port(settings: Settings) -> int | None:
    """The port of the project's running `sagelab api`, if one runs."""
    try:
        note = json.loads((settings.state_dir / PORT_FILE).read_text())
        return int(note["port"]) if alive(int(note["pid"])) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def values(settings: Settings, port: int | None = None) -> dict[str, str]:
    """The variables (`VARIABLES`) that point AWS clients at the project's local API on `port` (default: the running server's, else 8765).

    The credentials are the project's throwaway ones (made on first use, `.sagelab/api-credentials.json`).
    """
    creds = credentials(settings.state_dir)
    port = port or running_port(settings) or DEFAULT_PORT
    return dict(zip(VARIABLES, (f"http://127.0.0.1:{port}", settings.region, settings.region, creds.access_key, creds.secret_key)))


@dataclass(frozen=True)
class Credentials:
    """The project's throwaway access key and secret for the local API."""

    access_key: str
    secret_key: str = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key='**********')"


def credentials(state_dir: Path) -> Credentials:
    """The project's credentials, made (once, atomically, readable by the owner only) on first use."""
    path = state_dir / CREDENTIALS_FILE
    if not path.is_file():
        state_dir.mkdir(parents=True, exist_ok=True)
        made = {"aws_access_key_id": "SGL" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(17)),
                "aws_secret_access_key": secrets.token_urlsafe(30)}  # fmt: skip
        temporary = state_dir / f".{CREDENTIALS_FILE}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(made, out)
        try:
            os.link(temporary, path)  # fails if another process made them meanwhile: theirs are kept
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    saved = json.loads(path.read_text())
    return Credentials(saved["aws_access_key_id"], saved["aws_secret_access_key"])
