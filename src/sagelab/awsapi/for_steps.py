"""The local API a `sagelab run` lends its steps: `python -m sagelab.awsapi.for_steps FD ROOT PROFILE`.

The run (`engines/local/step_api.py`) binds the socket, names it in its steps' AWS_ENDPOINT_URL and starts
this process at a step's first connection, passing the socket on as file descriptor FD. It serves the
project's API there, a line per request on stderr (the run's `.sagelab/api-steps.log`), until the run
sends SIGTERM — or ends without doing so (killed): then the process notices it lost its parent and stops too.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    from sagelab.awsapi.app import request_line
    from sagelab.awsapi.server import ApiServer
    from sagelab.config import load_settings
    from sagelab.errors import SagelabError

    fd, root, profile = argv
    listening = socket.socket(fileno=int(fd))
    parent = os.getppid()
    threading.Thread(target=_stop_when_orphaned, args=(parent,), name="sagelab-orphan-watch", daemon=True).start()

    def said(service: str, operation: str, status: int, body: dict[str, Any]) -> None:
        print(f"{time.strftime('%H:%M:%S')} {request_line(operation, status, body)}", file=sys.stderr, flush=True)

    try:
        ApiServer(load_settings(Path(root), profile), observers=(said,), listening=listening).serve()
    except SagelabError as exc:
        print(f"sagelab: {exc}", file=sys.stderr)
        return 1
    return 0


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn drains and stops, as when the run stops it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
