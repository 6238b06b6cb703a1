"""Resolve framework specs such as "sklearn:1.2-1" to SageMaker's prebuilt ECR image URIs.

Pipelines name their images the way people think of them; SageMaker needs the full URI.
This gives exactly what the SageMaker SDK's `sagemaker.image_uris.retrieve()` gives, but
offline and without the SDK, from `images.json`, a slice of the SDK's image_uri_config
made by `tools/gen_image_uris.py` (which also checks this module against the SDK).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from sagelab.errors import SagelabError

__all__ = ["ImageError", "image_uri", "SCOPES"]

SCOPES = ("training", "inference", "processing")
_FAMILY = re.compile(r"^ml[._]([a-z\d\-]+)\.?\w*$")  # the SDK's get_instance_type_family
_HF_EXAMPLE = "huggingface:4.28-pytorch2.0"


class ImageError(SagelabError):
    """A framework spec, region, instance type or Python version has no prebuilt image."""


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    """The shipped table, read once on first use so that importing this module stays cheap."""
    text = resources.files("sagelab.pipeline").joinpath("images.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def image_uri(
    framework: str,
    region: str,
    *,
    scope: str = "training",
    instance_type: str | None = None,
    py_version: str | None = None,
) -> str:
    """Return the ECR URI of SageMaker's prebuilt image for a framework version.

    Args:
        framework: "name:version", e.g. "sklearn:1.2-1", "xgboost:1.7-1", "pytorch:2.1",
            "tensorflow:2.13", "spark:3.3". Versions are spelled as in the SageMaker SDK,
            full ("2.1.0") or short ("2.1"); the tag keeps the spelling, as the SDK's does.
            Hugging Face adds the base framework after a dash:
            "huggingface:<transformers version>-<pytorch|tensorflow><version>",
            e.g. "huggingface:4.28-pytorch2.0".
        region: AWS region, e.g. "us-east-1", "cn-north-1", "us-gov-west-1".
        scope: "training", "inference" or "processing". Processing jobs run the training
            image (what the SDK's framework processors do); spark has processing images only.
        instance_type: picks the processor: gpu for ml.g* and ml.p* ("local_gpu" too), cpu
            otherwise, and the Graviton images for ml.c6g/m6g/... inference. Without it:
            the image's only processor, else cpu.
        py_version: e.g. "py310"; defaults to the newest the version has. Spark images
            carry no Python version in their tag unless one is given (as SparkProcessor).

    Returns:
        The URI `image_uris.retrieve(name, region, version, py_version=..., instance_type=...,
        image_scope=..., base_framework_version=...)` returns for the same choice.

    Raises:
        ImageError: the framework, version, scope, region, processor or Python version is
            unknown; the message lists what is known.

    Example:
        >>> image_uri("sklearn:1.2-1", "us-east-1")
        '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3'
        >>> image_uri("pytorch:2.1", "eu-west-1", scope="inference", instance_type="ml.g5.xlarge")
        '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-gpu-py310'
    """
    table = _table()
    name, version, base = _parse(framework, table["frameworks"])
    fw: dict[str, Any] = table["frameworks"][name]
    family = _family(instance_type)
    config_scope = _scope(name, fw, scope, family, instance_type, table["graviton_families"])
    versions: dict[str, Any] = fw[config_scope]["versions"]
    aliases: dict[str, str] = fw[config_scope].get("aliases", {})
    label = f"{name} {'Graviton inference' if config_scope == 'inference_graviton' else config_scope}"
    full = aliases.get(version, version)
    if full not in versions:
        raise ImageError(
            f"unknown {label} version '{version}' in '{framework}'; known: {', '.join(versions)}"
            + (f" (short forms: {', '.join(aliases)})" if aliases else "")
        )
    entry: dict[str, Any] = versions[full]
    base_number = None
    if name == "huggingface":
        entry, base_number = _base(entry, version, base, label)
    where = f"{name} {version}-{base}" if base else f"{name} {version}"
    py = _py(entry, py_version, where, optional=bool(fw.get("py_optional")))
    located: dict[str, Any] = entry["by_py"][py] if "by_py" in entry else entry  # tensorflow 1.13
    repository: str = located["repository"]
    accounts: dict[str, str] = table["registries"][located["registries"]]
    if region not in accounts:
        raise ImageError(f"{where} has no image in region '{region}'; regions: {', '.join(sorted(accounts))}")
    processor = _processor(entry["processors"], instance_type, family, where)
    _check_retired(table["retired"], name, version, family, instance_type)
    container = entry["container"][processor] if "container" in entry and processor else None
    values = {"version": version, "base": base_number, "processor": processor, "py": py, "container": container}
    tag = _render(entry["tag"], values)
    if family == "p4d" and tag in fw.get("p4d_tag_suffixes", {}):
        tag = f"{tag}-{fw['p4d_tag_suffixes'][tag]}"
    domain = table["domains"].get(region, "amazonaws.com")
    return f"{accounts[region]}.dkr.ecr.{region}.{domain}/{repository}:{tag}"


def _parse(framework: str, frameworks: dict[str, Any]) -> tuple[str, str, str]:
    """Split "name:version[-base]", saying what a well-formed spec looks like when it is not."""
    name, _, version = framework.partition(":")
    name, version = name.strip(), version.strip()
    if name not in frameworks:
        raise ImageError(f"unknown framework '{name}' in '{framework}'{_did_you_mean(name, frameworks)}; "
                         f"known: {', '.join(sorted(frameworks))}")
    example = _HF_EXAMPLE if name == "huggingface" else f"{name}:{_newest_listed(frameworks[name])}"
    if not version:
        raise ImageError(f"'{framework}' names no version; write the framework as '{example}'")
    base = ""  # only huggingface specs name a base framework
    if name == "huggingface":
        version, _, base = version.partition("-")
        if not base:
            raise ImageError(f"'{framework}' names no base framework; write it as '{_HF_EXAMPLE}'")
    return name, version, base


def _newest_listed(fw: dict[str, Any]) -> str:
    """A real version to put in an example spec."""
    scope = "processing" if "processing" in fw else "training"
    return str(list(fw[scope]["versions"])[-1])


def _did_you_mean(word: str, options: dict[str, Any]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _family(instance_type: str | None) -> str | None:
    """The instance family ("m5", "p4d", "local", "local_gpu"), or None without an instance."""
    if instance_type is None or instance_type in ("local", "local_gpu"):
        return instance_type
    match = _FAMILY.match(instance_type)
    if match is None:
        raise ImageError(f"'{instance_type}' is not a SageMaker instance type; "
                         "write it as 'ml.<family>.<size>' (e.g. ml.m5.xlarge), 'local' or 'local_gpu'")
    return match[1]


def _scope(name: str, fw: dict[str, Any], scope: str, family: str | None, instance_type: str | None,
           graviton: list[str]) -> str:
    """The table scope to read: the asked one, its alias, or inference_graviton on Graviton."""
    if scope not in SCOPES:
        raise ImageError(f"unknown image scope '{scope}'; scopes: {', '.join(SCOPES)}")
    if family is not None and family.startswith(("inf", "trn")):
        raise ImageError(f"{instance_type} needs an AWS Neuron image, which sagelab does not resolve; "
                         "pass the image URI itself, or use a cpu/gpu instance type")
    config_scope: str = fw.get("scope_aliases", {}).get(scope, scope)
    if config_scope not in fw:
        known = [s for s in SCOPES if fw.get("scope_aliases", {}).get(s, s) in fw]
        raise ImageError(f"{name} has no {scope} images; scopes: {', '.join(known)}")
    if family in graviton:
        if scope != "inference":
            raise ImageError(f"{instance_type} is a Graviton (arm64) instance, for which SageMaker has "
                             f"inference images only; use an x86 instance type such as ml.m5.xlarge for {scope}")
        if "inference_graviton" not in fw:
            raise ImageError(f"{name} has no Graviton (arm64) inference image for {instance_type}; "
                             "use an x86 instance type such as ml.m5.xlarge")
        return "inference_graviton"
    return config_scope


def _base(entry: dict[str, Any], version: str, base: str, label: str) -> tuple[dict[str, Any], str]:
    """Pick a huggingface version's base framework entry, and the number that goes in the tag."""
    bases: dict[str, Any] = entry["bases"]
    full = entry["base_aliases"].get(base, base)
    match = re.match(r"^(pytorch|tensorflow)(.+)$", base)
    if full not in bases or match is None:
        known = sorted(set(bases) | set(entry["base_aliases"]))
        raise ImageError(f"{label} {version} has no base framework '{base}'; known: {', '.join(known)} "
                         f"(write e.g. 'huggingface:{version}-{known[0]}')")
    return bases[full], match[2]


def _py_key(py: str) -> tuple[int, int]:
    """Order "py2" < "py3" < "py36" < "py39" < "py310": a bare major version is the oldest."""
    digits = py[2:]
    return (int(digits[:1] or 0), int(digits[1:] or -1))


def _py(entry: dict[str, Any], py_version: str | None, where: str, *, optional: bool) -> str | None:
    """The Python version in the tag: the asked one, or the newest; None if the tag has none."""
    available: list[str] = entry["py_versions"]
    if not available:
        return None  # the SDK ignores a Python version the image does not name
    if py_version is None:
        return None if optional else max(available, key=_py_key)
    if py_version not in available:
        raise ImageError(f"{where} has no image for Python version '{py_version}'; "
                         f"Python versions: {', '.join(available)}")
    return py_version


def _processor(available: list[str], instance_type: str | None, family: str | None, where: str) -> str | None:
    """cpu or gpu from the instance type, the way the SDK's image_uris._processor decides."""
    if not available:
        return None  # one image for every instance type (xgboost >= 1.2-1)
    if family is None:
        return available[0] if len(available) == 1 else "cpu"
    if family in ("local", "local_gpu"):
        processor = "cpu" if family == "local" else "gpu"
    else:
        processor = "gpu" if family[0] in ("g", "p") else "cpu"
    if processor not in available:
        raise ImageError(f"{where} has no {processor} image (for {instance_type}); processors: {', '.join(available)}")
    return processor


def _check_retired(retired: dict[str, dict[str, str]], name: str, version: str, family: str | None,
                   instance_type: str | None) -> None:
    """Refuse instance families SageMaker no longer runs newer framework versions on."""
    first = retired.get(family or "", {}).get(name)
    if first is not None and _numbers(version) >= _numbers(first):
        raise ImageError(f"{instance_type} cannot run {name} {version}: ml.{family} instances are retired "
                         f"for {name} {first} and later; use a newer instance family (e.g. ml.g5)")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _render(pattern: str, values: dict[str, str | None]) -> str:
    """Fill a tag pattern; a part whose value is None drops out, as the SDK joins only set parts."""
    parts = []
    for part in pattern.split("-"):
        names = re.findall(r"\{(\w+)\}", part)
        if all(values[n] is not None for n in names):
            parts.append(part.format(**values))
    return "-".join(parts)
