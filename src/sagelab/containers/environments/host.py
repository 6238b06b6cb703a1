"""Host mode: a step runs on sagelab's own interpreter and packages, plus its requirements.txt in a cached venv.

Fast, and faithful only as far as sagelab's packages match the image's (`environment = "host"`
in [tool.sagelab], or a step on an image sagelab has no package list for). When the job's
code holds a requirements.txt, it is pip-installed once per content hash into a venv of
sagelab's interpreter whose `.pth` file appends sagelab's site-packages: the step still imports
pandas, boto3 and sagelab itself, while what the venv installed comes first. pip sees sagelab's
packages as installed, as the image's preinstalled packages are in the container, so what they
satisfy is not installed again; what a step imports from there depends on sagelab's installed
distributions, which are part of the hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from sagelab.containers import sandbox
from sagelab.containers.environments import cache
from sagelab.containers.environments.cache import Purpose, StepLog
from sagelab.containers.environments.layer import base_sites, pip_launchers
from sagelab.containers.environments.manifest import PYTHON
from sagelab.containers.environments.requirements import Requirements, content_hash, install_folder
from sagelab.errors import ExecutionError

__all__ = ["ensure"]

FORMAT = "3"  # part of every hash: a change in how host environments are built makes new ones


def ensure(step: StepLog, requirements: Requirements, purpose: Purpose) -> Path:
    """The venv for `requirements` over sagelab's packages: reused when built before, else built now.

    Raises:
        ExecutionError: pip failed or was interrupted; requirements.txt asks for an editable local
            install; the archive cannot be unpacked.
    """
    identity = [FORMAT, sys.executable, sys.version, *base_sites()]
    content = content_hash(requirements) if requirements.local else None
    key = hashlib.sha256(json.dumps([identity, _base_distributions(), requirements.text, content]).encode()).hexdigest()[:16]

    def build(folder: Path) -> dict[str, Any]:
        step.log(f"installing requirements.txt (hash {key}) into {folder.parent / key}")
        python = _create(folder)
        with install_folder(requirements) as where:
            _pip(step, python, ["install", "--no-input", "-r", "requirements.txt"], where, "requirements.txt", purpose)
        return {"python": sys.executable, "notes": []}

    link, _ = cache.ensure(step, key, "requirements.txt", build)
    return link


def _base_distributions() -> list[str]:
    """`name==version` of every distribution in sagelab's site-packages, which a built environment imports what it lacks from.

    A requirement they satisfy installs nothing into the environment, so an upgrade there changes
    what a step imports: this is part of the hash. Read from each distribution's metadata header
    (6 ms for 150 distributions, where `Distribution.version` parses the whole file: 40 ms), and
    kept while the folders' modification times say no distribution was added or removed.
    """
    sites = base_sites()
    stamp = tuple((folder, os.stat(folder).st_mtime_ns) for folder in sites)
    if stamp in _FINGERPRINT:
        return _FINGERPRINT[stamp]
    from importlib import metadata

    found = set()
    for dist in metadata.distributions(path=sites):
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        fields = dict(line.split(":", 1) for line in itertools.takewhile(bool, text.splitlines()) if ":" in line and line[0] != " ")
        found.add(f"{fields.get('Name', '').strip()}=={fields.get('Version', '').strip()}")
    fingerprint = sorted(found)
    _FINGERPRINT.clear()  # steps run in threads: each keeps its own list
    _FINGERPRINT[stamp] = fingerprint
    return fingerprint


_FINGERPRINT: dict[tuple[tuple[str, int], ...], list[str]] = {}  # sagelab's site-packages folders' last stamp: their distributions



def _create(build: Path) -> Path:
    """A venv of sagelab's interpreter that sees sagelab's packages after its own; returns its python.

    pip comes from sagelab's environment through the .pth file (no 3-second ensurepip), with
    `pip` commands in the venv's bin so a script's own `pip install` installs into the venv.
    """
    import venv

    own_pip = importlib.util.find_spec("pip") is not None
    venv.EnvBuilder(with_pip=not own_pip, symlinks=True).create(build)
    lines = "".join(f"import site; site.addsitedir({folder!r})\n" for folder in base_sites())
    (build / "lib" / f"python{PYTHON}" / "site-packages" / "_sagelab_base.pth").write_text(lines)
    python = build / "bin" / "python"
    if own_pip:
        pip_launchers(build / "bin", python)
    return python



def _pip_environment(python: Path) -> dict[str, str]:
    """What pip runs with: a step's environment (PATH with the venv's bin first, PIP_* and proxy variables kept).

    Building an sdist runs its setup.py, which should no more reach your AWS account than the step
    does: AWS credential variables are left out, and the AWS credential and config files point
    at an empty file.
    """
    return sandbox.environment({"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull}, str(python))


def _interrupted(returncode: int, what: str, purpose: Purpose) -> None:
    """Fail the build when pip was killed by a signal (Ctrl-C, a stopped execution): that says nothing about the requirements.

    Raises:
        ExecutionError: `returncode` is negative.
    """
    if returncode < 0:
        raise ExecutionError(f"the environment build was interrupted: {what} was stopped by signal {-returncode}, so "
                             f"{purpose.stopped} and no environment was kept")  # fmt: skip


def _pip(step: StepLog, python: Path, args: list[str], cwd: Path, what: str, purpose: Purpose) -> None:
    """Run pip with its output in the step log; fail the step with pip's last lines when it fails."""
    tail: deque[str] = deque(maxlen=12)
    command = [str(python), "-m", "pip", *args]
    with open(step.log_path, "a", encoding="utf-8") as log, subprocess.Popen(
        command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        env=_pip_environment(python),
    ) as process:
        for line in process.stdout or ():
            log.write(line)
            tail.append(line.rstrip())
    code = process.returncode
    _interrupted(code, f"pip install ({what})", purpose)
    if code != 0:
        raise ExecutionError(
            f"{what}: pip could not install it (exit code {code}), so {purpose.stopped} and no environment was kept. "
            f"pip's last lines:\n" + "\n".join(tail) + f"\nFix {what} (or the package index pip uses) and {purpose.again}"
        )


