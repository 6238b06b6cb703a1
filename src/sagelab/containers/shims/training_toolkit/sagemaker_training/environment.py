"""`sagemaker_training.environment`: the /opt/ml paths, the config readers and `Environment`."""

from sagelab.containers.shims.environment import (
    Environment,
    base_dir,
    channel_path,
    code_dir,
    input_config_dir,
    input_dir,
    model_dir,
    num_cpus,
    num_gpus,
    output_data_dir,
    output_dir,
    output_intermediate_dir,
    read_hyperparameters,
    read_input_data_config,
    read_resource_config,
)

__all__ = [
    "Environment", "base_dir", "channel_path", "code_dir", "input_config_dir", "input_dir", "model_dir", "num_cpus",
    "num_gpus", "output_data_dir", "output_dir", "output_intermediate_dir", "read_hyperparameters",
    "read_input_data_config", "read_resource_config",
]  # fmt: skip
