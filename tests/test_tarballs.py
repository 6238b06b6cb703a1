"""Safe tar extraction on every supported Python: the "data" filter where Python has it, the same refusals where it does not."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sagelab import tarballs


def archive(tmp_path: Path, *members: tarfile.TarInfo) -> Path:
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        body = tarfile.TarInfo("ok/file.txt")
        body.size = 2
        tar.addfile(body, io.BytesIO(b"hi"))
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, target
    return member


def file(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size = 1
    return member


def device(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = tarfile.CHRTYPE
    return member


BAD = [file("../evil"), file("ok/../../evil"), link("ok/l", "/etc/hosts"), link("ok/l", "../../etc"),
       link("hard", "../outside", tarfile.LNKTYPE), device("ok/tty")]  # fmt: skip


@pytest.mark.parametrize("without_filter", [False, True], ids=["python's filter", "older python"])
@pytest.mark.parametrize("member", BAD, ids=[m.name + ("->" + m.linkname if m.linkname else "") for m in BAD])
def test_a_member_that_escapes_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     member: tarfile.TarInfo, without_filter: bool) -> None:  # fmt: skip
    if without_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    target = tmp_path / "out"
    target.mkdir()
    with tarfile.open(archive(tmp_path, member)) as tar, pytest.raises(tarballs.UNSAFE):
        tarballs.extract_all(tar, target)
    if without_filter:
        assert not any(target.iterdir())  # checked before extracting


@pytest.mark.parametrize("without_filter", [False, True], ids=["python's filter", "older python"])
def test_a_safe_archive_with_an_inner_link_extracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without_filter: bool) -> None:
    if without_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    with tarfile.open(archive(tmp_path, link("ok/alias.txt", "file.txt"))) as tar:
        tarballs.extract_all(tar, tmp_path / "out")
    assert (tmp_path / "out" / "ok" / "alias.txt").read_text() == "hi"


@pytest.mark.parametrize("without_filter", [False, True], ids=["python's filter", "older python"])
def test_an_absolute_name_lands_inside_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without_filter: bool) -> None:
    if without_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    with tarfile.open(archive(tmp_path, file("/etc/evil"))) as tar:
        tarballs.extract_all(tar, tmp_path / "out")
    assert (tmp_path / "out" / "etc" / "evil").read_text() == "x"
