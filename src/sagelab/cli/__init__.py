"""The `sagelab` command. Commands only parse and print; the work is library calls."""

from __future__ import annotations

import sys

BUG_EXIT = 70  # EX_SOFTWARE (sysexits.h): an error in sagelab itself, not in what it was given
BUG_REPORT = (
    "This is a bug in sagelab, not a problem with your input: please report it with the command you ran,\n"
    "the traceback above and the output of `pip show sagelab` (see README.md, Reporting a bug)."
)


def main() -> None:
    """Entry point: user errors print as one message and exit 1; a sagelab bug prints its traceback and says so."""
    from sagelab.errors import SagelabError

    try:
        from sagelab.cli.app import app

        app()
    except SagelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001 - what escapes is a sagelab bug: show it, for a report
        import traceback

        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        sys.exit(BUG_EXIT)
