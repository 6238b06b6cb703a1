"""Where executions run and are read: this machine (`LocalBackend`) or SageMaker (`SageMakerBackend`).

The profile's engine picks one, once (`backend_for`); the Python API and the CLI then ask it the
same questions whichever it is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.api.model import Execution, Step, timestamp
from sagelab.config import STATE_DIR, Settings
from sagelab.errors import ConfigError, DefinitionError, ExecutionError

if TYPE_CHECKING:
    from sagelab.api.hosting import Endpoints
    from sagelab.api.registry import Models
    from sagelab.definition.loader import Loaded
    from sagelab.engines.local import ExecutionRecord, Listener, Records, Selection
    from sagelab.engines.sagemaker import SageMakerEngine
    from sagelab.engines.sagemaker.snapshot import ExecutionSnapshot
    from sagelab.store import ObjectStore
    from sagelab.store.base import ObjectInfo


class Backend(Protocol):
    """What the Python API and the CLI ask of an engine."""

    settings: Settings

    @property
    def models(self) -> Models: ...

    @property
    def endpoints(self) -> Endpoints: ...

    def execution(self, reference: str) -> Execution: ...

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True, offset: int = 0) -> list[Execution]: ...

    def pipelines(self) -> list[dict[str, Any]]: ...

    def log_lines(self, execution: Execution, step: str) -> Iterator[str]: ...

    def log_chunks(self, reference: str, step: str | None = None, follow: bool = False) -> Iterator[tuple[str, bytes]]: ...

    def start(self, loaded: Loaded, parameters: Mapping[str, Any], *, cache: str | None = None, listener: Listener | None = None,
              select: Selection | None = None, hooks: RunHooks | None = None) -> Execution: ...

    def retry(self, reference: str, *, cache: str | None = None, listener: Listener | None = None) -> Execution: ...

    def stop(self, reference: str) -> str: ...

    def get_bytes(self, uri: str) -> bytes: ...

    def list(self, uri: str) -> list[ObjectInfo]: ...


@dataclass(frozen=True)
class RunHooks:
    """What a front end shows around a run on SageMaker (a local run's listener says it all)."""

    upload: Any = None  # `SageMakerEngine.submit`'s progress: (uri, size) -> context giving a bytes callback
    started: Callable[[str], None] | None = None  # told the execution ARN once it started
    interrupted: Callable[[str], bool] | None = None  # Ctrl-C while following: True stops the execution, False leaves it running


def backend_for(settings: Settings, store: ObjectStore | None = None) -> LocalBackend | SageMakerBackend:
    """The backend the profile's engine names; `store` is a local run's object store (default: the project's)."""
    return SageMakerBackend(settings) if settings.engine == "sagemaker" else LocalBackend(settings, store)


class _StoreReads:
    """Reading what executions wrote, from the backend's store."""

    @property
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def get_bytes(self, uri: str) -> bytes:
        from sagelab.errors import StoreError

        try:
            return self.store.get_bytes(uri)
        except StoreError as exc:
            raise ExecutionError(str(exc)) from None

    def list(self, uri: str) -> list[ObjectInfo]:
        return list(self.store.list(uri))


class LocalBackend(_StoreReads):
    """Executions on this machine: the project's records (`.sagelab/sagelab.db`) and its store."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        """`store`: the runs' object store (default: the project's folder, or the profile's S3 when it sets s3_endpoint_url)."""
        self.settings = settings
        self._store = store

    @property
    def models(self) -> Models:
        """The project's model registry."""
        from sagelab.api.registry import LocalModels

        return LocalModels(self.settings)

    @property
    def endpoints(self) -> Endpoints:
        """Endpoints served on this machine."""
        from sagelab.api.hosting import LocalEndpoints

        return LocalEndpoints(self.settings)

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

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True, offset: int = 0) -> list[Execution]:
        """The newest executions, `offset` of them skipped; `detail` is for SageMaker's sake (here everything is at hand)."""
        records = self.records()
        return [self._execution(records, record) for record in records.executions(limit, pipeline, offset)]

    def pipelines(self) -> list[dict[str, Any]]:
        """Each pipeline that ran here: its name, number of executions, and its newest execution's start and status."""
        return [{"name": name, "executions": count, "last_started": timestamp(started), "last_status": status}
                for name, count, started, status in self.records().pipelines()]  # fmt: skip

    def _execution(self, records: Records, record: ExecutionRecord) -> Execution:
        steps = {
            s.name: Step(s.name, s.type, s.status, timestamp(s.started), timestamp(s.ended), s.failure_reason, s.job_name, s.attempts,
                         s.reused_from, _properties=s.properties or {})  # fmt: skip
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

    def log_chunks(self, reference: str, step: str | None = None, follow: bool = False) -> Iterator[tuple[str, bytes]]:
        """(step, bytes) as the steps' logs grow, a megabyte at a time (a log of any size in flat memory); with
        `follow`, until the execution ends.

        Raises:
            ExecutionError: no such execution, or `step` has no log.
        """
        records = self.records()
        record = records.execution(reference)

        def logged() -> list[Any]:
            return [s for s in records.steps(record.id) if s.log_path and (step is None or s.name == step)]

        steps = logged()
        if step and not steps:
            known = ", ".join(s.name for s in records.steps(record.id) if s.log_path) or "none"
            raise ExecutionError(f"execution {record.id} has no log for step {step}; steps with logs: {known}")
        positions: dict[str, int] = {}
        while True:
            for saved in steps:
                try:
                    with open(saved.log_path, "rb") as log:
                        end = log.seek(0, os.SEEK_END)
                        log.seek(positions.get(saved.name, 0))
                        while chunk := log.read(min(1 << 20, end - log.tell())):
                            yield saved.name, chunk
                        positions[saved.name] = log.tell()
                except OSError:
                    continue
            if not follow or records.execution(record.id).status != "Executing":
                return
            time.sleep(0.5)
            steps = logged()

    def stop(self, reference: str) -> str:
        raise ConfigError(f"profile {self.settings.profile} runs locally; a local execution stops with Ctrl-C in its terminal")

    def start(self, loaded: Loaded, parameters: Mapping[str, Any], *, cache: str | None = None, listener: Listener | None = None,
              select: Selection | None = None, hooks: RunHooks | None = None) -> Execution:  # fmt: skip
        """Run the definition to its end on this machine (Ctrl-C stops it: Stopped, retryable)."""
        from sagelab.engines.local import LocalEngine

        engine = LocalEngine(self.settings, self._store)
        finished = engine.start(loaded.definition, loaded.name, dict(parameters), listener, loaded.artifacts,
                                cache=cache or self.settings.cache, select=select)  # fmt: skip
        return self._execution(engine.records, engine.records.execution(finished.id))

    def run_job(self, step_type: str, request: Mapping[str, Any], *, listener: Listener | None = None) -> Execution:
        """Run one Create*Job request (step type Processing, Training, Transform or Tuning) to its end on this machine,
        as a one-step execution named `<resource>/<job name>` (`LocalEngine.run_job`)."""
        from sagelab.engines.local import LocalEngine

        engine = LocalEngine(self.settings, self._store)
        finished = engine.run_job(step_type, request, listener)
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


class SageMakerBackend(_StoreReads):
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

    @property
    def models(self) -> Models:
        """SageMaker's Model Registry."""
        from sagelab.api.registry import SageMakerModels

        return SageMakerModels(self.engine.registry)

    @property
    def endpoints(self) -> Endpoints:
        """SageMaker's endpoints."""
        from sagelab.api.hosting import SageMakerEndpoints

        return SageMakerEndpoints(self.engine.endpoints)

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
                        s.job_arn.rsplit("/", 1)[-1] if s.job_arn else None, s.attempts or 0, s.cached_from)  # fmt: skip
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

    def executions(self, pipeline: str | None = None, limit: int = 20, detail: bool = True, offset: int = 0) -> list[Execution]:
        """The newest executions, `offset` of them skipped; without `detail`, from ListPipelineExecutions alone (no steps nor
        parameters: one call a page)."""
        summaries = self.engine.executions(pipeline, limit + offset)[offset:]
        if detail:
            return [self.execution(summary["PipelineExecutionArn"]) for summary in summaries]
        return [Execution(str(s["PipelineExecutionArn"]).rsplit("/", 1)[-1], str(s.get("PipelineName", "")), str(s.get("PipelineExecutionStatus", "")),
                          timestamp(_seconds(s.get("StartTime"))), None, s.get("PipelineExecutionFailureReason") or None, {}, {},
                          str(s["PipelineExecutionArn"]), {}, self) for s in summaries]  # fmt: skip

    def pipelines(self) -> list[dict[str, Any]]:
        """Each pipeline of the account and region with its newest execution's start and status (the number of executions
        is not asked: it would take a call per page of them)."""
        found = []
        for name in self.engine.pipeline_names():
            newest = self.engine.executions(name, 1)
            found.append({"name": name, "executions": None, "last_started": timestamp(_seconds(newest[0].get("StartTime"))) if newest else None,
                          "last_status": str(newest[0].get("PipelineExecutionStatus", "")) if newest else "NotStarted"})  # fmt: skip
        return found

    def start(self, loaded: Loaded, parameters: Mapping[str, Any], *, cache: str | None = None, listener: Listener | None = None,
              select: Selection | None = None, hooks: RunHooks | None = None) -> Execution:  # fmt: skip
        """Upload the definition's code and data, upsert it, start it and follow it to its end on SageMaker.

        `cache` is for local runs (on SageMaker, a step's CacheConfig decides).

        Raises:
            ConfigError: `select` (selective execution runs locally only).
        """
        import json

        if select is not None:
            raise ConfigError("--from, --only and --reference run locally; on SageMaker, start a selective execution from Studio")
        from sagelab.api.costs import unavailable_instances

        problems = unavailable_instances(loaded.definition, parameters, self.settings.region)
        if problems:  # before anything is uploaded or upserted: SageMaker would fail the step only once it starts
            raise DefinitionError(problems, loaded.name)
        hooks = hooks or RunHooks()
        arn = self.engine.submit(json.dumps(loaded.definition.raw), loaded.name, parameters, loaded.artifacts, progress=hooks.upload)
        if hooks.started:
            hooks.started(arn)
        self._follow(arn, loaded.name, listener, hooks)
        return self.execution(arn)

    def _follow(self, arn: str, pipeline: str, listener: Listener | None, hooks: RunHooks) -> None:
        try:
            self.engine.watch(arn, follow(listener, pipeline) if listener else lambda snapshot: None)
        except KeyboardInterrupt:
            if hooks.interrupted is None:
                raise
            if hooks.interrupted(arn):
                self.engine.stop(arn)

    def retry(self, reference: str, *, cache: str | None = None, listener: Listener | None = None) -> Execution:
        """RetryPipelineExecution, followed to its end."""
        arn = self.engine.retry(self.engine.find_execution(reference))
        self._follow(arn, arn.split(":pipeline/", 1)[-1].split("/", 1)[0], listener, RunHooks())
        return self.execution(arn)

    def stop(self, reference: str) -> str:
        """StopPipelineExecution; returns the execution's ARN."""
        arn = self.engine.find_execution(reference)
        self.engine.stop(arn)
        return arn

    def log_chunks(self, reference: str, step: str | None = None, follow: bool = False) -> Iterator[tuple[str, bytes]]:
        """(step, line) of the step's job log in CloudWatch.

        Raises:
            ExecutionError: no step named (a SageMaker execution's logs are read one job at a time).
            ConfigError: `follow` (it follows local runs; `sagelab run --profile ...` follows a SageMaker one).
        """
        if step is None:
            raise ExecutionError("on SageMaker, name the step whose job log to read: sagelab logs EXECUTION STEP --profile ...")
        if follow:
            raise ConfigError("--follow follows local runs; a SageMaker run is followed by `sagelab run --profile ...`, its logs read when its job ends")
        for line in self.engine.logs(self.engine.find_execution(reference), step):
            yield step, f"{line}\n".encode()

    def log_lines(self, execution: Execution, step: str) -> Iterator[str]:
        return self.engine.logs(execution.arn, step)

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from sagelab.store import S3Store

            self._store = S3Store(self.settings.region, self.settings.s3_endpoint_url, self.settings.aws_profile)
        return self._store



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
