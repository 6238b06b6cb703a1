"""A job's requirements.txt as the framework containers find and install it, and what pip needs from its code folder.

The training toolkit runs `pip install -r requirements.txt` in /opt/ml/code, and a
FrameworkProcessor's runproc.sh does the same after unpacking sourcedir.tar.gz. Local references
(`-r other.txt`, `./wheels/x.whl`, `.`) resolve in that folder, so the folder's content is part
of an environment's hash when they appear; editable local installs are refused, as a cached
environment outlives the job's folder they would point at.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sagelab.errors import ExecutionError
from sagelab.tarballs import UNSAFE, extract_all

__all__ = ["Requirements", "content_hash", "find", "install_folder", "local_references", "refuse_editable", "unpack"]

ARCHIVE_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError)  # what reading a bad or truncated .tar.gz raises
_UNHASHED = ("__pycache__", ".pyc", ".egg-info")  # what running or building the code adds to its folder, left out of its hash


@dataclass(frozen=True)
class Requirements:
    """A job's requirements.txt: its text, and where pip finds it and the files it names."""

    text: str
    folder: Path  # the code folder: requirements.txt is in it, or in its sourcedir.tar.gz
    archive: Path | None  # the sourcedir.tar.gz holding requirements.txt, if it is there
    local: list[str]  # the lines naming local files (`.`, `./x.whl`, `-r other.txt`, `file:...`)


def find(code: Path) -> Requirements | None:
    """The job's requirements.txt: in its code folder, or at the top of the sourcedir.tar.gz there.

    One that names nothing to install (comments, blank lines) is none: pip installs nothing from it.
    """
    path = code / "requirements.txt"
    if path.is_file():
        text = path.read_text(errors="replace")
        return Requirements(text, code, None, local_references(text)) if any(_lines(text)) else None
    archive = code / "sourcedir.tar.gz"
    if not archive.is_file():
        return None
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.isfile() and os.path.normpath(member.name) == "requirements.txt":
                    data = tar.extractfile(member)
                    text = data.read().decode(errors="replace") if data else ""
                    return Requirements(text, code, archive, local_references(text)) if any(_lines(text)) else None
    except ARCHIVE_ERRORS:
        return None  # the step's own script unpacks it, and says what is wrong with it
    return None


_PATH_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-f", "--find-links")
_EDITABLE = ("-e", "--editable")


def _lines(text: str) -> Iterator[str]:
    """requirements.txt's lines as pip reads them: continuation lines joined, comments and blank lines left out."""
    for line in re.sub(r"\\\n", "", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            yield line


def _option(line: str, names: tuple[str, ...]) -> str | None:
    """The value of `line` when it is one of the options `names` (`-r x`, `-rx`, `--requirement=x`), else None."""
    for name in names:
        if line == name:
            return ""
        if line.startswith(name) and (name.startswith("--") and line[len(name)] in " =" or not name.startswith("--")):
            return line[len(name):].lstrip(" =").strip()
    return None


def _is_local(value: str) -> bool:
    """Whether a path, URL or requirement names a file on this machine (not a package index or a remote URL)."""
    value = value.strip().strip("'\"")
    return value.startswith("file:") or "://" not in value


def local_references(text: str) -> list[str]:
    r"""The lines of a requirements.txt that name local files, whose content pip installs from.

    >>> local_references("pandas==2.2\n-e .\n./wheels/x-1.0-py3-none-any.whl\n-r base.txt\nx @ file:///tmp/x\n"
    ...                   "--index-url https://pypi.org/simple\n-e git+https://github.com/a/b#egg=b\nnumpy; python_version>'3'")
    ['-e .', './wheels/x-1.0-py3-none-any.whl', '-r base.txt', 'x @ file:///tmp/x']
    """
    found = []
    for line in _lines(text):
        value = _option(line, _PATH_OPTIONS + _EDITABLE)
        if value is not None:
            local = bool(value) and _is_local(value)
        elif line.startswith("-"):
            local = False  # --index-url, --pre, --only-binary ...: nothing local
        else:
            spec = line.split(";", 1)[0].strip()
            if " @ " in spec or re.match(r"^[A-Za-z0-9._\-\[\], ]+@", spec):
                local = spec.split("@", 1)[1].strip().startswith("file:")
            else:
                local = _is_local(spec) and (spec.startswith((".", "/", "~")) or "/" in spec or "\\" in spec
                                             or spec.endswith((".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2")))  # fmt: skip
        if local:
            found.append(line)
    return found


def _editable_local(folder: Path, name: str = "requirements.txt", seen: frozenset[Path] = frozenset()) -> str | None:
    """The first `-e <local path>` line in requirements.txt or a requirements file it includes (`-r`), else None."""
    path = (folder / name).resolve()
    if path in seen or not path.is_file():
        return None
    for line in _lines(path.read_text(errors="replace")):
        editable = _option(line, _EDITABLE)
        if editable and _is_local(editable):
            return line
        included = _option(line, ("-r", "--requirement"))
        if included and _is_local(included):
            found = _editable_local(path.parent, included.strip("'\"").removeprefix("file:"), seen | {path})
            if found:
                return found
    return None


def content_hash(requirements: Requirements) -> str:
    """A hash of the files requirements.txt's local references may name: the code folder's, or its sourcedir.tar.gz.

    Links are followed (once per folder); what running or building the code adds (`__pycache__`,
    `*.egg-info`) is left out, so a folder pip built a package in keeps its hash.
    """
    if requirements.archive is not None:
        return _file_hash(requirements.archive)
    digest = hashlib.sha256()
    seen: set[str] = set()
    for root, folders, files in os.walk(requirements.folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link loop, or a folder linked twice
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(name for name in folders if not name.endswith(_UNHASHED))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(_UNHASHED) or not os.path.isfile(path):
                continue
            digest.update(f"{os.path.relpath(path, requirements.folder)}\0{_file_hash(path)}\0".encode())
    return digest.hexdigest()


def _file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(archive: Path, target: Path) -> None:
    """Unpack a sourcedir.tar.gz for pip, refusing what the tar "data" filter refuses (links out of it, absolute paths, devices).

    Raises:
        ExecutionError: the archive is corrupt, or holds a member the filter refuses.
    """
    try:
        with tarfile.open(archive) as tar:
            extract_all(tar, target)
    except UNSAFE as exc:
        raise ExecutionError(f"{archive}: cannot unpack it to install its requirements.txt, which names files in it: {exc}. "
                             "Build the archive from the code folder without links that point outside it, absolute paths "
                             "or device files (sagelab refuses them as Python's tar 'data' filter does)") from None  # fmt: skip
    except ARCHIVE_ERRORS as exc:
        raise ExecutionError(f"{archive}: cannot unpack it to install its requirements.txt, which names files in it: it is not "
                             f"a complete .tar.gz ({type(exc).__name__}: {exc}). Upload it again "
                             "(tar -czf sourcedir.tar.gz -C CODE_FOLDER .)") from None  # fmt: skip


def refuse_editable(folder: Path, where: str) -> None:
    """Refuse `-e ./pkg`: an editable install points at the job's folder, which is deleted while the environment is kept.

    Raises:
        ExecutionError: requirements.txt, or a file it includes, has an editable local install.
    """
    line = _editable_local(folder)
    if line is not None:
        raise ExecutionError(
            f"{where}: {line!r} is an editable install of a local folder, which sagelab does not make: the cached "
            "environment outlives the job's folder an editable install would point at (and is shared by every step "
            f"with the same requirements). Write {re.sub(r'^(-e|--editable)[ =]*', '', line)!r} instead: pip installs a "
            "copy, rebuilt whenever the code folder changes"
        )




@contextmanager
def install_folder(requirements: Requirements) -> Iterator[Path]:
    """The folder to run `pip install -r requirements.txt` in, as the container does.

    The code folder itself; from a sourcedir.tar.gz, a scratch folder with requirements.txt alone,
    or the whole archive unpacked when requirements.txt names local files.

    Raises:
        ExecutionError: requirements.txt asks for an editable local install; the archive cannot be unpacked.
    """
    if requirements.archive is None:
        refuse_editable(requirements.folder, "requirements.txt")
        yield requirements.folder
        return
    with tempfile.TemporaryDirectory() as scratch:
        if requirements.local:
            unpack(requirements.archive, Path(scratch))
            refuse_editable(Path(scratch), f"requirements.txt in {requirements.archive}")
        else:
            (Path(scratch) / "requirements.txt").write_text(requirements.text)
        yield Path(scratch)
