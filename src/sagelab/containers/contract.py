"""The SageMaker container contract: `/opt/ml` layout, config files and environment variables.

Everything here is computed from a job folder and the job's (resolved) Create* request, so a
runner can lay out the folder that the sandbox then shows the step as `/opt/ml`.
See sagemaker-training-toolkit (environment.py, mapping.py) for the behaviour emulated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OPT_ML = "/opt/ml"
CURRENT_HOST = "algo-1"
NETWORK_INTERFACE = "eth0"

# Training container layout, relative to /opt/ml.
CODE_DIR = "code"
MODEL_DIR = "model"
INPUT_DIR = "input"
INPUT_CONFIG_DIR = "input/config"
INPUT_DATA_DIR = "input/data"
OUTPUT_DIR = "output"
OUTPUT_DATA_DIR = "output/data"
OUTPUT_INTERMEDIATE_DIR = "output/intermediate"
FAILURE_FILE = "output/failure"
# Processing container layout, relative to /opt/ml.
PROCESSING_CONFIG_DIR = "config"

# Hyperparameters the SDK reserves for the training toolkit rather than the user's script.
PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
RESERVED_PREFIX = "sagemaker_"
LOG_LEVEL = "sagemaker_container_log_level"
# What automatic model tuning adds to every training job's hyperparameters: the objective's MetricName.
TUNING_OBJECTIVE = "_tuning_objective_metric"
# The toolkit's own hyperparameters (params.SAGEMAKER_HYPERPARAMETERS): neither the script's arguments,
# SM_HPS and SM_HP_*, nor SM_FRAMEWORK_PARAMS show them. Other `sagemaker_*` ones are framework parameters.
TOOLKIT_HYPERPARAMETERS = frozenset({
    PROGRAM, SUBMIT_DIRECTORY, "sagemaker_enable_cloudwatch_metrics", "sagemaker_region", LOG_LEVEL,
    "sagemaker_job_name", "default_user_module_name", TUNING_OBJECTIVE, "sagemaker_s3_output",
})  # fmt: skip
# Framework parameters that make the training toolkit treat the current instance group as distributed.
DISTRIBUTION_FLAGS = (
    "sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled", "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled", "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled", "sagemaker_torch_distributed_enabled",
)  # fmt: skip


def runs_script(hyperparameters: dict[str, Any], algorithm: dict[str, Any]) -> bool:
    """Whether a training job runs a script (sagemaker_program, or a ContainerEntrypoint) rather than its image's own program.

    A job that names neither runs what its image runs by default: a built-in algorithm.
    `hyperparameters` may be the request's strings or their decoded values.
    """
    return bool(decode_hyperparameter(api_string(hyperparameters.get(PROGRAM)))) or bool(algorithm.get("ContainerEntrypoint"))


def container_path(relative: str) -> str:
    """The absolute path a step sees for a path relative to /opt/ml."""
    return f"{OPT_ML}/{relative}".rstrip("/")


def job_path(root: Path, container: str) -> Path:
    """Where a container path (`/opt/ml/...`) lives inside a job folder."""
    relative = os.path.relpath(container, OPT_ML)
    if relative.startswith(".."):
        raise ValueError(f"{container} is outside {OPT_ML}")
    return root / relative


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, default=str))


def resource_config(instance_type: str, instance_count: int = 1) -> dict[str, Any]:
    """resourceconfig.json of a single-host job, as SageMaker writes it."""
    hosts = [f"algo-{i + 1}" for i in range(instance_count)][:1]
    return {
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": NETWORK_INTERFACE,
    }


def api_string(value: Any) -> str:
    """A resolved value as the job APIs take it: the pipeline service stringifies parameters (0.8 → "0.8", True → "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def is_number(text: str) -> bool:
    """Whether a string from a job (a log's metric value, a CSV cell) reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def decode_hyperparameter(value: Any) -> Any:
    """JSON-decode a hyperparameter when possible, as the toolkit does (v2 SDK values are JSON)."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """`--key value` pairs sorted by key (one-letter keys get `-k`), as the training toolkit builds them."""
    args = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def training_environment(
    *,
    job_name: str,
    hyperparameters: dict[str, Any],
    input_data_config: dict[str, Any],
    resources: dict[str, Any],
    num_cpus: int,
    region: str,
    framework_module: str | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The SM_* environment and the script arguments of a script-mode training job.

    `hyperparameters` are the decoded values, split as the toolkit splits them: the toolkit's own
    (`TOOLKIT_HYPERPARAMETERS`, `_tuning_objective_metric` among them) are kept from the script,
    other `sagemaker_*` ones are framework parameters, the rest are the script's. `framework_module`
    is the image's SAGEMAKER_TRAINING_MODULE (SM_FRAMEWORK_MODULE), None for an image without one.
    """
    reserved = {k: v for k, v in hyperparameters.items() if k in TOOLKIT_HYPERPARAMETERS or k.startswith(RESERVED_PREFIX)}
    user = {k: v for k, v in hyperparameters.items() if k not in reserved}
    framework = {k: v for k, v in reserved.items() if k not in TOOLKIT_HYPERPARAMETERS}
    program = reserved.get(PROGRAM)
    module_name = program[:-3] if isinstance(program, str) and program.endswith(".py") else program
    channels = {name: container_path(f"{INPUT_DATA_DIR}/{name}") for name in input_data_config}
    args = cmd_args(user)
    groups = {group["instance_group_name"]: group for group in resources.get("instance_groups", [])}
    group = resources["current_group_name"]
    # The toolkit counts the current group as distributed when the SDK turned a distribution strategy on.
    distributed = [group] if any(framework.get(flag) for flag in DISTRIBUTION_FLAGS) else []
    distribution_groups = framework.get("sagemaker_distribution_instance_groups", distributed)
    values: dict[str, Any] = {
        "hosts": resources["hosts"],
        "network_interface_name": resources["network_interface_name"],
        "hps": user,
        "user_entry_point": program,
        "framework_params": framework,
        "resource_config": resources,
        "input_data_config": input_data_config,
        "output_data_dir": container_path(OUTPUT_DATA_DIR),
        "channels": sorted(channels),
        "current_host": resources["current_host"],
        "current_instance_type": resources["current_instance_type"],
        "current_instance_group": group,
        "current_instance_group_hosts": groups[group]["hosts"] if group in groups else [],
        "instance_groups": list(groups),
        "instance_groups_dict": groups,
        "distribution_instance_groups": distribution_groups,
        "is_hetero": len(groups) > 1,
        "module_name": module_name,
        "log_level": reserved.get(LOG_LEVEL, 20),
        "framework_module": framework_module,
        "input_dir": container_path(INPUT_DIR),
        "input_config_dir": container_path(INPUT_CONFIG_DIR),
        "output_dir": container_path(OUTPUT_DIR),
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "model_dir": container_path(MODEL_DIR),
        "module_dir": reserved.get(SUBMIT_DIRECTORY, container_path(CODE_DIR)),
        "user_args": args,
        "output_intermediate_dir": container_path(OUTPUT_INTERMEDIATE_DIR),
    }
    training_env = {
        **{k: v for k, v in values.items() if k not in ("hps", "framework_params", "channels", "user_args")},
        "hyperparameters": user,
        "additional_framework_parameters": values["framework_params"],
        "channel_input_dirs": channels,
        "job_name": job_name,
        "is_master": True,
        "master_hostname": resources["current_host"],
        "distribution_hosts": [host for name in distribution_groups if name in groups for host in groups[name]["hosts"]],
        "is_modelparallel_enabled": None,  # the toolkit's value when SM_HP_MP_PARAMETERS is unset
        "is_smddprun_installed": False,
        "is_smddpmprun_installed": False,
        "topology": resources.get("topology", []),
    }
    values["training_env"] = training_env
    values.update({f"channel_{name}": path for name, path in channels.items()})
    values.update({f"hp_{key}": value for key, value in user.items()})
    env = {f"SM_{key.upper()}": _env_value(value) for key, value in values.items()}
    env.update({"TRAINING_JOB_NAME": job_name, "SAGEMAKER_REGION": region, "CURRENT_HOST": resources["current_host"]})
    return env, args


def input_data_config(channels: list[dict[str, Any]], default_mode: str = "File") -> dict[str, Any]:
    """inputdataconfig.json: channel name → how the channel is delivered (`default_mode`: the job's TrainingInputMode)."""
    config = {}
    for channel in channels:
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        entry = {
            "TrainingInputMode": channel.get("InputMode") or default_mode,
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if "ContentType" in channel:
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config
