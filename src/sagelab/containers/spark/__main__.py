"""`python3 -m sagelab.containers.spark --store STORE smspark-submit|spark-submit ARGS...`: a Spark job's container command."""

import os
import sys
from pathlib import Path

from sagelab.containers.spark import configuration, submit

USAGE = "usage: python3 -m sagelab.containers.spark --store STORE smspark-submit|spark-submit ARGS..."


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--store" or argv[2] not in ("smspark-submit", "spark-submit"):
        print(USAGE, file=sys.stderr)
        return 2
    store, program, arguments = Path(argv[1]), argv[2], argv[3:]
    try:
        if program == "smspark-submit":
            submission = submit.parse_smspark(arguments)
            conf_file = next((Path(p) for p in configuration.CONF_LOCATIONS if os.path.exists(p)), None)
        else:
            submission, conf_file = submit.parse_spark_submit(arguments), None
        return submit.run(submission, store=store, conf_file=conf_file, work=Path.home() / "spark")
    except (submit.SubmitError, configuration.ConfigurationError) as exc:
        message = f"Algorithm Error: (caused by InputError): error preparing for spark submit: {exc}"
        print(message, file=sys.stderr, flush=True)
        if program == "smspark-submit":  # the image's failure message, which the job's FailureReason shows
            Path(submit.MESSAGE_FILE).parent.mkdir(parents=True, exist_ok=True)
            Path(submit.MESSAGE_FILE).write_text(message[:1024])
        return 1


raise SystemExit(main(sys.argv[1:]))
