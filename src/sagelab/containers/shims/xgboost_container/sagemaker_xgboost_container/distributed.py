"""`sagemaker_xgboost_container.distributed`: `rabit_run` on the one host of a local job.

With one host the image's `rabit_run` starts no tracker: it calls `exec_fun(**args)` (with
`is_master=True` added when `update_rabit_args`), or exits 0 when the host has no training
data. Several hosts cannot happen locally (resourceconfig.json lists algo-1 only); being given
them fails saying so.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any


def wait_hostname_resolution(sm_hosts: list[str]) -> None:
    """Wait until the job's hosts resolve; the one host of a local job is this one."""
    _one_host(sm_hosts)


def rabit_run(
    exec_fun: Callable[..., Any],
    args: dict[str, Any],
    include_in_training: bool,
    hosts: list[str],
    current_host: str,
    first_port: int | None = None,
    second_port: int | None = None,
    max_connect_attempts: int | None = None,
    connect_retry_timeout: int = 10,
    update_rabit_args: bool = False,
) -> None:
    """Run `exec_fun(**args)` as the image does on a single host; the ports and attempts go unused."""
    _one_host(hosts)
    if not include_in_training:
        logging.warning("Host %s not being used for distributed training.", current_host)
        sys.exit(0)
    if update_rabit_args:
        args.update({"is_master": True})
    exec_fun(**args)


def _one_host(hosts: list[str]) -> None:
    if len(hosts) > 1:
        raise RuntimeError(f"the job lists hosts {hosts}, but a local job runs on one host: distributed XGBoost "
                           "training is not emulated; run it with InstanceCount 1")  # fmt: skip
