"""Spark from notebooks and scripts: local Spark by default, or a Spark Connect server, on the project's data.

    from sagelab import spark
    frame = spark.session().read.parquet("s3://my-bucket/features/")   # the project's store, on local Spark

In IPython or Jupyter, `%load_ext sagelab` adds sparkmagic's magics (`%%spark`, `%%sql -o`,
`%%configure`, ...: `sagelab.spark.magics`). The profile's `spark` setting picks the backend:
`local[*]` (pyspark on this machine, the default) or `sc://host:port` (Spark Connect). Needs the
`spark` extra: pip install "sagelab[spark]".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sagelab.spark.sessions import SparkSessions

__all__ = ["manager", "session", "stop"]

_SESSIONS: dict[str, SparkSessions] = {}


def manager(profile: str = "local") -> SparkSessions:
    """The Spark session manager of a profile, one per process."""
    if profile not in _SESSIONS:
        from sagelab.config import load_settings
        from sagelab.spark.sessions import SparkSessions

        _SESSIONS[profile] = SparkSessions(load_settings(profile=profile))
    return _SESSIONS[profile]


def session(profile: str = "local") -> SparkSession:
    """The profile's Spark session, started on first use (it prints the Spark UI's address)."""
    return manager(profile).session()


def stop(profile: str = "local") -> bool:
    """Stop the profile's Spark session; False when none was running."""
    return manager(profile).stop()
