"""Where in the user's code something was built, so build errors can name file:line."""

from __future__ import annotations

import sys
from pathlib import Path


def call_site() -> tuple[Path, int]:
    """The first frame outside sagelab: the user's file and line."""
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith("sagelab."):
        frame = frame.f_back
    return Path(frame.f_code.co_filename), frame.f_lineno


def where(site: tuple[Path, int]) -> str:
    path, line = site
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    return f"{shown}:{line}"
