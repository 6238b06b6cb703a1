"""S3's XML documents: the responses the local S3 server writes and the bodies it reads.

Responses are built as strings (no ElementTree at import time: the server starts on every
run); request bodies are parsed with ElementTree, matching elements by local name so
documents with or without S3's namespace both parse.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote_plus

from sagelab.store.base import ObjectInfo

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "sagelab"


def iso8601(seconds: float) -> str:
    """A timestamp as S3 writes it in XML: `2024-05-01T12:00:00.000Z`."""
    millis = int(seconds * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value), quote=False)}</{tag}>"


def _doc(root: str, parts: Iterable[str], namespace: bool = True) -> bytes:
    xmlns = f' xmlns="{_NS}"' if namespace else ""
    body = "".join(parts)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{xmlns}>{body}</{root}>'.encode()


def _owner() -> str:
    return f"<Owner>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_ID)}</Owner>"


def error(code: str, message: str, request_id: str, details: dict[str, str]) -> bytes:
    parts = [_el("Code", code), _el("Message", message)]
    parts += [_el(name, value) for name, value in details.items()]
    parts.append(_el("RequestId", request_id))
    return _doc("Error", parts, namespace=False)


def list_buckets(buckets: Sequence[tuple[str, float]]) -> bytes:
    entries = "".join(
        f"<Bucket>{_el('Name', name)}{_el('CreationDate', iso8601(created))}</Bucket>"
        for name, created in buckets
    )
    return _doc("ListAllMyBucketsResult", [_owner(), f"<Buckets>{entries}</Buckets>"])


def location(region: str) -> bytes:
    # us-east-1 is the empty constraint, as on S3.
    constraint = "" if region == "us-east-1" else region
    return _doc("LocationConstraint", [escape(constraint, quote=False)])


def list_objects(
    *,
    v2: bool,
    bucket: str,
    params: dict[str, str],
    contents: Sequence[ObjectInfo],
    prefixes: Sequence[str],
    truncated: bool,
    next_marker: str,
    owner: bool,
    url_encode: bool,
) -> bytes:
    """ListObjectsV2 (`v2`) or ListObjects (v1) result; `params` are the echoed request values."""

    def enc(value: str) -> str:
        return quote_plus(value, safe="/") if url_encode else value

    parts = [_el("Name", bucket), _el("Prefix", enc(params.get("prefix", "")))]
    if v2:
        if "continuation-token" in params:
            parts.append(_el("ContinuationToken", params["continuation-token"]))
        if truncated:
            parts.append(_el("NextContinuationToken", next_marker))
        if "start-after" in params:
            parts.append(_el("StartAfter", enc(params["start-after"])))
        parts.append(_el("KeyCount", len(contents) + len(prefixes)))
    else:
        parts.append(_el("Marker", enc(params.get("marker", ""))))
        if truncated:
            parts.append(_el("NextMarker", enc(next_marker)))
    parts.append(_el("MaxKeys", params.get("max-keys", "1000")))
    if params.get("delimiter"):
        parts.append(_el("Delimiter", enc(params["delimiter"])))
    if url_encode:
        parts.append(_el("EncodingType", "url"))
    parts.append(_el("IsTruncated", str(truncated).lower()))
    for info in contents:
        parts.append(
            "<Contents>"
            + _el("Key", enc(info.key))
            + _el("LastModified", iso8601(info.modified))
            + _el("ETag", info.etag)
            + _el("Size", info.size)
            + _el("StorageClass", "STANDARD")
            + (_owner() if owner else "")
            + "</Contents>"
        )
    parts += [f"<CommonPrefixes>{_el('Prefix', enc(p))}</CommonPrefixes>" for p in prefixes]
    return _doc("ListBucketResult", parts)


def copy_result(info: ObjectInfo, part: bool = False) -> bytes:
    root = "CopyPartResult" if part else "CopyObjectResult"
    return _doc(root, [_el("LastModified", iso8601(info.modified)), _el("ETag", info.etag)])


def upload_started(bucket: str, key: str, upload_id: str) -> bytes:
    parts = [_el("Bucket", bucket), _el("Key", key), _el("UploadId", upload_id)]
    return _doc("InitiateMultipartUploadResult", parts)


def upload_completed(location: str, info: ObjectInfo) -> bytes:
    parts = [_el("Location", location), _el("Bucket", info.bucket), _el("Key", info.key), _el("ETag", info.etag)]
    return _doc("CompleteMultipartUploadResult", parts)


def list_parts(bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, ObjectInfo]]) -> bytes:
    entries = [
        "<Part>"
        + _el("PartNumber", number)
        + _el("LastModified", iso8601(info.modified))
        + _el("ETag", info.etag)
        + _el("Size", info.size)
        + "</Part>"
        for number, info in parts
    ]
    head = [_el("Bucket", bucket), _el("Key", key), _el("UploadId", upload_id), _el("IsTruncated", "false")]
    return _doc("ListPartsResult", [*head, _el("StorageClass", "STANDARD"), *entries])


def delete_result(deleted: Sequence[str], errors: Sequence[tuple[str, str, str]]) -> bytes:
    parts = [f"<Deleted>{_el('Key', key)}</Deleted>" for key in deleted]
    parts += [
        f"<Error>{_el('Key', key)}{_el('Code', code)}{_el('Message', message)}</Error>"
        for key, code, message in errors
    ]
    return _doc("DeleteResult", parts)


# -- request bodies ------------------------------------------------------------------


def _children(body: bytes, root: str) -> list[tuple[str, dict[str, str]]]:
    """(name, {child name: text}) for each element below the root; ValueError if malformed."""
    # Imported here: only multipart completion and batch deletes need a parser.
    from xml.etree import ElementTree

    try:
        tree = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the XML body is not well-formed: {exc}") from None
    if _local(tree.tag) != root:
        raise ValueError(f"expected a <{root}> document, got <{_local(tree.tag)}>")
    # A leaf element (<Quiet>true</Quiet>) reports its own text under the name "".
    return [
        (_local(el.tag), {_local(c.tag): c.text or "" for c in el} if len(el) else {"": el.text or ""})
        for el in tree
    ]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_delete(body: bytes) -> tuple[bool, list[str]]:
    """(quiet, keys) of a DeleteObjects request."""
    quiet = False
    keys = []
    for name, fields in _children(body, "Delete"):
        if name == "Quiet":
            quiet = fields.get("", "").strip().lower() == "true"
        elif name == "Object":
            if "Key" not in fields:
                raise ValueError("an <Object> has no <Key>")
            keys.append(fields["Key"])
    return quiet, keys


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """(part number, ETag) pairs of a CompleteMultipartUpload request, in document order."""
    parts = []
    for name, fields in _children(body, "CompleteMultipartUpload"):
        if name != "Part":
            continue
        try:
            parts.append((int(fields["PartNumber"]), fields.get("ETag", "")))
        except (KeyError, ValueError):
            raise ValueError("each <Part> needs a numeric <PartNumber>") from None
    return parts
