"""Run a step's command as SageMaker's container would, with `/opt/ml` private to its job.

Each job gets a folder that the step sees as `/opt/ml`: `_launch.py` bind-mounts it there
inside a private mount namespace (Linux, root), so two steps running at once never see
each other's files, and falls back to remapping paths in Python elsewhere. Commands named
`python`/`python3` run on the step's interpreter: sagelab's own, whose packages the steps use,
or an environment built for the step (`environments`), whose bin folder comes first on PATH.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from sagelab.containers.contract import OPT_ML

LAUNCHER = Path(__file__).with_name("_launch.py")
# Set in a step's variables when it works on real S3 (a hybrid run) and so needs the user's own
# credentials; otherwise the credentials of the user's own AWS account never reach a local step.
KEEP_CREDENTIALS = "SAGELAB_KEEP_AWS_CREDENTIALS"
_HIDDEN = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")  # fmt: skip


def prepare_mountpoint() -> None:
    """Create the empty /opt/ml that jobs are mounted on, where we may (as root)."""
    try:
        os.makedirs(OPT_ML, exist_ok=True)
    except OSError:
        pass  # the launcher falls back to path remapping


def command(job_root: Path, workdir: str, argv: list[str], interpreter: str | None = None) -> list[str]:
    """The argument list that runs `argv` in `workdir` with `job_root` as /opt/ml, on `interpreter` (default: ours)."""
    return [interpreter or sys.executable, str(LAUNCHER), str(job_root), workdir, "--", *argv]


def environment(variables: Mapping[str, str], interpreter: str | None = None) -> dict[str, str]:
    """The environment of a step: ours minus AWS credentials (unless it works on real S3), plus the step's variables."""
    keep = variables.get(KEEP_CREDENTIALS) == "1"
    env = {k: v for k, v in os.environ.items() if keep or k not in _HIDDEN}
    interpreter_dirs = dict.fromkeys(os.path.dirname(path) for path in (interpreter or sys.executable, sys.executable))
    env["PATH"] = os.pathsep.join([*interpreter_dirs, env.get("PATH", os.defpath)])
    env["PYTHONUNBUFFERED"] = "1"  # so the live view shows log lines as they are printed
    env.update(variables)
    return env
