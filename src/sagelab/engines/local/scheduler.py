"""The scheduler of one execution: which step runs when, retries, the cache, and the records.

Steps whose dependencies have succeeded run in parallel (up to `concurrency`); a condition
decides which branch runs and the other branch is skipped; after a failure no new step
starts, running ones finish, and the execution fails, as on SageMaker. All bookkeeping
happens on the calling thread; step processes are waited for on a thread pool.
"""

from __future__ import annotations

import os
import signal
import string
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.containers import sandbox
from sagelab.definition import PipelineDefinition, Step, dependencies, evaluate
from sagelab.definition.graph import condition_parent
from sagelab.definition.model import RetryPolicy
from sagelab.definition.requests import request_problems
from sagelab.engines.local import locks
from sagelab.engines.local.cache import Decision, StepCache
from sagelab.engines.local.faults import crash_point
from sagelab.engines.local.job import Job, StepFailed, StepResult
from sagelab.engines.local.records import Records, StepRecord
from sagelab.engines.local.runners import INLINE, RUNNERS
from sagelab.engines.local.scope import ExecutionScope
from sagelab.engines.local.step_api import StepApi
from sagelab.errors import SagelabError
from sagelab.local_aws import credentials
from sagelab.store import LocalStore, ObjectInfo, ObjectStore
from sagelab.store.s3_server import S3Server

_ID_ALPHABET = string.ascii_lowercase + string.digits
# Steps in these states need running (again) when an execution is retried.
UNFINISHED = ("Pending", "Failed", "Stopped", "NotStarted", "Interrupted", "Executing")


def new_id(length: int = 12) -> str:
    """Lowercase letters and digits, like SageMaker's execution ids."""
    return "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in os.urandom(length))


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
    note: str | None = None
    attempts: int = 0

    def record(self) -> StepRecord:
        return StepRecord(self.name, self.type, self.status, self.job_name, self.started, self.ended, self.properties,
                          self.failure_reason, self.log_path, self.outputs, self.note, self.attempts)  # fmt: skip

    @classmethod
    def from_record(cls, record: StepRecord) -> StepState:
        return cls(record.name, record.type, record.status, record.job_name, record.started, record.ended,
                   record.failure_reason, record.log_path, list(record.outputs), record.properties, record.note, record.attempts)  # fmt: skip


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
    job_names: dict[str, str] = field(default_factory=dict)  # step → the name its (first) job takes: a CreateXJob's own


Listener = Callable[[Execution, "StepState | None"], None]


class Scheduler:
    def __init__(self, settings: Settings, store: ObjectStore, records: Records, definition: PipelineDefinition,
                 execution: Execution, scope: ExecutionScope, cache: StepCache, listener: Listener | None) -> None:  # fmt: skip
        self.settings, self.store, self.records = settings, store, records
        self.definition = definition
        self.execution = execution
        self.scope = scope
        self.cache = cache
        self.listener = listener or (lambda execution, step: None)
        self.graph = dependencies(definition)
        self.order = list(definition.all_steps())
        self.log_dir = settings.state_dir / "executions" / execution.id
        self.running: dict[Future[StepResult], tuple[Job, Decision]] = {}
        self.delayed: list[tuple[float, Step]] = []  # retries waiting for their backoff
        self.failed: list[str] = []
        self.stopped = False
        self._written: list[str] = []  # objects written since the last flush to the records (gc deletes only those)
        self._written_guard = threading.Lock()  # steps' threads and the S3 endpoint's write; the scheduler flushes

    def execute(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            stack.enter_context(locks.running(self.settings.state_dir))
            self._stop_on_signals(stack)
            self._record_writes(stack)
            self.step_env = self._step_environment(stack)
            pool = stack.enter_context(ThreadPoolExecutor(self.settings.concurrency))
            try:
                self._loop(pool)
            except KeyboardInterrupt:
                self._stop()
        self._finish()

    def _stop_on_signals(self, stack: ExitStack) -> None:
        """SIGTERM and SIGHUP (a closed terminal, `kill`, a CI job cancelled) stop the run as Ctrl-C does: Stopped, retryable."""
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; a run driven from another thread keeps the caller's

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        for signum in (signal.SIGTERM, signal.SIGHUP):
            stack.callback(signal.signal, signum, signal.signal(signum, interrupt))

    def _record_writes(self, stack: ExitStack) -> None:
        """Note every object written to the local store while the run lasts (steps' outputs, scripts' PUTs): gc deletes only those."""
        if not isinstance(self.store, LocalStore):
            return
        self.store.observer = self._wrote
        stack.callback(self._flush_writes)
        stack.callback(setattr, self.store, "observer", None)

    def _wrote(self, info: ObjectInfo) -> None:
        with self._written_guard:
            self._written.append(info.uri)

    def _flush_writes(self) -> None:
        with self._written_guard:
            uris, self._written = self._written, []
        if uris:
            self.records.add_written(self.execution.id, uris)

    def _step_environment(self, stack: ExitStack) -> dict[str, str]:
        """How steps reach the store and SageMaker: the local store served on loopback and the project's
        local API (step_api.py), with the project's throwaway keys; or the real S3 store with the user's
        own credentials (a hybrid run)."""
        region = {"AWS_DEFAULT_REGION": self.settings.region, "AWS_REGION": self.settings.region}
        if isinstance(self.store, LocalStore):
            keys = credentials(self.settings.state_dir)
            server = stack.enter_context(S3Server(self.store, (keys.access_key, keys.secret_key)))
            api = stack.enter_context(StepApi(self.settings))
            return {"AWS_ENDPOINT_URL": api.endpoint, "AWS_ENDPOINT_URL_S3": server.endpoint,
                    "AWS_ACCESS_KEY_ID": keys.access_key, "AWS_SECRET_ACCESS_KEY": keys.secret_key, **region}  # fmt: skip
        env = {**region, sandbox.KEEP_CREDENTIALS: "1"}
        endpoint = getattr(self.store, "endpoint_url", None)
        if endpoint:
            env["AWS_ENDPOINT_URL_S3"] = str(endpoint)
        if self.settings.aws_profile:
            env["AWS_PROFILE"] = self.settings.aws_profile
        return env

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while True:
            progressed = self._schedule(pool)
            if not self.running and not self.delayed:
                if progressed:
                    continue
                return
            timeout = max(0.0, min(when for when, _ in self.delayed) - time.time()) if self.delayed else None
            done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                job, decision = self.running.pop(future)
                self._complete(job, future, decision)

    def _schedule(self, pool: ThreadPoolExecutor) -> bool:
        """Start or skip every step that can be decided now; True if any state changed."""
        changed = False
        now = time.time()
        for when, step in [d for d in self.delayed if d[0] <= now]:
            self.delayed.remove((when, step))
            if not self.stopped:
                self._launch(step, pool)
                changed = True
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
        # A job name is never reused: a retried step's job gets a name of its own, as on SageMaker.
        fixed = None if state.attempts else self.execution.job_names.get(step.name)
        state.job_name = fixed or f"pipelines-{self.execution.id}-{step.name[:29]}-{new_id(10)}"
        state.log_path = str(self.log_dir / f"{step.name}.log")
        state.started = state.started if state.attempts else time.time()
        state.attempts += 1
        state.failure_reason = None
        try:
            arguments = {k: v for k, v in step.arguments.items() if not (step.type == "Condition" and k in ("IfSteps", "ElseSteps"))}
            resolved = evaluate(arguments, self.scope)
            decision = self.cache.decide(step, resolved, self.execution.id, time.time())
        except SagelabError as exc:
            self._set(state, "Executing")
            self._fail(state, f"cannot resolve the step's arguments: {exc}")
            return
        problems = request_problems(step.type, resolved, f"{step.pointer}/Arguments", resolved=True)
        if problems:  # a parameter or property gave a value the API would refuse, as SageMaker's step would fail
            self._set(state, "Executing")
            self._fail(state, "ValidationException: " + "; ".join(map(str, problems)))
            return
        if decision.hit is not None:
            state.note, state.outputs, state.ended = decision.note, decision.hit.outputs, time.time()
            self._succeed(state, decision.hit.properties)
            return
        state.note = decision.note if decision.key else None
        self._set(state, "Executing")
        job = Job(
            step=step,
            arguments=resolved,
            job_name=state.job_name,
            root=self.settings.state_dir / "jobs" / state.job_name,
            log_path=Path(state.log_path),
            store=self.store,
            settings=self.settings,
            step_env=self.step_env,
            execution_arn=self.execution.arn,
        )
        job.root.mkdir(parents=True, exist_ok=True)
        job.log_path.touch()
        runner = RUNNERS[step.type]
        if step.type in INLINE:
            future: Future[StepResult] = Future()
            try:
                future.set_result(runner.run(job))
            except Exception as exc:  # noqa: BLE001 - handed to _complete like a worker's error
                future.set_exception(exc)
            self._complete(job, future, decision)
        else:
            self.running[pool.submit(runner.run, job)] = (job, decision)
            crash_point("step-running", step.name)

    def _complete(self, job: Job, future: Future[StepResult], decision: Decision) -> None:
        self._flush_writes()  # before the step's state: a run killed after it has its writes recorded
        step = job.step
        state = self.execution.steps[step.name]
        state.ended = time.time()
        try:
            result = future.result()
        except StepFailed as exc:
            if self.stopped:
                state.failure_reason = "stopped by the user"
                self._set(state, "Stopped")
            elif not self._retry(step, state, exc):
                state.properties = exc.properties or state.properties
                self._fail(state, str(exc))
            return
        except (SagelabError, OSError) as exc:
            self._fail(state, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a malformed argument the validator missed, or a sagelab bug: this step fails, the run goes on
            job.log("sagelab could not run this step; the traceback below is for a bug report:\n" + traceback.format_exc())
            self._fail(state, f"ValidationException: sagelab could not run the step with these arguments ({type(exc).__name__}: {exc}); "
                              f"check the step's Arguments against the SageMaker API, or report a sagelab bug with {job.log_path}")  # fmt: skip
            return
        if self.stopped:
            state.failure_reason = "stopped by the user"
            self._set(state, "Stopped")
            return
        state.outputs = result.outputs
        properties = {**result.properties, sandbox.PROPERTY: job.sandbox_mode} if job.sandbox_mode else result.properties
        crash_point("before-record", step.name)
        self.cache.save(decision, step, self.execution.id, properties, result.outputs)
        self._succeed(state, properties)
        crash_point("after-record", step.name)

    def _retry(self, step: Step, state: StepState, failure: StepFailed) -> bool:
        """Schedule another attempt when a retry policy covers the failure; True if one was."""
        if failure.fault is None:
            return False
        for policy in step.retry_policies:
            if failure.fault in policy.exception_types and self._attempts_left(policy, state):
                delay = policy.interval_seconds * policy.backoff_rate ** (state.attempts - 1)
                state.note = f"attempt {state.attempts} failed with {failure.fault}; retrying in {delay:g} s"
                state.failure_reason = str(failure)
                self._set(state, "Executing")
                self.delayed.append((time.time() + delay, step))
                return True
        return False

    def _attempts_left(self, policy: RetryPolicy, state: StepState) -> bool:
        """MaxAttempts counts retries after the first attempt; with no limit given, 5 retries."""
        retries = state.attempts - 1
        if policy.max_attempts is not None and retries >= policy.max_attempts:
            return False
        if policy.expire_after_min is not None and state.started is not None:
            return time.time() - state.started < policy.expire_after_min * 60
        return policy.max_attempts is not None or retries < 5

    def _succeed(self, state: StepState, properties: dict[str, Any]) -> None:
        state.properties = properties
        self.scope.properties[state.name] = properties
        self._set(state, "Succeeded")

    def _fail(self, state: StepState, reason: str) -> None:
        state.failure_reason = reason
        state.ended = state.ended or time.time()
        self.failed.append(state.name)
        self._set(state, "Failed")

    def _stop(self) -> None:
        """Ctrl-C: terminate running step processes and mark the execution Stopped."""
        self.stopped = True
        self.delayed.clear()
        for job, _ in self.running.values():
            job.terminate()
        for future, (job, decision) in list(self.running.items()):
            try:
                future.result(timeout=10)
            except BaseException:  # noqa: BLE001 - the step is reported as Stopped either way
                pass
            self._complete(job, future, decision)
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
        self.records.finish_execution(execution.id, execution.status, execution.ended, execution.failure_reason)
        self.listener(execution, None)

    def _set(self, state: StepState, status: str) -> None:
        state.status = status
        self.records.save_step(self.execution.id, state.record())
        self.listener(self.execution, state)
