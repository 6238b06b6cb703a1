"""Function steps: the SageMaker SDK's `@step` decorator, run by the SDK's own remote-function runner.

A `@step` function becomes a Training step whose ContainerEntrypoint is the SDK's
`job_driver.sh`: it bootstraps the runtime (pip-installs the function's dependencies, which
always include the SDK itself) and runs `python -m sagemaker.remote_function.invoke_function`,
which reads the pickled function and arguments from S3 and writes the result back. The job
runs unchanged locally; what sagelab adds is where it runs: the dependency file becomes the
requirements of a cached environment (`environments.prepare`), so neither the bootstrap's
`pip install -U` nor the SDK install ever touch sagelab's own environment.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.containers.contract import INPUT_DATA_DIR

__all__ = ["BOOTSTRAP_CHANNEL", "DEPENDENCIES_CHANNEL", "is_function_step", "requirements_folder", "sdk_note"]

BOOTSTRAP_CHANNEL = "sagemaker_remote_function_bootstrap"  # the SDK's runtime scripts
DEPENDENCIES_CHANNEL = "pre_exec_script_and_dependencies"  # the function's dependency file and pre-exec commands
SDK_REQUIREMENT = "sagemaker>=2.256,<3"


def is_function_step(algorithm: Mapping[str, Any]) -> bool:
    """Whether a training job's AlgorithmSpecification is the SDK's remote-function driver."""
    return any(BOOTSTRAP_CHANNEL in str(part) and str(part).endswith("job_driver.sh") for part in algorithm.get("ContainerEntrypoint") or ())


def requirements_folder(algorithm: Mapping[str, Any], job_root: Path, folder: Path) -> Path | None:
    """A folder holding the function's dependency file as requirements.txt, for `environments.prepare`.

    The file is named by `--dependency_settings` in the container arguments and was downloaded
    with the dependencies channel. `folder` is outside the job's /opt/ml, so the job sees
    exactly what it would see on SageMaker. None when the function declares no dependencies.
    """
    arguments = [str(a) for a in algorithm.get("ContainerArguments") or ()]
    try:
        settings = json.loads(arguments[arguments.index("--dependency_settings") + 1])
    except (ValueError, IndexError):
        return None
    name = settings.get("dependency_file") if isinstance(settings, dict) else None
    source = job_root / INPUT_DATA_DIR / DEPENDENCIES_CHANNEL / str(name)
    if not name or not source.is_file() or source.suffix != ".txt":  # a conda environment.yml is not installed locally
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_bytes(source.read_bytes())
    return folder


def sdk_note() -> str | None:
    """What to say when the SDK, which the runner needs, is not next to sagelab (it is then installed per step)."""
    if importlib.util.find_spec("sagemaker") is not None:
        return None
    return (f"function step: the SageMaker SDK runs this @step function and is not installed next to sagelab, so the "
            f"step's cached environment installs it; to reuse yours instead: pip install '{SDK_REQUIREMENT}'")  # fmt: skip
