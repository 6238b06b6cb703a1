"""Where executions run and are read: this machine (`LocalBackend`) or SageMaker (`SageMakerBackend`).

The profile's engine picks one, once (`backend_for`); the Python API and the CLI then ask it the
same questions whichever it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.api.model import Execution, Step, timestamp
from sagelab.config import STATE_DIR, Settings
from sagelab.errors import ExecutionError

if TYPE_CHECKING:
    from sagelab.definition.loader import Loaded
    from sagelab.engines.local import ExecutionRecord, Listener, Records, Selection
    from sagelab.engines.sagemaker import SageMakerEngine
    from sagelab.engines.sagemaker.snapshot import ExecutionSnapshot
    from sagelab.store import ObjectStore
    from sagelab.store.base import ObjectInfo


class Backend(Protocol):
    """What the Python API and the CLI ask of an engine."""

    settings: Settings

    def execution(self, reference: str) -> Execution: ...

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True) -> list[Execution]: ...

    def log_lines(self, execution: Execution, step: str) -> Iterator[str]: ...

    def get_bytes(self, uri: str) -> bytes: ...

    def list(self, uri: str) -> list[ObjectInfo]: ...


def backend_for(settings: Settings) -> LocalBackend | SageMakerBackend:
    """The backend the profile's engine names."""
    return SageMakerBackend(settings) if settings.engine == "sagemaker" else LocalBackend(settings)


class LocalBackend:
    """Executions on this machine: the project's records (`.sagelab/sagelab.db`) and its store."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        """`store`: the runs' object store (default: the project's folder, or the profile's S3 when it sets s3_endpoint_url)."""
        self.settings = settings
        self._store = store

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from sagelab.store import LocalStore, S3Store

            s = self.settings
            self._store = S3Store(s.region, s.s3_endpoint_url, s.aws_profile) if s.s3_endpoint_url else LocalStore(s.store)
        return self._store

    def records(self) -> Records:
        """The project's execution records. A folder where nothing ran gets no database file.

        Raises:
            ExecutionError: nothing has run in this project yet.
        """
        from sagelab.engines.local import Records

        path = self.settings.state_dir / "sagelab.db"
        if not path.is_file():
            raise ExecutionError(f"no executions in {self.settings.root} yet (no {STATE_DIR}/sagelab.db): run a pipeline with `sagelab run PIPELINE`")
        records = Records(path)
        records.mark_interrupted()
        return records

    def execution(self, reference: str) -> Execution:
        """An execution by id, unique id prefix, "latest", or the ARN a local execution has."""
        records = self.records()
        return self._execution(records, records.execution(reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference))

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True) -> list[Execution]:
        """The newest executions; `detail` is for SageMaker's sake (here everything is at hand)."""
        records = self.records()
        return [self._execution(records, record) for record in records.executions(limit, pipeline)]

    def _execution(self, records: Records, record: ExecutionRecord) -> Execution:
        steps = {
            s.name: Step(s.name, s.type, s.status, timestamp(s.started), timestamp(s.ended), s.failure_reason, s.job_name, s.attempts,
                         _properties=s.properties or {})  # fmt: skip
            for s in records.steps(record.id)
        }
        # Steps that never started have no record; the definition names them, Pending.
        for raw in record.definition.get("Steps", []):
            steps.setdefault(raw["Name"], Step(raw["Name"], raw.get("Type", ""), "NotStarted", _properties={}))
        return Execution(record.id, record.pipeline, record.status, timestamp(record.started), timestamp(record.ended), record.failure_reason,
                         dict(record.parameters), steps, self._arn(record.pipeline, record.id), record.definition, self)  # fmt: skip

    def _arn(self, pipeline: str, execution_id: str) -> str:
        return f"arn:aws:sagemaker:{self.settings.region}:{self.settings.account}:pipeline/{pipeline.lower()}/execution/{execution_id}"

    def log_lines(self, execution: Execution, step: str) -> Iterator[str]:
        saved = {s.name: s for s in self.records().steps(execution.id)}
        path = saved[step].log_path if step in saved else None
        if not path or not Path(path).is_file():
            raise ExecutionError(f"step {step} of execution {execution.id} has no log (it did not run a job)")
        with open(path, encoding="utf-8", errors="replace") as log:
            for line in log:
                yield line.rstrip("\n")

    def get_bytes(self, uri: str) -> bytes:
        from sagelab.errors import StoreError

        try:
            return self.store.get_bytes(uri)
        except StoreError as exc:
            raise ExecutionError(str(exc)) from None

    def list(self, uri: str) -> list[ObjectInfo]:
        return list(self.store.list(uri))

    def start(self, loaded: Loaded, parameters: Mapping[str, Any], *, cache: str | None = None, listener: Listener | None = None,
              select: Selection | None = None) -> Execution:  # fmt: skip
        """Run the definition to its end on this machine."""
        from sagelab.engines.local import LocalEngine

        engine = LocalEngine(self.settings, self._store)
        finished = engine.start(loaded.definition, loaded.name, dict(parameters), listener, loaded.artifacts,
                                cache=cache or self.settings.cache, select=select)  # fmt: skip
        return self._execution(engine.records, engine.records.execution(finished.id))

    def retry(self, reference: str, *, cache: str | None = None, listener: Listener | None = None) -> Execution:
        from sagelab.engines.local import LocalEngine

        engine = LocalEngine(self.settings)
        finished = engine.retry(self.records().execution(reference).id, listener, cache=cache or self.settings.cache)
        return self._execution(engine.records, engine.records.execution(finished.id))


# Describe* operation and its name parameter, by the step type a job step's Metadata names.
_DESCRIBE = {
    "Processing": ("DescribeProcessingJob", "ProcessingJobName"),
    "Training": ("DescribeTrainingJob", "TrainingJobName"),
    "Transform": ("DescribeTransformJob", "TransformJobName"),
}


class SageMakerBackend:
    """Executions on SageMaker Pipelines, read with the profile's credentials."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: SageMakerEngine | None = None
        self._store: ObjectStore | None = None

    @property
    def engine(self) -> SageMakerEngine:
        if self._engine is None:
            from sagelab.engines.sagemaker import SageMakerEngine

            self._engine = SageMakerEngine(self.settings)
        return self._engine

    def execution(self, reference: str) -> Execution:
        arn = self.engine.find_execution(reference)
        return self.from_snapshot(self.engine.snapshot(arn))

    def from_snapshot(self, snapshot: ExecutionSnapshot) -> Execution:
        """The Execution a snapshot describes, with its parameters and definition (two calls) and step properties read when asked."""
        import json

        clients = self.engine.clients
        parameters = {p["Name"]: p["Value"]
                      for page in clients.pages("sagemaker", "ListPipelineParametersForExecution", snapshot.arn, PipelineExecutionArn=snapshot.arn)
                      for p in page.get("PipelineParameters", [])}  # fmt: skip
        described = clients.call("sagemaker", "DescribePipelineDefinitionForExecution", snapshot.arn, PipelineExecutionArn=snapshot.arn)
        definition = json.loads(described.get("PipelineDefinition") or "{}")
        steps = {}
        for s in snapshot.steps:
            step = Step(s.name, s.type or "", s.status, timestamp(s.started), timestamp(s.ended), s.failure_reason,
                        s.job_arn.rsplit("/", 1)[-1] if s.job_arn else None, s.attempts or 0)  # fmt: skip
            step._load_properties = self._describer(step.type, s.job_arn)
            steps[s.name] = step
        return Execution(snapshot.id, snapshot.pipeline, snapshot.status, timestamp(snapshot.started), timestamp(snapshot.ended),
                         snapshot.failure_reason, parameters, steps, snapshot.arn, definition, self)  # fmt: skip

    def _describer(self, step_type: str, job_arn: str | None) -> Any:
        if job_arn is None or step_type not in _DESCRIBE:
            return None
        operation, name_field = _DESCRIBE[step_type]
        name = job_arn.rsplit("/", 1)[-1]

        def describe() -> dict[str, Any]:
            from sagelab.engines.sagemaker.clients import clean

            return clean(self.engine.clients.call("sagemaker", operation, f"{step_type.lower()} job {name}", **{name_field: name}))

        return describe

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True) -> list[Execution]:
        """The newest executions; without `detail`, from ListPipelineExecutions alone (no steps nor parameters: one call a page)."""
        summaries = self.engine.executions(pipeline, limit)
        if detail:
            return [self.execution(summary["PipelineExecutionArn"]) for summary in summaries]
        return [Execution(str(s["PipelineExecutionArn"]).rsplit("/", 1)[-1], str(s.get("PipelineName", "")), str(s.get("PipelineExecutionStatus", "")),
                          timestamp(_seconds(s.get("StartTime"))), None, s.get("PipelineExecutionFailureReason") or None, {}, {},
                          str(s["PipelineExecutionArn"]), {}, self) for s in summaries]  # fmt: skip

    def start(self, loaded: Loaded, parameters: Mapping[str, Any], *, cache: str | None = None, listener: Listener | None = None,
              progress: Any = None) -> Execution:  # fmt: skip
        """Upload the definition's code and data, upsert it, start it and follow it to its end on SageMaker.

        `cache` is for local runs (on SageMaker, a step's CacheConfig decides); `progress` is `submit`'s upload progress.
        """
        import json

        arn = self.engine.submit(json.dumps(loaded.definition.raw), loaded.name, parameters, loaded.artifacts, progress=progress)
        self.engine.watch(arn, follow(listener, loaded.name) if listener else lambda snapshot: None)
        return self.execution(arn)

    def log_lines(self, execution: Execution, step: str) -> Iterator[str]:
        return self.engine.logs(execution.arn, step)

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from sagelab.store import S3Store

            self._store = S3Store(self.settings.region, self.settings.s3_endpoint_url, self.settings.aws_profile)
        return self._store

    def get_bytes(self, uri: str) -> bytes:
        from sagelab.errors import StoreError

        try:
            return self.store.get_bytes(uri)
        except StoreError as exc:
            raise ExecutionError(str(exc)) from None

    def list(self, uri: str) -> list[ObjectInfo]:
        return list(self.store.list(uri))


def follow(listener: Listener, pipeline: str) -> Callable[[ExecutionSnapshot], None]:
    """Feed SageMaker's snapshots to a local run's listener (the live view, the API's printer), as if they were local steps."""
    from sagelab.engines.local import Execution as LiveExecution
    from sagelab.engines.local import StepState

    seen: dict[str, tuple[str, float | None]] = {}

    def on_snapshot(snapshot: ExecutionSnapshot) -> None:
        steps = {
            s.name: StepState(s.name, s.type or "", s.status, started=s.started, ended=s.ended, failure_reason=s.failure_reason,
                              note=f"cached: reused from execution {s.cached_from}" if s.cached_from else None)  # fmt: skip
            for s in snapshot.steps
        }
        execution = LiveExecution(snapshot.id, pipeline, snapshot.arn, steps, snapshot.started or time.time(),
                                  snapshot.status, snapshot.ended, snapshot.failure_reason)  # fmt: skip
        for state in steps.values():
            if seen.get(state.name) != (state.status, state.ended):
                seen[state.name] = (state.status, state.ended)
                listener(execution, state)
        if snapshot.finished:
            listener(execution, None)

    return on_snapshot


def _seconds(value: Any) -> float | None:
    """A boto3 timestamp (datetime) as Unix seconds."""
    return value.timestamp() if hasattr(value, "timestamp") else None
