"""The environment of one SageMaker image: its packages at its releases, isolated from sagelab's own, built with uv.

A venv of sagelab's interpreter (no system site-packages) with the manifest's pins for this
Python, then the job's requirements.txt on top, as the container installs it. Besides what it
installs, a step sees only the container stand-ins sagelab puts on its PYTHONPATH and the
`sagelab` package itself (through a `.pth` file naming a folder that holds nothing else), which
the built-in algorithms run from. The hash covers the interpreter, the pins, the manifest's
resolution date, the requirements' text and, when they name local files, the code folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import sagelab
from sagelab.containers.environments import cache, uv
from sagelab.containers.environments.cache import Purpose, StepLog
from sagelab.containers.environments.manifest import PYTHON, ImageEnvironment, exclude_newer
from sagelab.containers.environments.requirements import Requirements, content_hash, install_folder

__all__ = ["ensure", "installed", "key"]

FORMAT = "image-3"  # part of every hash: a change in how image environments are built makes new ones
# Every image has setuptools from its base (65.x in the 1.0-1 and 1.2-1 images), and packages of
# their era import its pkg_resources (xgboost 1.5 does), which setuptools 81 removed.
BASE = ("setuptools<81",)
_RUNTIME = "sagelab-runtime"  # the folder in an environment that holds only a link to the sagelab package


def key(spec: ImageEnvironment, requirements: Requirements | None, extras: tuple[str, ...] = ()) -> str:
    """The content hash an environment for `spec` (with `requirements` and `extras`) is published under."""
    text = requirements.text if requirements else None
    content = content_hash(requirements) if requirements and requirements.local else None
    identity = [FORMAT, sys.executable, sys.version, str(Path(sagelab.__file__).parent), spec.pins, exclude_newer(), text, content,
                *extras]  # fmt: skip
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def ensure(step: StepLog, spec: ImageEnvironment, requirements: Requirements | None, purpose: Purpose,
           extras: tuple[str, ...] = ()) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """The environment of `spec` plus `requirements` (and `extras`, sagelab's model server): reused, or built now.

    Returns its folder and manifest.

    Raises:
        NetworkUnavailable: it is not built and no index can be reached.
        ExecutionError: uv could not install the pins or requirements.txt (its last lines), or was interrupted.
    """
    what = spec.image + (" with requirements.txt" if requirements else "") + (" and sagelab's model server" if extras else "")

    def build(folder: Path) -> dict[str, Any]:
        step.log(f"building the environment of {what} into {folder.parent / key(spec, requirements, extras)} (once; later steps reuse it)")
        for note in spec.substitutes:
            step.log(note)
        uv.run(step, ["venv", "--quiet", "--seed", "--python", sys.executable, str(folder)], folder, f"the environment of {spec.image}", purpose)
        python = str(folder / "bin" / "python")
        _link_sagelab(folder)
        pins = [f"{name}=={version}" for name, version in spec.pins.items()] + list(BASE) + list(extras)
        # Compiled now, as pip compiles what it installs: every step starts on bytecode (`import pandas` 0.4 s, not 1.4 s).
        install = ["pip", "install", "--python", python, "--compile-bytecode", *uv.index_options()]
        uv.run(step, [*install, "--only-binary", ":all:", "--exclude-newer", exclude_newer(), *pins], folder, f"the packages of {spec.image}", purpose)
        if requirements is not None:
            with install_folder(requirements) as where:
                uv.run(step, [*install, "-r", "requirements.txt"], where, "requirements.txt", purpose)
        return {"python": sys.executable, "image": spec.image, "packages": installed(folder), "notes": spec.substitutes}

    return cache.ensure(step, key(spec, requirements, extras), what, build)


def modules(spec: ImageEnvironment) -> set[str] | None:
    """The top-level modules a step on `spec` can import from its built environment; None when it is not built yet."""
    site = cache.cache_dir() / key(spec, None) / "lib" / f"python{PYTHON}" / "site-packages"
    if not site.is_dir():
        return None
    found = set()
    for entry in site.iterdir():
        if entry.is_dir() and entry.name != "__pycache__" and not entry.name.endswith((".dist-info", ".egg-info", ".data")):
            found.add(entry.name)
        elif entry.suffix in (".py", ".so"):
            found.add(entry.name.split(".", 1)[0])
    return found


def installed(env: Path) -> dict[str, str]:
    """`name → version` of every distribution in an environment's site-packages (names lower-case, `-` for `_`)."""
    from importlib import metadata  # here: it costs every run ~13 ms to import

    site = env / "lib" / f"python{PYTHON}" / "site-packages"
    found = {}
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if name:
            found[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(found.items()))


def _link_sagelab(env: Path) -> None:
    """Make `import sagelab` work in the environment, and nothing else of sagelab's site-packages."""
    runtime = env / _RUNTIME
    runtime.mkdir()
    (runtime / "sagelab").symlink_to(Path(sagelab.__file__).parent)
    site = env / "lib" / f"python{PYTHON}" / "site-packages"
    (site / "_sagelab_runtime.pth").write_text(f"{runtime}\n")
