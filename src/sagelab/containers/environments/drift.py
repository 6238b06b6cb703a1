"""Version drift: the releases a step ran with against those its image ships, for the run view and `sagelab status`.

Recorded as the step property `SagelabEnvironment` (also on failed steps, which need it most):

    {"Image": "sagemaker-scikit-learn:0.23-1", "Environment": "image" | "sagelab" | "<folder>",
     "Packages": {"pandas": {"Image": "1.1.3", "Step": "1.5.3"}, ...}, "Drift": ["pandas", ...],
     "Warning": "why the step did not get its image's environment" (only then)}

`Packages` holds the packages whose version changes what a script does (DRIFT_PACKAGES) that
the image ships; `Drift` the ones whose release differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelab.containers.environments.manifest import DRIFT_PACKAGES, same_release, shipped
from sagelab.containers.images import ContainerBehaviour

__all__ = ["PROPERTY", "describe", "host_versions", "report"]

PROPERTY = "SagelabEnvironment"
_DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu")}  # the same import package, from either distribution


def report(image: ContainerBehaviour | None, ran: Mapping[str, str], environment: str, warning: str = "") -> dict[str, Any] | None:
    """The drift record of a step on `image` that ran with the distributions `ran` (name → version); None when there is nothing to say."""
    packages = shipped(image) if image is not None else {}
    compared = {name: {"Image": version, "Step": ran.get(name)} for name, version in packages.items() if name in DRIFT_PACKAGES}
    drift = [name for name, pair in compared.items() if pair["Step"] is None or not same_release(str(pair["Step"]), str(pair["Image"]))]
    if not compared and not warning:
        return None
    record: dict[str, Any] = {"Image": image.label if image else "", "Environment": environment, "Packages": compared, "Drift": drift}
    if warning:
        record["Warning"] = warning
    return record


def host_versions(names: list[str], extra_site: str | None = None) -> dict[str, str]:
    """The versions of `names` a step on sagelab's environment imports (from `extra_site` first, when it has a venv)."""
    if not names:
        return {}
    from importlib import metadata  # here: ~13 ms of email.* imports every run would pay

    found: dict[str, str] = {}
    for name in names:
        for distribution in _DISTRIBUTIONS.get(name, (name,)):
            dists = list(metadata.distributions(name=distribution, path=[extra_site])) if extra_site else []
            try:
                found[name] = dists[0].version if dists else metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def describe(record: Mapping[str, Any]) -> str:
    """One line: where the step ran and what differs from its image."""
    where = {"image": "the image's environment", "sagelab": "sagelab's environment"}.get(record["Environment"], f"environment {record['Environment']}")
    if "Packages" not in record:  # a record from before drift covered every package
        return f"{record.get('Package')} {record.get('StepVersion')} in {where}; {record.get('Image')} ships {record.get('ImageVersion')}"
    differing = [f"{name} {pair['Step'] or 'missing'} (image {pair['Image']})"
                 for name, pair in sorted(record["Packages"].items(), key=lambda item: DRIFT_PACKAGES.index(item[0])) if name in record["Drift"]]  # fmt: skip
    warning = f" — {record['Warning']}" if record.get("Warning") else ""
    if not record["Packages"]:
        return f"{where}{warning}"
    if not differing:
        return f"{where}, as {record['Image']} ships{warning}"
    return f"{where}: {', '.join(differing)} — drift from {record['Image']}{warning}"

