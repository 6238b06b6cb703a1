"""What differs between versions of SageMaker's built-in XGBoost algorithm (sagemaker-xgboost images).

Read from aws/sagemaker-xgboost-container, one branch per version (`algorithm_mode/`,
`constants/xgb_constants.py`, `metrics/custom_metrics.py`, the Dockerfiles). Pure data:
importing this module does not import xgboost.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every version of the built-in algorithm that sagelab emulates, oldest first, with the xgboost
# release its image ships.
XGBOOST_RELEASES = {
    "0.90-1": "0.90",
    "0.90-2": "0.90",
    "1.0-1": "1.0.0",
    "1.2-1": "1.2.0",
    "1.2-2": "1.2.0",
    "1.3-1": "1.3.3",
    "1.5-1": "1.5.2",
    "1.7-1": "1.7.4",
    "3.0-5": "3.0.5",
}
VERSIONS = tuple(XGBOOST_RELEASES)

# Artifact formats of /opt/ml/model/xgboost-model.
PICKLE = "pickle"  # pickle.dump(booster): 0.90-1 to 1.2-2
BINARY = "binary"  # Booster.save_model with no extension, xgboost < 2.1: XGBoost's old binary format (1.3-1 to 1.7-1)
UBJSON = "ubjson"  # Booster.save_model with no extension, xgboost >= 2.1: UBJSON (3.0-5)


def version_key(version: str) -> tuple[int, ...]:
    """"1.7-1" → (1, 7, 1), so that versions compare in release order."""
    return tuple(int(part) for part in version.replace("-", ".").split("."))


def at_least(version: str, oldest: str) -> bool:
    return version_key(version) >= version_key(oldest)


@dataclass(frozen=True)
class Version:
    """How one version of the built-in algorithm behaves."""

    name: str

    @property
    def xgboost(self) -> str:
        return XGBOOST_RELEASES[self.name]

    @property
    def artifact(self) -> str:
        if not at_least(self.name, "1.3-1"):
            return PICKLE
        return UBJSON if at_least(self.name, "3.0-5") else BINARY

    @property
    def pickle_protocol(self) -> int:
        # 1.2-x dump with protocol=4; earlier images used their Python 3.6 default, 3.
        return 4 if at_least(self.name, "1.2-1") else 3

    @property
    def value_format(self) -> str:
        """How a metric value is printed in the per-round lines: xgboost 0.90 used %g, later .5f."""
        return "g" if self.xgboost == "0.90" else ".5f"

    @property
    def monitor_groups_by_data(self) -> bool:
        """1.3-1 and later print with xgboost's EvaluationMonitor: train-a, train-b, validation-a, ...

        Earlier images print xgboost's metrics first and the container's own (mse, f1, ...) after
        them, as xgboost's old callbacks parsed them from the evaluation string.
        """
        return at_least(self.name, "1.3-1")

    @property
    def early_stopping_saves_best(self) -> bool:
        """1.3-1 and later stop on `validation` with EarlyStopping(save_best=True): the model is cut at its best round."""
        return at_least(self.name, "1.3-1")

    @property
    def legacy_defaults(self) -> bool:
        """The image's xgboost predates 2.0: base_score 0.5, tree_method auto (exact below 2**22 rows)."""
        return not at_least(self.name, "3.0-5")

    @property
    def old_default_metrics(self) -> bool:
        """xgboost < 1.3 evaluated binary:logistic with error and multi:* with merror by default."""
        return not at_least(self.name, "1.3-1")

    @property
    def accepts_gpu_settings(self) -> bool:
        """tree_method=gpu_hist and predictor=auto|gpu_predictor are accepted from 1.2-1 on."""
        return at_least(self.name, "1.2-1")

    @property
    def custom_metrics_see_margins(self) -> bool:
        """From 1.2-1 (xgboost 1.2) the container's own metrics get raw margins, not predictions."""
        return at_least(self.name, "1.2-1")

    def hyperparameter_available(self, name: str) -> bool:
        first, last = HYPERPARAMETER_VERSIONS.get(name, ("0.90-1", None))
        return at_least(self.name, first) and (last is None or not at_least(self.name, last))

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(o for o, first in OBJECTIVES.items() if at_least(self.name, first))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The eval_metric values the version accepts (XGB_MAXIMIZE_METRICS + XGB_MINIMIZE_METRICS)."""
        return tuple(m for m, first in METRICS.items() if at_least(self.name, first))

    @property
    def custom_metrics(self) -> tuple[str, ...]:
        """Metrics the container computes itself (`custom_metrics.py`) rather than xgboost."""
        return tuple(m for m, first in CUSTOM_METRICS.items() if at_least(self.name, first))


# Hyperparameters that only some versions accept: name → (first version, first version without it).
HYPERPARAMETER_VERSIONS: dict[str, tuple[str, str | None]] = {
    "silent": ("0.90-1", "1.2-1"),
    "num_parallel_tree": ("0.90-2", None),
    "monotone_constraints": ("1.0-1", None),
    "interaction_constraints": ("1.0-1", None),
    "save_model_on_termination": ("1.0-1", None),
    "_nfold": ("1.2-1", "1.2-2"),
    "aft_loss_distribution": ("1.2-1", None),
    "aft_loss_distribution_scale": ("1.2-1", None),
    "single_precision_histogram": ("1.2-1", "1.7-1"),
    "deterministic_histogram": ("1.2-1", None),
    "_kfold": ("1.2-2", None),
    "_num_cv_round": ("1.2-2", None),
    "sampling_method": ("1.3-1", None),
    "prob_buffer_row": ("1.3-1", None),
    "use_dask_gpu_training": ("1.5-1", None),
}

# objective → first version that accepts it ("aft_loss_distribution" is in the container's list too).
OBJECTIVES = {
    **dict.fromkeys(
        ["binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson", "multi:softmax", "multi:softprob",
         "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear", "reg:squarederror", "reg:logistic", "reg:gamma",
         "reg:tweedie", "survival:cox"],
        "0.90-1",
    ),
    "reg:squaredlogerror": "1.0-1",
    "aft_loss_distribution": "1.2-1",
    "reg:pseudohubererror": "1.2-1",
    "survival:aft": "1.2-1",
    "reg:absoluteerror": "1.7-1",
}  # fmt: skip

# eval_metric value → first version that accepts it.
METRICS = {
    **dict.fromkeys(
        ["accuracy", "auc", "aucpr", "cox-nloglik", "f1", "gamma-nloglik", "map", "ndcg", "poisson-nloglik",
         "tweedie-nloglik", "error", "gamma-deviance", "logloss", "mae", "merror", "mlogloss", "mse", "rmse"],
        "0.90-1",
    ),
    "rmsle": "1.0-1",
    **dict.fromkeys(["r2", "aft-nloglik", "interval-regression-accuracy", "mphe"], "1.2-1"),
    **dict.fromkeys(["f1_binary", "f1_macro"], "1.2-2"),
    **dict.fromkeys(
        ["balanced_accuracy", "precision", "recall", "precision_macro", "precision_micro", "recall_macro",
         "recall_micro", "mape"],
        "1.3-1",
    ),
}  # fmt: skip

# Metrics where larger is better (early stopping maximises them).
MAXIMIZE = frozenset(
    ["accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision",
     "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro"]
)  # fmt: skip

# Metrics the container computes with its own functions → first version that does.
CUSTOM_METRICS = {
    **dict.fromkeys(["accuracy", "f1", "mse"], "0.90-1"),
    "r2": "1.2-1",
    **dict.fromkeys(["f1_binary", "f1_macro"], "1.2-2"),
    **dict.fromkeys(
        ["balanced_accuracy", "rmse", "mae", "precision", "precision_macro", "precision_micro", "recall",
         "recall_macro", "recall_micro"],
        "1.3-1",
    ),
}  # fmt: skip

# The regex SageMaker attaches to each built-in metric (train:<m> and validation:<m>); it reads the
# job's CloudWatch log, where a tab shows as #011.
METRIC_REGEX = r".*\[[0-9]+\].*#011{channel}-{metric}:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"


def metric_definitions(version: str) -> tuple[tuple[str, str], ...]:
    """(Name, Regex) of every metric SageMaker reports for this version of the algorithm, train first."""
    metrics = Version(version).metrics
    return tuple(
        (f"{channel}:{metric}", METRIC_REGEX.format(channel=channel, metric=metric))
        for channel in ("train", "validation")
        for metric in metrics
    )
