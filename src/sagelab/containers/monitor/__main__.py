"""`python3 -m sagelab.containers.monitor analyzer|clarify`: a check job's container command."""

import os
import sys

from sagelab.containers.monitor import MonitorError
from sagelab.containers.monitor.analyzer import analyze, clarify


def main(argv: list[str]) -> int:
    try:
        if argv == ["analyzer"]:
            analyze(os.environ)
        elif argv == ["clarify"]:
            clarify()
        else:
            print("usage: python3 -m sagelab.containers.monitor analyzer|clarify", file=sys.stderr)
            return 2
    except MonitorError as exc:
        print(f"ClientError: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


raise SystemExit(main(sys.argv[1:]))
