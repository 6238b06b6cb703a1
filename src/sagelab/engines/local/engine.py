"""`LocalEngine`: runs a pipeline definition on this machine, a process per step.

Besides `start`, it offers what SageMaker offers around executions: `retry` (as
RetryPipelineExecution: the failed, stopped or interrupted part runs again under the same
execution id) and selective execution (`select`: run some steps, reuse the rest from a
reference execution, as SelectiveExecutionConfig does). `run_job` runs one Create*Job request
(a job outside any pipeline) as a one-step execution of its own.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.definition import PipelineDefinition, find_problems, parse
from sagelab.engines.local.cache import StepCache
from sagelab.engines.local.records import ExecutionRecord, Records
from sagelab.engines.local.runners import unsupported_steps
from sagelab.engines.local.scheduler import UNFINISHED, Execution, Listener, Scheduler, StepState, new_id
from sagelab.engines.local.scope import ExecutionScope
from sagelab.errors import DefinitionError, ExecutionError, NoSuchKey
from sagelab.store import LocalStore, ObjectStore
from sagelab.store.base import sha256_of

_SHA256 = re.compile(r"[0-9a-f]{64}")
# The jobs `run_job` runs: step type → the Create*Job request's member naming the job, and the resource of the job's ARN.
JOBS = {
    "Processing": ("ProcessingJobName", "processing-job"),
    "Training": ("TrainingJobName", "training-job"),
    "Transform": ("TransformJobName", "transform-job"),
    "Tuning": ("HyperParameterTuningJobName", "hyper-parameter-tuning-job"),
}


def job_pipeline(step_type: str, name: str) -> str:
    """The pipeline name of job `name`'s one-step execution, `training-job/<name>`: no pipeline's name has a slash."""
    return f"{JOBS[step_type][1]}/{name}"


def job_of(pipeline: str) -> tuple[str, str] | None:
    """(step type, job name) when `pipeline` is the name of a job's one-step execution (`job_pipeline`), else None."""
    resource, slash, name = pipeline.partition("/")
    found = next((step_type for step_type, (_, kind) in JOBS.items() if kind == resource), None)
    return (found, name) if found and slash and name else None


def check(definition: PipelineDefinition, source: str = "the definition") -> None:
    """Validate the definition and refuse step types this engine cannot run, all problems at once."""
    problems = find_problems(definition) + unsupported_steps(definition)
    if problems:
        raise DefinitionError(problems, source)


@dataclass(frozen=True)
class Selection:
    """Which steps a selective execution runs; the others are taken from `reference`."""

    steps: tuple[str, ...] = ()  # run exactly these
    from_step: str | None = None  # run this step and everything downstream of it
    reference: str | None = None  # an execution id; default: the latest Succeeded one


class LocalEngine:
    """Runs definitions here. Its store is the project folder, or any `ObjectStore` given —
    an `S3Store` makes a hybrid run: steps run locally on data in real S3."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.store: ObjectStore = store if store is not None else LocalStore(settings.store)
        self.records = Records(settings.state_dir / "sagelab.db")
        self.records.mark_interrupted()

    def start(
        self,
        definition: PipelineDefinition,
        pipeline: str,
        parameters: dict[str, Any] | None = None,
        listener: Listener | None = None,
        artifacts: Mapping[str, Path | bytes] | None = None,
        *,
        cache: str = "sagemaker",
        select: Selection | None = None,
        job_names: Mapping[str, str] | None = None,
    ) -> Execution:
        """Run the definition to the end and return the finished execution.

        `artifacts` are the local code and data the definition's S3 URIs stand for; each is
        uploaded unless the store has it already (their keys are named by content).
        `cache` is "sagemaker" (honour CacheConfig), "content" (every job step, keyed by its
        code and data too) or "off". `job_names` names a step's job (step → name) instead of
        the pipeline service's `pipelines-<execution>-<step>-<random>`.
        """
        check(definition, f"pipeline {pipeline}")
        typed = definition.typed_parameters(parameters or {})
        digests = self.upload(artifacts or {})
        steps = {s.name: StepState(s.name, s.type) for s in definition.all_steps()}
        if select is not None:
            self._select(definition, pipeline, steps, select)
        execution_id = new_id()
        execution = Execution(execution_id, pipeline, self._arn(pipeline, execution_id), steps, time.time(), job_names=dict(job_names or {}))
        self.records.create_execution(
            ExecutionRecord(execution.id, pipeline, "Executing", definition.raw, typed, execution.started, None, None, digests)
        )
        for state in steps.values():
            if state.status == "Succeeded":
                self.records.save_step(execution.id, state.record())
        self._run(definition, execution, typed, listener, cache)
        return execution

    def run_job(self, step_type: str, request: Mapping[str, Any], listener: Listener | None = None) -> Execution:
        """Run one CreateProcessingJob, CreateTrainingJob, CreateTransformJob or CreateHyperParameterTuningJob request
        to its end: the job a pipeline step with these Arguments (the request without its job name) would run, by the
        same runner, in a one-step execution of its own (pipeline `job_pipeline(...)`, its step named after the job),
        so it is recorded, logged and stopped as any step. The job takes the request's name; nothing comes from the cache.

        Raises:
            DefinitionError: the request does not fit the API's request shape.
        """
        member, _ = JOBS[step_type]
        name = str(request[member])
        step = {"Name": name, "Type": step_type, "Arguments": {key: value for key, value in request.items() if key != member}}
        definition = parse({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": [step]}, source=f"{step_type} job {name}")
        return self.start(definition, job_pipeline(step_type, name), listener=listener, cache="off", job_names={name: name})

    def retry(self, execution_id: str, listener: Listener | None = None, cache: str = "sagemaker") -> Execution:
        """Run an execution's failed, stopped or interrupted steps again, and whatever they block."""
        record = self.records.execution(execution_id)
        job = job_of(record.pipeline)
        if job is not None:
            raise ExecutionError(f"execution {record.id} ran the {job[0].lower()} job {job[1]}; a job is not retried (nor is it on SageMaker): "
                                 "create another job")  # fmt: skip
        if record.status in ("Succeeded", "Executing"):
            raise ExecutionError(f"execution {record.id} is {record.status}; only a failed, stopped or interrupted one can be retried")
        definition = parse(record.definition, source=f"execution {record.id}")
        self._verify(record)
        steps = {s.name: StepState(s.name, s.type) for s in definition.all_steps()}
        for saved in self.records.steps(record.id):
            if saved.name in steps and saved.status not in UNFINISHED:
                steps[saved.name] = StepState.from_record(saved)
        execution = Execution(record.id, record.pipeline, self._arn(record.pipeline, record.id), steps, record.started)
        self.records.reopen_execution(record.id)
        self._run(definition, execution, record.parameters, listener, cache)
        return execution

    def upload(self, artifacts: Mapping[str, Path | bytes]) -> dict[str, str]:
        """Put each artifact in the store unless an object with the same bytes is there; return URI → SHA-256.

        Artifacts sit under content-addressed keys that later runs reuse, so a key's presence is
        not trusted: an object whose bytes differ from its source (changed through the S3
        endpoint or in the store's folder) is replaced.
        """
        digests = {}
        for uri, source in artifacts.items():
            digests[uri] = hashlib.sha256(source).hexdigest() if isinstance(source, bytes) else _file_sha256(source)
            try:
                if self.store.sha256(uri) == digests[uri]:
                    continue
            except NoSuchKey:
                pass
            if isinstance(source, bytes):
                self.store.put_bytes(uri, source)
            else:
                self.store.put_file(uri, source)
        return digests

    def _verify(self, record: ExecutionRecord) -> None:
        """Refuse to retry on code or data that changed in the store since the execution uploaded it."""
        for uri, digest in record.artifacts.items():
            if not _SHA256.fullmatch(digest):  # recorded by an older sagelab, which kept the source's path
                continue
            try:
                changed = self.store.sha256(uri) != digest
            except NoSuchKey:
                changed = True
            if changed:
                raise ExecutionError(
                    f"{uri}, which execution {record.id} uploaded, is missing or changed in the store since (its SHA-256 "
                    f"no longer matches); retrying would run other code or data: start the pipeline again with `sagelab run`"
                )

    def _arn(self, pipeline: str, execution_id: str) -> str:
        return f"arn:aws:sagemaker:{self.settings.region}:{self.settings.account}:pipeline/{pipeline.lower()}/execution/{execution_id}"

    def _run(self, definition: PipelineDefinition, execution: Execution, parameters: dict[str, Any],
             listener: Listener | None, cache: str) -> None:  # fmt: skip
        variables = {
            "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(execution.started)),
            "PipelineName": execution.pipeline,
            "PipelineArn": execution.arn.rsplit("/execution/", 1)[0],
            "PipelineExecutionId": execution.id,
            "PipelineExecutionArn": execution.arn,
        }
        if isinstance(self.store, LocalStore):
            self.store.remove_abandoned()  # what a killed run left half-written
        scope = ExecutionScope(definition, parameters, variables, self.store)
        for state in execution.steps.values():
            if state.status == "Succeeded" and state.properties is not None:
                scope.properties[state.name] = state.properties
        step_cache = StepCache(self.records, self.store, cache, execution.pipeline, self.settings.environment)
        Scheduler(self.settings, self.store, self.records, definition, execution, scope, step_cache, listener).execute()

    def _select(self, definition: PipelineDefinition, pipeline: str, steps: dict[str, StepState], select: Selection) -> None:
        """Mark the steps outside the selection Succeeded, with the reference execution's properties."""
        from sagelab.definition import dependencies

        graph = dependencies(definition)
        chosen = set(select.steps)
        if select.from_step:
            chosen.add(select.from_step)
            changed = True
            while changed:  # everything downstream of the chosen steps
                downstream = {name for name, needs in graph.items() if needs & chosen}
                changed = not downstream <= chosen
                chosen |= downstream
        unknown = sorted(chosen - set(steps))
        if unknown:
            raise ExecutionError(f"no step {', '.join(unknown)} in pipeline {pipeline}; steps: {', '.join(steps)}")
        reference = self.records.execution(select.reference) if select.reference else self.records.latest_succeeded(pipeline)
        if reference is None:
            raise ExecutionError(f"selective execution reuses a Succeeded execution of {pipeline}, and there is none yet; run it whole first")
        saved = {s.name: s for s in self.records.steps(reference.id)}
        for name in steps:
            if name in chosen:
                continue
            earlier = saved.get(name)
            if earlier is None or earlier.status not in ("Succeeded", "Skipped"):
                raise ExecutionError(
                    f"step {name} is not selected, so its results come from execution {reference.id}, where it is "
                    f"{earlier.status if earlier else 'absent'}; select it too (--only ...,{name})"
                )
            steps[name] = StepState.from_record(earlier)
            steps[name].note = f"reused from execution {reference.id} (not selected)"


def _file_sha256(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            return sha256_of(stream)
    except OSError as exc:
        raise ExecutionError(f"cannot read {path}, which the pipeline uploads: {exc.strerror}") from None
