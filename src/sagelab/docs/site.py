"""Build or serve a project's mkdocs site (`pip install 'sagelab[docs]'`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from sagelab.errors import SagelabError


class SiteError(SagelabError):
    """The docs site cannot be built or served: no mkdocs.yml, mkdocs missing, or a strict build failed."""


def build_site(root: Path, strict: bool = True) -> Path:
    """Run `mkdocs build [--strict]` in `root`; returns the site folder.

    Raises:
        SiteError: mkdocs is not installed, `root` has no mkdocs.yml, or the build failed
            (mkdocs has printed why: with --strict, every warning fails it).
    """
    _check(root)
    command = [sys.executable, "-m", "mkdocs", "build", *(["--strict"] if strict else [])]
    if subprocess.run(command, cwd=root, check=False).returncode != 0:
        raise SiteError(f"mkdocs build{' --strict' if strict else ''} failed in {root}; its messages are above")
    return root / "site"


def serve_site(root: Path, address: str = "127.0.0.1:8000") -> NoReturn:
    """Become `mkdocs serve -a ADDRESS` in `root`: this process is replaced, so a signal that
    stops it (Ctrl-C, a kill) stops the server, with no child left behind."""
    _check(root)
    os.chdir(root)
    os.execv(sys.executable, [sys.executable, "-m", "mkdocs", "serve", "-a", address])


def _check(root: Path) -> None:
    if not (root / "mkdocs.yml").is_file():
        raise SiteError(f"{root} has no mkdocs.yml; run this in a project made by `sagelab init`, or add one")
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        raise SiteError("building the docs needs mkdocs-material: pip install 'sagelab[docs]'")
