"""Remap `/opt/ml/...` to a job folder inside one Python process.

Remap mode, the last fallback (no namespace can be made and no shared /opt/ml is set up). It
patches the file functions that Python code reaches (open, os.*, and so pathlib, shutil,
glob, pandas and pickle); files opened by C libraries directly, and programs the script
starts, still see the real /opt/ml.
"""

from __future__ import annotations

import builtins
import io
import os

TYPE_CHECKING = False  # typing costs a step ~3 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PREFIX = "/opt/ml"
_ONE_PATH = (
    "access", "chdir", "chmod", "listdir", "lstat", "mkdir", "open", "readlink",
    "remove", "rmdir", "scandir", "stat", "truncate", "unlink", "utime",
)  # fmt: skip
_TWO_PATHS = ("link", "rename", "replace", "symlink")


def install(root: str) -> Callable[[Any], Any]:
    """Patch this process so every /opt/ml path means `root`; returns the mapping, for what the patches miss (sys.path)."""
    broot = os.fsencode(root)

    def remap(path: Any) -> Any:
        if isinstance(path, int):
            return path
        raw = os.fspath(path) if isinstance(path, os.PathLike) else path
        if isinstance(raw, str) and (raw == PREFIX or raw.startswith(PREFIX + "/")):
            return root + raw[len(PREFIX) :]
        if isinstance(raw, bytes) and (raw == PREFIX.encode() or raw.startswith(PREFIX.encode() + b"/")):
            return broot + raw[len(PREFIX) :]
        return path

    def one(function: Any) -> Any:
        def patched(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
            return function(remap(path), *args, **kwargs)

        return patched

    def two(function: Any) -> Any:
        def patched(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            return function(remap(source), remap(target), *args, **kwargs)

        return patched

    for name in _ONE_PATH:
        if hasattr(os, name):
            setattr(os, name, one(getattr(os, name)))
    for name in _TWO_PATHS:
        setattr(os, name, two(getattr(os, name)))
    builtins.open = io.open = one(io.open)
    real = os.path.realpath(root)
    getcwd = os.getcwd

    def container_cwd() -> str:
        """The working folder as the step would see it: under /opt/ml when inside the job's folder."""
        cwd = getcwd()
        return PREFIX + cwd[len(real) :] if cwd == real or cwd.startswith(real + "/") else cwd

    os.getcwd = container_cwd
    os.getcwdb = lambda: os.fsencode(container_cwd())
    return remap
