"""Spark from notebooks and scripts: local Spark by default, a Spark Connect server, or a Livy server, on the project's data.

    from sagelab import spark
    frame = spark.session().read.parquet("s3://my-bucket/features/")   # the project's store, on local Spark

In IPython or Jupyter, `%load_ext sagelab` adds sparkmagic's magics (`%%spark`, `%%sql -o`,
`%%configure`, ...: `sagelab.notebook.magics`). The profile's `spark` setting picks the backend:
`local[*]` (pyspark on this machine, the default), `sc://host:port` (Spark Connect) or
`livy+http://host:8998` (Livy, EMR on EC2: cells only, no SparkSession here). Needs the `spark`
extra: pip install "sagelab[spark]".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sagelab.spark.backends import SparkBackend
    from sagelab.spark.sessions import SparkSessions

__all__ = ["backend", "manager", "session", "stop"]

_SESSIONS: dict[str, SparkSessions] = {}
_BACKENDS: dict[str, SparkBackend] = {}


def manager(profile: str = "local") -> SparkSessions:
    """The Spark session manager of a profile, one per process."""
    if profile not in _SESSIONS:
        from sagelab.config import load_settings
        from sagelab.spark.sessions import SparkSessions

        _SESSIONS[profile] = SparkSessions(load_settings(profile=profile))
    return _SESSIONS[profile]


def backend(profile: str = "local") -> SparkBackend:
    """Where the profile's notebook cells run, for its current `spark` setting (`%%configure {"url": ...}` changes it)."""
    current = _BACKENDS.get(profile)
    if current is None or current.target != manager(profile).target:
        from sagelab.spark.backends import open_backend

        if current is not None:
            current.stop()  # the url changed under a running session (from Python; the magics refuse that): end it, not orphan it
        current = _BACKENDS[profile] = open_backend(manager(profile))
    return current


def session(profile: str = "local") -> SparkSession:
    """The profile's Spark session, started on first use (it prints the Spark UI's address)."""
    return manager(profile).session()


def stop(profile: str = "local") -> bool:
    """Stop the profile's Spark session (local, Connect or Livy); False when none was running."""
    stopped = _BACKENDS[profile].stop() if profile in _BACKENDS else False
    return manager(profile).stop() or stopped
