"""The metrics the container computes itself (`custom_metrics.py`) and the per-round lines it prints.

accuracy, f1, mse, r2, ... are not xgboost metrics: the container adds them as a custom
evaluation function. Up to 1.0-1 that function saw predictions (probabilities, classes);
from 1.2-1 on it sees raw margins and turns them into classes by sign (binary) or argmax.
The line format is what SageMaker's metric regexes read: `[3]\\ttrain-rmse:2.51\\tvalidation-rmse:2.73`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from sagelab.containers.xgboost.errors import UserError
from sagelab.containers.xgboost.versions import Version

Array = npt.NDArray[np.float64]
EvalsLog = Mapping[str, Mapping[str, Sequence[float | tuple[float, float]]]]
_BINARY_ONLY = "Target is multiclass but average='binary'. Please choose another average setting, one of [None, 'micro', 'macro', 'weighted']."  # fmt: skip


def class_labels(predictions: Array, margins: bool) -> Array:
    if predictions.ndim == 2:
        return np.asarray(predictions.argmax(axis=1), dtype=np.float64)
    if margins:
        return (predictions > 0).astype(np.float64)
    return np.asarray(np.round(predictions), dtype=np.float64)


def compute(name: str, predictions: Array, labels: Array, margins: bool) -> float:
    """One container metric, as scikit-learn computes it in the image."""
    if name in ("mse", "rmse", "mae", "r2"):
        values = predictions.reshape(labels.shape) if predictions.size == labels.size else predictions
        error = labels - values
        if name == "mse":
            return float(np.mean(error**2))
        if name == "rmse":
            return float(np.sqrt(np.mean(error**2)))
        if name == "mae":
            return float(np.mean(np.abs(error)))
        total = float(np.sum((labels - labels.mean()) ** 2))
        return 1.0 - float(np.sum(error**2)) / total if total else 0.0
    if predictions.size == 0:
        return 0.0
    predicted = class_labels(predictions, margins)
    if name == "accuracy":
        return float(np.mean(predicted == labels))
    if name == "balanced_accuracy":
        return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))
    kind, _, average = name.partition("_")
    if kind == "f1" and not average:
        average = "macro"
    return _score(kind, labels, predicted, average or "binary")


def _score(kind: str, labels: Array, predicted: Array, average: str) -> float:
    classes = np.union1d(labels, predicted)
    if average == "binary":
        if not set(classes.tolist()) <= {0.0, 1.0}:
            raise UserError(_BINARY_ONLY)
        classes = np.array([1.0])
    if average == "micro":
        true_positive = float(np.sum(predicted == labels))
        return true_positive / labels.size if labels.size else 0.0
    scores = []
    for c in classes:
        tp = float(np.sum((predicted == c) & (labels == c)))
        precision = tp / float(np.sum(predicted == c)) if np.any(predicted == c) else 0.0
        recall = tp / float(np.sum(labels == c)) if np.any(labels == c) else 0.0
        if kind == "precision":
            scores.append(precision)
        elif kind == "recall":
            scores.append(recall)
        else:
            scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))


def format_round(epoch: int, evals_log: EvalsLog, custom: Collection[str], version: Version) -> str:
    """The line the image prints after round `epoch`, e.g. `[0]\\ttrain-rmse:8.07478\\tvalidation-rmse:8.13236`."""
    entries = [(data, metric) for data, metrics in evals_log.items() for metric in metrics]
    if not version.monitor_groups_by_data:  # xgboost's metrics first, then the container's
        entries.sort(key=lambda entry: entry[1] in custom)
    line = f"[{epoch}]"
    for data, metric in entries:
        last = evals_log[data][metric][-1]
        value = last[0] if isinstance(last, tuple) else last
        line += f"\t{data}-{metric}:{value:{version.value_format}}"
    return line
