"""Unpacking tar archives without letting a member escape the target folder, on every supported Python.

Python's tar "data" filter (3.10.12+, 3.11.4+, 3.12+) strips a leading `/` from names and refuses
members that reach outside the target with `..`, links that point outside it, and device files. Earlier patch releases (Debian 12's
Python is 3.11.2) lack it and extract whatever the archive says: there the same refusals are
made here, before anything is written.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path

__all__ = ["LIMIT_ENV", "UNSAFE", "TooLarge", "UnsafeMember", "check_size", "extract_all", "verify_to_end"]

LIMIT_ENV = "SAGELAB_MAX_EXTRACTED_GB"
DEFAULT_LIMIT_GB = 100.0  # above the largest models SageMaker serves from a model.tar.gz; a tar bomb claims far more


class UnsafeMember(tarfile.TarError):
    """A member that would be written outside the target folder, or is a device file."""


class TooLarge(tarfile.TarError):
    """The archive's files would exceed the extraction limit or the free disk space; the message says which."""


UNSAFE: tuple[type[Exception], ...] = (UnsafeMember, TooLarge, *([tarfile.FilterError] if hasattr(tarfile, "FilterError") else []))


def check_size(members: list[tarfile.TarInfo], target: Path) -> None:
    """Refuse, before writing anything, an archive whose files add up to more than the limit or than the disk holds.

    The sizes come from the members' headers, which a tar bomb cannot understate: extraction writes what they say.
    """
    total = sum(member.size for member in members if member.isfile())
    limit_gb = _limit_gb()
    if total > limit_gb * 1e9:
        raise TooLarge(f"its files add up to {_size(total)}, above the {limit_gb:g} GB extraction limit "
                       f"({LIMIT_ENV}; raise it for a larger model)")  # fmt: skip
    folder = next(p for p in (target, *target.parents) if p.exists())
    free = shutil.disk_usage(folder).free
    if total > free:
        raise TooLarge(f"its files add up to {_size(total)} and {folder} has {_size(free)} free")


def _size(count: float) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"


def _limit_gb() -> float:
    text = os.environ.get(LIMIT_ENV, "")
    try:
        return float(text) if text else DEFAULT_LIMIT_GB
    except ValueError:
        raise TooLarge(f"{LIMIT_ENV}={text!r} is not a number of gigabytes") from None


def verify_to_end(archive: tarfile.TarFile) -> None:
    """Read the compressed stream to its end, so gzip checks its CRC: damaged bytes are an error, not a model.

    Raises:
        OSError (gzip.BadGzipFile), EOFError or zlib.error: the archive is damaged.
    """
    stream = archive.fileobj
    if stream is not None:
        while stream.read(1 << 20):
            pass


def extract_all(archive: tarfile.TarFile, target: Path) -> None:
    """Extract every member of `archive` into `target`, refusing any that could escape it.

    Raises:
        UnsafeMember (or tarfile.FilterError where Python has the filter): a member is refused.
        TooLarge: the files would exceed the extraction limit or the free disk space.
    """
    members = archive.getmembers()
    check_size(members, target)
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, members=members, filter="data")
        return
    for member in members:
        _check(member)
    archive.extractall(target, members=members)  # noqa: S202 - every member was checked above


def _check(member: tarfile.TarInfo) -> None:
    """Refuse what the data filter refuses, in its words (its messages are what users see on newer Pythons)."""
    member.name = member.name.lstrip("/")  # as the filter does: /etc/x lands at <target>/etc/x
    name = posixpath.normpath(member.name)
    if name == ".." or name.startswith("../"):
        raise UnsafeMember(f"{member.name!r} would be extracted to {name!r}, which is outside the destination")
    if member.isdev():
        raise UnsafeMember(f"{member.name!r} is a special file")
    if member.issym() or member.islnk():
        if member.linkname.startswith("/"):
            raise UnsafeMember(f"{member.name!r} is a link to an absolute path")
        base = posixpath.dirname(name) if member.issym() else ""
        pointed = posixpath.normpath(posixpath.join(base, member.linkname))
        if pointed == ".." or pointed.startswith("../"):
            raise UnsafeMember(f"{member.name!r} would link to {pointed!r}, which is outside the destination")
