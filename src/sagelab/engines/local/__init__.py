"""The local engine: a SageMaker pipeline definition run on this machine, no Docker, no AWS.

Names are imported on first use, so a read-only command (`sagelab executions`) that needs only
the records does not import the scheduler, the sandbox and the S3 server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.engines.local.engine import JOBS, LocalEngine, Selection, check, job_of, job_pipeline
    from sagelab.engines.local.records import ExecutionRecord, Records, StepRecord
    from sagelab.engines.local.runners import RUNNERS
    from sagelab.engines.local.scheduler import Execution, StepState

_MODULES = {
    "JOBS": "engine",
    "LocalEngine": "engine",
    "Selection": "engine",
    "check": "engine",
    "job_of": "engine",
    "job_pipeline": "engine",
    "ExecutionRecord": "records",
    "Records": "records",
    "StepRecord": "records",
    "RUNNERS": "runners",
    "Execution": "scheduler",
    "StepState": "scheduler",
}
__all__ = ["Execution", "ExecutionRecord", "JOBS", "LocalEngine", "RUNNERS", "Records", "Selection", "StepRecord", "StepState", "check", "job_of",
           "job_pipeline"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
