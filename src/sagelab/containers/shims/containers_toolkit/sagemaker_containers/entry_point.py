"""`sagemaker_containers.entry_point`, as the XGBoost framework examples use it before `rabit_run`."""

from __future__ import annotations

from sagelab.containers.shims.environment import Environment


def _wait_hostname_resolution() -> None:
    """Wait until every host of the job resolves: a local job has one host, this one, so there is nothing to wait for."""
    hosts = Environment().hosts
    if len(hosts) > 1:
        raise RuntimeError(f"the job lists hosts {hosts}, but a local job runs on one host only (InstanceCount 1)")
