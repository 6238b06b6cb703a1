"""One execution started through a server — the local API's (a pipeline's, or a job's: CreateTrainingJob, ...) or
the UI's — run to its end in a process of its own (`python -m sagelab.api.worker`).

The server writes the request as JSON on stdin; the worker answers one JSON line on stdout as soon as
the execution exists — `{"id": ..., "arn": ...}`, or `{"error": ..., "message": ...}` when the
definition or the parameters are refused — and then runs the execution through the Python API's
`LocalBackend`, recording it where `sagelab executions` reads. A process of its own, rather than a
thread of the server, so that a stop (StopPipelineExecution, the UI's button) stops it the way Ctrl-C stops `sagelab run`
(SIGTERM: running jobs are terminated, the execution ends Stopped and can be retried).
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any


def main() -> int:
    request = json.load(sys.stdin)
    said = False

    def say(answer: dict[str, Any]) -> None:
        nonlocal said
        if not said:
            said = True
            print(json.dumps(answer), flush=True)

    def listener(execution: Any, state: Any) -> None:
        say({"id": execution.id, "arn": execution.arn})

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # the scheduler stops the execution (it installs the same handler while it runs)

    signal.signal(signal.SIGTERM, interrupt)
    from sagelab.errors import SagelabError

    try:
        _run(request, listener)
    except SagelabError as exc:
        say({"error": type(exc).__name__, "message": str(exc)})
        return 1
    except KeyboardInterrupt:
        return 130
    say({"error": "InternalFailure", "message": "the execution ended before it started a step"})
    return 0


def _run(request: dict[str, Any], listener: Any) -> None:
    from sagelab.api.backends import LocalBackend
    from sagelab.config import load_settings

    settings = load_settings(Path(request["root"]), request["profile"])
    if request.get("concurrency"):
        settings = replace(settings, concurrency=int(request["concurrency"]))
    backend = LocalBackend(settings)
    if request["action"] == "retry":
        backend.retry(request["execution"], listener=listener)
        return
    if request["action"] == "job":  # a Create*Job request: a one-step execution of its own
        backend.run_job(request["type"], request["request"], listener=listener)
        return
    from sagelab.definition import parse
    from sagelab.definition.loader import Loaded

    name = request["pipeline"]
    loaded = Loaded(parse(request["definition"], source=f"pipeline {name}"), name, {})
    select = None
    if request.get("select"):
        from sagelab.engines.local import Selection

        chosen = request["select"]
        select = Selection(tuple(chosen.get("steps", ())), chosen.get("from_step"), chosen.get("reference"))
    backend.start(loaded, request.get("parameters") or {}, listener=listener, select=select)


if __name__ == "__main__":
    sys.exit(main())
