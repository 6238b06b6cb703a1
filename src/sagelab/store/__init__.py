"""The object store behind s3:// URIs.

`LocalStore` keeps objects as files under a folder; an S3 backend implements the same
`ObjectStore` protocol. Engines only ever see `s3://bucket/key` URIs.
"""

from sagelab.store.base import ObjectInfo, ObjectStore, S3Uri, parse_s3_uri
from sagelab.store.local import LocalStore

__all__ = ["LocalStore", "ObjectInfo", "ObjectStore", "S3Uri", "parse_s3_uri"]
