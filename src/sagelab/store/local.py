"""`LocalStore`: objects as files under a folder, `s3://bucket/key` → `<root>/bucket/key`.

Every write lands in `<root>/.tmp/` first and is renamed into place, so a reader never
sees a partial object and a crash leaves only temp files, which are not objects.

Bytes move as little as the machine allows: a download is a reflink (a copy-on-write clone)
where the filesystem has them, else a copy made inside the kernel; a published folder's
files are moved into the store by rename when both sit on one filesystem.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from sagelab.errors import NoSuchKey, StoreError
from sagelab.processes import alive
from sagelab.store.base import ObjectInfo, Progress, S3Uri, check_bucket_name, parse_s3_uri, relative_key, sha256_of

_TMP = ".tmp"
_CHUNK = 1024 * 1024


def file_etag(stat: os.stat_result) -> str:
    """A quoted ETag that changes whenever the file is rewritten, without reading it."""
    tag = hashlib.md5(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return f'"{tag}"'


_NAME_MAX = 255  # bytes in one file name on Linux and macOS filesystems


_FICLONE = 0x40049409  # Linux's ioctl that clones a file's blocks copy-on-write (btrfs, XFS, bcachefs)


def clone_file(source: Path, target: Path) -> None:
    """Make `target` a new copy of `source` without moving bytes through Python.

    Best first: a reflink where the filesystem has them (btrfs, XFS); else copy_file_range, the copy
    `cp` makes inside the kernel; else shutil's (sendfile on Linux, fcopyfile on macOS). On ext4
    (Linux 6.18), copying 1 GB written moments before (a step's output just published into the store)
    took 0.27-1.45 s with sendfile and 0.26-0.55 s with copy_file_range, four runs each. The copy always
    goes to a new file: ext4 flushes a file truncated and rewritten when it is closed (auto_da_alloc),
    which made a copy over the empty file a failed reflink leaves 2.7x slower.
    """
    target.unlink(missing_ok=True)
    with open(source, "rb") as src, open(target, "xb") as dst:
        if _reflink(src.fileno(), dst.fileno()) or _copy_in_kernel(src.fileno(), dst.fileno()):
            return
    target.unlink()
    shutil.copyfile(source, target)


def _reflink(source: int, target: int) -> bool:
    try:
        import fcntl

        fcntl.ioctl(target, _FICLONE, source)
        return True
    except (ImportError, OSError):
        return False


def _copy_in_kernel(source: int, target: int) -> bool:
    """Copy with copy_file_range (Linux); False where it cannot, for another way to copy from the start."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is None:
        return False
    try:
        while copy_range(source, target, 1 << 30):
            pass
    except OSError:  # EXDEV across filesystems on kernels before 5.3, ENOSYS, EINVAL on some filesystems
        return False
    return True


def _move(source: Path, target: Path) -> None:
    """Move a file by rename (no bytes copied), or copy it where `target` is on another filesystem."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, target)
        source.unlink()


def _owned() -> str:
    """The prefix of this process's temporary entries in .tmp, so a later run can tell a killed writer's."""
    return f"{os.getpid()}-"


class KeyTooLong(StoreError):
    """A key with a segment longer than a file name may be: valid on S3, impossible in a folder."""


class LocalStore:
    """An object store kept in a local folder; buckets are created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        # Told of every object written (by sagelab or through the S3 endpoint); a run records them for gc.
        self.observer: Callable[[ObjectInfo], None] | None = None

    def _wrote(self, info: ObjectInfo) -> ObjectInfo:
        if self.observer is not None:
            self.observer(info)
        return info

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------

    def path_of(self, uri: str | S3Uri) -> Path:
        """The file that holds `uri`, refusing keys that would leave the store."""
        parsed = uri if isinstance(uri, S3Uri) else parse_s3_uri(uri)
        parts = parsed.key.split("/") if parsed.key else []
        if parsed.key.endswith("/"):
            parts = parts[:-1]
        if any(part in ("", ".", "..") for part in parts) or "\x00" in parsed.key:
            raise StoreError(
                f"{parsed} cannot be stored locally: keys with empty, '.' or '..' path "
                "segments would escape or alias the store folder; rename the key"
            )
        long = next((part for part in parts if len(part.encode()) > _NAME_MAX), None)
        if long is not None:
            raise KeyTooLong(f"{parsed} cannot be stored locally: its segment {long[:40]}... is longer than a file name may be "
                             f"({_NAME_MAX} bytes); S3 allows it, a folder on disk does not: shorten the key")  # fmt: skip
        return self.root.joinpath(parsed.bucket, *parts)

    def _info(self, bucket: str, key: str, path: Path) -> ObjectInfo:
        stat = path.stat()
        return ObjectInfo(bucket, key, stat.st_size, stat.st_mtime, file_etag(stat))

    # -- buckets ---------------------------------------------------------------------

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def create_bucket(self, bucket: str) -> None:
        check_bucket_name(bucket)
        (self.root / bucket).mkdir(parents=True, exist_ok=True)

    # -- reads -----------------------------------------------------------------------

    def head(self, uri: str) -> ObjectInfo:
        parsed = parse_s3_uri(uri)
        path = self.path_of(parsed)
        if not path.is_file():
            raise NoSuchKey(f"{parsed} does not exist in the local store ({self.root})")
        return self._info(parsed.bucket, parsed.key, path)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with the prefix, in S3's (UTF-8 byte) order."""
        parsed = parse_s3_uri(prefix)
        bucket_dir = self.root / parsed.bucket
        # Walk only the folder the prefix names, then filter by the partial last segment.
        folder, _, _ = parsed.key.rpartition("/")
        start = self.path_of(S3Uri(parsed.bucket, folder)) if folder else bucket_dir
        if not start.is_dir():
            return
        found: list[tuple[bytes, str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not (dirpath == str(bucket_dir) and d.startswith("."))]
            for name in filenames:
                path = Path(dirpath, name)
                key = path.relative_to(bucket_dir).as_posix()
                if key.startswith(parsed.key):
                    found.append((key.encode(), key, path))
        for _, key, path in sorted(found):
            try:
                yield self._info(parsed.bucket, key, path)
            except FileNotFoundError:  # deleted while we listed, as S3 allows
                continue

    def open(self, uri: str) -> BinaryIO:
        parsed = parse_s3_uri(uri)
        try:
            return self.path_of(parsed).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NoSuchKey(f"{parsed} does not exist in the local store ({self.root})") from None

    def open_with_info(self, uri: str) -> tuple[BinaryIO, ObjectInfo]:
        """Open an object and describe the very file opened.

        The size and ETag come from the open file, so they match the bytes read even
        if a writer replaces the object meanwhile (the S3 server's headers rely on it).
        """
        stream = self.open(uri)
        try:
            parsed = parse_s3_uri(uri)
            stat = os.fstat(stream.fileno())
            return stream, ObjectInfo(parsed.bucket, parsed.key, stat.st_size, stat.st_mtime, file_etag(stat))
        except BaseException:
            stream.close()
            raise

    def get_bytes(self, uri: str) -> bytes:
        with self.open(uri) as stream:
            return stream.read()

    def sha256(self, uri: str) -> str:
        """The object's SHA-256, from its bytes: what sagelab checks content-addressed code and data against."""
        with self.open(uri) as stream:
            return sha256_of(stream)

    def download_file(self, uri: str, path: Path, progress: Progress | None = None) -> None:
        """Copy an object to `path`, a file of its own: writing it never changes the object (no hard link)."""
        info = self.head(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        clone_file(self.path_of(uri), path)
        if progress is not None:
            progress(info.size)

    def download_prefix(self, prefix: str, path: Path, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Copy every object under `prefix` into `path`, keeping the key layout below it.

        A prefix that names one object exactly downloads that object into `path`.
        """
        parsed = parse_s3_uri(prefix)
        objects = list(self.list(prefix))
        copied = []
        for info in objects:
            relative = relative_key(parsed.key, info.key)
            if relative is None:
                continue
            self.download_file(info.uri, path / relative, progress)
            copied.append(info)
        return copied

    # -- writes ----------------------------------------------------------------------

    def put_stream(self, uri: str, stream: BinaryIO) -> ObjectInfo:
        parsed = parse_s3_uri(uri)
        target = self.path_of(parsed)
        if parsed.key.endswith("/"):  # a console "folder": only the folder exists here
            target.mkdir(parents=True, exist_ok=True)
            return ObjectInfo(parsed.bucket, parsed.key, 0, target.stat().st_mtime, '"d41d8cd98f00b204e9800998ecf8427e"')
        with tempfile.NamedTemporaryFile(dir=self._tmp_dir(), prefix=_owned(), delete=False) as tmp:
            try:
                shutil.copyfileobj(stream, tmp, _CHUNK)
                tmp.flush()
                self._publish(Path(tmp.name), target, parsed)
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)
                raise
        return self._wrote(self._info(parsed.bucket, parsed.key, target))

    def _publish(self, tmp: Path, target: Path, parsed: S3Uri) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise IsADirectoryError
            os.replace(tmp, target)
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            raise StoreError(
                f"{parsed} cannot be stored locally: another key already uses part of its path "
                "as an object or a folder (a local store cannot hold both 'a' and 'a/b')"
            ) from None

    def publish_file(self, uri: str, path: Path) -> ObjectInfo:
        """Move a finished file into place as `uri`, taking the file away from `path`.

        Within the store's filesystem this is one rename, so a large assembled object
        (a completed multipart upload) is neither copied again nor ever seen half-written.
        """
        parsed = parse_s3_uri(uri)
        target = self.path_of(parsed)
        if parsed.key.endswith("/"):
            info = self.put_file(uri, path)
            Path(path).unlink()
            return info
        try:
            self._publish(Path(path), target, parsed)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another filesystem: copy through .tmp, which stays atomic, then drop the source.
            info = self.put_file(uri, path)
            Path(path).unlink()
            return info
        return self._wrote(self._info(parsed.bucket, parsed.key, target))

    def put_bytes(self, uri: str, data: bytes) -> ObjectInfo:
        return self.put_stream(uri, io.BytesIO(data))

    def put_file(self, uri: str, path: Path) -> ObjectInfo:
        with open(path, "rb") as stream:
            return self.put_stream(uri, stream)

    def upload_dir(self, path: Path, prefix: str) -> builtins.list[ObjectInfo]:
        """Upload every file below `path` to `prefix/<relative path>`."""
        base = parse_s3_uri(prefix)
        uploaded = []
        for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            relative = file.relative_to(path).as_posix()
            uploaded.append(self.put_file(str(base.join(relative)), file))
        return uploaded

    def publish_dir(self, path: Path, prefix: str, progress: Progress | None = None) -> builtins.list[ObjectInfo]:
        """Put a folder's files in the store so that readers see all of them or none; the files are taken from `path`.

        The files are moved (renamed; copied only across filesystems) to a staging folder, which
        one rename then puts in place: no byte is copied on one filesystem, and a crash at any
        moment leaves no partial set of outputs under `prefix`. When `prefix` already holds
        objects (an output path reused across runs), each object is still replaced atomically,
        but the set is not.
        """
        base = parse_s3_uri(prefix)
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        target = self.path_of(S3Uri(base.bucket, base.key.rstrip("/"))) if base.key.strip("/") else None
        if not files or target is None:
            return self.upload_dir(path, prefix)
        if target.exists():  # a reused output path: each object is replaced atomically, the set is not
            published = []
            for file in files:
                size = file.stat().st_size
                published.append(self.publish_file(str(base.join(file.relative_to(path).as_posix())), file))
                if progress is not None:
                    progress(size)
            return published
        staging = Path(tempfile.mkdtemp(dir=self._tmp_dir(), prefix=_owned()))
        try:
            for file in files:
                size = file.stat().st_size
                _move(file, staging / file.relative_to(path))
                if progress is not None:
                    progress(size)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, target)
            except OSError:
                if not target.exists():
                    raise
                # another writer got there first: object by object, each still atomic
                return [self.publish_file(str(base.join(f.relative_to(path).as_posix())), staging / f.relative_to(path)) for f in files]
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # empty, or gone, unless something failed
        return [self._wrote(self.head(str(base.join(f.relative_to(path).as_posix())))) for f in files]

    def _tmp_dir(self) -> Path:
        tmp_dir = self.root / _TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir

    def remove_abandoned(self) -> int:
        """Delete the half-written objects and outputs of processes that were killed; return how many."""
        removed = 0
        for entry in (self.root / _TMP).glob("*-*"):
            owner = entry.name.partition("-")[0]
            if owner.isdigit() and not alive(int(owner)):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
        return removed

    def delete(self, uri: str) -> None:
        """Delete an object; deleting a missing key succeeds, as on S3."""
        parsed = parse_s3_uri(uri)
        path = self.path_of(parsed)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        bucket_dir = self.root / parsed.bucket
        for parent in path.parents:  # drop folders the delete emptied, as S3 has none
            if parent == bucket_dir or not parent.is_relative_to(bucket_dir):
                break
            try:
                parent.rmdir()
            except OSError:
                break
