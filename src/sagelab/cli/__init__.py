"""The `sagelab` command. Commands only parse and print; the work is library calls."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point: user errors print as one message and exit 1, with no traceback."""
    from sagelab.errors import SagelabError

    try:
        from sagelab.cli.app import app

        app()
    except SagelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
