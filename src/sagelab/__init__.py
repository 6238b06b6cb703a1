"""sagelab: run SageMaker pipeline definitions locally in seconds, and on SageMaker at scale."""

import sys
from typing import Any

__version__ = "0.1.0"
__all__ = ["Execution", "execution", "executions", "run"]  # the Python API (sagelab.api), imported when first used

if sys.version_info < (3, 10):  # pip refuses to install on older Pythons; this is for a path set by hand
    _TOO_OLD = f"sagelab needs Python 3.10 or newer; this is Python {sys.version.split()[0]} ({sys.executable})"
    if sys.argv and sys.argv[0].endswith("sagelab"):
        raise SystemExit(_TOO_OLD)  # the command: one line, no traceback
    raise ImportError(_TOO_OLD)


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext sagelab`: sparkmagic's Spark magics and `%sagelab local` (`sagelab.notebook.magics`) in this kernel."""
    from sagelab.notebook.magics import load

    load(shell)


def __getattr__(name: str) -> Any:
    """`sagelab.run` and the rest of the Python API, imported on first use: `import sagelab` stays instant."""
    if name in __all__:
        import importlib

        return getattr(importlib.import_module("sagelab.api"), name)  # by name: the package root depends on nothing
    raise AttributeError(f"module 'sagelab' has no attribute {name!r}")
