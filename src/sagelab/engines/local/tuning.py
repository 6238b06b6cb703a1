"""`TuningRunner`: a CreateHyperParameterTuningJob request run as training jobs on this machine.

Each training job is the CreateTrainingJob request SageMaker would make (static plus chosen
hyperparameters, as strings), run by `TrainingRunner` in its own folder with its own log and
named `<tuning job>-NNN-<hash>`. What the jobs search and how (ranges, strategies) is in
`tuning_search.py`. Properties are DescribeHyperParameterTuningJob's plus the
TrainingJobSummaries the pipeline service lists, best first. See docs/containers.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sagelab.containers import contract
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.engines.local.training import TrainingRunner
from sagelab.engines.local.tuning_search import TUNING_CONFIG, Candidate, Definition, Search, parse_definitions, plan, resource_limit
from sagelab.errors import SagelabError

FIRST_ATTEMPTS = 5  # SageMaker gives up when none of the first five training jobs succeeds
TOP_JOBS = 50  # the pipeline service lists the 50 best training jobs


@dataclass
class TrainingJob:
    """One training job of the tuning job, and what became of it."""

    index: int
    candidate: Candidate
    job: Job
    status: str = "InProgress"
    objective: float | None = None
    failure: str = ""
    retryable: bool = False
    outputs: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float = 0.0

    def summary(self, tuning_job: str, definition: Definition) -> dict[str, Any]:
        """Its HyperParameterTrainingJobSummary (only jobs with an objective value are listed)."""
        summary: dict[str, Any] = {
            "TrainingJobName": self.job.job_name,
            "TrainingJobArn": self.job.arn("training-job"),
            "TuningJobName": tuning_job,
            "CreationTime": now_iso(self.started),
            "TrainingStartTime": now_iso(self.started),
            "TrainingEndTime": now_iso(self.ended),
            "TrainingJobStatus": self.status,
            "TunedHyperParameters": self.candidate.hyperparameters,
            "FinalHyperParameterTuningJobObjectiveMetric": {**definition.objective, "Value": self.objective},
            "ObjectiveStatus": "Succeeded",
        }
        return {**summary, "TrainingJobDefinitionName": definition.name} if definition.name else summary


class TuningRunner:
    """Runs the tuning job's training jobs, a few at a time, and reports the best."""

    def __init__(self) -> None:
        self.training = TrainingRunner()

    def run(self, job: Job) -> StepResult:
        started = time.time()
        config = job.arguments.get(TUNING_CONFIG) or {}
        definitions = parse_definitions(job.arguments)
        budget, search, notes = plan(job, config, definitions)
        limits = config.get("ResourceLimits") or {}
        parallel = min(resource_limit(limits.get("MaxParallelTrainingJobs", 1), "MaxParallelTrainingJobs"), job.settings.concurrency)
        name = tuning_job_name(job)
        arn = f"arn:aws:sagemaker:{job.settings.region}:{job.settings.account}:hyper-parameter-tuning-job/{name.lower()}"
        deadline = started + float(limits["MaxRuntimeInSeconds"]) if limits.get("MaxRuntimeInSeconds") else math.inf
        job.log(f"tuning job {name}: {config.get('Strategy')} search, {budget} training jobs, {parallel} at a time; "
                f"their folders and logs are in {job.root}")  # fmt: skip
        for note in notes:
            job.log(note)
        jobs: list[TrainingJob] = []
        running: dict[Future[StepResult], TrainingJob] = {}
        launching = True
        with ThreadPoolExecutor(parallel, thread_name_prefix=f"tuning-{name}") as pool:
            try:
                while True:
                    if job.cancelled.is_set() or time.time() > deadline:
                        if launching and not job.cancelled.is_set():
                            job.log("ResourceLimits.MaxRuntimeInSeconds reached: the running training jobs are stopped")
                        launching = False  # and stop the running jobs, on every turn: one may have just started its process
                        for trial in running.values():
                            trial.job.terminate()
                    while launching and len(running) < parallel and len(jobs) < budget:
                        jobs.append(self._start(job, arn, name, len(jobs) + 1, search.next(), definitions))
                        running[pool.submit(self.training.run, jobs[-1].job)] = jobs[-1]
                    if not running:
                        break
                    done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._finish(job, running.pop(future), future, definitions, search)
                    launching = launching and not _given_up(jobs)
            finally:  # after a sagelab bug, the pool would otherwise wait for the running jobs to end by themselves
                for trial in running.values():
                    trial.job.terminate()
        if job.cancelled.is_set():
            raise StepFailed("stopped by the user")
        return self._result(job, name, arn, started, jobs, definitions)

    def _start(self, job: Job, arn: str, name: str, index: int, candidate: Candidate, definitions: list[Definition]) -> TrainingJob:
        """A training job's own Job: its folder and log under the tuning step's folder."""
        definition = definitions[candidate.definition]
        hyperparameters = {**definition.static, **candidate.hyperparameters}
        # SageMaker names the objective to every training job; the training toolkit keeps it from a script's arguments.
        hyperparameters[contract.TUNING_OBJECTIVE] = definition.objective["MetricName"]
        digest = hashlib.sha1(json.dumps([name, index, candidate.hyperparameters], sort_keys=True).encode()).hexdigest()[:8]
        job_name = f"{name}-{index:03d}-{digest}"
        child = Job(
            step=job.step,
            arguments={**definition.request, "HyperParameters": hyperparameters, "TuningJobArn": arn},
            job_name=job_name,
            root=job.root / "training-jobs" / job_name,
            log_path=job.root / "logs" / f"{job_name}.log",
            store=job.store,
            settings=job.settings,
            step_env=job.step_env,
            execution_arn=job.execution_arn,
        )
        child.root.mkdir(parents=True, exist_ok=True)
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        child.log_path.touch()
        return TrainingJob(index, candidate, child)

    def _finish(self, job: Job, trial: TrainingJob, future: Future[StepResult], definitions: list[Definition], search: Search) -> None:
        """Record how a training job ended, tell the search, and log one line for it.

        A training job that fails, however (a StepFailed, or a SagelabError or OSError while it is
        set up), is a failed training job, as on SageMaker; any other exception is a sagelab bug,
        and is raised, after which `run` stops the other running jobs.
        """
        trial.ended = time.time()
        definition = definitions[trial.candidate.definition]
        metric = definition.objective["MetricName"]
        try:
            result = future.result()
        except StepFailed as exc:
            trial.status = "Stopped" if trial.job.cancelled.is_set() else "Failed"
            trial.failure, trial.retryable = str(exc), exc.fault is not None
        except (SagelabError, OSError) as exc:
            trial.status, trial.failure = "Failed", str(exc)
        except Exception:
            job.log(f"{trial.index:03d} {trial.job.job_name}: sagelab failed running it (a bug); the running training jobs are stopped")
            raise
        else:
            trial.status, trial.outputs = "Completed", result.outputs
            values = {m["MetricName"]: m["Value"] for m in result.properties.get("FinalMetricDataList", [])}
            trial.objective = values.get(metric)
        search.tell(trial.candidate, trial.objective)
        tuned = " ".join(f"{k}={v}" for k, v in trial.candidate.hyperparameters.items())
        if trial.objective is not None:
            outcome = f"{metric}={trial.objective:g}"
        elif trial.status == "Completed":
            outcome = f"Completed, but {metric} is not in its log"
        else:
            reason = (trial.failure.splitlines() or [""])[0].removesuffix(" Last log lines:")
            outcome = f"{trial.status}: {reason} Last log line: {trial.job.log_tail(1)}"
        job.log(f"{trial.index:03d} {trial.job.job_name} {tuned} -> {outcome}")

    def _result(self, job: Job, name: str, arn: str, started: float, jobs: list[TrainingJob], definitions: list[Definition]) -> StepResult:
        scored = [(t.objective, t.index, t) for t in jobs if t.objective is not None]
        if not scored:
            raise StepFailed(_no_success(jobs, definitions))
        sign = 1 if definitions[0].objective["Type"] == "Minimize" else -1
        ranked = [t for _, _, t in sorted(scored, key=lambda s: (sign * s[0], s[1]))]
        summaries = [t.summary(name, definitions[t.candidate.definition]) for t in ranked]
        failed = [t for t in jobs if t.status == "Failed"]
        ended = time.time()
        request = job.arguments
        properties = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": arn,
            **{k: request[k] for k in (TUNING_CONFIG, "TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig", "Autotune") if k in request},
            "HyperParameterTuningJobStatus": "Completed",
            "CreationTime": now_iso(started),
            "HyperParameterTuningEndTime": now_iso(ended),
            "LastModifiedTime": now_iso(ended),
            "TrainingJobStatusCounters": {
                "Completed": sum(t.status == "Completed" for t in jobs),
                "InProgress": 0,
                "RetryableError": sum(t.retryable for t in failed),
                "NonRetryableError": sum(not t.retryable for t in failed),
                "Stopped": sum(t.status == "Stopped" for t in jobs),
            },
            "ObjectiveStatusCounters": {"Succeeded": len(scored), "Pending": 0, "Failed": len(jobs) - len(scored)},
            "BestTrainingJob": summaries[0],
            "ConsumedResources": {"RuntimeInSeconds": int(ended - started)},
            "TrainingJobSummaries": summaries[:TOP_JOBS],
        }
        best = summaries[0]["FinalHyperParameterTuningJobObjectiveMetric"]
        job.log(f"best training job: {ranked[0].job.job_name} ({best['MetricName']}={best['Value']:g})")
        return StepResult(properties, [uri for t in jobs for uri in t.outputs])


def _given_up(jobs: list[TrainingJob]) -> bool:
    """SageMaker's rule: stop starting training jobs when the first five finished without an objective value."""
    finished = [t for t in jobs if t.status != "InProgress"]
    return len(finished) >= FIRST_ATTEMPTS and all(t.objective is None for t in finished)


def _no_success(jobs: list[TrainingJob], definitions: list[Definition]) -> str:
    """Why no training job has an objective value, with what to look at."""
    silent = [t for t in jobs if t.status == "Completed"]
    if not silent:
        first = next((t for t in jobs if t.status == "Failed"), jobs[0])
        return (f"No training job succeeded after {len(jobs)} attempts; the first failure, {first.job.job_name}: "
                f"{first.failure}")  # fmt: skip
    definition = definitions[silent[0].candidate.definition]
    return (
        f"no training job reported the objective metric {definition.objective['MetricName']}: {len(silent)} of {len(jobs)} "
        f"completed, and the regex {definition.metric_regex!r} (MetricDefinitions) matched nothing in their logs; make "
        f"the training code print the metric in a line that regex matches. Last log lines of {silent[0].job.job_name} "
        f"({silent[0].job.log_path}):\n{silent[0].job.log_tail()}"
    )


def tuning_job_name(job: Job) -> str:
    """The tuning job's name: a CreateHyperParameterTuningJob's own, or a pipeline step's made from its execution and job names."""
    return tuning_name(job.execution_arn.rsplit("/", 1)[-1], job.step.name, job.job_name)


def tuning_name(execution_id: str, step: str, job_name: str) -> str:
    """At most 32 characters, SageMaker's limit. A name that fits is a CreateHyperParameterTuningJob's, kept; a pipeline
    step's job name (`pipelines-...`, longer) becomes execution id and step name, then the step job's random suffix."""
    if len(job_name) <= 32:
        return job_name
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", f"{execution_id}-{step}").strip("-")[:21].strip("-")
    return f"{prefix}-{job_name[-10:]}" if prefix else job_name[-10:]
