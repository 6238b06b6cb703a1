"""The object store behind s3:// URIs.

`LocalStore` keeps objects as files under a folder; `S3Store` keeps them in Amazon S3 (or
an S3-compatible server) and imports boto3 only when first used. Both implement the
`ObjectStore` protocol; `open_store` picks the one a project's settings name. Engines only
ever see `s3://bucket/key` URIs.
"""

from sagelab.store.base import ObjectInfo, ObjectStore, S3Uri, parse_s3_uri
from sagelab.store.factory import open_store
from sagelab.store.local import LocalStore
from sagelab.store.s3 import S3Store

__all__ = ["LocalStore", "ObjectInfo", "ObjectStore", "S3Store", "S3Uri", "open_store", "parse_s3_uri"]
