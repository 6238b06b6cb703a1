"""Clarify's pre-training bias metrics (a DATA_BIAS check) from analysis_config.json, into analysis.json.

Definitions: docs.aws.amazon.com/sagemaker/latest/dg/clarify-measure-data-bias.html. The label
is reduced to positive (a value in label_values_or_threshold, or above it when it is a number)
or not; facet d is the rows whose facet value is in value_or_threshold (or above it), facet a
the others, and each facet value is its own facet d when no value is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagelab.containers.monitor import MonitorError
from sagelab.containers.monitor.dataset import Table, Value, read

DESCRIPTIONS = {
    "CDDL": "Conditional Demographic Disparity in Labels (CDDL)",
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "JS": "Jensen-Shannon Divergence (JS)",
    "KL": "Kullback-Liebler Divergence (KL)",
    "KS": "Kolmogorov-Smirnov Distance (KS)",
    "LP": "L-p Norm (LP)",
    "TVD": "Total Variation Distance (TVD)",
}


def analysis(config: dict[str, Any], data: Path) -> dict[str, Any]:
    if config.get("dataset_type", "text/csv") != "text/csv":
        raise MonitorError(f"dataset_type {config['dataset_type']} is not emulated locally; a local data bias check reads text/csv")
    table = _table(read(data, '{"csv": {"header": false}}'), config.get("headers"))
    label = str(config.get("label", ""))
    wanted = config.get("label_values_or_threshold")
    if wanted is None:
        raise MonitorError("analysis_config.json has no label_values_or_threshold: set BiasConfig(label_values_or_threshold=...)")
    positive = [_matches(v, wanted) for v in table.column(label, "label")]
    methods = (config.get("methods", {}).get("pre_training_bias") or {}).get("methods", "all")
    names = sorted(DESCRIPTIONS) if methods == "all" else sorted(m for m in methods if m in DESCRIPTIONS)
    groups = table.column(str(config["group_variable"]), "group_variable") if config.get("group_variable") is not None else None
    facets: dict[str, list[dict[str, Any]]] = {}
    for facet in config.get("facet") or []:
        name = str(facet.get("name_or_index"))
        values = table.column(name, "facet")
        given = facet.get("value_or_threshold")
        splits = [(",".join(map(str, given)) if isinstance(given, list) else str(given), [_matches(v, given) for v in values])] if given is not None else [
            (str(value), [v is not None and str(v) == str(value) for v in values]) for value in sorted({str(v) for v in values if v is not None})
        ]  # fmt: skip
        facets[name] = [{"value_or_threshold": text, "metrics": [_metric(m, in_d, positive, groups) for m in names]} for text, in_d in splits]
    if not facets:
        raise MonitorError("analysis_config.json names no facet: set BiasConfig(facet_name=...)")
    return {"version": "1.0", "pre_training_bias_metrics": {
        "label": label, "facets": facets,
        "label_value_or_threshold": ",".join(map(str, wanted)) if isinstance(wanted, list) else str(wanted)}}  # fmt: skip


def _table(table: Table, headers: Any) -> Table:
    """Name the columns after the config's headers; a first row equal to them is a header row, dropped."""
    if not headers:
        return table
    if len(headers) != len(table.names):
        raise MonitorError(f"analysis_config.json lists {len(headers)} headers but the data has {len(table.names)} columns")
    if table.rows and [table.columns[i][0] for i in range(len(headers))] == list(headers):
        table.columns = [column[1:] for column in table.columns]
    return Table([str(h) for h in headers], table.columns)


def _matches(value: Value, wanted: Any) -> bool:
    """Is `value` one of the wanted values, or above the wanted threshold?"""
    if value is None:
        return False
    if isinstance(wanted, list):
        return any(_same(value, w) for w in wanted)
    try:
        return float(value) > float(wanted)
    except (TypeError, ValueError):
        raise MonitorError(f"{value!r} cannot be compared with the threshold {wanted!r}") from None


def _same(value: Value, wanted: Any) -> bool:
    try:
        return float(value) == float(wanted)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value) == str(wanted)


def _metric(name: str, in_d: list[bool], positive: list[bool], groups: list[Value] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "description": DESCRIPTIONS[name], "value": None}
    n_d, n_a = sum(in_d), len(in_d) - sum(in_d)
    if not n_d or not n_a:
        entry["error"] = f"facet {'d' if not n_d else 'a'} has no rows"
        return entry
    if name == "CDDL":
        if groups is None:
            entry["error"] = "Group variable is empty or not provided"
        else:
            entry["value"] = _cddl(in_d, positive, groups)
        return entry
    q_a = sum(p for p, d in zip(positive, in_d) if not d) / n_a
    q_d = sum(p for p, d in zip(positive, in_d) if d) / n_d
    p_a, p_d = (q_a, 1 - q_a), (q_d, 1 - q_d)
    formulas: dict[str, Callable[[], float]] = {
        "CI": lambda: (n_a - n_d) / (n_a + n_d),
        "DPL": lambda: q_a - q_d,
        "KL": lambda: _kl(p_a, p_d),
        "JS": lambda: 0.5 * (_kl(p_a, _mid(p_a, p_d)) + _kl(p_d, _mid(p_a, p_d))),
        "LP": lambda: math.sqrt(sum((a - d) ** 2 for a, d in zip(p_a, p_d))),
        "TVD": lambda: 0.5 * sum(abs(a - d) for a, d in zip(p_a, p_d)),
        "KS": lambda: max(abs(a - d) for a, d in zip(p_a, p_d)),
    }
    value = formulas[name]()
    if math.isinf(value):
        entry["error"] = "facet d has no rows with a label value that facet a has"
    else:
        entry["value"] = value
    return entry


def _kl(p: tuple[float, float], q: tuple[float, float]) -> float:
    if any(a > 0 and b == 0 for a, b in zip(p, q)):
        return math.inf
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _mid(p: tuple[float, float], q: tuple[float, float]) -> tuple[float, float]:
    return ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)


def _cddl(in_d: list[bool], positive: list[bool], groups: list[Value]) -> float:
    """Demographic disparity of facet d within each group, weighted by the group's size."""
    total = 0.0
    for group in {str(g) for g in groups}:
        rows = [i for i, g in enumerate(groups) if str(g) == group]
        rejected = [i for i in rows if not positive[i]]
        accepted = [i for i in rows if positive[i]]
        share_rejected = sum(in_d[i] for i in rejected) / len(rejected) if rejected else 0.0
        share_accepted = sum(in_d[i] for i in accepted) / len(accepted) if accepted else 0.0
        total += len(rows) * (share_rejected - share_accepted)
    return total / len(groups)
