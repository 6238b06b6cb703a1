"""The parts of S3's HTTP protocol the local server needs, apart from routing and XML.

Error values, request body framing (HTTP chunked transfer coding and S3's aws-chunked),
byte ranges, conditional headers and listing pages. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

from sagelab.store.base import ObjectInfo

CHUNK = 256 * 1024
_MAX_LINE = 64 * 1024


class S3Error(Exception):
    """An S3 error response: status, S3 error code, message and extra <Error> fields."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def precondition_failed(condition: str) -> S3Error:
    message = "At least one of the pre-conditions you specified did not hold"
    return S3Error(412, "PreconditionFailed", message, Condition=condition)


def invalid_range(requested: str, size: int) -> S3Error:
    message = "The requested range is not satisfiable"
    return S3Error(416, "InvalidRange", message, RangeRequested=requested, ActualObjectSize=str(size))


def malformed_xml(reason: Exception) -> S3Error:
    message = f"The XML you provided was not well-formed or did not validate against our published schema: {reason}"
    return S3Error(400, "MalformedXML", message)


# -- request bodies ------------------------------------------------------------------------


class Chunks(io.RawIOBase):
    """A readable stream over an iterator of non-empty byte chunks; remembers a failure."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")
        self.failed = self.unsized = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._view:
            try:
                self._view = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except BaseException:
                self.failed = True
                raise
        size = min(len(buffer), len(self._view))
        buffer[:size] = self._view[:size]
        self._view = self._view[size:]
        return size


def buffered(chunks: Iterator[bytes]) -> BinaryIO:
    """A buffered binary stream (read, readline) over byte chunks."""
    return io.BufferedReader(Chunks(chunks), CHUNK)


def exactly(stream: BinaryIO | io.BufferedIOBase, length: int) -> Iterator[bytes]:
    """The next `length` bytes of a stream, or 400 IncompleteBody if it ends first."""
    while length:
        data = stream.read(min(length, CHUNK))
        if not data:
            raise S3Error(400, "IncompleteBody", f"the body ended {length} bytes before its stated length")
        length -= len(data)
        yield data


def dechunk(stream: BinaryIO | io.BufferedIOBase) -> Iterator[bytes]:
    """The data of a chunked body, HTTP's chunked transfer coding or S3's aws-chunked.

    Both frame data as `<hex size>[;extensions]\\r\\n<data>\\r\\n` and end with a zero-size
    chunk and optional trailer lines (aws-chunked puts signatures and checksums there).
    """
    while True:
        line = stream.readline(_MAX_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise S3Error(400, "IncompleteBody", f"bad chunk header {line[:40]!r}") from None
        if size == 0:
            break
        yield from exactly(stream, size)
        if stream.readline(_MAX_LINE).strip():
            raise S3Error(400, "IncompleteBody", "a chunk is longer than its stated size")
    while stream.readline(_MAX_LINE).strip():
        pass  # trailers: x-amz-checksum-*, x-amz-trailer-signature


def verified(stream: BinaryIO, content_md5: str | None, decoded_length: str | None) -> Iterator[bytes]:
    """The body's chunks; at the end, raise if its length or Content-MD5 is wrong.

    Raising before the last read returns lets the store drop its temp file, so a
    corrupt upload never becomes an object.
    """
    digest, total = hashlib.md5(), 0
    while data := stream.read(CHUNK):
        total += len(data)
        if content_md5:
            digest.update(data)
        yield data
    if decoded_length is not None and decoded_length.isdigit() and total != int(decoded_length):
        message = f"the body decoded to {total} bytes, x-amz-decoded-content-length says {decoded_length}"
        raise S3Error(400, "IncompleteBody", message)
    if content_md5 and base64.b64encode(digest.digest()).decode() != content_md5.strip():
        raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")


# -- headers -------------------------------------------------------------------------------


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range; None serves the whole object.

    Multiple or malformed ranges are ignored, as HTTP allows; unsatisfiable ones raise 416.
    """
    unit, _, spec = (header or "").partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    if not (first.isdigit() or (not first and last.isdigit())) or (last and not last.isdigit()):
        return None
    if not first:  # the last n bytes
        if int(last) == 0 or size == 0:
            raise invalid_range(header or "", size)
        return max(size - int(last), 0), size - 1
    start, end = int(first), int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise invalid_range(header or "", size)
    return start, min(end, size - 1)


def copy_range(header: str | None, size: int) -> tuple[int, int]:
    """(first, last) byte of an UploadPartCopy's x-amz-copy-source-range; all if absent."""
    if header is None:
        return 0, size - 1
    found = re.fullmatch(r"\s*bytes=(\d+)-(\d+)\s*", header)
    if not found or int(found[1]) > int(found[2]) or int(found[2]) >= size:
        message = f"x-amz-copy-source-range {header!r} must be bytes=first-last within the source's {size} bytes"
        raise S3Error(400, "InvalidArgument", message)
    return int(found[1]), int(found[2])


def etag_in(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match list names `etag` (or is `*`)."""
    tags = [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")]
    return "*" in tags or etag.strip('"') in tags


def http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP date header; None if absent or unreadable."""
    try:
        return int(parsedate_to_datetime(value).timestamp()) if value else None
    except (TypeError, ValueError):
        return None


# -- listings ------------------------------------------------------------------------------


def list_page(
    objects: Iterable[ObjectInfo], prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[ObjectInfo], list[str], bool, str]:
    """One page of a listing: objects, common prefixes, whether more follow, the last entry.

    `objects` are the keys under `prefix` in S3's order; `after` is the marker, start-after
    or decoded continuation token. A page that ends on a common prefix continues after
    every key below it, as on S3.
    """
    contents: list[ObjectInfo] = []
    prefixes: list[str] = []
    last = ""
    if max_keys == 0:
        return contents, prefixes, False, last
    for info in objects:
        if info.key <= after:
            continue
        cut = info.key.find(delimiter, len(prefix)) if delimiter else -1
        name = info.key[: cut + len(delimiter)] if cut >= 0 else info.key
        if cut >= 0 and (name == after or (prefixes and prefixes[-1] == name)):
            continue  # rolled up already, on this page or the one before
        if len(contents) + len(prefixes) == max_keys:
            return contents, prefixes, True, last
        if cut >= 0:
            prefixes.append(name)
        else:
            contents.append(info)
        last = name
    return contents, prefixes, False, last
