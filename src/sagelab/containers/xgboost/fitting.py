"""Training with the installed xgboost as the image's `train_job` does, and the model written as the version writes it.

The image's own xgboost release differs from the one installed here, so where the two
disagree on defaults this module sets the image's (base_score 0.5 and tree_method exact for
images before 3.0-5, error/merror as default metrics before 1.3-1) and maps what newer
xgboost no longer takes (reg:linear, silent, gpu_hist on a machine without a GPU).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from sagelab.containers.xgboost import metrics as container_metrics
from sagelab.containers.xgboost.data import Dataset
from sagelab.containers.xgboost.errors import AlgorithmError, UserError
from sagelab.containers.xgboost.versions import BINARY, MAXIMIZE, PICKLE, Version

log = logging.getLogger("sagelab.containers.xgboost")
MODEL_NAME = "xgboost-model"
# xgboost messages the container reports as the user's mistake rather than its own (xgb_constants.CUSTOMER_ERRORS).
# Newer xgboost words some differently ("label must be in (0, 1)"), hence the shorter forms.
CUSTOMER_ERRORS = (
    "label must be", "Target is multiclass but average='binary'", "feature_names mismatch",
    "Check failed: preds.size() == info.labels_.size()", "the dataset only contains pos or neg samples",
    "base_score must be in (0,1) for logistic loss", "Parameter reg_lambda should be greater equal to 0",
)  # fmt: skip
_CONTAINER_ONLY = ("csv_weights", "save_model_on_termination", "use_dask_gpu_training", "_tuning_objective_metric")
_OLD_DEFAULT_METRICS = {"binary:logistic": "error", "multi:softmax": "merror", "multi:softprob": "merror"}


class RoundMetrics:
    """Adds the container's own metrics to each round's log, then prints the round as the image does.

    The container computes them in an xgboost `feval`, which up to xgboost 1.0 saw predictions
    and from 1.2 on raw margins. Newer xgboost hands a custom metric predictions only, so they
    are computed here from the model, with the margins or predictions the version saw; being
    in the round's log, early stopping can use them as it did in the image.
    """

    def __init__(self, version: Version, custom: list[str], watchlist: list[tuple[xgb.DMatrix, str]]) -> None:
        self.version = version
        self.custom = custom
        self.watchlist = watchlist

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, list[Any]]]) -> bool:
        margins = self.version.custom_metrics_see_margins
        for data, name in self.watchlist if self.custom else ():
            values = np.asarray(model.predict(data, output_margin=margins), dtype=np.float64)
            labels = np.asarray(data.get_label(), dtype=np.float64)
            history = evals_log.setdefault(name, {})
            for metric in self.custom:
                score = container_metrics.compute(metric, values, labels, margins)
                history.setdefault(metric, []).append(score)
        if evals_log:
            print(container_metrics.format_round(epoch, evals_log, self.custom, self.version), flush=True)
        return False


def _callback(metrics: RoundMetrics) -> Any:
    """`metrics` as the installed xgboost takes a callback: a TrainingCallback (1.3 on), or a function of the round (before).

    The images before 1.3-1 ship xgboost 0.90 to 1.2, whose callbacks get a CallbackEnv with the
    round's (`train-rmse`, value) pairs; those are gathered into the log newer xgboost keeps.
    """
    if hasattr(xgb.callback, "TrainingCallback"):

        class Callback(xgb.callback.TrainingCallback):  # type: ignore[misc, unused-ignore]
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return metrics.after_iteration(model, epoch, evals_log)

        return Callback()
    history: dict[str, dict[str, list[Any]]] = {}

    def legacy(env: Any) -> None:
        for name, value, *_ in env.evaluation_result_list:
            data, metric = name.split("-", 1)
            history.setdefault(data, {}).setdefault(metric, []).append(value)
        metrics.after_iteration(env.model, env.iteration, history)

    return legacy


def dmatrix(data: Dataset) -> xgb.DMatrix:
    if data.qid is None:
        return xgb.DMatrix(data.features, label=data.label, weight=data.weight, missing=np.nan)
    try:
        return xgb.DMatrix(data.features, label=data.label, weight=data.weight, qid=data.qid, missing=np.nan)
    except TypeError:  # xgboost before 1.2 takes query groups as their sizes
        matrix = xgb.DMatrix(data.features, label=data.label, weight=data.weight, missing=np.nan)
        qid = np.asarray(data.qid)
        starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]])  # each query's rows are consecutive
        matrix.set_group(np.diff(np.r_[starts, len(qid)]))
        return matrix


def train(params: dict[str, Any], train_data: xgb.DMatrix, validation: xgb.DMatrix | None, version: Version) -> xgb.Booster:
    """Run xgb.train with the version's callbacks, early stopping and custom metrics."""
    params = dict(params)
    num_round = int(params.pop("num_round"))
    early_stopping_rounds = params.pop("early_stopping_rounds", None)
    tuning = params.get("_tuning_objective_metric")
    for name in ("_kfold", "_nfold"):
        if name in params:
            raise UserError(f"{name}: k-fold cross validation (what SageMaker's automatic model tuning asks for) is not emulated by sagelab")
    for name in _CONTAINER_ONLY:
        params.pop(name, None)
    _update_for_installed_xgboost(params, train_data, version)
    requested = list(params.pop("eval_metric", []))
    tuning_metrics = tuning.split(":", 1)[1].split(",") if tuning else []
    wanted = requested + [m for m in tuning_metrics if m not in requested]
    custom = [m for m in wanted if m in version.custom_metrics]
    builtin = [m for m in wanted if m not in custom]
    if builtin:
        params["eval_metric"] = builtin
    elif version.old_default_metrics and params.get("objective") in _OLD_DEFAULT_METRICS:
        params["eval_metric"] = _OLD_DEFAULT_METRICS[params["objective"]]
    watchlist = [(train_data, "train")] + ([(validation, "validation")] if validation is not None else [])
    callbacks: list[Any] = [_callback(RoundMetrics(version, custom, watchlist))]
    early_stopping = None
    if early_stopping_rounds and version.early_stopping_saves_best:
        metric = (tuning_metrics or requested or [None])[-1]
        if validation is not None and metric:
            callbacks.append(xgb.callback.EarlyStopping(
                rounds=int(early_stopping_rounds), data_name="validation", metric_name=metric,
                maximize=metric in MAXIMIZE, save_best=True))  # fmt: skip
        else:
            log.warning("sagelab: early_stopping_rounds has no effect here: the %s algorithm stops early only on "
                        "the validation channel's last eval_metric", version.name)  # fmt: skip
    elif early_stopping_rounds:
        early_stopping = int(early_stopping_rounds)  # xgboost's own: the last metric of the last evaluation set
    try:
        return xgb.train(
            params, train_data, num_boost_round=num_round, evals=watchlist, callbacks=callbacks,
            early_stopping_rounds=early_stopping, verbose_eval=False,
        )  # fmt: skip
    except (xgb.core.XGBoostError, ValueError) as exc:
        message = _without_stack(str(exc))
        if any(known in message for known in CUSTOMER_ERRORS):
            raise UserError(message) from None
        raise AlgorithmError(f"XGB train call failed with exception:\n {message}") from None


def _update_for_installed_xgboost(params: dict[str, Any], train_data: xgb.DMatrix, version: Version) -> None:
    """Turn the image's settings into ones the installed xgboost reads the same way."""
    silent = params.pop("silent", None)
    if silent == 1:
        params.setdefault("verbosity", 0)
    if params.get("objective") == "reg:linear":  # an alias xgboost deprecated in 0.90 and may drop
        log.warning("reg:linear is now deprecated in favor of reg:squarederror.")
        params["objective"] = "reg:squarederror"
    if params.get("tree_method") == "gpu_hist":
        log.warning("sagelab: no GPU here: tree_method gpu_hist runs as hist on the CPU")
        params["tree_method"] = "hist"
    if params.get("predictor") == "gpu_predictor":
        params["predictor"] = "cpu_predictor"
    if "updater" in params:
        params["updater"] = ",".join(params["updater"])
    for name in ("monotone_constraints", "interaction_constraints"):
        if name in params:
            params[name] = str(params[name]).replace(" ", "")
    if version.legacy_defaults:  # the image's xgboost (< 2.0) defaults, which changed in 2.0
        params.setdefault("base_score", 0.5)
        if params.get("booster") != "gblinear" and params.get("grow_policy") != "lossguide" and "updater" not in params:
            if params.get("tree_method", "auto") == "auto":
                params["tree_method"] = "exact" if train_data.num_row() < 2**22 else "approx"


def _without_stack(message: str) -> str:
    """xgboost's message without the C++ stack trace it appends."""
    return re.split(r"\n\s*Stack trace:", message, maxsplit=1)[0].strip()


def save(booster: xgb.Booster, model_dir: Path, version: Version) -> Path:
    """Write `xgboost-model` as the version does; atomically, so a crash leaves no half a model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / MODEL_NAME
    if version.artifact == PICKLE:
        data = pickle.dumps(booster, protocol=version.pickle_protocol)
    elif version.artifact == BINARY:
        data = _binary(booster, version)
    else:
        data = bytes(booster.save_raw(raw_format="ubj"))
    handle, temporary = tempfile.mkstemp(dir=model_dir, prefix=f".{MODEL_NAME}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; the image's file is not
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def _binary(booster: xgb.Booster, version: Version) -> bytes:
    """XGBoost's old binary format, as xgboost < 2.1 saves a name without extension; UBJSON when it can no longer."""
    try:
        data = bytes(booster.save_raw(raw_format="deprecated"))
    except TypeError:  # xgboost before 1.6 has one format: the binary one
        data = bytes(booster.save_raw())
    except xgb.core.XGBoostError:
        data = b""
    if data and not data.startswith(b"{"):
        return data
    log.warning("sagelab: xgboost %s cannot write the binary model format that the %s image (xgboost %s) writes; "
                "xgboost-model is UBJSON, which Booster.load_model reads alike", xgb.__version__, version.name,
                version.xgboost)  # fmt: skip
    return bytes(booster.save_raw(raw_format="ubj"))
