"""Data quality: the analyzer's statistics.json, constraints.json and violations, in Deequ's format.

Schemas: docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-interpreting-statistics.html,
model-monitor-byoc-constraints.html and model-monitor-interpreting-violations.html.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sagelab.containers.monitor.dataset import Present, Table, Value, kind

BUCKETS = 10  # "the distribution is materialized in 10 buckets"
SKETCH_K = 2048  # the KLL sketch's k; sagelab keeps up to k evenly spaced order statistics
MAX_DOMAIN = 20  # a String column with at most this many distinct values gets a domain constraint
MAX_CATEGORIES = 1000  # categorical buckets kept in statistics.json, most frequent first
MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


@dataclass
class Profile:
    """One column's values, classified."""

    name: str
    present: list[Present]
    missing: int
    kinds: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, name: str, values: list[Value]) -> Profile:
        present = [v for v in values if v is not None]
        return cls(name, present, len(values) - len(present), Counter(kind(v) for v in present))

    @property
    def inferred_type(self) -> str:
        if not self.present:
            return "Unknown"
        if self.kinds["String"]:
            return "String"
        return "Fractional" if self.kinds["Fractional"] else "Integral"

    @property
    def completeness(self) -> float:
        total = len(self.present) + self.missing
        return len(self.present) / total if total else 1.0

    def numbers(self) -> list[float]:
        return sorted(float(v) for v in self.present if kind(v) != "String")

    def categories(self) -> Counter[str]:
        return Counter(str(v) for v in self.present)


def profiles(table: Table) -> list[Profile]:
    return [Profile.of(name, column) for name, column in zip(table.names, table.columns)]


def statistics(table: Table) -> dict[str, Any]:
    return {"version": 0.0, "dataset": {"item_count": table.rows}, "features": [_feature_statistics(p) for p in profiles(table)]}


def _feature_statistics(profile: Profile) -> dict[str, Any]:
    common = {"num_present": len(profile.present), "num_missing": profile.missing}
    if profile.inferred_type in ("Integral", "Fractional"):
        values = profile.numbers()
        mean = sum(values) / len(values)
        return {"name": profile.name, "inferred_type": profile.inferred_type, "numerical_statistics": {
            "common": common, "mean": mean, "sum": sum(values),
            "std_dev": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
            "min": values[0], "max": values[-1],
            "distribution": {"kll": {"buckets": _buckets(values), "sketch": {
                "parameters": {"c": 0.64, "k": float(SKETCH_K)}, "data": [_sketch(values)]}}},
        }}  # fmt: skip
    counts = profile.categories()
    buckets = [{"value": value, "count": count} for value, count in counts.most_common(MAX_CATEGORIES)]
    return {"name": profile.name, "inferred_type": profile.inferred_type, "string_statistics": {
        "common": common, "distinct_count": float(len(counts)), "distribution": {"categorical": {"buckets": buckets}}}}  # fmt: skip


def _buckets(values: list[float]) -> list[dict[str, float]]:
    low, high = values[0], values[-1]
    if low == high:
        return [{"lower_bound": low, "upper_bound": high, "count": float(len(values))}]
    width = (high - low) / BUCKETS
    counts = [0] * BUCKETS
    for value in values:
        counts[min(int((value - low) / width), BUCKETS - 1)] += 1
    return [{"lower_bound": low + i * width, "upper_bound": low + (i + 1) * width, "count": float(c)} for i, c in enumerate(counts)]


def _sketch(values: list[float]) -> list[float]:
    if len(values) <= SKETCH_K:
        return values
    return [values[round(i * (len(values) - 1) / (SKETCH_K - 1))] for i in range(SKETCH_K)]


def constraints(table: Table) -> dict[str, Any]:
    features = []
    for profile in profiles(table):
        feature: dict[str, Any] = {"name": profile.name, "inferred_type": profile.inferred_type, "completeness": profile.completeness}
        if profile.inferred_type in ("Integral", "Fractional"):
            feature["num_constraints"] = {"is_non_negative": profile.numbers()[0] >= 0}
        elif profile.inferred_type == "String" and len(profile.categories()) <= MAX_DOMAIN:
            feature["string_constraints"] = {"domains": sorted(profile.categories())}
        features.append(feature)
    return {"version": 0.0, "features": features, "monitoring_config": MONITORING_CONFIG}


def violations(table: Table, baseline: dict[str, Any], baseline_statistics: dict[str, Any] | None) -> list[dict[str, str]]:
    """What in `table` breaks the baseline's constraints, or drifted from its statistics."""
    config = {**MONITORING_CONFIG, **baseline.get("monitoring_config", {})}
    if config.get("evaluate_constraints") == "Disabled":
        return []
    current = {p.name: p for p in profiles(table)}
    expected = [f for f in baseline.get("features", []) if isinstance(f, dict) and "name" in f]
    found: list[dict[str, str]] = []
    names = [f["name"] for f in expected]
    counts = f"Number of columns in current dataset: {len(current)}, Number of columns in baseline constraints: {len(names)}"
    found += [_violation(n, "missing_column_check", f"There are missing columns in current dataset. {counts}") for n in names if n not in current]
    found += [_violation(n, "extra_column_check", f"There are extra columns in current dataset. {counts}") for n in current if n not in names]
    stats = {f["name"]: f for f in (baseline_statistics or {}).get("features", []) if isinstance(f, dict) and "name" in f}
    for feature in expected:
        if feature["name"] in current:
            overrides = feature.get("monitoringConfigOverrides") or {}
            found += _feature_violations(current[feature["name"]], feature, stats.get(feature["name"]), {**config, **overrides})
    return found


def _feature_violations(profile: Profile, feature: dict[str, Any], stats: dict[str, Any] | None, config: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    expected_type = feature.get("inferred_type")
    if expected_type in ("Integral", "Fractional") and profile.present:
        accepted = ("Integral",) if expected_type == "Integral" else ("Integral", "Fractional")
        share = sum(profile.kinds[k] for k in accepted) / len(profile.present)
        required = float(config.get("datatype_check_threshold", 1.0))
        if share < required:
            found.append(_violation(profile.name, "data_type_check", (
                f"Data type match requirement is not met. Expected data type: {expected_type}, "
                f"Expected match: {required:.1%}. Observed: Only {share:.1%} of data is {expected_type}.")))  # fmt: skip
    if "completeness" in feature and profile.completeness < float(feature["completeness"]) - 1e-12:
        found.append(_violation(profile.name, "completeness_check", (
            f"Data completeness requirement is not met. Expected completeness: {float(feature['completeness']):.1%}. "
            f"Observed: Only {profile.completeness:.1%} of data is complete.")))  # fmt: skip
    domains = (feature.get("string_constraints") or {}).get("domains")
    if domains and profile.present:
        unknown = [str(v) for v in profile.present if str(v) not in set(map(str, domains))]
        share = 1 - len(unknown) / len(profile.present)
        required = float(config.get("domain_content_threshold", 1.0))
        if share < required:
            examples = ", ".join(sorted(set(unknown))[:5])
            found.append(_violation(profile.name, "categorical_values_check", (
                f"Data domain requirement is not met. Expected: {required:.1%} of values in the baseline's domain. "
                f"Observed: {share:.1%}; unknown values include {examples}.")))  # fmt: skip
    distribution = config.get("distribution_constraints") or {}
    if stats and distribution.get("perform_comparison", "Enabled") == "Enabled" and profile.present:
        drift = _drift(profile, stats, distribution)
        if drift is not None and drift[0] > drift[1]:
            found.append(_violation(profile.name, "baseline_drift_check", f"Baseline drift distance: {drift[0]:.4g} exceeds threshold: {drift[1]:g}"))
    return found


def _drift(profile: Profile, stats: dict[str, Any], distribution: dict[str, Any]) -> tuple[float, float] | None:
    """(distance, threshold) between the baseline's distribution and this column's, or None if incomparable."""
    numerical = stats.get("numerical_statistics")
    if numerical and profile.inferred_type in ("Integral", "Fractional"):
        data = numerical.get("distribution", {}).get("kll", {}).get("sketch", {}).get("data") or []
        baseline = sorted(float(v) for level in data for v in level)
        if not baseline:
            return None
        return _ks(baseline, profile.numbers()), float(distribution.get("comparison_threshold", 0.1))
    categorical = (stats.get("string_statistics") or {}).get("distribution", {}).get("categorical", {}).get("buckets")
    if categorical and profile.inferred_type == "String":
        total = sum(float(b["count"]) for b in categorical) or 1.0
        expected = {str(b["value"]): float(b["count"]) / total for b in categorical}
        observed = {value: count / len(profile.present) for value, count in profile.categories().items()}
        distance = max(abs(expected.get(v, 0.0) - observed.get(v, 0.0)) for v in {*expected, *observed})
        return distance, float(distribution.get("categorical_comparison_threshold", 0.1))
    return None


def _ks(baseline: list[float], current: list[float]) -> float:
    """The largest gap between the two samples' empirical distribution functions (L-infinity)."""
    distance, i, j = 0.0, 0, 0
    for point in sorted({*baseline, *current}):
        while i < len(baseline) and baseline[i] <= point:
            i += 1
        while j < len(current) and current[j] <= point:
            j += 1
        distance = max(distance, abs(i / len(baseline) - j / len(current)))
    return distance


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}
