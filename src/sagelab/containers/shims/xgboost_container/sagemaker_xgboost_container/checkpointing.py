"""`sagemaker_xgboost_container.checkpointing`: resumable training, a checkpoint file per round.

`train(train_args, checkpoint_dir)` is what the managed-spot examples call instead of
`xgb.train`: it resumes from the newest `xgboost-checkpoint.<round>` in `checkpoint_dir` and
writes one after every round, keeping the last `max_to_keep`. Files are read and written with
Python's `open`, so the /opt/ml fallback sandbox sees them. A local job's /opt/ml/checkpoints is
not synced to S3 (CheckpointConfig is not emulated), so a new job starts from none.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import xgboost as xgb

CHECKPOINT_FILENAME = "xgboost-checkpoint"
_CHECKPOINT = re.compile(rf"^{re.escape(CHECKPOINT_FILENAME)}\.([0-9]+)$")


def load_checkpoint(checkpoint_dir: str | None, max_try: int = 5) -> tuple[str | None, int]:
    """The newest checkpoint's path and the number of rounds it holds; (None, 0) when there is none."""
    if not checkpoint_dir or not os.path.isdir(checkpoint_dir):
        return None, 0
    rounds = sorted(int(found[1]) for name in os.listdir(checkpoint_dir) if (found := _CHECKPOINT.match(name)))
    if not rounds:
        return None, 0
    return os.path.join(checkpoint_dir, f"{CHECKPOINT_FILENAME}.{rounds[-1]}"), rounds[-1] + 1


class SaveCheckpointCallBack(xgb.callback.TrainingCallback):
    """Writes `xgboost-checkpoint.<round>` after each round (rank 0 only) and deletes those older than `max_to_keep`.

    The round comes from the booster itself, so the image's bookkeeping arguments (start_iteration,
    num_round, iteration, end_iteration) are accepted and need not be right.
    """

    def __init__(self, checkpoint_dir: str, start_iteration: int = 0, max_to_keep: int = 5, num_round: int | None = None,
                 rank: int = 0, iteration: int = 0, end_iteration: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.checkpoint_dir, self.max_to_keep, self.rank = checkpoint_dir, max_to_keep, rank
        os.makedirs(checkpoint_dir, exist_ok=True)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if self.rank != 0:
            return False
        last = model.num_boosted_rounds() - 1
        path = os.path.join(self.checkpoint_dir, f"{CHECKPOINT_FILENAME}.{last}")
        with open(f"{path}.sagemaker-ignore", "wb") as file:
            file.write(model.save_raw("ubj"))
        os.replace(f"{path}.sagemaker-ignore", path)
        stale = os.path.join(self.checkpoint_dir, f"{CHECKPOINT_FILENAME}.{last - self.max_to_keep}")
        if os.path.exists(stale):
            os.remove(stale)
        return False


def save_checkpoint(checkpoint_dir: str, start_iteration: int = 0, max_to_keep: int = 5, num_round: int | None = None,
                    rank: int = 0, iteration: int = 0, end_iteration: int | None = None) -> SaveCheckpointCallBack:  # fmt: skip
    """The callback that saves checkpoints; pass it in `xgb.train(..., callbacks=[...])`."""
    return SaveCheckpointCallBack(checkpoint_dir, start_iteration, max_to_keep, num_round, rank, iteration, end_iteration)


def train(train_args: dict[str, Any], checkpoint_dir: str) -> xgb.Booster:
    """`xgb.train(**train_args)`, resumed from the newest checkpoint and checkpointing every round."""
    train_args = dict(train_args)
    path, start = load_checkpoint(checkpoint_dir)
    train_args["num_boost_round"] = train_args.get("num_boost_round", 10) - start
    if path is not None:
        logging.info("Checkpoint loaded from %s", path)
        logging.info("Resuming from iteration %s", start)
        booster = xgb.Booster()
        with open(path, "rb") as file:
            booster.load_model(bytearray(file.read()))
        train_args["xgb_model"] = booster
    train_args["callbacks"] = [*(train_args.get("callbacks") or []), save_checkpoint(checkpoint_dir)]
    return xgb.train(**train_args)
