"""sagelab: run SageMaker pipeline definitions locally in seconds, and on SageMaker at scale."""

import sys

__version__ = "0.1.0"

if sys.version_info < (3, 10):  # pip refuses to install on older Pythons; this is for a path set by hand
    _TOO_OLD = f"sagelab needs Python 3.10 or newer; this is Python {sys.version.split()[0]} ({sys.executable})"
    if sys.argv and sys.argv[0].endswith("sagelab"):
        raise SystemExit(_TOO_OLD)  # the command: one line, no traceback
    raise ImportError(_TOO_OLD)
