"""From a registered model version (or a recorded model) to local model files and a running endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.errors import EndpointError, StoreError
from sagelab.registry import ModelPackage, Registry
from sagelab.serving.endpoints import EndpointInfo, Hosting
from sagelab.store import LocalStore, ObjectStore


def _cached(store: ObjectStore, settings: Settings, uri: str) -> Path:
    """Download `uri` once into the project's model cache (keys there are named by content)."""
    target = settings.state_dir / "models" / hashlib.sha256(uri.encode()).hexdigest()[:16] / uri.rstrip("/").rsplit("/", 1)[-1]
    if not target.exists():
        try:
            store.download_file(uri, target)
        except StoreError as exc:
            raise EndpointError(f"cannot fetch {uri}: {exc}") from None
    return target


def materialize(store: ObjectStore, settings: Settings, container: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The local model.tar.gz of a container, and its environment with S3 code made local."""
    if not container.get("ModelDataUrl"):
        raise EndpointError("the model has no ModelDataUrl; local serving needs model data")
    model = _cached(store, settings, str(container["ModelDataUrl"]))
    env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit.startswith("s3://"):
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(_cached(store, settings, submit))
    return model, env


def open_registry(settings: Settings) -> Registry:
    return Registry(settings.state_dir / "registry.db", settings.region, settings.account)


def package_model(settings: Settings, reference: str) -> tuple[ModelPackage, Path, dict[str, str]]:
    """A registered version (`GROUP/VERSION`, or `GROUP` for its latest Approved) ready to serve."""
    registry = open_registry(settings)
    try:
        package = registry.resolve(reference)
    finally:
        registry.close()
    model, env = materialize(LocalStore(settings.store), settings, package.container)
    return package, model, env


def deploy_package(settings: Settings, reference: str, name: str, port: int = 0) -> tuple[ModelPackage, EndpointInfo]:
    """Serve a registered version on a named local endpoint (created, or updated in place)."""
    package, model, env = package_model(settings, reference)
    if package.status == "Rejected":
        raise EndpointError(f"{package.ref} is Rejected; approve it or deploy another version")
    hosting = Hosting(settings.state_dir, settings.region, settings.account)
    try:
        return package, hosting.deploy(name, model, label=package.ref, environment=env, port=port)
    finally:
        hosting.close()
