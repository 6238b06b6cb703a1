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
`pip install` changes that environment, never sagelab's. pip runs in the file's own channel
folder, as the drivers run it, so its relative references (`./x.whl`, `-r other.txt`) resolve.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagelab.containers.contract import INPUT_DATA_DIR
from sagelab.errors import ExecutionError

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
    """The folder pip installs the driver's requirements in, holding them as requirements.txt, for `environments.prepare`.

    The drivers run `pip install -r NAME` in the channel that holds NAME, so relative references
    in it (`./x.whl`, `-r other.txt`, `.`) resolve there. When NAME is requirements.txt at the
    top of its channel, that is the channel's folder. Else `folder`, outside the job's /opt/ml
    (so the job sees exactly what it would see on SageMaker), gets a link to each entry of the
    channel and a requirements.txt that reads `-r NAME`, which pip resolves as the driver does.
    None when the job runs no SDK driver, or its driver installs nothing.

    Raises:
        ExecutionError: the definition names a requirements file outside its channel (`../x`, `/x`).
    """
    data = job_root / INPUT_DATA_DIR
    if is_function_step(algorithm):
        found = _function_dependencies(algorithm, data)
    elif (data / MODEL_TRAINER_DRIVERS / "sourcecode.json").is_file():
        found = _model_trainer_requirements(data)
    else:
        return None
    if found is None:
        return None
    channel, name = found
    if name == "requirements.txt":
        return channel
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for entry in channel.iterdir():
        if entry.name != "requirements.txt":
            (folder / entry.name).symlink_to(entry)
    (folder / "requirements.txt").write_text(f"-r {name}\n")
    return folder


def _inside(channel: Path, name: str, where: str) -> tuple[Path, str] | None:
    """`name` as a path relative to `channel` when it names a file there, else None.

    Raises:
        ExecutionError: `name` escapes the channel.
    """
    relative = os.path.normpath(name)
    target = (channel / relative).resolve()
    if os.path.isabs(name) or relative.split(os.sep)[0] == ".." or not target.is_relative_to(channel.resolve()):
        raise ExecutionError(f"{where} names the requirements file {name!r}, which is outside its channel "
                             f"{channel.name}; name a file inside the folder the SDK uploads (a path relative to it)")  # fmt: skip
    return (channel, Path(relative).as_posix()) if target.is_file() else None


def _function_dependencies(algorithm: Mapping[str, Any], data: Path) -> tuple[Path, str] | None:
    """The file `--dependency_settings` names in the container arguments (a conda environment.yml is not installed)."""
    arguments = [str(a) for a in algorithm.get("ContainerArguments") or ()]
    try:
        settings = json.loads(arguments[arguments.index("--dependency_settings") + 1])
    except (ValueError, IndexError):
        return None
    name = settings.get("dependency_file") if isinstance(settings, dict) else None
    if not name or not str(name).endswith(".txt"):
        return None
    return _inside(data / DEPENDENCIES_CHANNEL, str(name), "the function step's --dependency_settings")


def _model_trainer_requirements(data: Path) -> tuple[Path, str] | None:
    """SourceCode.requirements in the code channel, else a requirements.txt there (which newer drivers install)."""
    try:
        settings = json.loads((data / MODEL_TRAINER_DRIVERS / "sourcecode.json").read_text())
    except (OSError, ValueError):
        return None
    name = settings.get("requirements") if isinstance(settings, dict) else None
    return _inside(data / MODEL_TRAINER_CODE, str(name or "requirements.txt"), "the ModelTrainer's SourceCode.requirements")


def sdk_note(mode: str) -> str | None:
    """Where the SDK that runs a @step function comes from: its dependency file, installed into the step's environment."""
    if mode == "image":
        return ("function step: the SageMaker SDK that runs this @step function is installed into the step's environment from its "
                "dependency file, as the image's job_driver.sh installs it (once; the environment is cached)")  # fmt: skip
    if importlib.util.find_spec("sagemaker") is not None:
        return None
    return (f"function step: the SageMaker SDK runs this @step function and is not installed next to sagelab, so the "
            f"step's cached environment installs it; to reuse yours instead: pip install '{SDK_REQUIREMENT}'")  # fmt: skip
