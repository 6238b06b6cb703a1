"""The SageMaker SDK's own job drivers, and where their requirements are.

Two kinds of training job run a driver script the SDK uploads instead of a user's entry point:

- **`@step` functions** (SDK v2): the ContainerEntrypoint is `job_driver.sh` (channel
  `sagemaker_remote_function_bootstrap`). It pip-installs the function's dependency file, which
  always names the SDK itself, and runs `python -m sagemaker.remote_function.invoke_function`,
  which reads the pickled function and arguments from S3 and writes the result back.
- **ModelTrainer jobs** (SDK v3): `sm_train.sh` (channel `sm_drivers`) pip-installs the
  `requirements` of its SourceCode from the `code` channel, then runs the entry script.

Both run unchanged locally. What sagelab adds is where they run: the requirements file becomes
the requirements.txt of a cached environment (`environments.prepare`), so the drivers' own
`pip install` changes that environment, never sagelab's.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.containers.contract import INPUT_DATA_DIR

__all__ = ["BOOTSTRAP_CHANNEL", "DEPENDENCIES_CHANNEL", "is_function_step", "requirements_folder", "sdk_note"]

BOOTSTRAP_CHANNEL = "sagemaker_remote_function_bootstrap"  # the @step runner's scripts
DEPENDENCIES_CHANNEL = "pre_exec_script_and_dependencies"  # the function's dependency file and pre-exec commands
MODEL_TRAINER_DRIVERS = "sm_drivers"  # the v3 ModelTrainer's driver scripts and sourcecode.json
MODEL_TRAINER_CODE = "code"  # the v3 ModelTrainer's source_dir
SDK_REQUIREMENT = "sagemaker>=2.256,<3"


def is_function_step(algorithm: Mapping[str, Any]) -> bool:
    """Whether a training job's AlgorithmSpecification is the SDK's remote-function driver."""
    return any(BOOTSTRAP_CHANNEL in str(part) and str(part).endswith("job_driver.sh") for part in algorithm.get("ContainerEntrypoint") or ())


def requirements_folder(algorithm: Mapping[str, Any], job_root: Path, folder: Path) -> Path | None:
    """A folder holding the driver's requirements as requirements.txt, for `environments.prepare`.

    `folder` is outside the job's /opt/ml, so the job sees exactly what it would see on
    SageMaker. None when the job runs no SDK driver, or its driver installs nothing.
    """
    data = job_root / INPUT_DATA_DIR
    if is_function_step(algorithm):
        source = _function_dependencies(algorithm, data)
    elif (data / MODEL_TRAINER_DRIVERS / "sourcecode.json").is_file():
        source = _model_trainer_requirements(data)
    else:
        return None
    if source is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_bytes(source.read_bytes())
    return folder


def _function_dependencies(algorithm: Mapping[str, Any], data: Path) -> Path | None:
    """The file `--dependency_settings` names in the container arguments (a conda environment.yml is not installed)."""
    arguments = [str(a) for a in algorithm.get("ContainerArguments") or ()]
    try:
        settings = json.loads(arguments[arguments.index("--dependency_settings") + 1])
    except (ValueError, IndexError):
        return None
    name = settings.get("dependency_file") if isinstance(settings, dict) else None
    source = data / DEPENDENCIES_CHANNEL / str(name)
    return source if name and source.is_file() and source.suffix == ".txt" else None


def _model_trainer_requirements(data: Path) -> Path | None:
    """SourceCode.requirements in the code channel, else a requirements.txt there (which newer drivers install)."""
    try:
        settings = json.loads((data / MODEL_TRAINER_DRIVERS / "sourcecode.json").read_text())
    except (OSError, ValueError):
        return None
    name = settings.get("requirements") if isinstance(settings, dict) else None
    source = data / MODEL_TRAINER_CODE / str(name or "requirements.txt")
    return source if source.is_file() else None


def sdk_note() -> str | None:
    """What to say when the SDK, which the @step runner needs, is not next to sagelab (it is then installed per step)."""
    if importlib.util.find_spec("sagemaker") is not None:
        return None
    return (f"function step: the SageMaker SDK runs this @step function and is not installed next to sagelab, so the "
            f"step's cached environment installs it; to reuse yours instead: pip install '{SDK_REQUIREMENT}'")  # fmt: skip
