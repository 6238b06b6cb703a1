"""Model archives: extract a model.tar.gz safely, and find the model folder to serve.

SageMaker untars `ModelDataUrl` into `/opt/ml/model`. An archive is untrusted input, so each
member is checked before anything is written: no absolute paths, no `..`, no links that
point outside the folder, no device files or FIFOs. Extraction goes to a temporary folder
next to the target, which is renamed into place only when every member is out, so a refused
or broken archive leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from sagelab.errors import ModelError
from sagelab.processes import remove_abandoned
from sagelab.serving import protocol
from sagelab.serving.protocol import ServingSettings
from sagelab.tarballs import UNSAFE, check_size, verify_to_end

CACHE_ENV = "SAGELAB_MODEL_CACHE"
_OPT_ML_MODEL = "/opt/ml/model"


def _refusal(member: tarfile.TarInfo) -> str | None:
    """Why `member` must not be extracted, or None when it is safe."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "has '..' in its path"
    if member.ischr() or member.isblk() or member.isfifo() or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is a device file, FIFO or other special file"
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith(("/", "\\")):
            return f"is a link to the absolute path {target}"
        # A symlink's target is relative to the link's folder; a hard link's to the archive root.
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
        if resolved == ".." or resolved.startswith("../"):
            return f"is a link to {target}, outside the model folder"
    return None


def _check_links_inside(root: Path) -> None:
    """After extraction: every symlink must resolve inside `root` (catches chains of links)."""
    real_root = os.path.realpath(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                real = os.path.realpath(path)
                if real != real_root and not real.startswith(real_root + os.sep):
                    relative = os.path.relpath(path, root)
                    raise ModelError(f"refused: {relative} in the model archive is a link that resolves outside the model folder")


def extract_model(tar_gz: Path, target: Path) -> Path:
    """Extract a model archive into `target`, refusing anything that could escape it.

    Args:
        tar_gz: a model.tar.gz (any tar compression is accepted).
        target: the folder to create; it must not exist yet, or be empty.

    Returns:
        `target`, now holding the archive's files.

    Raises:
        ModelError: the archive is unreadable, or a member is unsafe (the message names it);
            nothing is left at `target` or next to it.
    """
    tar_gz, target = Path(tar_gz), Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ModelError(f"cannot extract {tar_gz} into {target}: it already exists and is not an empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent))
    try:
        try:
            with tarfile.open(tar_gz, "r:*") as archive:
                members = archive.getmembers()
                check_size(members, target)
                links: set[str] = set()
                for member in members:
                    reason = _refusal(member)
                    parents = posixpath.normpath(member.name).split("/")[:-1]
                    through = next((p for i in range(len(parents)) if (p := "/".join(parents[: i + 1])) in links), None)
                    if reason is None and through is not None:
                        reason = f"lies inside the link {through!r} (it would be written wherever that link points)"
                    if reason is not None:
                        raise ModelError(f"refused to extract {tar_gz}: member {member.name!r} {reason}")
                    if member.issym() or member.islnk():
                        links.add(posixpath.normpath(member.name))
                data_filter = getattr(tarfile, "data_filter", None)
                if data_filter is not None:
                    # Python's own check (3.10.12+/3.11.4+) resolves links already written to disk.
                    archive.extractall(staging, members=members, filter=data_filter)
                else:  # pragma: no cover - older Pythons
                    archive.extractall(staging, members=members)
                verify_to_end(archive)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            if isinstance(exc, UNSAFE):  # refused: too large, or a member Python's filter refused
                raise ModelError(f"refused to extract {tar_gz}: {exc}") from None
            raise ModelError(f"cannot read the model archive {tar_gz} (damaged or not a tar archive): {exc}") from None
        _check_links_inside(staging)
        try:
            if target.exists():
                target.rmdir()
            os.rename(staging, target)
        except OSError as exc:
            raise ModelError(f"cannot move the extracted model into {target}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def default_cache_dir() -> Path:
    """Where extracted archives are kept: $SAGELAB_MODEL_CACHE, else ~/.cache/sagelab/models."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sagelab" / "models"


def resolve_model(source: Path | str, cache_dir: Path | None = None) -> Path:
    """The model folder to serve: `source` itself if a folder, else its archive extracted once.

    An archive is extracted to `<cache_dir>/<sha256 of its bytes>`, so the same bytes are
    extracted once however many servers start from them, and a changed archive gets a new folder.

    Raises:
        ModelError: `source` does not exist, is not a folder or a tar archive, or is unsafe.
    """
    path = Path(source)
    if path.is_dir():
        return path.resolve()
    if not path.is_file():
        raise ModelError(f"no model at {path}: give a model folder or a model.tar.gz")
    if not tarfile.is_tarfile(path):
        raise ModelError(f"{path} is neither a folder nor a tar archive (expected a model.tar.gz)")
    target = (cache_dir or default_cache_dir()) / _digest(path)
    if target.is_dir():
        return target.resolve()
    try:
        extract_model(path, target)
    except ModelError:
        if target.is_dir():  # another process extracted the same bytes first
            return target.resolve()
        raise
    return target.resolve()


def code_dir(model_dir: Path, settings: ServingSettings) -> Path | None:
    """Where the user's module lives: SAGEMAKER_SUBMIT_DIRECTORY if set, else `<model>/code` if present.

    A SAGEMAKER_SUBMIT_DIRECTORY under /opt/ml/model (as AutoML's containers name it) means this
    model's folder, wherever it was extracted.
    """
    if settings.submit_directory:
        source = settings.submit_directory
        if (source == _OPT_ML_MODEL or source.startswith(_OPT_ML_MODEL + "/")) and not Path(source).exists():
            source = str(model_dir) + source[len(_OPT_ML_MODEL) :]
        if "://" in source:
            raise ModelError(f"{protocol.SUBMIT_DIRECTORY_ENV}={source}: sagelab serves code from this machine only; "
                             "point it at a folder or a sourcedir.tar.gz")  # fmt: skip
        if not Path(source).exists():
            raise ModelError(f"{protocol.SUBMIT_DIRECTORY_ENV}={source} does not exist; point it at a folder or a sourcedir.tar.gz")
        return resolve_model(Path(source))
    folder = model_dir / "code"
    return folder if folder.is_dir() else None


def requirements_folder(model: Path | str, environment: Mapping[str, str]) -> Path | None:
    """The code folder whose requirements.txt a container's server installs before it starts, or None.

    The framework containers pip-install the requirements.txt of the code they import the user
    module from: sagemaker-inference-toolkit's `/opt/ml/model/code/requirements.txt`, and the
    SAGEMAKER_SUBMIT_DIRECTORY sourcedir for the older scikit-learn and XGBoost containers. An
    archive is extracted as the server would (to the same cache folder, so only once). A model
    or code sagelab cannot read is left to the server, which says what is wrong as it starts.
    """
    try:
        folder = code_dir(resolve_model(model), ServingSettings.from_env(environment))
    except ModelError:
        return None
    return folder if folder is not None and (folder / "requirements.txt").is_file() else None
