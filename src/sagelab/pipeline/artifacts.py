"""Local code and data a pipeline refers to, named by content so the definition never changes
unless they do: `s3://<bucket>/<pipeline>/code/<sha256>/<file>`. The engine uploads them when
the pipeline runs; building a definition only reads local files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from sagelab.errors import PipelineError


class Artifacts:
    """The objects a pipeline needs in its bucket: S3 URI → local file or bytes."""

    def __init__(self, bucket: str, pipeline: str) -> None:
        self.bucket, self.pipeline = bucket, pipeline
        self.objects: dict[str, Path | bytes] = {}

    def _uri(self, kind: str, digest: str, name: str) -> str:
        return f"s3://{self.bucket}/{self.pipeline}/{kind}/{digest}/{name}"

    def file(self, path: Path, kind: str = "code") -> str:
        """The URI of one local file, by its content."""
        digest = hashlib.sha256(_read(path)).hexdigest()
        uri = self._uri(kind, digest, path.name)
        self.objects[uri] = path
        return uri

    def folder(self, path: Path, kind: str = "data") -> str:
        """The URI prefix of a local folder, by the content and names of all its files."""
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise PipelineError(f"{path} holds no files")
        tree = hashlib.sha256()
        for file in files:
            tree.update(file.relative_to(path).as_posix().encode() + b"\0" + hashlib.sha256(_read(file)).digest())
        prefix = self._uri(kind, tree.hexdigest(), path.name)
        for file in files:
            self.objects[f"{prefix}/{file.relative_to(path).as_posix()}"] = file
        return prefix + "/"

    def files(self, paths: list[Path], name: str, kind: str = "code") -> str:
        """The URI prefix `name` holding local files side by side (a Spark job's --py-files), by their names and content."""
        if len({path.name for path in paths}) < len(paths):
            raise PipelineError(f"two of {', '.join(map(str, paths))} have the same file name; they would overwrite each other")
        tree = hashlib.sha256()
        for path in sorted(paths, key=lambda p: p.name):
            tree.update(path.name.encode() + b"\0" + hashlib.sha256(_read(path)).digest())
        prefix = self._uri(kind, tree.hexdigest(), name)
        for path in paths:
            self.objects[f"{prefix}/{path.name}"] = path
        return prefix + "/"

    def sourcedir(self, entry_point: Path, source_dir: Path | None, dependencies: tuple[Path, ...] = ()) -> str:
        """The URI of a `sourcedir.tar.gz` holding the source folder (or the entry point alone) and the dependencies."""
        data = source_tarball(entry_point, source_dir, dependencies)
        uri = self._uri("code", hashlib.sha256(data).hexdigest(), "sourcedir.tar.gz")
        self.objects[uri] = data
        return uri

    def data(self, name: str, data: bytes) -> str:
        """The URI of bytes sagelab makes (a launcher script), by their content."""
        uri = self._uri("code", hashlib.sha256(data).hexdigest(), name)
        self.objects[uri] = data
        return uri


def source_tarball(entry_point: Path, source_dir: Path | None, dependencies: tuple[Path, ...] = ()) -> bytes:
    """A byte-for-byte reproducible tar.gz: sorted entries, zero times and owners.

    It holds the source folder's files (or the entry point alone) and, as the SageMaker SDK's
    `dependencies` do, each dependency folder (or file) under its own name beside them, so the
    entry point imports it as a top-level package wherever the tarball is unpacked.
    """
    root = source_dir or entry_point.parent
    members = {file.relative_to(root).as_posix(): file for file in (_files(root) if source_dir else [entry_point])}
    for dependency in dependencies:
        for file in _files(dependency) if dependency.is_dir() else [dependency]:
            name = f"{dependency.name}/{file.relative_to(dependency).as_posix()}" if dependency.is_dir() else dependency.name
            if name in members and members[name] != file:
                raise PipelineError(f"{dependency} would overwrite {name} of {root} in sourcedir.tar.gz; rename one of them")
            members[name] = file
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, file in sorted(members.items()):
            data = _read(file)
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755 if file.stat().st_mode & 0o111 else 0o644
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as zipped:
        zipped.write(raw.getvalue())
    return packed.getvalue()


def _files(folder: Path) -> list[Path]:
    """A folder's files, without bytecode caches."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror}") from None
