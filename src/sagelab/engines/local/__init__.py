"""The local engine: a SageMaker pipeline definition run on this machine, no Docker, no AWS.

Names are imported on first use, so a read-only command (`sagelab executions`) that needs only
the records does not import the scheduler, the sandbox and the S3 server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.engines.local.engine import LocalEngine, Selection, check
    from sagelab.engines.local.records import ExecutionRecord, Records, StepRecord
    from sagelab.engines.local.runners import RUNNERS
    from sagelab.engines.local.scheduler import Execution, StepState

_MODULES = {
    "LocalEngine": "engine",
    "Selection": "engine",
    "check": "engine",
    "ExecutionRecord": "records",
    "Records": "records",
    "StepRecord": "records",
    "RUNNERS": "runners",
    "Execution": "scheduler",
    "StepState": "scheduler",
}
__all__ = ["Execution", "ExecutionRecord", "LocalEngine", "RUNNERS", "Records", "Selection", "StepRecord", "StepState", "check"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
