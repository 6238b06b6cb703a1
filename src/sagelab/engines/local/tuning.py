"""`TuningRunner`: a CreateHyperParameterTuningJob request run as training jobs on this machine.

Each training job is the CreateTrainingJob request SageMaker would make (static plus chosen
hyperparameters, as strings), run by `TrainingRunner` in its own folder with its own log and
named `<tuning job>-NNN-<hash>`. Strategies choose values as SageMaker's do: Random, Grid
(categorical ranges only), Bayesian with optuna's TPE sampler, and Hyperband as Random with
every job trained in full. Properties are DescribeHyperParameterTuningJob's plus the
TrainingJobSummaries the pipeline service lists, best first. See docs/containers.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from sagelab.containers import contract, images
from sagelab.engines.local.job import Job, StepFailed, StepResult, now_iso
from sagelab.engines.local.training import TrainingRunner
from sagelab.errors import SagelabError

STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
GRID_LIMIT = 750  # SageMaker's most training jobs for a grid
FIRST_ATTEMPTS = 5  # SageMaker gives up when none of the first five training jobs succeeds
TOP_JOBS = 50  # the pipeline service lists the 50 best training jobs
TUNING_METRIC = "_tuning_objective_metric"  # the hyperparameter that tells a built-in algorithm the objective
_CONFIG = "HyperParameterTuningJobConfig"
# Fields of a training job definition that configure the tuning rather than the training job.
_TUNING_FIELDS = ("DefinitionName", "TuningObjective", "HyperParameterRanges", "StaticHyperParameters",
                  "HyperParameterTuningResourceConfig")  # fmt: skip


@dataclass(frozen=True)
class Range:
    """One hyperparameter's search range: numbers for Integer and Continuous, values for Categorical."""

    name: str
    kind: str  # Integer, Continuous or Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"  # Auto searches linearly
    values: tuple[str, ...] = ()

    def sample(self, rng: random.Random) -> str:
        if self.kind == "Categorical":
            return rng.choice(self.values)
        # An integer range is widened by half a step each side, so rounding reaches both ends equally often.
        low, high = (self.low - 0.5, self.high + 0.5) if self.kind == "Integer" else (self.low, self.high)
        if self.scaling == "Logarithmic":
            return self.text(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.scaling == "ReverseLogarithmic":  # dense near 1: log scale on 1 - x
            return self.text(1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low))))
        return self.text(rng.uniform(low, high))

    def text(self, value: float) -> str:
        """The value as SageMaker passes it to the job: an integer's digits, a float's shortest form."""
        if self.kind == "Integer":
            return str(min(int(self.high), max(int(self.low), round(value))))
        return repr(min(self.high, max(self.low, value)))

    def distribution(self) -> Any:
        """The range as an optuna distribution (a reverse-logarithmic one searches 1 - x on a log scale)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "Categorical":
            return CategoricalDistribution(self.values)
        if self.kind == "Integer":
            return IntDistribution(int(self.low), int(self.high), log=self.scaling == "Logarithmic")
        if self.scaling == "ReverseLogarithmic":
            return FloatDistribution(1 - self.high, 1 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=self.scaling == "Logarithmic")

    def from_optuna(self, value: Any) -> str:
        if self.kind == "Categorical":
            return str(value)
        return self.text(1 - value if self.scaling == "ReverseLogarithmic" else value)


@dataclass(frozen=True)
class Definition:
    """One training job definition of the tuning job: its request, ranges and objective."""

    name: str | None  # DefinitionName, when the request has several
    request: dict[str, Any]  # the CreateTrainingJob request, less its HyperParameters
    static: dict[str, Any]
    ranges: list[Range]
    objective: dict[str, str]  # Type and MetricName
    metric_regex: str
    builtin: bool  # runs the image's own algorithm, which reads _tuning_objective_metric


@dataclass
class Candidate:
    definition: int
    hyperparameters: dict[str, str]
    trial: Any = None  # optuna's trial, for the Bayesian strategy


class Search(Protocol):
    def next(self) -> Candidate: ...

    def tell(self, candidate: Candidate, value: float | None) -> None: ...


class RandomSearch:
    """Independent draws from every range; definitions take turns."""

    def __init__(self, definitions: list[Definition], seed: int | None) -> None:
        self.definitions, self.rng, self.count = definitions, random.Random(seed), 0

    def next(self) -> Candidate:
        index, self.count = self.count % len(self.definitions), self.count + 1
        return Candidate(index, {r.name: r.sample(self.rng) for r in self.definitions[index].ranges})

    def tell(self, candidate: Candidate, value: float | None) -> None:
        pass


class GridSearch:
    """Every combination of the categorical values, in order."""

    def __init__(self, definitions: list[Definition]) -> None:
        self.combinations = [
            Candidate(index, {r.name: value for r, value in zip(d.ranges, values)})
            for index, d in enumerate(definitions)
            for values in itertools.product(*(r.values for r in d.ranges))
        ]
        self.count = 0

    def next(self) -> Candidate:
        self.count += 1
        return self.combinations[self.count - 1]

    def tell(self, candidate: Candidate, value: float | None) -> None:
        pass


class BayesianSearch:
    """optuna's TPE sampler, seeded by RandomSeed; one study per definition, taking turns."""

    def __init__(self, definitions: list[Definition], seed: int | None, budget: int) -> None:
        try:
            import optuna
        except ImportError:
            raise StepFailed("Strategy Bayesian runs on optuna, which is not installed: pip install 'sagelab[tuning]' "
                             "(or use Strategy Random)") from None  # fmt: skip
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        startup = max(1, min(10, budget // 3))  # random trials before TPE models the results
        self.definitions, self.count, self.failed = definitions, 0, optuna.trial.TrialState.FAIL
        directions = {"Minimize": optuna.study.StudyDirection.MINIMIZE, "Maximize": optuna.study.StudyDirection.MAXIMIZE}
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        self.studies = [optuna.create_study(direction=directions[d.objective["Type"]], sampler=sampler) for d in definitions]

    def next(self) -> Candidate:
        index, self.count = self.count % len(self.definitions), self.count + 1
        ranges = self.definitions[index].ranges
        trial = self.studies[index].ask({r.name: r.distribution() for r in ranges})
        return Candidate(index, {r.name: r.from_optuna(trial.params[r.name]) for r in ranges}, trial)

    def tell(self, candidate: Candidate, value: float | None) -> None:
        study = self.studies[candidate.definition]
        if value is None:
            study.tell(candidate.trial, state=self.failed)
        else:
            study.tell(candidate.trial, value)


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
        config = job.arguments.get(_CONFIG) or {}
        definitions = parse_definitions(job.arguments)
        budget, search, notes = _plan(job, config, definitions)
        limits = config.get("ResourceLimits") or {}
        parallel = min(_count(limits.get("MaxParallelTrainingJobs", 1), "MaxParallelTrainingJobs"), job.settings.concurrency)
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
        if job.cancelled.is_set():
            raise StepFailed("stopped by the user")
        return self._result(job, name, arn, started, jobs, definitions)

    def _start(self, job: Job, arn: str, name: str, index: int, candidate: Candidate, definitions: list[Definition]) -> TrainingJob:
        """A training job's own Job: its folder and log under the tuning step's folder."""
        definition = definitions[candidate.definition]
        hyperparameters = {**definition.static, **candidate.hyperparameters}
        if definition.builtin:  # SageMaker tells a built-in algorithm the objective; script mode's toolkit hides it from the script
            hyperparameters[TUNING_METRIC] = definition.objective["MetricName"]
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
        """Record how a training job ended, tell the search, and log one line for it."""
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
            **{k: request[k] for k in (_CONFIG, "TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig", "Autotune") if k in request},
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


def parse_definitions(request: dict[str, Any]) -> list[Definition]:
    """The request's training job definitions, checked; a StepFailed says what to fix."""
    config = request.get(_CONFIG) or {}
    if "TrainingJobDefinition" in request:
        given = [(request["TrainingJobDefinition"] or {}, "TrainingJobDefinition")]
    else:
        given = [(d or {}, f"TrainingJobDefinitions[{i}]") for i, d in enumerate(request.get("TrainingJobDefinitions") or [])]
    if not given:
        raise StepFailed("the request has no TrainingJobDefinition: name the training job to tune (image, data, output path)")
    if request.get("Autotune"):
        raise StepFailed("Autotune (ranges chosen by SageMaker) is not emulated by sagelab; give ParameterRanges instead")
    return [_definition(d, where, config) for d, where in given]


def _definition(definition: dict[str, Any], where: str, config: dict[str, Any]) -> Definition:
    objective = definition.get("TuningObjective") or config.get("HyperParameterTuningJobObjective") or {}
    if objective.get("Type") not in ("Minimize", "Maximize") or not objective.get("MetricName"):
        raise StepFailed(f"{_CONFIG}.HyperParameterTuningJobObjective is {objective or 'missing'}: give Type (Minimize or "
                         "Maximize) and MetricName, the metric that ranks the training jobs")  # fmt: skip
    metric = str(objective["MetricName"])
    ranges_at = f"{where}.HyperParameterRanges" if definition.get("HyperParameterRanges") else f"{_CONFIG}.ParameterRanges"
    ranges = parse_ranges(definition.get("HyperParameterRanges") or config.get("ParameterRanges") or {}, ranges_at)
    static = dict(definition.get("StaticHyperParameters") or {})
    algorithm = definition.get("AlgorithmSpecification") or {}
    behaviour = images.identify(str(algorithm.get("TrainingImage") or ""))
    builtin = contract.PROGRAM not in static
    # The regexes the training job's metrics come from: a built-in algorithm's own, then the request's.
    regexes = dict(behaviour.metric_definitions if behaviour and builtin else ())
    regexes.update({str(m.get("Name")): str(m.get("Regex")) for m in algorithm.get("MetricDefinitions") or []})
    if metric not in regexes:
        raise StepFailed(f"{where}: the objective metric {metric} is not one of the training job's metrics "
                         f"({', '.join(regexes) or 'none'}); add {{\"Name\": \"{metric}\", \"Regex\": ...}} to "
                         "AlgorithmSpecification.MetricDefinitions, a regex that finds its value in the training log")  # fmt: skip
    request = {k: v for k, v in definition.items() if k not in _TUNING_FIELDS}
    pool = definition.get("HyperParameterTuningResourceConfig")
    if pool and "ResourceConfig" not in request:  # instances for the tuning's jobs; a local job runs on one
        first = (pool.get("InstanceConfigs") or [{}])[0]
        request["ResourceConfig"] = {k: pool.get(k) or first.get(k) for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB") if pool.get(k) or first.get(k)}
    return Definition(definition.get("DefinitionName"), request, static, ranges, {"Type": objective["Type"], "MetricName": metric},
                      regexes[metric], builtin)  # fmt: skip


def parse_ranges(ranges: dict[str, Any], where: str) -> list[Range]:
    """The ParameterRanges, checked as SageMaker checks them."""
    if ranges.get("AutoParameters"):
        raise StepFailed(f"{where}.AutoParameters (Autotune) is not emulated by sagelab; give Integer, Continuous or Categorical ranges")
    found: list[Range] = []
    for kind in ("Integer", "Continuous", "Categorical"):
        for index, item in enumerate(ranges.get(f"{kind}ParameterRanges") or []):
            at = f"{where}.{kind}ParameterRanges[{index}]"
            name = str(item.get("Name") or "")
            if not name:
                raise StepFailed(f"{at} has no Name: name the hyperparameter it tunes")
            if kind == "Categorical":
                values = tuple(str(v) for v in item.get("Values") or [])
                if not values:
                    raise StepFailed(f"{at} ({name}) has no Values: list the values to try")
                found.append(Range(name, kind, values=values))
                continue
            low, high = (_number(item.get(key), kind, f"{at}.{key} ({name})") for key in ("MinValue", "MaxValue"))
            scaling = str(item.get("ScalingType") or "Auto")
            problem = (
                f"ScalingType {scaling} is not one of {', '.join(SCALING_TYPES)}" if scaling not in SCALING_TYPES
                else f"MinValue {low:g} is above MaxValue {high:g}" if low > high
                else f"Logarithmic scaling needs a MinValue above 0, not {low:g}" if scaling == "Logarithmic" and low <= 0
                else "ReverseLogarithmic scaling works only for a continuous range within 0 <= x < 1"
                if scaling == "ReverseLogarithmic" and (kind == "Integer" or low < 0 or high >= 1)
                else None
            )  # fmt: skip
            if problem:
                raise StepFailed(f"{at} ({name}): {problem}")
            found.append(Range(name, kind, low, high, "Linear" if scaling == "Auto" else scaling))
    names = [r.name for r in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StepFailed(f"{where}: {', '.join(twice)} has more than one range; give each hyperparameter one")
    if not found:
        raise StepFailed(f"{where} has no range: give at least one hyperparameter to tune")
    return found


def _plan(job: Job, config: dict[str, Any], definitions: list[Definition]) -> tuple[int, Search, list[str]]:
    """How many training jobs to run, the search that chooses their hyperparameters, and notes for the log."""
    strategy = config.get("Strategy")
    given = (config.get("ResourceLimits") or {}).get("MaxNumberOfTrainingJobs")
    budget = _count(given, "MaxNumberOfTrainingJobs") if given is not None else None
    seed = config.get("RandomSeed")
    notes = [f"{key} is not emulated by sagelab: it is ignored, and the tuning runs all its training jobs"
             for key in ("TuningJobCompletionCriteria", "WarmStartConfig") if config.get(key) or job.arguments.get(key)]  # fmt: skip
    if config.get("TrainingJobEarlyStoppingType") == "Auto":
        notes.append("TrainingJobEarlyStoppingType Auto: sagelab stops no training job early; each runs to its end")
    if strategy == "Grid":
        numeric = [f"{r.name} ({r.kind})" for d in definitions for r in d.ranges if r.kind != "Categorical"]
        if numeric:
            raise StepFailed(f"Strategy Grid searches categorical ranges only, as on SageMaker, and {', '.join(numeric)} "
                             "is not: list its values in CategoricalParameterRanges, or use Strategy Bayesian or Random")  # fmt: skip
        grid = GridSearch(definitions)
        size = len(grid.combinations)
        if size > GRID_LIMIT:
            raise StepFailed(f"Strategy Grid: the ranges make {size} combinations, and SageMaker runs at most {GRID_LIMIT}")
        if budget is not None and budget != size:
            notes.append(f"MaxNumberOfTrainingJobs is {budget} and the grid has {size} combinations: {min(budget, size)} run")
        return min(budget or size, size), grid, notes
    if strategy not in STRATEGIES:
        raise StepFailed(f"{_CONFIG}.Strategy is {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if budget is None:
        raise StepFailed(f"{_CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs is missing: the {strategy} strategy needs to know how many training jobs to run")
    if strategy == "Bayesian":
        return budget, BayesianSearch(definitions, seed, budget), notes
    if strategy == "Hyperband":
        notes.append("Strategy Hyperband runs as Random search here: every training job trains in full, none is stopped early")
    return budget, RandomSearch(definitions, seed), notes


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
    """At most 32 characters, SageMaker's limit: execution id and step name, then the step job's random suffix."""
    execution = job.execution_arn.rsplit("/", 1)[-1]
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", f"{execution}-{job.step.name}").strip("-")[:21].strip("-")
    return f"{prefix}-{job.job_name[-10:]}" if prefix else job.job_name[-10:]


def _count(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(value).strip() not in (str(number), f"{number}.0"):
        raise StepFailed(f"{_CONFIG}.ResourceLimits.{name} is {value!r}; give a whole number of at least 1")
    return number


def _number(value: Any, kind: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StepFailed(f"{where} is {value!r}, not a number") from None
    if kind == "Integer" and not number.is_integer():
        raise StepFailed(f"{where} is {value!r}, not a whole number (an IntegerParameterRanges bound)")
    return number
