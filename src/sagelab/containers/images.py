"""What SageMaker's prebuilt images do, keyed by image URI: the registry behind `identify`.

A training job that names no script (no `sagemaker_program`, no ContainerEntrypoint) runs
whatever its image runs by default. For the built-in XGBoost algorithm sagelab has an
emulation (`sagelab.containers.xgboost`); the framework images (scikit-learn, PyTorch,
TensorFlow, Hugging Face, XGBoost in framework mode) run the user's script, and the
processing and inference images run no training at all. Adding an image family is adding
an entry to `FAMILIES`.

    >>> identify("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3").version
    '1.0-1'
    >>> identify("my-registry.example.com/team/trainer:latest") is None
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sagelab.containers.xgboost.versions import VERSIONS as XGBOOST_VERSIONS
from sagelab.containers.xgboost.versions import metric_definitions

__all__ = ["ContainerBehaviour", "FAMILIES", "identify", "supported_algorithms"]

XGBOOST_TRAIN_COMMAND = ("python3", "-m", "sagelab.containers.xgboost")

# <account>.dkr.ecr[-fips].<region>.<domain>/<repository>[:<tag>][@sha256:<digest>]; the domain
# differs by partition (amazonaws.com, amazonaws.com.cn, c2s.ic.gov, sc2s.sgov.gov, ...).
_URI = re.compile(
    r"^(?:\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.[a-z0-9.-]+/)?"
    r"(?P<repository>[a-z0-9._/-]+?)(?::(?P<tag>[A-Za-z0-9._-]+))?(?:@sha256:[0-9a-f]{64})?$"
)
_FRAMEWORK_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?(?:-\d+)?)")  # 2.1.0-gpu-py310 → 2.1.0, 1.2-1-cpu-py3 → 1.2-1
_ALGORITHM_VERSION = re.compile(r"^(\d+\.\d+-\d+)")  # 1.7-1, 1.0-1-cpu-py3, 1.7-1-1 → 1.7-1
_SPARK_VERSION = re.compile(r"^(\d+\.\d+)")  # 3.3-cpu-py39-v1.0 → 3.3
_HUGGINGFACE_VERSION = re.compile(r"transformers(\d+(?:\.\d+)*)")  # 2.0.0-transformers4.28.1-gpu-py310-... → 4.28.1
_TAG = re.compile(r"^([A-Za-z0-9.]+)")  # the legacy xgboost:1 → 1


@dataclass(frozen=True)
class ContainerBehaviour:
    """What one prebuilt image does when a job runs it."""

    family: str  # the ECR repository, e.g. "sagemaker-xgboost", "pytorch-training"
    framework: str  # the SageMaker SDK's name for it: xgboost, sklearn, pytorch, tensorflow, spark, huggingface
    version: str  # from the tag: "1.7-1", "2.1.0", "3.3"; "" when the tag names none
    train_command: tuple[str, ...] | None = None  # what a training job without sagemaker_program runs (in /opt/ml/code)
    metric_definitions: tuple[tuple[str, str], ...] = ()  # (Name, Regex) SageMaker reports for a built-in algorithm
    note: str = ""  # why there is no train_command

    @property
    def label(self) -> str:
        return f"{self.family}:{self.version}" if self.version else self.family


@dataclass(frozen=True)
class _Family:
    framework: str
    version: re.Pattern[str]
    note: str


_SCRIPT = "a framework image: it runs the training script named by sagemaker_program (the SDK's entry_point)"
_INFERENCE = "an inference image: it serves models and runs no training job"
FAMILIES: dict[str, _Family] = {
    "sagemaker-xgboost": _Family("xgboost", _ALGORITHM_VERSION, _SCRIPT),
    "xgboost": _Family("xgboost", _TAG, "the legacy XGBoost 0.72 algorithm, which sagelab does not emulate; "
                       "use sagemaker-xgboost 1.0-1 or later"),  # fmt: skip
    "sagemaker-scikit-learn": _Family("sklearn", _FRAMEWORK_VERSION, _SCRIPT),
    "pytorch-training": _Family("pytorch", _FRAMEWORK_VERSION, _SCRIPT),
    "sagemaker-pytorch": _Family("pytorch", _FRAMEWORK_VERSION, _SCRIPT),
    "pytorch-inference": _Family("pytorch", _FRAMEWORK_VERSION, _INFERENCE),
    "pytorch-inference-graviton": _Family("pytorch", _FRAMEWORK_VERSION, _INFERENCE),
    "tensorflow-training": _Family("tensorflow", _FRAMEWORK_VERSION, _SCRIPT),
    "sagemaker-tensorflow": _Family("tensorflow", _FRAMEWORK_VERSION, _SCRIPT),
    "sagemaker-tensorflow-scriptmode": _Family("tensorflow", _FRAMEWORK_VERSION, _SCRIPT),
    "tensorflow-inference": _Family("tensorflow", _FRAMEWORK_VERSION, _INFERENCE),
    "tensorflow-inference-graviton": _Family("tensorflow", _FRAMEWORK_VERSION, _INFERENCE),
    "sagemaker-tensorflow-serving": _Family("tensorflow", _FRAMEWORK_VERSION, _INFERENCE),
    "sagemaker-spark-processing": _Family("spark", _SPARK_VERSION, "a processing image: it runs Spark processing jobs, "
                                          "not training jobs"),  # fmt: skip
    "huggingface-pytorch-training": _Family("huggingface", _HUGGINGFACE_VERSION, _SCRIPT),
    "huggingface-tensorflow-training": _Family("huggingface", _HUGGINGFACE_VERSION, _SCRIPT),
    "huggingface-pytorch-inference": _Family("huggingface", _HUGGINGFACE_VERSION, _INFERENCE),
    "huggingface-tensorflow-inference": _Family("huggingface", _HUGGINGFACE_VERSION, _INFERENCE),
}


def identify(image_uri: str) -> ContainerBehaviour | None:
    """The behaviour of a SageMaker prebuilt image, or None for an image sagelab does not know.

    Any region's registry account and partition, and any tag form the SDK produces, are
    recognised: the repository names the family and the tag its version.

    Args:
        image_uri: e.g. "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1".

    Returns:
        The image's `ContainerBehaviour`; None when the repository is not one of `FAMILIES`
        (a custom image: the caller says so once, naming the image).
    """
    match = _URI.match(image_uri.strip())
    if match is None:
        return None
    repository = match["repository"].rsplit("/", 1)[-1]
    family = FAMILIES.get(repository)
    if family is None and repository.startswith("huggingface-"):  # the many LLM serving variants (tgi, tei, neuronx, ...)
        family = _Family("huggingface", _FRAMEWORK_VERSION, _INFERENCE if "inference" in repository else _SCRIPT)
    if family is None:
        return None
    tag = match["tag"] or ""
    found = family.version.search(tag)
    version = found[1] if found else ""
    if repository == "sagemaker-xgboost":
        return _xgboost(version)
    return ContainerBehaviour(repository, family.framework, version, note=family.note)


def _xgboost(version: str) -> ContainerBehaviour:
    """The built-in XGBoost algorithm, for every version sagelab emulates."""
    if version in XGBOOST_VERSIONS:
        command = (*XGBOOST_TRAIN_COMMAND, version)
        return ContainerBehaviour("sagemaker-xgboost", "xgboost", version, command, metric_definitions(version))
    known = ", ".join(XGBOOST_VERSIONS)
    return ContainerBehaviour(
        "sagemaker-xgboost", "xgboost", version,
        note=f"version {version or '(none in the tag)'} of the built-in XGBoost algorithm is not one sagelab emulates ({known})",
    )  # fmt: skip


def supported_algorithms() -> str:
    """One line naming the images whose built-in training sagelab runs, for error messages."""
    return f"sagemaker-xgboost {', '.join(XGBOOST_VERSIONS)} (the built-in XGBoost algorithm)"
