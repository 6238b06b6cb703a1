"""What a local job needs to run Spark: the container command, the store in view, and Java and pyspark at hand.

Spark jobs (a Processing job's `smspark-submit`, an EMR step's `spark-submit`) read and write
`s3://` URIs themselves, and locally those are the project's store folder, which the sandbox
otherwise hides from steps: a Spark job sees it, read-write, as a Spark cluster sees S3.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sagelab.containers import sandbox
from sagelab.containers.spark import COMMAND
from sagelab.engines.local.job import Job, StepFailed
from sagelab.spark.java import JAVA_FIX, java
from sagelab.store.local import LocalStore


def spark_command(job: Job, program: str, arguments: list[str]) -> list[str]:
    """The command that runs `program` (smspark-submit or spark-submit) with `arguments` on local Spark, for this job.

    Raises:
        StepFailed: this run's store is not the local folder, the sandbox cannot give Spark's processes
            /opt/ml, or Java or pyspark is missing; each says how to fix it.
    """
    if not isinstance(job.store, LocalStore):
        raise StepFailed("ClientError: local Spark reads s3:// URIs from the project's local store, and this run's store is an S3 "
                         "endpoint (local Spark has no S3 connector); run it with the local store, or on SageMaker/EMR")  # fmt: skip
    if sandbox.current().mode == "remap":
        raise StepFailed("ClientError: Spark starts Java and Python processes that need a real /opt/ml, and remap mode covers one "
                         f"Python process alone; `sagelab doctor` says which sandbox modes this machine allows")  # fmt: skip
    if importlib.util.find_spec("pyspark") is None:
        raise StepFailed('ClientError: Spark jobs run on local Spark, which needs pyspark next to sagelab: pip install "sagelab[spark]"')
    if java() is None:
        raise StepFailed(f"ClientError: local Spark needs Java, and there is none on PATH or in JAVA_HOME: {JAVA_FIX}")
    return [*COMMAND, "--store", str(job.settings.store), program, *arguments]


def store_folder(job: Job) -> tuple[Path, ...]:
    """The folders a Spark job sees beyond its own: the store."""
    return (job.settings.store,)


def pyspark_version() -> str:
    """The local pyspark's release, read from its metadata (importing pyspark costs a second)."""
    from importlib import metadata

    return metadata.version("pyspark")
