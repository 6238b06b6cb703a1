"""What a tuning job searches and how: its ranges and definitions, checked, and the strategies.

Kept apart from `tuning.py`, which runs the training jobs, so the request's checks and the
choice of hyperparameters can be read and tested without processes. Strategies choose values as
SageMaker's do: Random, Grid (categorical ranges only), Bayesian with optuna's TPE sampler
(imported only when used), and Hyperband as Random with every job trained in full.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

from sagelab.containers import contract, images
from sagelab.engines.local.job import Job, StepFailed

STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
GRID_LIMIT = 750  # SageMaker's most training jobs for a grid
TUNING_CONFIG = "HyperParameterTuningJobConfig"
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
    builtin: bool  # runs the image's own algorithm (no script), whose metric definitions SageMaker attaches


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


def parse_definitions(request: dict[str, Any]) -> list[Definition]:
    """The request's training job definitions, checked; a StepFailed says what to fix."""
    config = request.get(TUNING_CONFIG) or {}
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
        raise StepFailed(f"{TUNING_CONFIG}.HyperParameterTuningJobObjective is {objective or 'missing'}: give Type (Minimize or "
                         "Maximize) and MetricName, the metric that ranks the training jobs")  # fmt: skip
    metric = str(objective["MetricName"])
    ranges_at = f"{where}.HyperParameterRanges" if definition.get("HyperParameterRanges") else f"{TUNING_CONFIG}.ParameterRanges"
    ranges = parse_ranges(definition.get("HyperParameterRanges") or config.get("ParameterRanges") or {}, ranges_at)
    static = dict(definition.get("StaticHyperParameters") or {})
    algorithm = definition.get("AlgorithmSpecification") or {}
    behaviour = images.identify(str(algorithm.get("TrainingImage") or ""))
    builtin = not contract.runs_script(static, algorithm)
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


def plan(job: Job, config: dict[str, Any], definitions: list[Definition]) -> tuple[int, Search, list[str]]:
    """How many training jobs to run, the search that chooses their hyperparameters, and notes for the log."""
    strategy = config.get("Strategy")
    given = (config.get("ResourceLimits") or {}).get("MaxNumberOfTrainingJobs")
    budget = resource_limit(given, "MaxNumberOfTrainingJobs") if given is not None else None
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
        raise StepFailed(f"{TUNING_CONFIG}.Strategy is {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if budget is None:
        raise StepFailed(f"{TUNING_CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs is missing: the {strategy} strategy needs to know how many training jobs to run")
    if strategy == "Bayesian":
        return budget, BayesianSearch(definitions, seed, budget), notes
    if strategy == "Hyperband":
        notes.append("Strategy Hyperband runs as Random search here: every training job trains in full, none is stopped early")
    return budget, RandomSearch(definitions, seed), notes


def resource_limit(value: Any, name: str) -> int:
    """A ResourceLimits count, checked: a whole number of at least 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(value).strip() not in (str(number), f"{number}.0"):
        raise StepFailed(f"{TUNING_CONFIG}.ResourceLimits.{name} is {value!r}; give a whole number of at least 1")
    return number


def _number(value: Any, kind: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StepFailed(f"{where} is {value!r}, not a number") from None
    if kind == "Integer" and not number.is_integer():
        raise StepFailed(f"{where} is {value!r}, not a whole number (an IntegerParameterRanges bound)")
    return number
