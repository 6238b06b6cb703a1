"""`python -m sagelab.serving MODEL`: serve a model folder or model.tar.gz with SageMaker's protocol.

    python -m sagelab.serving MODEL [--host 127.0.0.1] [--port P | --fd N] [--workers W] [--ready-file PATH]

MODEL is a model folder, a model.tar.gz, or a pipeline model's description (.json, see
sagelab.serving.pipeline_model).

Defaults come from the SageMaker environment variables: SAGEMAKER_BIND_TO_PORT (8080),
SAGEMAKER_MODEL_SERVER_WORKERS (the CPU count), SAGEMAKER_MODEL_SERVER_TIMEOUT, SAGEMAKER_MAX_PAYLOAD_IN_MB,
SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sagelab.errors import SagelabError
from sagelab.serving.protocol import FRAMEWORKS, ServingSettings
from sagelab.serving.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagelab.serving", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("model", type=Path, help="a model folder, model.tar.gz or pipeline model description (.json)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, default=None, help="port (default SAGEMAKER_BIND_TO_PORT or 8080; 0: any free port)")
    where.add_argument("--fd", type=int, default=None, help="serve on this inherited, already-bound listening socket")
    parser.add_argument("--workers", type=int, default=None, help="server processes (default SAGEMAKER_MODEL_SERVER_WORKERS or the CPU count)")
    parser.add_argument("--ready-file", type=Path, default=None, help="file created once the model is loaded and connections are accepted")
    parser.add_argument("--framework", choices=FRAMEWORKS, default=None, help="default handlers to use (default: auto-detect)")
    parser.add_argument("--no-micro-batching", action="store_true", help="never share a predict call between concurrent requests")
    parser.add_argument("--watch-fd", type=int, default=None, help=argparse.SUPPRESS)  # stop when this pipe's writer dies
    args = parser.parse_args(argv)
    if args.watch_fd is not None:
        from sagelab.serving.spawn import watch_parent

        watch_parent(args.watch_fd)
    try:
        settings = ServingSettings.from_env()
        if args.framework is not None:
            settings = _replace(settings, framework=args.framework)
        if args.no_micro_batching:
            settings = _replace(settings, micro_batching=False)
        port = settings.port if args.port is None else args.port
        workers = settings.workers if args.workers is None else args.workers
        serve(args.model, args.host, port, workers, fd=args.fd, ready_file=args.ready_file, settings=settings)
    except SagelabError as exc:
        print(f"sagelab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _replace(settings: ServingSettings, **changes: object) -> ServingSettings:
    import dataclasses

    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
