"""Let a really installed helper package win over sagelab's stand-in of the same name.

A step's PYTHONPATH comes before site-packages, so the stand-ins would shadow a real
`sagemaker_training` installed next to sagelab. Each stand-in package therefore first asks
whether its name is importable from anywhere but its own root; if it is, that package
replaces the stand-in in `sys.modules` and is what the import returns.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def prefer_installed(name: str, stand_in_file: str) -> bool:
    """Load the installed package `name` in place of the stand-in whose `__init__` is `stand_in_file`.

    Returns True when there is one and it imports; a real package that fails to import (the
    abandoned sagemaker-containers needs distutils, gone in Python 3.12) leaves the stand-in.
    """
    root = os.path.dirname(os.path.dirname(os.path.realpath(stand_in_file)))
    spec = _spec_outside(name, root)
    if spec is None or spec.loader is None:
        return False
    stand_in, before = sys.modules[name], set(sys.modules)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # any failure of the real package's import means: keep the stand-in
        for added in set(sys.modules) - before:
            del sys.modules[added]
        sys.modules[name] = stand_in
        return False
    return True


def _spec_outside(name: str, root: str) -> importlib.machinery.ModuleSpec | None:
    """Where `name` is found with `root` left off sys.path (every finder asked, editable installs too)."""
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if os.path.realpath(entry or os.curdir) != root]
    try:
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, None) if find_spec is not None else None
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None
    finally:
        sys.path[:] = saved
