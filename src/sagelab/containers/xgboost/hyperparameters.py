"""hyperparameters.json checked as the built-in algorithm checks it, version by version.

The container validates with sagemaker_algorithm_toolkit (`Hyperparameters.validate`): aliases
replaced, required ones present, each value parsed by its type, ranges, then the checks
between hyperparameters. Unknown names fail ("Extraneous hyperparameter found"), as on
SageMaker: `silent`, for one, is accepted up to 1.0-1 only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from sagelab.containers.xgboost.errors import UserError
from sagelab.containers.xgboost.versions import Version


@dataclass(frozen=True)
class Spec:
    """A hyperparameter's type and range: kind is int, float, choice, list, tuple or nested."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def contains(self, value: float) -> bool:
        return not (
            (self.low is not None and (value <= self.low if self.low_open else value < self.low))
            or (self.high is not None and (value >= self.high if self.high_open else value > self.high))
        )

    def interval(self) -> str:
        low = "(-inf" if self.low is None else f"{'(' if self.low_open else '['}{_number(self.low)}"
        high = "+inf)" if self.high is None else f"{_number(self.high)}{')' if self.high_open else ']'}"
        return f"{low}, {high}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _int(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> Spec:
    return Spec("int", low, high, low_open, high_open)


def _float(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> Spec:
    return Spec("float", low, high, low_open, high_open)


def _choice(*choices: str) -> Spec:
    return Spec("choice", choices=choices)


_TRUE_FALSE = _choice("true", "false")
_FRACTION = _float(0, 1, low_open=True)
UPDATERS = ("grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_skmaker", "sync", "refresh",
            "prune", "shotgun", "coord_descent")  # fmt: skip

# The algorithm's hyperparameters (objective, eval_metric and _tuning_objective_metric depend on the version).
SPECS: dict[str, Spec] = {
    "num_round": _int(1), "csv_weights": _int(0, 1), "early_stopping_rounds": _int(1),
    "booster": _choice("gbtree", "gblinear", "dart"), "silent": _int(0, 1), "verbosity": _int(0, 3), "nthread": _int(1),
    "eta": _float(0, 1), "gamma": _float(0), "max_depth": _int(0), "min_child_weight": _float(0),
    "max_delta_step": _float(0), "subsample": _FRACTION, "colsample_bytree": _FRACTION, "colsample_bylevel": _FRACTION,
    "colsample_bynode": _FRACTION, "lambda": _float(0), "alpha": _float(0),
    "tree_method": _choice("auto", "exact", "approx", "hist", "gpu_hist"),
    "sketch_eps": _float(0, 1, low_open=True, high_open=True), "scale_pos_weight": _float(0, low_open=True),
    "updater": Spec("list", choices=UPDATERS), "dsplit": _choice("row", "col"), "refresh_leaf": _int(0, 1),
    "process_type": _choice("default", "update"), "grow_policy": _choice("depthwise", "lossguide"),
    "max_leaves": _int(0), "max_bin": _int(0), "predictor": _choice("auto", "cpu_predictor", "gpu_predictor"),
    "monotone_constraints": Spec("tuple", choices=("-1", "0", "1")), "interaction_constraints": Spec("nested", 1),
    "sample_type": _choice("uniform", "weighted"), "normalize_type": _choice("tree", "forest"),
    "rate_drop": _float(0, 1), "one_drop": _int(0, 1), "skip_drop": _float(0, 1), "lambda_bias": _float(0, 1),
    "tweedie_variance_power": _float(1, 2, low_open=True, high_open=True), "objective": _choice(), "num_class": _int(2),
    "base_score": _float(0), "_nfold": _int(2), "_kfold": _int(2), "_num_cv_round": _int(1),
    "_tuning_objective_metric": _choice(), "eval_metric": Spec("list"),
    "seed": _int(-(2**31), 2**31 - 1, low_open=True, high_open=True), "num_parallel_tree": _int(1),
    "save_model_on_termination": _TRUE_FALSE, "aft_loss_distribution": _choice("normal", "logistic", "extreme"),
    "aft_loss_distribution_scale": _float(0), "single_precision_histogram": _TRUE_FALSE,
    "deterministic_histogram": _TRUE_FALSE, "sampling_method": _choice("uniform", "gradient_based"),
    "prob_buffer_row": _int(1, low_open=True), "use_dask_gpu_training": _TRUE_FALSE,
}  # fmt: skip
ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha"}
_THRESHOLD_METRICS = ("error", "ndcg", "map")  # the only ones eval_metric accepts as name@threshold


def validate(raw: dict[str, Any], version: Version) -> dict[str, Any]:
    """Parse and check hyperparameters.json (string values) for `version`; returns typed values.

    Raises:
        UserError: with the container's own message (and a hint where one helps).
    """
    values = {ALIASES.get(name, name): value for name, value in raw.items()}
    if "num_round" not in values:
        raise UserError("Missing required hyperparameter: num_round (the number of boosting rounds, e.g. num_round=100)")
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        if name not in SPECS or not version.hyperparameter_available(name):
            raise UserError(f"Extraneous hyperparameter found: {name}{_extraneous_hint(name, version)}")
        parsed[name] = _parse(name, SPECS[name], str(value))
    for name, value in parsed.items():
        _check_range(name, value, version)
    _check_dependencies(parsed)
    return parsed


def _extraneous_hint(name: str, version: Version) -> str:
    if name == "silent":
        return f" (the {version.name} algorithm has no 'silent'; use verbosity=0 to quieten it)"
    if name.startswith("sagemaker_"):
        return " (built-in algorithms take no sagemaker_* hyperparameters; they belong to framework estimators)"
    return f" (not a hyperparameter of the built-in XGBoost algorithm {version.name})"


def _parse(name: str, spec: Spec, value: str) -> Any:
    try:
        if spec.kind == "int":
            return int(value)
        if spec.kind == "float":
            return float(value)
        if spec.kind == "list":
            return value.split(",")
        if spec.kind in ("tuple", "nested"):
            return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        kind = {"int": "an integer", "float": "a number"}.get(spec.kind, "a literal")
        raise UserError(f"Hyperparameter {name}: could not parse value {value!r} as {kind}") from None
    return value


def _check_range(name: str, value: Any, version: Version) -> None:
    spec = SPECS[name]
    if name in ("tree_method", "predictor") and "gpu" in str(value) and not version.accepts_gpu_settings:
        raise UserError("GPU training is not supported yet.")  # what 0.90-x and 1.0-1 say
    choices = _choices(name, spec, version)
    if spec.kind in ("int", "float"):
        if not spec.contains(value):
            raise UserError(f"Hyperparameter {name}: {value} is not in {spec.interval()}")
    elif spec.kind == "choice":
        if value not in choices:
            raise UserError(f"Hyperparameter {name}: {value} is not in {list(choices)}")
    elif name == "eval_metric":
        for metric in value:
            _check_metric(metric, version)
    elif spec.kind == "list":
        if any(v not in choices for v in value):
            raise UserError(f"Hyperparameter {name}: value {value} not in range {list(choices)}")
    elif spec.kind == "tuple":
        if not isinstance(value, (tuple, list)) or any(str(v) not in choices for v in value):
            raise UserError(f"Hyperparameter {name}: value {value} not in range [-1, 0, 1]")
    elif spec.kind == "nested":
        if not isinstance(value, (tuple, list)) or any(
            not isinstance(inner, (tuple, list)) or any(not isinstance(v, int) or v < 1 for v in inner) for inner in value
        ):
            raise UserError(f"Hyperparameter {name}: value {value} not in range [1, +inf)")


def _choices(name: str, spec: Spec, version: Version) -> tuple[str, ...]:
    if name == "objective":
        return version.objectives
    if name == "_tuning_objective_metric":
        return tuple(f"validation:{m}" for m in version.metrics)
    if name in ("tree_method", "predictor") and not version.accepts_gpu_settings:
        return tuple(c for c in spec.choices if "gpu" not in c and (name != "predictor" or c != "auto"))
    return spec.choices


def _check_metric(metric: str, version: Version) -> None:
    if "<function" in metric:
        raise UserError(f"User defined evaluation metric {metric} is not supported yet.")
    if "@" in metric:
        name, threshold = (part.strip() for part in metric.split("@", 1))
        if name not in _THRESHOLD_METRICS:
            raise UserError(
                f"Metric '{metric}' is not supported. Parameter 'eval_metric' with customized threshold should "
                "be one of these options: 'error', 'ndcg', 'map'."
            )
        try:
            float(threshold)
        except ValueError:
            raise UserError(f"Threshold value 't' in '{name}@t' expects float input.") from None
        return
    if metric not in version.metrics:
        raise UserError(f"Hyperparameter eval_metric: value {metric!r} is not in {list(version.metrics)}")


def _check_dependencies(values: dict[str, Any]) -> None:
    objective = values.get("objective")
    if objective in ("multi:softmax", "multi:softprob") and "num_class" not in values:
        raise UserError("Require input for parameter 'num_class' for multi-classification")
    if objective is None and "num_class" in values:
        raise UserError("Do not need to setup parameter 'num_class' for learning task other than multi-classification.")
    metrics = values.get("eval_metric", [])
    if "auc" in metrics and not str(objective).startswith(("binary:", "rank:")):
        raise UserError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in metrics and objective != "survival:aft":
        raise UserError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective.")
    tree_method = values.get("tree_method")
    if "monotone_constraints" in values and tree_method not in ("exact", "hist"):
        raise UserError(
            "monotone_constraints can be used only when the tree_method parameter is set to either 'exact' or 'hist'."
        )
    if "interaction_constraints" in values and tree_method not in ("exact", "hist", "approx"):
        raise UserError(
            "interaction_constraints can be used only when the tree_method parameter is set to "
            "either 'exact', 'hist' or 'approx'."
        )
