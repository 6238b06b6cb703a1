"""Which instance to pick for a task and a data size, and why: `sagelab instances recommend`.

The rules are the ones a data team's guide would write, applied to the current generations:
- pandas holds a dataset in memory several times over while it works (parsing, copies made by
  joins and group-bys): 5× the data on disk, plus 2 GiB for the system and the kernel;
- a Spark driver plans and collects, the executors hold the data: the driver needs a share only;
- a GPU is worth paying for only when the framework uses one (PyTorch, TensorFlow, XGBoost's
  `device="cuda"`); scikit-learn never does;
- an endpoint holds its model a couple of times over (loaded, plus a request's batch).
Previous generations (t2, m4, c4, p2, p3, m5/c5/r5, g4dn) are never proposed: a newer family gives
more for the same price or less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sagelab.cost.catalog import Catalog, InstanceType
from sagelab.errors import ConfigError

TASKS = ("notebook", "pandas", "spark-driver", "training-cpu", "training-gpu", "inference")


@dataclass(frozen=True)
class Task:
    use: str
    memory: str  # how memory is sized, in words
    classes: tuple[tuple[str, str], ...]  # (family class, why this class)


_GENERAL = ("m", "balanced memory and CPU: the default for mixed work")
_MEMORY = ("r", "twice the memory per vCPU of m: the cheapest GiB when memory is the limit")
_COMPUTE = ("c", "the cheapest vCPU: for CPU-bound work that fits in its memory")
_TASKS = {
    "notebook": Task("notebook", "5 × the data (pandas while exploring) + 2 GiB", (("t", "burstable: cheapest for light exploration"), _GENERAL, _MEMORY)),
    "pandas": Task("processing", "5 × the data (pandas' working copies) + 2 GiB", (_GENERAL, _MEMORY, _COMPUTE)),
    "spark-driver": Task("processing", "a tenth of the data, at least 16 GiB (the driver plans and collects)", (_GENERAL, _MEMORY)),
    "training-cpu": Task("training", "3 × the data (the training matrix and the model) + 2 GiB", (_COMPUTE, _GENERAL, _MEMORY)),
    "training-gpu": Task("training", "3 × the data in host memory; a GPU with at least 16 GiB", (
        ("g", "one GPU per instance (L4, A10G, L40S): most training fits one"), ("p", "8 GPUs with fast interconnect: for distributed training"))),
    "inference": Task("hosting", "2 × the model + 1 GiB", (_COMPUTE, _GENERAL, ("inf", "AWS Inferentia: cheapest per prediction for compiled models"))),
}


@dataclass(frozen=True)
class Choice:
    instance: InstanceType
    hourly: float | None
    reason: str


def parse_size(text: str) -> float:
    """'20GB', '500 MB', '1.5TiB', '8' (GB) → GiB."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgt]i?b?)?\s*", text.lower())
    if not match:
        raise ConfigError(f"--data-size must be a size like 20GB or 500MB; got {text!r}")
    unit = (match[2] or "g")[0]
    return float(match[1]) * {"k": 2**-20, "m": 2**-10, "g": 1, "t": 1024}[unit]


def memory_needed(task: str, data_gib: float) -> float:
    if task in ("notebook", "pandas"):
        return 5 * data_gib + 2
    if task == "spark-driver":
        return max(16.0, data_gib / 10)
    if task == "inference":
        return 2 * data_gib + 1
    return 3 * data_gib + 2


def recommend(catalog: Catalog, task: str, data_gib: float, region: str, budget: float | None = None) -> tuple[Task, float, list[Choice]]:
    """The task's sizing, the memory it needs, and the smallest fitting current-generation type per family class
    (the cheapest where prices are known), within `budget` USD per hour."""
    if task not in _TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}; got {task!r}")
    spec = _TASKS[task]
    needed = memory_needed(task, data_gib)
    candidates = [k for k in catalog.select(use=spec.use, region=region, min_memory=needed, current_only=True) if not k.specs.arm]
    if task == "training-gpu":
        candidates = [k for k in candidates if k.specs.gpus and (k.specs.gpu_memory_gib or 0) / k.specs.gpus >= 16]
    elif task != "inference":
        candidates = [k for k in candidates if not k.specs.gpus and not k.specs.accelerator]
    choices = []
    for prefix, why in spec.classes:
        fitting = [k for k in candidates if _class(k) == prefix]
        priced = [(catalog.price(k.name, spec.use, region), k) for k in fitting]
        if budget is not None:
            priced = [(p, k) for p, k in priced if p is not None and p <= budget]
        if not priced:
            continue
        hourly, best = min(priced, key=lambda pair: (pair[0] if pair[0] is not None else float("inf"), _newest_first(pair[1])))
        memory = best.specs.memory_gib or 0
        reason = f"{why}; {memory:g} GiB for the {needed:.0f} GiB needed"
        if best.specs.accelerator:
            reason += f"; {best.specs.accelerator}"
        choices.append(Choice(best, hourly, reason))
    return spec, needed, choices


def _class(kind: InstanceType) -> str:
    family = kind.family
    return "inf" if family.startswith("inf") else family[:1]


def _newest_first(kind: InstanceType) -> tuple[float, bool, int, str]:
    """Smallest memory first, then a standard family before a flex one, then the newest generation (m7i before m6i)."""
    generation = re.match(r"[a-z]+(\d+)", kind.family)
    return (kind.specs.memory_gib or 0, kind.family.endswith("-flex"), -int(generation[1]) if generation else 0, kind.name)
