"""Model quality: the metrics Model Monitor reports for a problem type, its constraints and violations.

Metric names and shapes: docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-metrics.html.
Standard deviations are given, as there, from 200 rows up: the metric's spread over 5 random
80% samples (seeded, so a rerun gives the same numbers); below that they are "NaN".
"""

from __future__ import annotations

import math
import random
import statistics as stats
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sagelab.containers.monitor import MonitorError
from sagelab.containers.monitor.dataset import Table, Value

PROBLEM_TYPES = {"Regression": "regression", "BinaryClassification": "binary_classification",
                 "MulticlassClassification": "multiclass_classification"}  # fmt: skip
# Metric → how a later value breaks a baseline's threshold (the operators Model Monitor suggests).
CONSTRAINED = {
    "regression": {"mae": "GreaterThanThreshold", "mse": "GreaterThanThreshold", "rmse": "GreaterThanThreshold", "r2": "LessThanThreshold"},
    "binary_classification": {
        **{m: "LessThanThreshold" for m in ("recall", "precision", "accuracy", "true_positive_rate", "true_negative_rate", "auc", "f0_5", "f1", "f2")},
        "false_positive_rate": "GreaterThanThreshold",
        "false_negative_rate": "GreaterThanThreshold",
    },
    "multiclass_classification": {
        m: "LessThanThreshold" for m in ("accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5", "weighted_f1", "weighted_f2")
    },
}
_BROKEN: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
MIN_ROWS_FOR_DEVIATION = 200
CURVE_POINTS = 100
Pairs = list[tuple[Any, Any, float | None]]  # (ground truth, prediction, probability)


def statistics(table: Table, env: Mapping[str, str]) -> dict[str, Any]:
    problem = PROBLEM_TYPES.get(env.get("problem_type", ""))
    if problem is None:
        raise MonitorError(f"problem_type {env.get('problem_type')!r} is not one of {', '.join(PROBLEM_TYPES)}")
    rows = _pairs(table, env, problem)
    compute = {"regression": _regression, "binary_classification": _binary, "multiclass_classification": _multiclass}[problem]
    metrics = compute(rows)
    samples = [compute(random.Random(seed).sample(rows, int(len(rows) * 0.8))) for seed in range(5)] if len(rows) >= MIN_ROWS_FOR_DEVIATION else []
    for name, value in list(metrics.items()):
        if isinstance(value, float):
            spread = [s[name] for s in samples if isinstance(s.get(name), float) and not math.isnan(s[name])]
            metrics[name] = {"value": _number(value), "standard_deviation": _number(stats.pstdev(spread)) if len(spread) > 1 else "NaN"}
    evaluated = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {"version": 0.0, "dataset": {"item_count": len(rows), "evaluation_time": evaluated}, f"{problem}_metrics": metrics}


def constraints(statistics_json: dict[str, Any]) -> dict[str, Any]:
    """Thresholds at the baseline's values: a later run breaks them by doing worse."""
    problem = next(key[: -len("_metrics")] for key in statistics_json if key.endswith("_metrics"))
    metrics: dict[str, Any] = statistics_json[f"{problem}_metrics"]
    return {"version": 0.0, f"{problem}_constraints": {
        name: {"threshold": metrics[name]["value"], "comparison_operator": operator}
        for name, operator in CONSTRAINED[problem].items()
        if isinstance(metrics.get(name), dict) and isinstance(metrics[name]["value"], float)
    }}  # fmt: skip


def violations(statistics_json: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, str]]:
    metrics: dict[str, Any] = next((v for k, v in statistics_json.items() if k.endswith("_metrics")), {})
    found = []
    for key, rules in baseline.items():
        if not key.endswith("_constraints") or not isinstance(rules, dict):
            continue
        for name, rule in rules.items():
            value = (metrics.get(name) or {}).get("value")
            operator, threshold = rule.get("comparison_operator"), rule.get("threshold")
            if not isinstance(value, float) or operator not in _BROKEN or not isinstance(threshold, (int, float)):
                continue
            if _BROKEN[operator](value, float(threshold)):
                deviation = metrics[name]["standard_deviation"]
                spread = f" +/- {deviation:.4g}" if isinstance(deviation, float) else ""
                found.append({"constraint_check_type": operator, "metric_name": name,
                              "description": f"Metric {name} with {value:.4g}{spread} was {operator} '{threshold}'"})  # fmt: skip
    return found


def _pairs(table: Table, env: Mapping[str, str], problem: str) -> Pairs:
    truth = table.column(env.get("ground_truth_attribute", ""), "ground_truth_attribute")
    probability = table.column(env["probability_attribute"], "probability_attribute") if env.get("probability_attribute") else None
    if env.get("inference_attribute"):
        predicted = table.column(env["inference_attribute"], "inference_attribute")
    elif probability is not None and problem == "binary_classification":
        threshold = float(env.get("probability_threshold_attribute") or 0.5)
        predicted = [None if p is None else int(_float(p, "probability_attribute") >= threshold) for p in probability]
    else:
        raise MonitorError("set inference_attribute (or, for BinaryClassification, probability_attribute) to the predictions' column")
    rows: Pairs = []
    for i, (actual, guess) in enumerate(zip(truth, predicted)):
        if actual is None or guess is None:
            continue
        score = _float(probability[i], "probability_attribute") if probability is not None and probability[i] is not None else None
        if problem == "regression":
            rows.append((_float(actual, "ground_truth_attribute"), _float(guess, "inference_attribute"), None))
        elif problem == "binary_classification":
            rows.append((_binary_label(actual, "ground_truth_attribute"), _binary_label(guess, "inference_attribute"), score))
        else:
            rows.append((_label(actual), _label(guess), None))
    if not rows:
        raise MonitorError("no row has both a ground truth and a prediction")
    return rows


def _float(value: Value, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MonitorError(f"{what}: {value!r} is not a number") from None


def _label(value: Value) -> str:
    """A class label as text; numbers compare by value, so 1, 1.0 and "1" are one class."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value).strip()
    return str(int(number)) if number.is_integer() else str(value).strip()


def _binary_label(value: Value, what: str) -> int:
    text = _label(value).lower()
    if text in ("1", "true"):
        return 1
    if text in ("0", "false"):
        return 0
    raise MonitorError(f"{what}: {value!r} is not a binary label; BinaryClassification needs 0/1 (or true/false)")


def _regression(rows: Pairs) -> dict[str, Any]:
    errors = [actual - predicted for actual, predicted, _ in rows]
    mse = sum(e * e for e in errors) / len(rows)
    mean = sum(actual for actual, _, _ in rows) / len(rows)
    total = sum((actual - mean) ** 2 for actual, _, _ in rows)
    return {"mae": sum(abs(e) for e in errors) / len(rows), "mse": mse, "rmse": math.sqrt(mse), "r2": 1 - mse * len(rows) / total if total else math.nan}


def _binary(rows: Pairs) -> dict[str, Any]:
    tp = sum(1 for a, p, _ in rows if a == 1 and p == 1)
    fp = sum(1 for a, p, _ in rows if a == 0 and p == 1)
    fn = sum(1 for a, p, _ in rows if a == 1 and p == 0)
    tn = len(rows) - tp - fp - fn
    positives = tp + fn
    metrics: dict[str, Any] = {"confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}}}
    metrics.update(_rates(tp, fp, fn, tn))
    constant = _rates(positives, len(rows) - positives, 0, 0)  # the best constant classifier says 1 every time
    metrics.update({f"{name}_best_constant_classifier": constant[name] for name in ("recall", "precision", "accuracy")})
    scores = [(score if score is not None else float(p), a) for a, p, score in rows]
    fpr, tpr, precisions = _curves(scores, positives, len(rows) - positives)
    metrics["receiver_operating_characteristic_curve"] = {"false_positive_rates": fpr, "true_positive_rates": tpr}
    metrics["precision_recall_curve"] = {"precisions": precisions, "recalls": tpr}
    metrics["auc"] = _auc(scores, positives, len(rows) - positives)
    for beta, name in ((0.5, "f0_5"), (1.0, "f1"), (2.0, "f2")):
        metrics[name] = _f(metrics["precision"], metrics["recall"], beta)
        metrics[f"{name}_best_constant_classifier"] = _f(constant["precision"], constant["recall"], beta)
    return metrics


def _rates(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"recall": recall, "precision": tp / (tp + fp) if tp + fp else 0.0, "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "true_positive_rate": recall, "true_negative_rate": tn / (tn + fp) if tn + fp else 0.0,
            "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0, "false_negative_rate": fn / (fn + tp) if fn + tp else 0.0}  # fmt: skip


def _f(precision: float, recall: float, beta: float) -> float:
    denominator = beta * beta * precision + recall
    return (1 + beta * beta) * precision * recall / denominator if denominator else 0.0


def _curves(scores: list[tuple[float, int]], positives: int, negatives: int) -> tuple[list[float], list[float], list[float]]:
    """ROC and precision-recall points, at up to CURVE_POINTS score thresholds from high to low."""
    thresholds = sorted({s for s, _ in scores}, reverse=True)
    if len(thresholds) > CURVE_POINTS:
        thresholds = [thresholds[round(i * (len(thresholds) - 1) / (CURVE_POINTS - 1))] for i in range(CURVE_POINTS)]
    fpr, tpr, precision = [], [], []
    for threshold in thresholds:
        tp = sum(1 for s, a in scores if s >= threshold and a == 1)
        fp = sum(1 for s, a in scores if s >= threshold and a == 0)
        fpr.append(fp / negatives if negatives else 0.0)
        tpr.append(tp / positives if positives else 0.0)
        precision.append(tp / (tp + fp) if tp + fp else 1.0)
    return fpr, tpr, precision


def _auc(scores: list[tuple[float, int]], positives: int, negatives: int) -> float:
    """The area under the ROC curve: the chance a positive scores above a negative (ties count half)."""
    if not positives or not negatives:
        return math.nan
    ranked = sorted(scores)
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(1 for _, a in ranked[i:j] if a == 1) * (i + j + 1) / 2  # the average 1-based rank of the tie
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _multiclass(rows: Pairs) -> dict[str, Any]:
    labels = sorted({a for a, _, _ in rows} | {p for _, p, _ in rows})
    matrix = {actual: {predicted: 0 for predicted in labels} for actual in labels}
    for actual, predicted, _ in rows:
        matrix[actual][predicted] += 1
    metrics: dict[str, Any] = {"confusion_matrix": matrix, **_weighted(rows)}
    majority = Counter(a for a, _, _ in rows).most_common(1)[0][0]
    constant = _weighted([(a, majority, None) for a, _, _ in rows])
    metrics.update({f"{name}_best_constant_classifier": value for name, value in constant.items()})
    return metrics


def _weighted(rows: Pairs) -> dict[str, float]:
    support = Counter(a for a, _, _ in rows)
    weighted = dict.fromkeys(("weighted_recall", "weighted_precision", "weighted_f0_5", "weighted_f1", "weighted_f2"), 0.0)
    for label, count in support.items():
        tp = sum(1 for a, p, _ in rows if a == label and p == label)
        predicted = sum(1 for _, p, _ in rows if p == label)
        recall, precision = tp / count, tp / predicted if predicted else 0.0
        weight = count / len(rows)
        weighted["weighted_recall"] += weight * recall
        weighted["weighted_precision"] += weight * precision
        for beta, name in ((0.5, "weighted_f0_5"), (1.0, "weighted_f1"), (2.0, "weighted_f2")):
            weighted[name] += weight * _f(precision, recall, beta)
    return {"accuracy": sum(1 for a, p, _ in rows if a == p) / len(rows), **weighted}


def _number(value: float) -> float | str:
    return "NaN" if math.isnan(value) else value
