"""`s3://` and `s3a://` URIs in local Spark, read and written in the project's store.

Hadoop's S3 connector (hadoop-aws and the AWS SDK's jars) is not part of pyspark, and the local
S3 endpoint would add a network hop to every read. Instead each bucket is a Hadoop view-filesystem
mount of its folder in the store (`ViewFileSystemOverloadScheme`, shipped in pyspark's Hadoop
client): `s3://bucket/key` is `<store>/bucket/key`, read and written by Hadoop's local filesystem
at disk speed. A URI of a bucket that has no mount fails (its fallback names no filesystem) rather
than landing anywhere else; `mount` adds buckets to a running session (new filesystem instances
read the configuration, as the filesystem cache is off for these schemes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMES = ("s3", "s3a")
BUCKET_URI = re.compile(r"\bs3a?://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])")
# The filesystem a URI without a mount would reach: none, so it fails instead of writing to `/`.
UNMOUNTED = "sagelab.spark.NoSuchBucketInTheLocalStore_MountItWith_sagelab_spark_mount"


def conf(store: Path, buckets: Iterable[str]) -> dict[str, str]:
    """Spark properties mapping the schemes to the store, with a mount per bucket."""
    properties = {"spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem"}  # no .crc files beside the data
    for scheme in SCHEMES:
        properties[f"spark.hadoop.fs.{scheme}.impl"] = "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
        properties[f"spark.hadoop.fs.{scheme}.impl.disable.cache"] = "true"
        properties[f"spark.hadoop.fs.viewfs.overload.scheme.target.{scheme}.impl"] = UNMOUNTED
    for bucket in buckets:
        properties[f"spark.hadoop.{_mount_key(bucket)}"] = _target(store, bucket)
    return properties


def buckets(store: Path, default: str) -> set[str]:
    """The store's buckets (its folders) and the profile's default bucket."""
    found = {entry.name for entry in store.iterdir() if entry.is_dir() and not entry.name.startswith(".")} if store.is_dir() else set()
    return found | {default}


def mentioned(text: str) -> set[str]:
    """The buckets `s3://` and `s3a://` URIs in `text` name (a notebook cell's, before it runs)."""
    return set(BUCKET_URI.findall(text))


def mount(spark: Any, store: Path, names: Iterable[str]) -> None:
    """Mount buckets in a running local session's Hadoop configuration."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for bucket in names:
        hadoop.set(_mount_key(bucket), _target(store, bucket))


def _mount_key(bucket: str) -> str:
    return f"fs.viewfs.mounttable.{bucket}.linkFallback"


def _target(store: Path, bucket: str) -> str:
    return (store / bucket).absolute().as_uri()
