"""The algorithm's two kinds of failure, as sagemaker_algorithm_toolkit names them."""

from __future__ import annotations

from sagelab.errors import SagelabError


class UserError(SagelabError):
    """The job's hyperparameters, channels or data are wrong; the message says how."""


class AlgorithmError(SagelabError):
    """Training itself failed (xgboost raised); the message carries xgboost's reason."""
