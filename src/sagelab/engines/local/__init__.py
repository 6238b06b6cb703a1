"""The local engine: a SageMaker pipeline definition run on this machine, no Docker, no AWS."""

from sagelab.engines.local.engine import LocalEngine, Selection, check
from sagelab.engines.local.records import ExecutionRecord, Records, StepRecord
from sagelab.engines.local.runners import RUNNERS
from sagelab.engines.local.scheduler import Execution, StepState

__all__ = ["Execution", "ExecutionRecord", "LocalEngine", "RUNNERS", "Records", "Selection", "StepRecord", "StepState", "check"]
