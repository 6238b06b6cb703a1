"""The training environment the toolkits describe, read as they read it, built as sagelab builds SM_*.

`sagemaker_training.environment.Environment` and the legacy `sagemaker_containers` TrainingEnv
are read-only snapshots of `/opt/ml/input/config` and a few variables, mapping-like and with
an attribute per key. The stand-in reads the same files and computes the values with
`contract.training_environment`, so an object a script builds agrees with SM_TRAINING_ENV.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from sagelab.containers import contract

__all__ = [  # what the toolkits' environment modules export
    "Environment",
    "base_dir",
    "channel_path",
    "code_dir",
    "input_config_dir",
    "input_dir",
    "model_dir",
    "num_cpus",
    "num_gpus",
    "output_data_dir",
    "output_dir",
    "output_intermediate_dir",
    "read_hyperparameters",
    "read_input_data_config",
    "read_resource_config",
]

base_dir = contract.OPT_ML
code_dir = contract.container_path(contract.CODE_DIR)
model_dir = contract.container_path(contract.MODEL_DIR)
input_dir = contract.container_path(contract.INPUT_DIR)
input_config_dir = contract.container_path(contract.INPUT_CONFIG_DIR)
output_dir = contract.container_path(contract.OUTPUT_DIR)
output_data_dir = contract.container_path(contract.OUTPUT_DATA_DIR)
output_intermediate_dir = contract.container_path(contract.OUTPUT_INTERMEDIATE_DIR)


def _read_config(name: str) -> dict[str, Any]:
    path = f"{input_config_dir}/{name}"
    try:
        with open(path) as file:
            document = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: the training environment exists in training jobs only "
                                "(a processing job has no /opt/ml/input/config)") from None  # fmt: skip
    return dict(document)


def read_hyperparameters() -> dict[str, Any]:
    """hyperparameters.json with each value JSON-decoded where it can be, as the toolkit reads it."""
    return {key: contract.decode_hyperparameter(value) for key, value in _read_config("hyperparameters.json").items()}


def read_resource_config() -> dict[str, Any]:
    return _read_config("resourceconfig.json")


def read_input_data_config() -> dict[str, Any]:
    return _read_config("inputdataconfig.json")


def channel_path(channel: str) -> str:
    return contract.container_path(f"{contract.INPUT_DATA_DIR}/{channel}")


def num_cpus() -> int:
    return os.cpu_count() or 1


def num_gpus() -> int:
    return 0  # local steps run on the CPU


class Environment(Mapping[str, Any]):
    """A training job's environment: `env.model_dir`, `env.channel_input_dirs["train"]`, `dict(env)`, ..."""

    def __init__(
        self,
        resource_config: dict[str, Any] | None = None,
        input_data_config: dict[str, Any] | None = None,
        hyperparameters: dict[str, Any] | None = None,
    ) -> None:
        self._variables, self._args = contract.training_environment(
            job_name=os.environ.get("TRAINING_JOB_NAME", ""),
            hyperparameters=hyperparameters or read_hyperparameters(),
            input_data_config=input_data_config or read_input_data_config(),
            resources=resource_config or read_resource_config(),
            num_cpus=num_cpus(),
            region=os.environ.get("SAGEMAKER_REGION", ""),
            framework_module=os.environ.get("SAGEMAKER_TRAINING_MODULE"),
        )
        self._values: dict[str, Any] = json.loads(self._variables["SM_TRAINING_ENV"])

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name not in values:
            known = ", ".join(sorted(values))
            raise AttributeError(f"the training environment has no {name!r} (sagelab's stand-in has {known})")
        return values[name]

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._values!r})"

    def to_env_vars(self) -> dict[str, str]:
        """The SM_* variables the toolkit gives the user's script."""
        return {key: value for key, value in self._variables.items() if key.startswith("SM_")}

    def to_cmd_args(self) -> list[str]:
        """The script's arguments: `--key value` per hyperparameter."""
        return list(self._args)
