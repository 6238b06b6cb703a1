"""The project's local store as an fsspec filesystem: `sagelab://bucket/key` in pandas, pyarrow, dask, polars.

    >>> pd.read_csv("sagelab://sagemaker-us-east-1-000000000000/diabetes/raw/data.csv")  # doctest: +SKIP
    >>> df.to_parquet("sagelab://my-bucket/features/part-0.parquet")                      # doctest: +SKIP

`sagelab://bucket/key` is what `s3://bucket/key` is in a local run: the object the steps see. The
store is the project's that the working folder belongs to (the one `sagelab run` uses), or the
project passed as `storage_options={"project": "path/to/project"}`. Registered with fsspec by
sagelab's entry point (`fsspec.specs`), so any library that opens URLs through fsspec knows it.

Reads open the object's file. A write goes to a temporary file and becomes the object when the
file is closed, in one rename, as the store writes everything: a reader never sees half an
object, and a write that fails leaves nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from fsspec.spec import AbstractFileSystem

from sagelab.errors import StoreError
from sagelab.store.local import LocalStore


class SagelabFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec has no type information
    """fsspec's view of a project's LocalStore; paths are `bucket/key`, with or without `sagelab://`."""

    protocol = "sagelab"
    root_marker = ""

    def __init__(self, project: str | os.PathLike[str] | None = None, **storage_options: Any) -> None:
        super().__init__(project=project, **storage_options)
        from sagelab.config import load_settings

        self.store = LocalStore(load_settings(Path(project) if project else None).store)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        path = str(path)
        for prefix in ("sagelab://", "sagelab:"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path.strip("/")

    def _path(self, path: str) -> Path:
        """The file or folder that holds `bucket/key`."""
        bucket, _, key = self._strip_protocol(path).partition("/")
        if not bucket:
            return self.store.root
        try:
            return self.store.path_of(f"s3://{bucket}/{key}")
        except StoreError as exc:
            raise ValueError(str(exc)) from None

    def _entry(self, name: str, path: Path) -> dict[str, Any]:
        stat = path.stat()
        kind = "directory" if path.is_dir() else "file"
        return {"name": name, "size": stat.st_size if kind == "file" else 0, "type": kind, "mtime": stat.st_mtime}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        name = self._strip_protocol(path)
        folder = self._path(name)
        if folder.is_file():
            entries = [self._entry(name, folder)]
        elif folder.is_dir():
            entries = [self._entry(f"{name}/{child.name}" if name else child.name, child)
                       for child in sorted(folder.iterdir()) if not child.name.startswith(".")]  # fmt: skip  # .tmp: half-written objects
        else:
            raise FileNotFoundError(name)
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        name = self._strip_protocol(path)
        target = self._path(name)
        if not target.exists():
            raise FileNotFoundError(name)
        return self._entry(name, target)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, autocommit: bool = True, cache_options: Any = None,
              **kwargs: Any) -> Any:  # fmt: skip
        name = self._strip_protocol(path)
        if "r" in mode:
            from fsspec.implementations.local import LocalFileOpener

            # fsspec's own local file: closed when dropped, without a ResourceWarning (pyarrow's dataset reader drops its files open)
            return LocalFileOpener(str(self._path(name)), mode, fs=self)
        if "a" in mode or "+" in mode:
            raise ValueError(f"{name}: objects are written whole (mode 'wb'), as on S3; got mode {mode!r}")
        return _Upload(self.store, f"s3://{name}", self.store.root / ".tmp")

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self._path(path).mkdir(parents=True, exist_ok=True)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self._path(path).mkdir(parents=True, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self._path(path).rmdir()

    def _rm(self, path: str) -> None:
        name = self._strip_protocol(path)
        if self._path(name).is_dir():
            self._path(name).rmdir()
        else:
            self.store.delete(f"s3://{name}")

    def rm_file(self, path: str) -> None:
        self._rm(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        with self._open(path1, "rb") as source, self._open(path2, "wb") as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)


class _Upload:
    """A file being written; on close it becomes the object in one rename (`LocalStore.publish_file`)."""

    def __init__(self, store: LocalStore, uri: str, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.store, self.uri = store, uri
        self._file = tempfile.NamedTemporaryFile(dir=tmp_dir, prefix=f"{os.getpid()}-", delete=False)  # noqa: SIM115 - closed by close()
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._file.close()
        try:
            self.store.publish_file(self.uri, Path(self._file.name))
        except BaseException:
            Path(self._file.name).unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        """Drop what was written: the object stays as it was."""
        self.closed = True
        self._file.close()
        Path(self._file.name).unlink(missing_ok=True)

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()
