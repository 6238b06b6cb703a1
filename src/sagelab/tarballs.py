"""Unpacking tar archives without letting a member escape the target folder, on every supported Python.

Python's tar "data" filter (3.10.12+, 3.11.4+, 3.12+) strips a leading `/` from names and refuses
members that reach outside the target with `..`, links that point outside it, and device files. Earlier patch releases (Debian 12's
Python is 3.11.2) lack it and extract whatever the archive says: there the same refusals are
made here, before anything is written.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

__all__ = ["UNSAFE", "UnsafeMember", "extract_all"]


class UnsafeMember(tarfile.TarError):
    """A member that would be written outside the target folder, or is a device file."""


UNSAFE: tuple[type[Exception], ...] = (UnsafeMember, *([tarfile.FilterError] if hasattr(tarfile, "FilterError") else []))


def extract_all(archive: tarfile.TarFile, target: Path) -> None:
    """Extract every member of `archive` into `target`, refusing any that could escape it.

    Raises:
        UnsafeMember (or tarfile.FilterError where Python has the filter): a member is refused.
    """
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, filter="data")
        return
    members = archive.getmembers()
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
