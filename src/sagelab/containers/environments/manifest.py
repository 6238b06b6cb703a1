"""What each SageMaker image ships, and what of it installs on this Python: the manifest shipped as `images.json`.

`tools/gen_image_environments.py` writes `images.json` from the images' published package lists
(`tools/image_packages.json`, each list with its source): for every image version, the packages
the image ships and, for each Python sagelab supports, the releases to install here — the
image's own, or the closest release with wheels for that Python on Linux and macOS, checked to
install together — per platform, as old releases often have Linux wheels only. Choosing once,
ahead of time, makes an environment the same on every machine of a platform and keeps the
index out of a step's start.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sagelab.containers.images import ContainerBehaviour

__all__ = ["DRIFT_PACKAGES", "PLATFORM", "PYTHON", "ImageEnvironment", "closest", "exclude_newer", "lookup", "release", "same_release", "shipped"]

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _platform() -> str:
    """This machine as images.json names platforms: linux-x86_64, linux-aarch64, macos-arm64, ..."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64" if sys.platform.startswith("linux") else "arm64"}.get(machine, machine)
    system = "macos" if sys.platform == "darwin" else "linux" if sys.platform.startswith("linux") else sys.platform
    return f"{system}-{machine}"


PLATFORM = _platform()
# Packages whose version changes what a script does; the drift report compares these.
DRIFT_PACKAGES = ("scikit-learn", "xgboost", "torch", "tensorflow", "transformers", "pyspark", "pandas", "numpy", "scipy",
                  "matplotlib", "pyarrow", "boto3")  # fmt: skip


@dataclass(frozen=True)
class ImageEnvironment:
    """One image version's packages: as shipped, and as installed on this Python."""

    image: str  # "sagemaker-scikit-learn:1.2-1"
    framework: str  # the image's framework package: "scikit-learn"
    shipped: dict[str, str]  # name → the version the image ships
    pins: dict[str, str]  # name → the version installed here
    image_python: str  # the image's own Python ("3.9")

    @property
    def substitutes(self) -> list[str]:
        """Log lines for each package installed at another release than the image's."""
        return [f"{name} {self.shipped[name]} ({self.image} ships it) has no wheel for Python {PYTHON}; installing {pin}, the closest"
                for name, pin in self.pins.items() if name in self.shipped and not same_release(pin, self.shipped[name])]  # fmt: skip


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(Path(__file__).with_name("images.json").read_text())
    return document


def exclude_newer() -> str:
    """The date the manifest was resolved at: releases published later are not installed, so a build is the same later."""
    return str(_document()["exclude_newer"])


def lookup(image: ContainerBehaviour | None, python: str = PYTHON, platform: str = PLATFORM) -> tuple[ImageEnvironment | None, str]:
    """The environment of `image` on `python` and `platform`, or None and why there is none (for the run view's warning).

    >>> from sagelab.containers.images import identify
    >>> env, _ = lookup(identify("sagemaker-scikit-learn:1.2-1-cpu-py3"), "3.11", "linux-x86_64")
    >>> env.pins["scikit-learn"], env.shipped["pandas"]
    ('1.2.1', '1.1.3')
    >>> lookup(identify("sagemaker-scikit-learn:9.9-1-cpu-py3"), "3.11", "linux-x86_64")[1]
    'sagelab has no package list for sagemaker-scikit-learn:9.9-1 (it knows 0.20.0, 0.23-1, 1.0-1, 1.2-1, 1.4-2)'
    """
    if image is None:
        return None, "the image is not one sagelab knows"
    versions = _document()["images"].get(image.family)
    if versions is None:
        return None, f"sagelab has no package list for {image.family} images"
    entry = versions.get(image.version)
    if entry is None:
        return None, f"sagelab has no package list for {image.label} (it knows {', '.join(versions)})"
    pins = entry["installable"].get(python, {}).get(platform)
    if pins is None:
        where = [f"Python {py} on {', '.join(by_platform)}" for py, by_platform in entry["installable"].items() if by_platform]
        known = f" (sagelab has them for {'; '.join(where)})" if where else ""
        return None, f"{image.label} has no recorded releases for Python {python} on {platform}{known}"
    return ImageEnvironment(image.label, entry["framework"], dict(entry["packages"]), dict(pins), entry["python"]), ""


def coverage(python: str = PYTHON, platform: str = PLATFORM) -> tuple[list[str], list[str]]:
    """The image versions sagelab has an environment for on `python` and `platform`, and those it has none for."""
    covered: list[str] = []
    missing: list[str] = []
    for family, versions in _document()["images"].items():
        for version, entry in versions.items():
            (covered if entry["installable"].get(python, {}).get(platform) is not None else missing).append(f"{family}:{version}")
    return covered, missing


_FRAMEWORK_PACKAGES = {"sklearn": "scikit-learn", "xgboost": "xgboost", "pytorch": "torch", "tensorflow": "tensorflow",
                       "huggingface": "transformers", "spark": "pyspark"}  # fmt: skip


def shipped(image: ContainerBehaviour) -> dict[str, str]:
    """What `image` ships (name → version): its package list, else its framework at the tag's version, else nothing.

    >>> from sagelab.containers.images import identify
    >>> shipped(identify("pytorch-training:2.1.0-cpu-py310"))
    {'torch': '2.1.0'}
    """
    entry = _document()["images"].get(image.family, {}).get(image.version)
    if entry is not None:
        return dict(entry["packages"])
    package = _FRAMEWORK_PACKAGES.get(image.framework)
    if package is None or not image.version:
        return {}
    return {package: re.sub(r"-\d+$", "", image.version)}  # a container revision: 1.9-1 is scikit-learn 1.9


def closest(wanted: str, available: Iterable[str]) -> str | None:
    """The available version nearest `wanted`, or None when there is none.

    The newest of the versions `wanted` names (`2.1` names every 2.1.x); else the nearest patch
    of the same minor release; else the newest patch of the nearest minor release on either
    side, preferring one in the same major release, then the nearer, then the newer.

    >>> closest("0.23.2", ["1.1.3", "1.1.0", "1.2.1"])
    '1.1.3'
    >>> closest("1.2.1", ["1.2.0", "1.2.2", "1.3.0"])
    '1.2.2'
    """
    target = release(wanted)
    versions = sorted(set(available), key=release)
    named = [v for v in versions if release(v)[: len(target)] == target]
    if named:
        return named[-1]
    line = target[:2]
    same = [v for v in versions if release(v)[:2] == line]
    if same:
        patch = (target + (0, 0))[2]
        return min(same, key=lambda v: (abs((release(v) + (0, 0))[2] - patch), -(release(v) + (0, 0))[2]))
    lines = sorted({release(v)[:2] for v in versions})
    sides = [x for x in lines if x < line][-1:] + [x for x in lines if x > line][:1]
    if not sides:
        return None
    nearest = min(sides, key=lambda x: (x[0] != line[0], abs(x[1] - line[1]) if x[0] == line[0] else 0, x < line))
    return [v for v in versions if release(v)[:2] == nearest][-1]


def release(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with: 2.13.0+cpu → (2, 13, 0), 0.90 → (0, 90)."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match[0].split(".")) if match else ()


def same_release(found: str, wanted: str) -> bool:
    """Whether `found` is the release `wanted` names (1.2.1 is 1.2.1; 2.1.3 is 2.1)."""
    return release(found)[: len(release(wanted))] == release(wanted)
