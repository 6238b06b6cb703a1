"""`LocalEngine`: runs a pipeline definition on this machine, a process per step.

Steps whose dependencies have succeeded run in parallel (up to `concurrency`); a condition
decides which branch runs and the other branch is skipped; after a failure no new step
starts, running ones finish, and the execution fails, as on SageMaker.
"""

from __future__ import annotations

import os
import string
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from sagelab.config import Settings
from sagelab.containers import sandbox
from sagelab.definition import PipelineDefinition, Step, dependencies, evaluate, find_problems
from sagelab.definition.graph import condition_parent
from sagelab.engines.local.condition import ConditionRunner, FailRunner
from sagelab.engines.local.hosting import EndpointConfigRunner, EndpointRunner, ModelRunner
from sagelab.engines.local.job import Job, StepFailed, StepResult
from sagelab.engines.local.processing import ProcessingRunner
from sagelab.engines.local.records import ExecutionRecord, Records, StepRecord
from sagelab.engines.local.register import RegisterModelRunner
from sagelab.engines.local.scope import ExecutionScope
from sagelab.engines.local.training import TrainingRunner
from sagelab.engines.local.transform import TransformRunner
from sagelab.errors import DefinitionError, NoSuchKey, Problem, SagelabError
from sagelab.store import LocalStore
from sagelab.store.s3_server import S3Server


class StepRunner(Protocol):
    def run(self, job: Job) -> StepResult: ...


# Step type → runner. Adding a step type is adding a runner module and a line here.
RUNNERS: dict[str, StepRunner] = {
    "Processing": ProcessingRunner(),
    "Training": TrainingRunner(),
    "Condition": ConditionRunner(),
    "Fail": FailRunner(),
    "RegisterModel": RegisterModelRunner(),
    "Model": ModelRunner(),
    "EndpointConfig": EndpointConfigRunner(),
    "Endpoint": EndpointRunner(),
    "Transform": TransformRunner(),
}
_INLINE = {"Condition", "Fail", "RegisterModel", "Model", "EndpointConfig"}  # quick: run on the scheduler's thread, no process
_ID_ALPHABET = string.ascii_lowercase + string.digits
FINAL = ("Succeeded", "Failed", "Stopped", "Skipped", "NotStarted")


@dataclass
class StepState:
    """A step's progress in one execution, as the live view and the records see it."""

    name: str
    type: str
    status: str = "Pending"
    job_name: str | None = None
    started: float | None = None
    ended: float | None = None
    failure_reason: str | None = None
    log_path: str | None = None
    outputs: list[str] = field(default_factory=list)
    properties: dict[str, Any] | None = None

    def record(self) -> StepRecord:
        return StepRecord(self.name, self.type, self.status, self.job_name, self.started, self.ended,
                          self.properties, self.failure_reason, self.log_path)  # fmt: skip


@dataclass
class Execution:
    id: str
    pipeline: str
    arn: str
    steps: dict[str, StepState]
    started: float
    status: str = "Executing"
    ended: float | None = None
    failure_reason: str | None = None


Listener = Callable[[Execution, StepState | None], None]


def unsupported_steps(definition: PipelineDefinition) -> list[Problem]:
    """A problem for each step the local engine cannot run, so nothing is ever silently skipped."""
    return [
        Problem(f"{step.pointer}/Type", f"step {step.name}: {step.type} steps do not run locally yet; sagelab runs {', '.join(RUNNERS)}")
        for step in definition.all_steps()
        if step.type not in RUNNERS
    ]


def check(definition: PipelineDefinition, source: str = "the definition") -> None:
    """Validate the definition and refuse step types this engine cannot run."""
    problems = find_problems(definition) + unsupported_steps(definition)
    if problems:
        raise DefinitionError(problems, source)


def new_execution_id() -> str:
    """12 lowercase letters and digits, like SageMaker's execution ids."""
    return "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in os.urandom(12))


class LocalEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = LocalStore(settings.store)
        self.records = Records(settings.state_dir / "sagelab.db")

    def start(
        self,
        definition: PipelineDefinition,
        pipeline: str,
        parameters: dict[str, Any] | None = None,
        listener: Listener | None = None,
        artifacts: Mapping[str, Path | bytes] | None = None,
    ) -> Execution:
        """Run the definition to the end and return the finished execution.

        `artifacts` are the local code and data the definition's S3 URIs stand for; each is
        uploaded unless the store has it already (their keys are named by content).
        """
        check(definition, f"pipeline {pipeline}")
        typed = definition.typed_parameters(parameters or {})
        self.upload(artifacts or {})
        execution_id = new_execution_id()
        region, account = self.settings.region, self.settings.account
        pipeline_arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline.lower()}"
        execution = Execution(
            id=execution_id,
            pipeline=pipeline,
            arn=f"{pipeline_arn}/execution/{execution_id}",
            steps={s.name: StepState(s.name, s.type) for s in definition.all_steps()},
            started=time.time(),
        )
        self.records.create_execution(
            ExecutionRecord(execution.id, pipeline, "Executing", definition.raw, typed, execution.started, None, None)
        )
        variables = {
            "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(execution.started)),
            "PipelineName": pipeline,
            "PipelineArn": pipeline_arn,
            "PipelineExecutionId": execution.id,
            "PipelineExecutionArn": execution.arn,
        }
        run = _Run(self, definition, execution, ExecutionScope(definition, typed, variables, self.store), listener)
        run.execute()
        return execution


    def upload(self, artifacts: Mapping[str, Path | bytes]) -> None:
        for uri, source in artifacts.items():
            try:
                self.store.head(uri)
            except NoSuchKey:
                if isinstance(source, bytes):
                    self.store.put_bytes(uri, source)
                else:
                    self.store.put_file(uri, source)


class _Run:
    """The scheduler of one execution; all bookkeeping happens on the calling thread."""

    def __init__(self, engine: LocalEngine, definition: PipelineDefinition, execution: Execution,
                 scope: ExecutionScope, listener: Listener | None) -> None:  # fmt: skip
        self.engine = engine
        self.definition = definition
        self.execution = execution
        self.scope = scope
        self.listener = listener or (lambda execution, step: None)
        self.graph = dependencies(definition)
        self.order = list(definition.all_steps())
        self.log_dir = engine.settings.state_dir / "executions" / execution.id
        self.running: dict[Future[StepResult], Job] = {}
        self.failed: list[str] = []
        self.stopped = False

    def execute(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        sandbox.prepare_mountpoint()
        with S3Server(self.engine.store) as server, ThreadPoolExecutor(self.engine.settings.concurrency) as pool:
            self.step_env = {
                "AWS_ENDPOINT_URL_S3": server.endpoint,
                "AWS_ACCESS_KEY_ID": "sagelab-local",
                "AWS_SECRET_ACCESS_KEY": "sagelab-local",
                "AWS_DEFAULT_REGION": self.engine.settings.region,
                "AWS_REGION": self.engine.settings.region,
            }
            try:
                self._loop(pool)
            except KeyboardInterrupt:
                self._stop()
        self._finish()

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while True:
            progressed = self._schedule(pool)
            if not self.running:
                if progressed:
                    continue
                return
            done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
            for future in done:
                job = self.running.pop(future)
                self._complete(job.step, future)

    def _schedule(self, pool: ThreadPoolExecutor) -> bool:
        """Start or skip every step that can be decided now; True if any state changed."""
        changed = False
        for step in self.order:
            state = self.execution.steps[step.name]
            if state.status != "Pending" or self.failed or self.stopped:
                continue
            needed = [self.execution.steps[name] for name in self.graph[step.name]]
            if any(s.status in ("Skipped", "NotStarted") for s in needed) or not self._branch_taken(step):
                self._set(state, "Skipped")
                changed = True
            elif all(s.status == "Succeeded" for s in needed):
                self._launch(step, pool)
                changed = True
        return changed

    def _branch_taken(self, step: Step) -> bool:
        parent = condition_parent(step)
        if parent is None:
            return True
        condition = self.execution.steps[parent]
        if condition.status != "Succeeded" or condition.properties is None:
            return True  # not decided yet; the step also waits for its condition
        wanted = step.branch[-1].endswith(":if")
        return bool(condition.properties["Outcome"]) == wanted

    def _launch(self, step: Step, pool: ThreadPoolExecutor) -> None:
        state = self.execution.steps[step.name]
        state.job_name = f"pipelines-{self.execution.id}-{step.name[:29]}-{new_execution_id()[:10]}"
        state.log_path = str(self.log_dir / f"{step.name}.log")
        state.started = time.time()
        self._set(state, "Executing")
        try:
            arguments = {k: v for k, v in step.arguments.items() if not (step.type == "Condition" and k in ("IfSteps", "ElseSteps"))}
            job = Job(
                step=step,
                arguments=evaluate(arguments, self.scope),
                job_name=state.job_name,
                root=self.engine.settings.state_dir / "jobs" / state.job_name,
                log_path=self.log_dir / f"{step.name}.log",
                store=self.engine.store,
                settings=self.engine.settings,
                step_env=self.step_env,
                execution_arn=self.execution.arn,
            )
        except SagelabError as exc:
            self._fail(state, f"cannot resolve the step's arguments: {exc}")
            return
        job.root.mkdir(parents=True, exist_ok=True)
        job.log_path.touch()
        runner = RUNNERS[step.type]
        if step.type in _INLINE:
            future: Future[StepResult] = Future()
            try:
                future.set_result(runner.run(job))
            except Exception as exc:  # noqa: BLE001 - handed to _complete like a worker's error
                future.set_exception(exc)
            self._complete(step, future)
        else:
            self.running[pool.submit(runner.run, job)] = job

    def _complete(self, step: Step, future: Future[StepResult]) -> None:
        state = self.execution.steps[step.name]
        state.ended = time.time()
        try:
            result = future.result()
        except StepFailed as exc:
            if self.stopped:
                state.failure_reason = "stopped by the user"
                self._set(state, "Stopped")
            else:
                self._fail(state, str(exc))
            return
        except SagelabError as exc:
            self._fail(state, str(exc))
            return
        if self.stopped:
            state.failure_reason = "stopped by the user"
            self._set(state, "Stopped")
            return
        state.properties = result.properties
        state.outputs = result.outputs
        self.scope.properties[step.name] = result.properties
        self._set(state, "Succeeded")

    def _fail(self, state: StepState, reason: str) -> None:
        state.failure_reason = reason
        state.ended = state.ended or time.time()
        self.failed.append(state.name)
        self._set(state, "Failed")

    def _stop(self) -> None:
        """Ctrl-C: terminate running step processes and mark the execution Stopped."""
        self.stopped = True
        jobs = list(self.running.values())
        for job in jobs:
            job.terminate()
        for future, job in list(self.running.items()):
            try:
                future.result(timeout=10)
            except BaseException:  # noqa: BLE001 - the step is reported as Stopped either way
                pass
            self._complete(job.step, future)
        self.running.clear()

    def _finish(self) -> None:
        execution = self.execution
        for state in execution.steps.values():
            if state.status == "Pending":
                self._set(state, "NotStarted")
        if self.stopped:
            execution.status, execution.failure_reason = "Stopped", "stopped by the user"
        elif self.failed:
            first = execution.steps[self.failed[0]]
            execution.status = "Failed"
            execution.failure_reason = (
                first.failure_reason if first.type == "Fail" else f"step {first.name} failed: {first.failure_reason}"
            )
        else:
            execution.status = "Succeeded"
        execution.ended = time.time()
        self.engine.records.finish_execution(execution.id, execution.status, execution.ended, execution.failure_reason)
        self.listener(execution, None)

    def _set(self, state: StepState, status: str) -> None:
        state.status = status
        self.engine.records.save_step(self.execution.id, state.record())
        self.listener(self.execution, state)
