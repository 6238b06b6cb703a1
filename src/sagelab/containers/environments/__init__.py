"""The Python environment a step runs on: its image's, built once and cached, or sagelab's own.

Each SageMaker image ships its own packages (scikit-learn 0.23 with pandas 1.1, boto3 and
requests; xgboost 1.0 with its numpy, ...), and scripts written for it rely on them. With
`environment = "image"` (the default) a step on an image sagelab has a package list for runs
in that image's environment: those packages at the image's releases, or the closest ones
installable on this Python (`manifest`, shipped as images.json), isolated from sagelab's own
site-packages and built with uv (`image`), with the job's requirements.txt installed on top
as the container installs it. A step on an image sagelab has no list for, and every step with
`environment = "host"`, runs on sagelab's own packages (`host`), plus its requirements.txt in
a cached venv; an image with no list says so in the run view. Either way the step runs on a
venv of its own over that environment (`layer`), so its own `pip install` changes only the job.
Environments are content-addressed, built atomically and listed or deleted by `sagelab envs`
(`cache`). Every step records the releases it ran with against its image's (`drift`).

See docs/containers.md, "Environments".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.containers.contract import job_path
from sagelab.containers.environments import drift, manifest
from sagelab.containers.environments.cache import SERVER, STEP, CachedEnvironment, Purpose, StepLog, cache_dir, cached, keys, remove
from sagelab.containers.environments.drift import PROPERTY, describe
from sagelab.containers.environments.manifest import closest
from sagelab.containers.images import ContainerBehaviour

if TYPE_CHECKING:
    from sagelab.containers.environments.requirements import Requirements

__all__ = ["MODES", "PROPERTY", "SERVER", "STEP", "CachedEnvironment", "Purpose", "Runtime", "StepLog", "cache_dir", "cached", "closest",
           "describe", "keys", "plan", "prepare", "processing_code", "remove"]  # fmt: skip

MODES = ("image", "host")


@dataclass(frozen=True)
class Runtime:
    """The interpreter a step runs on (None: sagelab's own) and what it ran with against its image."""

    python: str | None = None
    versions: dict[str, Any] | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """What the runner adds to the step's properties."""
        return {PROPERTY: self.versions} if self.versions else {}


@dataclass(frozen=True)
class Plan:
    """Which environment a step gets, decided before anything is built."""

    spec: manifest.ImageEnvironment | None  # the image's environment, or None for sagelab's own
    requirements: Requirements | None
    warning: str  # why a step in image mode runs on sagelab's packages, if it does


def plan(image_behaviour: ContainerBehaviour | None, code: Path | None, *, mode: str, builtin: bool = False) -> Plan:
    """The environment a step on `image_behaviour` with the code in `code` runs on, in `mode` ("image" or "host")."""
    from sagelab.containers.environments import requirements  # here: building parts (tarfile, hashing) that reading records never needs

    found = None if builtin or code is None else requirements.find(code)
    if mode == "host":
        return Plan(None, found, "")
    spec, why = manifest.lookup(image_behaviour)
    if spec is None:
        return Plan(None, found, f"runs on sagelab's own packages: {why}")
    return Plan(spec, found, "")


def prepare(step: StepLog, image_behaviour: ContainerBehaviour | None, code: Path | None, *, mode: str = "image", builtin: bool = False,
            purpose: Purpose = STEP, job_folder: Path | None = None, serving: bool = False) -> Runtime:  # fmt: skip
    """Build or reuse the environment a step needs, make the job's own layer over it, and log its drift.

    Args:
        step: the step's log.
        image_behaviour: what `images.identify` says the step's image is.
        code: the folder holding the job's code (requirements.txt, or a sourcedir.tar.gz with one).
        mode: "image" (the image's packages) or "host" (sagelab's); [tool.sagelab] environment.
        builtin: the step runs a built-in algorithm, which installs no requirements.txt.
        purpose: what the environment is for (a step, a model server), for the words of a failure.
        job_folder: where to make the job's own venv (its `pip install` goes there); None: none.
        serving: the environment runs sagelab's model server (an endpoint, batch transform) beside the model's code.

    Raises:
        ExecutionError: the environment cannot be built (uv's or pip's last lines, or no network),
            requirements.txt asks for an editable local install, sourcedir.tar.gz cannot be unpacked.
    """
    from sagelab.containers.environments import host, image, layer

    chosen = plan(image_behaviour, code, mode=mode, builtin=builtin)
    if chosen.spec is not None:
        env, record = image.ensure(step, chosen.spec, chosen.requirements, purpose, _server_packages() if serving else ())
        python: str | None = str(env / "bin" / "python")
        ran: Mapping[str, str] = record.get("packages", {})
        where = "image"
    else:
        env_path = host.ensure(step, chosen.requirements, purpose) if chosen.requirements is not None else None
        python = str(env_path / "bin" / "python") if env_path else None
        names = list(manifest.shipped(image_behaviour)) if image_behaviour else []
        ran = drift.host_versions(names, str(env_path / "lib" / f"python{manifest.PYTHON}" / "site-packages") if env_path else None)
        where = "sagelab" if env_path is None else str(env_path)
    if chosen.warning:
        step.log(f"warning: this step {chosen.warning}")
    versions = drift.report(image_behaviour, ran, where, chosen.warning)
    if versions is not None:
        step.log(describe(versions))
    if job_folder is not None:
        python = layer.job_layer(job_folder, python)
    return Runtime(python, versions)


def _server_packages() -> tuple[str, ...]:
    """What sagelab's model server needs beyond the image's packages, at the releases sagelab itself runs with."""
    from importlib import metadata

    found = []
    for name in ("uvicorn", "httptools", "uvloop"):
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue  # uvloop is optional (not on Windows), the others come with sagelab[serve]
    return tuple(found)


def processing_code(request: Mapping[str, Any], root: Path) -> Path | None:
    """The folder of a processing job's `code` input (the SDK's name for it), inside the job folder."""
    for item in request.get("ProcessingInputs", []):
        if item.get("InputName") == "code" and "S3Input" in item:
            try:
                return job_path(root, item["S3Input"]["LocalPath"])
            except ValueError:
                return None
    return None
