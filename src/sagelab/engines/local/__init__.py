"""The local engine: a SageMaker pipeline definition run on this machine, no Docker, no AWS."""

from sagelab.engines.local.engine import RUNNERS, Execution, LocalEngine, StepState, check
from sagelab.engines.local.records import ExecutionRecord, Records, StepRecord

__all__ = ["Execution", "ExecutionRecord", "LocalEngine", "RUNNERS", "Records", "StepRecord", "StepState", "check"]
