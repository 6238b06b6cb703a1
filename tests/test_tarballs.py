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


def bomb(tmp_path: Path, megabytes: int) -> Path:
    """An archive of one file of zeros: a few kilobytes that extract to `megabytes` MB (a tar bomb, scaled down)."""
    path = tmp_path / "bomb.tar.gz"
    member = tarfile.TarInfo("model.bin")
    member.size = megabytes * 1_000_000
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(bytes(member.size)))
    return path


def test_an_archive_past_the_size_limit_is_refused_naming_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.errors import ModelError
    from sagelab.serving.archive import extract_model

    monkeypatch.setenv(tarballs.LIMIT_ENV, "0.004")  # 4 MB
    source = bomb(tmp_path, 5)
    assert source.stat().st_size < 20_000
    with pytest.raises(ModelError, match=r"its files add up to 5\.0 MB") as refused:
        extract_model(source, tmp_path / "model")
    assert "above the 0.004 GB extraction limit (SAGELAB_MAX_EXTRACTED_GB; raise it for a larger model)" in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.tar.gz"]  # nothing written, no .partial left
    with tarfile.open(source) as tar, pytest.raises(tarballs.TooLarge):
        tarballs.extract_all(tar, tmp_path / "code")  # source code archives too
    monkeypatch.setenv(tarballs.LIMIT_ENV, "0.006")
    assert (extract_model(source, tmp_path / "model") / "model.bin").stat().st_size == 5_000_000


def test_a_damaged_gzip_is_an_error_not_a_model(tmp_path: Path) -> None:
    """Bytes damaged inside the compressed stream fail gzip's CRC: extraction says so and keeps nothing."""
    from sagelab.errors import ModelError
    from sagelab.serving.archive import extract_model

    source = tmp_path / "model.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        member = tarfile.TarInfo("model.bin")
        data = bytes(range(256)) * 400
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    damaged = bytearray(source.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    source.write_bytes(bytes(damaged))
    with pytest.raises(ModelError, match="damaged or not a tar archive"):
        extract_model(source, tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tar.gz"]


def test_a_killed_extraction_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    from sagelab.serving.archive import extract_model

    left = tmp_path / ".model.999999999.abc.partial"  # what a SIGKILLed extraction by a now-dead process leaves
    (left / "half").mkdir(parents=True)
    extract_model(archive(tmp_path), tmp_path / "model")
    assert not left.exists() and (tmp_path / "model" / "ok" / "file.txt").read_bytes() == b"hi"
