"""Multipart uploads for the local S3 server, staged under `<store root>/.multipart/<upload id>/`.

Each part is written to a temp name and renamed, so a retried part replaces the old one
whole. Completion concatenates the parts into one file beside them and hands it to the
store, which renames it into place: no reader ever sees a partial object.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sagelab.store.base import ObjectInfo, S3Uri
from sagelab.store.local import LocalStore, file_etag
from sagelab.store.s3_protocol import S3Error

MIN_PART = 5 * 1024 * 1024  # S3's minimum size of every part but the last
_CHUNK = 1024 * 1024
_ID = re.compile(r"^[0-9a-f]{32}$")
_META = "upload.json"


class Uploads:
    """The multipart uploads in progress in one store."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.root = store.root / ".multipart"

    def create(self, uri: S3Uri) -> str:
        """Start an upload and return its id."""
        self.store.path_of(uri)  # refuse a key the store cannot hold now, not after the upload
        upload_id = secrets.token_hex(16)
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        (folder / _META).write_text(json.dumps({"bucket": uri.bucket, "key": uri.key}))
        return upload_id

    def folder(self, upload_id: str, bucket: str, key: str) -> Path:
        """The staging folder of an upload of `bucket/key`, or S3's NoSuchUpload."""
        folder = self.root / upload_id
        try:
            meta = json.loads((folder / _META).read_text()) if _ID.match(upload_id) else None
        except (OSError, ValueError):
            meta = None
        if meta != {"bucket": bucket, "key": key}:
            raise _no_such_upload(upload_id)
        return folder

    def put_part(self, folder: Path, number: int, stream: BinaryIO) -> ObjectInfo:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False) as tmp:
                try:
                    shutil.copyfileobj(stream, tmp, _CHUNK)
                except BaseException:
                    os.unlink(tmp.name)
                    raise
            os.replace(tmp.name, folder / f"{number:05d}")
        except FileNotFoundError:  # aborted or completed while this part was sent
            raise _no_such_upload(folder.name) from None
        return _part_info(folder / f"{number:05d}")

    def parts(self, folder: Path) -> list[tuple[int, ObjectInfo]]:
        """(part number, info) of each uploaded part, in part order."""
        return sorted((int(p.name), _part_info(p)) for p in folder.iterdir() if p.name.isdigit())

    def complete(self, folder: Path, uri: S3Uri, wanted: Sequence[tuple[int, str]]) -> ObjectInfo:
        """Publish the listed parts, concatenated in order, as the object `uri`."""
        numbers = [number for number, _ in wanted]
        if not numbers:
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed: it lists no <Part>")
        if numbers != sorted(set(numbers)):
            message = "The list of parts was not in ascending order. Parts must be ordered by part number."
            raise S3Error(400, "InvalidPartOrder", message)
        have = dict(self.parts(folder))
        for index, (number, etag) in enumerate(wanted):
            part = have.get(number)
            if part is None or etag.strip().strip('"') != part.etag.strip('"'):
                message = (
                    "One or more of the specified parts could not be found. The part may not have "
                    "been uploaded, or the specified entity tag may not match the part's entity tag."
                )
                raise S3Error(400, "InvalidPart", message, PartNumber=str(number), ETag=etag)
            if index < len(wanted) - 1 and part.size < MIN_PART:
                message = (
                    f"Your proposed upload is smaller than the minimum allowed size: part {number} "
                    f"has {part.size} bytes, and every part but the last needs at least 5 MiB"
                )
                raise S3Error(400, "EntityTooSmall", message, PartNumber=str(number))
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".object-", delete=False) as out:
            try:
                for number in numbers:
                    with open(folder / f"{number:05d}", "rb") as part_file:
                        shutil.copyfileobj(part_file, out, _CHUNK)
                out.flush()
                info = self.store.publish_file(str(uri), Path(out.name))
            except BaseException:
                Path(out.name).unlink(missing_ok=True)
                raise
        shutil.rmtree(folder, ignore_errors=True)
        return info

    def abort(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)


def _part_info(path: Path) -> ObjectInfo:
    stat = path.stat()
    return ObjectInfo("", path.name, stat.st_size, stat.st_mtime, file_etag(stat))


def _no_such_upload(upload_id: str) -> S3Error:
    message = (
        "The specified upload does not exist. The upload ID may be invalid, or the upload "
        "may have been aborted or completed."
    )
    return S3Error(404, "NoSuchUpload", message, UploadId=upload_id)
