"""What a framework image adds to the steps that run on it: its helper packages and its variables.

Beyond the training toolkit's SM_* variables (`contract`), a script on a framework image sees
the image's own ENV lines (SAGEMAKER_TRAINING_MODULE, which the toolkit reports as
SM_FRAMEWORK_MODULE; the XGBoost and scikit-learn images' SM_INPUT_* files), what the
framework's launcher exports before starting it (PyTorch's MASTER_ADDR, TensorFlow's S3 and log
settings), and the helper packages installed in the image, which public scripts import.
`FRAMEWORKS` holds these per framework; the runners ask `training_environment` and
`processing_environment`. The packages are sagelab's stand-ins (`sagelab.containers.shims`),
appended to the step's PYTHONPATH only, so steps on other images never see them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagelab.containers import contract
from sagelab.containers.images import ContainerBehaviour
from sagelab.containers.shims import CONTAINERS_TOOLKIT, TRAINING_TOOLKIT, XGBOOST_CONTAINER

__all__ = ["FRAMEWORKS", "Framework", "hyperparameters", "processing_environment", "serving_environment", "training_environment",
           "training_module"]


@dataclass(frozen=True)
class Framework:
    """One framework's images, as a script running on them sees them."""

    training_module: str  # the image's SAGEMAKER_TRAINING_MODULE
    packages: tuple[Path, ...]  # PYTHONPATH roots of the stand-ins for the image's helper packages
    image_variables: Mapping[str, str] = field(default_factory=dict)  # the image's other ENV lines, under the job's own
    launcher_variables: Mapping[str, str] = field(default_factory=dict)  # set by the launcher, over the job's own


_INPUT = contract.container_path(contract.INPUT_DIR)
_CONFIG_FILES = {  # ENV lines of the XGBoost and scikit-learn images, which their algorithm and serving code read
    "SM_INPUT": _INPUT,
    "SM_INPUT_TRAINING_CONFIG_FILE": f"{_INPUT}/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG_FILE": f"{_INPUT}/config/inputdataconfig.json",
    "SM_CHECKPOINT_CONFIG_FILE": f"{_INPUT}/config/checkpointconfig.json",
    "SM_MODEL_DIR": contract.container_path(contract.MODEL_DIR),
}
_TOOLKITS = (TRAINING_TOOLKIT, CONTAINERS_TOOLKIT)  # the framework images carry one or both, depending on their release
FRAMEWORKS: dict[str, Framework] = {
    "xgboost": Framework(
        "sagemaker_xgboost_container.training:main",
        (XGBOOST_CONTAINER, CONTAINERS_TOOLKIT),  # every release installs sagemaker-containers 2.8.6, not sagemaker-training
        {**_CONFIG_FILES, "SAGEMAKER_SERVING_MODULE": "sagemaker_xgboost_container.serving:main"},
    ),
    "sklearn": Framework(
        "sagemaker_sklearn_container.training:main",
        _TOOLKITS,
        {**_CONFIG_FILES, "SAGEMAKER_SERVING_MODULE": "sagemaker_sklearn_container.serving:main"},
    ),
    # sagemaker-pytorch-training's launcher; MASTER_ADDR is the master host there (algo-1), a name
    # only SageMaker's network resolves: locally the one host is this machine.
    "pytorch": Framework(
        "sagemaker_pytorch_container.training:main",
        _TOOLKITS,
        launcher_variables={
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "7777",
            "NCCL_SOCKET_IFNAME": contract.NETWORK_INTERFACE,
            "NCCL_IB_DISABLE": "1",
            "NCCL_DEBUG": "WARN",
        },
    ),
    # sagemaker-tensorflow-training's launcher (s3_utils.configure); S3_REGION is added from the job's region.
    "tensorflow": Framework(
        "sagemaker_tensorflow_container.training:main", _TOOLKITS, launcher_variables={"TF_CPP_MIN_LOG_LEVEL": "1"}
    ),
}


def _framework(behaviour: ContainerBehaviour | None) -> Framework | None:
    """The framework of an image; Hugging Face's images are PyTorch's or TensorFlow's underneath."""
    if behaviour is None:
        return None
    if behaviour.framework == "huggingface":
        return FRAMEWORKS["tensorflow" if "tensorflow" in behaviour.family else "pytorch"]
    return FRAMEWORKS.get(behaviour.framework)


def training_module(behaviour: ContainerBehaviour | None) -> str | None:
    """SM_FRAMEWORK_MODULE: the image's training module, None for an image without a training toolkit."""
    framework = _framework(behaviour)
    return framework.training_module if framework else None


def hyperparameters(behaviour: ContainerBehaviour | None, values: dict[str, Any], job_name: str) -> dict[str, Any]:
    """The hyperparameters the script gets: as given, but a TensorFlow tuning trial's `model_dir` gets its own folder.

    The TensorFlow toolkit (training.main, `_model_dir_with_training_job`) appends `/<job>/model`
    to a model_dir outside /opt/ml when `_tuning_objective_metric` is set, as tuning sets it on
    every trial, so that trials sharing one model_dir do not overwrite each other (SM_HPS and
    SM_HP_MODEL_DIR show the new value too; a trial without model_dir gets `None/<job>/model`, as there).
    """
    if _framework(behaviour) is not FRAMEWORKS["tensorflow"] or contract.TUNING_OBJECTIVE not in values:
        return values
    model_dir = values.get("model_dir")
    if isinstance(model_dir, str) and model_dir.startswith(contract.OPT_ML):
        return values
    return {**values, "model_dir": f"{model_dir}/{job_name}/model"}


def training_environment(behaviour: ContainerBehaviour | None, env: Mapping[str, str]) -> dict[str, str]:
    """A training step's variables: `env` (SM_* and the job's Environment) with what the image adds.

    The image's ENV lines go under `env`, its launcher's variables over it, and the stand-ins for
    its helper packages at the end of PYTHONPATH.
    """
    framework = _framework(behaviour)
    if framework is None:
        return dict(env)
    launcher = dict(framework.launcher_variables)
    if framework is FRAMEWORKS["tensorflow"]:
        launcher["S3_REGION"] = env.get("SAGEMAKER_REGION", "")
    return {**_image_variables(framework), **env, **launcher, "PYTHONPATH": _python_path(framework, env)}


def processing_environment(behaviour: ContainerBehaviour | None, env: Mapping[str, str]) -> dict[str, str]:
    """A processing step's variables on a framework image (a ScriptProcessor on the training image): ENV lines and packages."""
    framework = _framework(behaviour)
    if framework is None:
        return dict(env)
    return {**_image_variables(framework), **env, "PYTHONPATH": _python_path(framework, env)}


def serving_environment(behaviour: ContainerBehaviour | None, env: Mapping[str, str]) -> dict[str, str]:
    """A model server's variables on a framework image: inference scripts import the helper packages too."""
    framework = _framework(behaviour)
    if framework is None:
        return dict(env)
    return {**env, "PYTHONPATH": _python_path(framework, env)}


def _image_variables(framework: Framework) -> dict[str, str]:
    return {"SAGEMAKER_TRAINING_MODULE": framework.training_module, **framework.image_variables}


def _python_path(framework: Framework, env: Mapping[str, str]) -> str:
    """The step's PYTHONPATH (its own, else sagelab's) with the stand-ins' roots after it, so the user's come first."""
    current = env["PYTHONPATH"] if "PYTHONPATH" in env else os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([*(part for part in current.split(os.pathsep) if part), *map(str, framework.packages)])
