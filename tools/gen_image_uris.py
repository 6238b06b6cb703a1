"""Regenerate src/sagelab/pipeline/images.json from the SageMaker SDK's image_uri_config.

sagelab resolves "sklearn:1.2-1"-style specs to ECR image URIs offline, so it ships the
part of the SDK's table that sklearn, xgboost, pytorch, tensorflow, spark and huggingface
pipelines need. Run it with the SDK-v2 side venv (botocore supplies the ECR hostnames):

    /work/venvs/sdk2/bin/python tools/gen_image_uris.py            # write, then verify
    /work/venvs/sdk2/bin/python tools/gen_image_uris.py --check    # verify only

After writing, it checks sagelab.pipeline.images against the SDK's own
`sagemaker.image_uris.retrieve()` for every version, alias, base framework, Python
version, processor and region in the file, and exits non-zero on any difference.

Kept: the training, inference and inference_graviton scopes (spark: processing).
Dropped: eia, neuron/inferentia, training-compiler and SMP variants.

images.json layout (registry tables are shared, so each is stored once):

    sdk                  the sagemaker package version the table came from
    domains              region -> ECR DNS suffix, for regions not on amazonaws.com
    registries           list of {region: account id}; versions refer to them by index
    graviton_families    instance families that select the inference_graviton images
    retired              {family: {framework: first version that no longer runs there}}
    frameworks.<name>
      scope_aliases      {"processing": "training"}: processors run the training image
      py_optional        spark: no Python version in the tag unless one is asked for
      p4d_tag_suffixes   {tag: suffix} the SDK appends on ml.p4d instances
      <scope>.aliases    {"2.1": "2.1.0", "latest": "1", ...}
      <scope>.versions.<version>
        repository, registries (index), py_versions, processors,
        container            {processor: container version} when the tag carries one
        tag                  "-"-joined parts; {version} is the version as written by the
                             user (alias or full), {base} the base framework version
                             number (huggingface), {processor}, {py}, {container}
        by_py                {py: {repository, registries}} when they differ per Python
        (huggingface) base_aliases, bases: {"pytorch2.0.0": <entry as above>}
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
logging.disable(logging.CRITICAL)  # the SDK logs every defaulted argument at INFO

from sagemaker import __version__ as SDK_VERSION  # noqa: E402
from sagemaker import image_uris, utils  # noqa: E402
from sagemaker.fw_utils import GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/sagelab/pipeline/images.json"
FRAMEWORKS = ("sklearn", "xgboost", "pytorch", "tensorflow", "spark", "huggingface")
KEPT_SCOPES = ("training", "inference", "inference_graviton", "processing")
# _validate_instance_deprecation in image_uris.py, which has no table to read it from.
RETIRED = {"p2": {"pytorch": "1.13", "tensorflow": "2.12"}}
DEFAULT_DOMAIN = "amazonaws.com"


def sdk_tables() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Read the two tag tables the SDK keeps as literals inside _get_image_tag."""
    tree = ast.parse(inspect.getsource(image_uris._get_image_tag))
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("container_versions", "version_to_arm64_tag_mapping"):
                found[name] = ast.literal_eval(node.value)
    missing = {"container_versions", "version_to_arm64_tag_mapping"} - set(found)
    if missing:
        sys.exit(f"image_uris._get_image_tag no longer defines {missing}; update this script")
    return found["container_versions"], found["version_to_arm64_tag_mapping"]


class Registries:
    """Deduplicates the per-region account tables, which most versions share."""

    def __init__(self) -> None:
        self.tables: list[dict[str, str]] = []
        self.index: dict[tuple[tuple[str, str], ...], int] = {}

    def ref(self, table: dict[str, str]) -> int:
        key = tuple(sorted(table.items()))
        if key not in self.index:
            self.index[key] = len(self.tables)
            self.tables.append(dict(sorted(table.items())))
        return self.index[key]


def convert_entry(
    entry: dict[str, Any], processors: list[str], prefix: str, registries: Registries, graviton: bool
) -> dict[str, Any]:
    """One version (or huggingface base framework) entry, with its tag pattern."""
    known = {"repository", "registries", "py_versions", "processors", "container_version"}
    out: dict[str, Any] = {}
    if "repository" in entry:
        unknown = set(entry) - known
        py_versions = list(entry.get("py_versions", []))
        out["repository"] = entry["repository"]
        out["registries"] = registries.ref(entry["registries"])
    else:  # keyed by Python version (tensorflow 1.13.1 training)
        unknown = {key for key in entry if not key.startswith("py")}
        py_versions = list(entry)
        out["by_py"] = {
            py: {"repository": sub["repository"], "registries": registries.ref(sub["registries"])}
            for py, sub in entry.items()
        }
        if any(set(sub) - {"repository", "registries"} for sub in entry.values()):
            sys.exit(f"unexpected keys in a per-Python entry: {entry}")
    if unknown:
        sys.exit(f"unexpected keys {unknown} in {entry}; teach this script about them")
    procs = processors or list(entry.get("processors", []))
    if set(procs) - {"cpu", "gpu"}:
        sys.exit(f"unexpected processors {procs}")
    out["py_versions"] = py_versions
    out["processors"] = procs
    parts = [prefix]
    if procs:
        parts.append("{processor}")
    if py_versions:
        parts.append("{py}")
    if "container_version" in entry:
        out["container"] = entry["container_version"]
        if set(procs) - set(out["container"]):
            sys.exit(f"container_version does not cover processors {procs}: {entry}")
        parts.append("{container}-sagemaker" if graviton else "{container}")
    out["tag"] = "-".join(parts)
    return out


def convert_scope(
    framework: str, scope: str, config: dict[str, Any], registries: Registries, arm64: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """One scope of a framework: aliases and versions."""
    processors = list(config.get("processors", []))
    graviton = scope == "inference_graviton"
    versions: dict[str, Any] = {}
    for version, entry in config["versions"].items():
        if framework == "huggingface":
            bases = {key: value for key, value in entry.items() if key != "version_aliases"}
            versions[version] = {
                "base_aliases": entry.get("version_aliases", {}),
                "bases": {
                    base: convert_entry(sub, processors, "{base}-transformers{version}", registries, graviton)
                    for base, sub in bases.items()
                },
            }
            continue
        out = convert_entry(entry, processors, "{version}", registries, graviton)
        if graviton and framework in arm64:
            # The SDK tags xgboost/sklearn Graviton images from a fixed table, not a pattern.
            out["tag"] = arm64[framework][version]
        versions[version] = out
    result: dict[str, Any] = {}
    if config.get("version_aliases"):
        result["aliases"] = config["version_aliases"]
    result["versions"] = versions
    return result


def domains(regions: set[str]) -> dict[str, str]:
    """ECR DNS suffix per region, the way image_uris.retrieve forms the hostname."""
    out: dict[str, str] = {}
    resolver = utils._botocore_resolver()
    for region in sorted(regions):
        endpoint = resolver.construct_endpoint("ecr", region)
        if region == "il-central-1" and not endpoint:  # the SDK's own special case
            endpoint = {"hostname": f"ecr.{region}.amazonaws.com"}
        hostname = endpoint["hostname"]
        prefix = f"ecr.{region}."
        if not hostname.startswith(prefix):
            sys.exit(f"ECR hostname {hostname!r} for {region} is not ecr.<region>.<suffix>")
        if hostname[len(prefix):] != DEFAULT_DOMAIN:
            out[region] = hostname[len(prefix):]
    return out


def build() -> dict[str, Any]:
    p4d, arm64 = sdk_tables()
    registries = Registries()
    frameworks: dict[str, Any] = {}
    for name in FRAMEWORKS:
        config = image_uris.config_for_framework(name)
        fw: dict[str, Any] = {}
        if name == "spark":
            fw["py_optional"] = True
        else:
            fw["scope_aliases"] = {"processing": "training"}
        suffixes = {key[len(name) + 1:]: value for key, value in p4d.items() if key.startswith(name + "-")}
        if suffixes:
            fw["p4d_tag_suffixes"] = suffixes
        for scope in KEPT_SCOPES:
            if scope in config:
                fw[scope] = convert_scope(name, scope, config[scope], registries, arm64)
        frameworks[name] = fw
    regions = {region for table in registries.tables for region in table}
    return {
        "sdk": SDK_VERSION,
        "domains": domains(regions),
        "graviton_families": sorted(GRAVITON_ALLOWED_TARGET_INSTANCE_FAMILY),
        "retired": RETIRED,
        "registries": registries.tables,
        "frameworks": frameworks,
    }


# --- verification against the SDK -------------------------------------------------------

CPU, GPU, P4D, P2, GRAVITON = "ml.m5.xlarge", "ml.g5.xlarge", "ml.p4d.24xlarge", "ml.p2.xlarge", "ml.c6g.xlarge"


def cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(spec, sagelab kwargs, SDK kwargs) for every combination the SDK's own table lists."""
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for name in FRAMEWORKS:
        config = image_uris.config_for_framework(name)
        for scope in KEPT_SCOPES:
            if scope not in config:
                continue
            sc = config[scope]
            spellings = list(sc["versions"]) + list(sc.get("version_aliases", {}))
            for version in spellings:
                entry = sc["versions"][sc.get("version_aliases", {}).get(version, version)]
                if name == "huggingface":
                    bases = [b for b in entry if b != "version_aliases"] + list(entry.get("version_aliases", {}))
                    targets = [(f"{version}-{b}", b, entry[entry.get("version_aliases", {}).get(b, b)]) for b in bases]
                else:
                    targets = [(version, None, entry)]
                for spelled, base, sub in targets:
                    pys = sub.get("py_versions") if "repository" in sub else list(sub)
                    py_choices: list[str | None] = list(pys or []) or [None]
                    if name == "spark":
                        py_choices.append(None)
                    regions = sub["registries"] if "repository" in sub else sub[pys[0]]["registries"]
                    if scope == "inference_graviton":
                        instances = [GRAVITON]
                    else:
                        instances = [CPU, GPU, P4D, P2]
                    for py in py_choices:
                        for instance in instances:
                            for region in regions:
                                ours = {"scope": "inference" if scope == "inference_graviton" else scope,
                                        "instance_type": instance, "py_version": py}
                                sdk = {"image_scope": ours["scope"], "instance_type": instance, "py_version": py,
                                       "version": version, "base_framework_version": base}
                                out.append((f"{name}:{spelled}", {"region": region, **ours}, {"region": region, **sdk}))
                                if scope == "training" and name != "spark":
                                    out.append((f"{name}:{spelled}", {"region": region, **ours, "scope": "processing"},
                                                {"region": region, **sdk}))
    return out


def verify() -> int:
    """Compare sagelab's resolver with the SDK on every case; return the number of differences."""
    sys.path.insert(0, str(ROOT / "src"))
    from sagelab.pipeline.images import ImageError, image_uri

    # retrieve() reloads botocore's endpoint data on every call (~50 ms); the data does not
    # change within a run, so one resolver gives the same answers 200 times faster.
    utils._botocore_resolver = functools.lru_cache(maxsize=1)(utils._botocore_resolver)
    differences = 0
    all_cases = cases()
    agree_uri = agree_error = 0
    for spec, ours, sdk in all_cases:
        name = spec.split(":")[0]
        try:
            expected: str | None = image_uris.retrieve(name, **sdk)
        except (ValueError, KeyError):
            expected = None
        try:
            got: str | None = image_uri(spec, **ours)
        except ImageError:
            got = None
        if got == expected:
            agree_uri += expected is not None
            agree_error += expected is None
        else:
            differences += 1
            if differences <= 20:
                print(f"DIFF {spec} {ours}: sagelab {got!r}, SDK {expected!r}")
    print(f"checked {len(all_cases)} cases against sagemaker {SDK_VERSION}: "
          f"{agree_uri} same URI, {agree_error} both refuse, {differences} differ")
    return differences


def main() -> None:
    if "--check" not in sys.argv:
        data = build()
        tmp = OUT.with_suffix(".json.tmp")  # atomic: a failed run leaves the old table
        tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        tmp.replace(OUT)
        print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")
    sys.exit(1 if verify() else 0)


if __name__ == "__main__":
    main()
