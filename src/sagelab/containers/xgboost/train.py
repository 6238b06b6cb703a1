"""Algorithm mode of a sagemaker-xgboost image: `python3 -m sagelab.containers.xgboost VERSION`.

The order is the image's (`training.py`, `algorithm_mode/train.py`): hyperparameters, then
channels, then data, then one single-node `train_job`; a mistake in any of them is written to
`/opt/ml/output/failure` (which becomes the job's FailureReason) and the process exits 1.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from sagelab.containers import contract
from sagelab.containers.xgboost import hyperparameters
from sagelab.containers.xgboost.errors import AlgorithmError, UserError
from sagelab.containers.xgboost.versions import VERSIONS, Version

log = logging.getLogger("sagelab.containers.xgboost")
CHANNELS = ("train", "validation", "code")  # what the algorithm accepts; code is for framework mode


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """Train in `root` (the job's /opt/ml) as version argv[0] of the algorithm; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(format="[%(asctime)s:%(levelname)s] %(message)s", datefmt="%Y-%m-%d:%H:%M:%S", level=logging.INFO)
    if len(args) != 1 or args[0] not in VERSIONS:
        print(f"usage: python -m sagelab.containers.xgboost VERSION  (one of {', '.join(VERSIONS)})", file=sys.stderr)
        return 2
    root = Path(contract.OPT_ML) if root is None else root
    try:
        run(root, Version(args[0]))
    except (UserError, AlgorithmError) as exc:
        return _fail(root, str(exc))
    except Exception as exc:  # a bug of ours: keep the traceback in the log, and say so
        traceback.print_exc()
        return _fail(root, f"framework error: {type(exc).__name__}: {exc} (sagelab's XGBoost emulation failed; "
                           "the job's log has the traceback)")  # fmt: skip
    return 0


def run(root: Path, version: Version) -> None:
    """Validate, read, train and save, as the image's algorithm mode does."""
    log.info("Running XGBoost Sagemaker in algorithm mode")
    try:
        import xgboost  # noqa: F401  (the emulation trains with the installed xgboost)
    except ImportError:
        raise UserError(
            "the built-in XGBoost algorithm runs locally on the xgboost package, which is not installed here: "
            "install sagelab[xgboost] (pip install 'sagelab[xgboost]')"
        ) from None
    from sagelab.containers.xgboost import data, fitting

    config = root / contract.INPUT_CONFIG_DIR
    params = hyperparameters.validate(_read_json(config / "hyperparameters.json"), version)
    channels = _validate_channels(_read_json(config / "inputdataconfig.json"))
    train_channel = channels["train"]
    kind = data.content_type(train_channel.get("ContentType"))  # the algorithm reads every channel as train's type
    if any(channel.get("TrainingInputMode") == "Pipe" for channel in channels.values()):
        if kind == data.LIBSVM:
            raise UserError("Pipe mode not supported for LibSVM.")
        log.info("sagelab: Pipe mode channels are delivered as files, as in File mode")
    defaulted = "ContentType" not in train_channel
    csv_weights = int(params.get("csv_weights", 0))
    train_set = data.read_channel(_channel_path(root, "train"), kind, csv_weights, defaulted)
    if train_set is None:
        raise UserError(f"No data in training channel path {contract.container_path(contract.INPUT_DATA_DIR)}/train")
    validation_set = None
    if "validation" in channels:
        validation_set = data.read_channel(_channel_path(root, "validation"), kind, 0, defaulted)
        if validation_set is None:
            raise UserError(f"No data in validation channel path {contract.container_path(contract.INPUT_DATA_DIR)}/validation")
        data.align_columns(train_set, validation_set)
    log.info("Single node training.")
    log.info("Train matrix has %d rows and %d columns", train_set.rows, train_set.columns)
    if validation_set is not None:
        log.info("Validation matrix has %d rows", validation_set.rows)
    booster = fitting.train(
        params,
        fitting.dmatrix(train_set),
        fitting.dmatrix(validation_set) if validation_set is not None else None,
        version,
    )
    fitting.save(booster, root / contract.MODEL_DIR, version)
    log.info("Stored trained model at %s/%s", contract.container_path(contract.MODEL_DIR), fitting.MODEL_NAME)


def _validate_channels(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """inputdataconfig.json checked as the algorithm's channel validation checks it."""
    for name in config:
        if name not in CHANNELS:
            raise UserError(f"Extraneous channel found: {name} (the built-in XGBoost algorithm reads the channels "
                            "train and validation only)")  # fmt: skip
    if "train" not in config:
        raise UserError("Missing required channel: train")
    from sagelab.containers.xgboost import data

    for name in ("train", "validation"):
        if name in config:
            data.content_type(config[name].get("ContentType"))
    return {name: dict(value) for name, value in config.items() if name != "code"}


def _channel_path(root: Path, name: str) -> Path:
    return root / contract.INPUT_DATA_DIR / name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise UserError(f"{contract.container_path(str(path.relative_to(path.parents[2])))} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path.name} must hold a JSON object")
    return document


def _fail(root: Path, reason: str) -> int:
    """Write the failure file SageMaker turns into the job's FailureReason, log the reason, exit 1."""
    log.error(reason)
    failure = root / contract.FAILURE_FILE
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason)
    return 1
