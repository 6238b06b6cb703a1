"""From a registered model version (or a recorded model) to local model files and a running endpoint.

A container's image decides which default handlers serve it (`sagelab.containers.images`):
its framework and image go to the server in SAGELAB_SERVING_FRAMEWORK and SAGELAB_SERVING_IMAGE,
so a model serves exactly as the image's container would. A model of several containers (the
SDK's PipelineModel) becomes a pipeline model description that the server runs container by
container (`sagelab.serving.pipeline_model`).

A container is served on its image's environment (the packages it trained with) when sagelab
has a package list for the image, and with its code's requirements.txt (the model archive's
`code/`, or the SAGEMAKER_SUBMIT_DIRECTORY sourcedir) installed, as the framework containers
pip-install it when their model server starts: `with_environments` builds it (once per content
hash, `sagelab.containers.environments`) and names its interpreter in the container's
environment (SAGELAB_SERVING_PYTHON), which the server's launcher starts on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagelab.config import Settings
from sagelab.containers import environments, frameworks, images
from sagelab.containers.contract import api_string
from sagelab.containers.environments import StepLog
from sagelab.containers.images import identify
from sagelab.engines.local.inputs import TransferLog
from sagelab.errors import EndpointError, ExecutionError, RegistryError, StoreError
from sagelab.processes import remove_abandoned
from sagelab.registry import ModelPackage, Registry
from sagelab.serving.archive import requirements_folder
from sagelab.serving.capture import capture_environment, quick_config
from sagelab.serving.endpoints import EndpointInfo, Hosting
from sagelab.serving.pipeline_model import ContainerModel, PipelineModel
from sagelab.serving.protocol import FRAMEWORK_ENV, FRAMEWORKS, IMAGE_ENV, PYTHON_ENV, WORKERS_ENV
from sagelab.store import LocalStore, ObjectStore

_SERVED = frozenset(FRAMEWORKS) - {"auto"}  # the frameworks whose inference containers sagelab emulates


@dataclass(frozen=True)
class LocalContainer:
    """One container made local: its model data on this machine and its environment."""

    hostname: str
    image: str
    model_data_url: str
    model: Path  # the model.tar.gz (or an empty folder when the container has no model data)
    environment: dict[str, str]


def _cached(store: ObjectStore, settings: Settings, uri: str, log: StepLog | None) -> Path:
    """Download `uri` once into the project's model cache, its progress in `log`.

    The cache is keyed by the object's URI, ETag and size, so a model written again under the same
    URI is fetched again; a download lands under a temporary name and is renamed when complete, so
    a killed deploy leaves nothing a later one would take for the model.
    """
    try:
        info = store.head(uri)
    except StoreError as exc:
        raise EndpointError(f"cannot fetch {uri}: {exc}") from None
    version = hashlib.sha256(f"{uri}\0{info.etag}\0{info.size}".encode()).hexdigest()[:16]
    target = settings.state_dir / "models" / version / uri.rstrip("/").rsplit("/", 1)[-1]
    if target.exists():
        return target
    remove_abandoned(target)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    progress = TransferLog(log, f"fetching {uri}") if log is not None else None
    try:
        store.download_file(uri, partial, progress)
        if partial.stat().st_size != info.size:
            raise StoreError(f"the download ended after {partial.stat().st_size} of {info.size} bytes (the object changed meanwhile?); deploy again")
        os.replace(partial, target)
    except StoreError as exc:
        raise EndpointError(f"cannot fetch {uri}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    if progress is not None:
        progress.log.log(progress.done(1))
    return target


def serving_environment(container: dict[str, Any], where: str = "the model") -> dict[str, str]:
    """The container's Environment plus the framework its image implies, for the default handlers.

    Raises:
        EndpointError: the image is a SageMaker inference image whose container sagelab does not emulate.
    """
    env = {str(k): api_string(v) for k, v in (container.get("Environment") or {}).items()}
    image = str(container.get("Image") or "")
    behaviour = identify(image) if image else None
    if behaviour is None or FRAMEWORK_ENV in env:
        return env  # a custom image: the server picks defaults from the model's files
    if behaviour.framework not in _SERVED:
        raise EndpointError(f"{where}: {behaviour.label} is a {behaviour.framework} image, whose inference container "
                            f"sagelab does not emulate; local serving knows the {', '.join(sorted(_SERVED))} containers "
                            "(or use your own image with an inference.py)")  # fmt: skip
    return {**frameworks.serving_environment(behaviour, env), FRAMEWORK_ENV: behaviour.framework, IMAGE_ENV: image}


def materialize(store: ObjectStore, settings: Settings, container: dict[str, Any], hostname: str = "container-1",
                where: str = "the model", log: StepLog | None = None) -> LocalContainer:  # fmt: skip
    """A container's model data downloaded, and its environment with S3 code made local."""
    env = serving_environment(container, where)
    url = str(container.get("ModelDataUrl") or "")
    if url:
        model = _cached(store, settings, url, log)
    else:  # SageMaker allows a container without model data, e.g. code-only pre- or post-processing
        model = settings.state_dir / "models" / "empty"
        model.mkdir(parents=True, exist_ok=True)
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit.startswith("s3://"):
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(_cached(store, settings, submit, log))
    return LocalContainer(hostname, str(container.get("Image") or ""), url, model, env)


_HOSTNAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # CreateModel's ContainerHostname pattern


def materialize_all(store: ObjectStore, settings: Settings, containers: list[dict[str, Any]], log: StepLog | None = None) -> list[LocalContainer]:
    """Every container of a model made local, named by ContainerHostname (else container-1, container-2, ...); downloads logged in `log`."""
    if not containers:
        raise EndpointError("the model has no containers")
    hostnames = [str(container.get("ContainerHostname") or f"container-{index}") for index, container in enumerate(containers, 1)]
    places = ["the model"] if len(containers) == 1 else [f"container {i} ({name})" for i, name in enumerate(hostnames, 1)]
    for index, (hostname, where) in enumerate(zip(hostnames, places)):  # checked before anything is fetched
        if not _HOSTNAME.fullmatch(hostname):  # it also names the container's folder here
            raise EndpointError(f"{where}: ContainerHostname {hostname!r} is not a valid hostname; SageMaker takes "
                                "letters, digits and hyphens, starting with a letter or digit, at most 63 characters")  # fmt: skip
        if hostname in hostnames[:index]:
            raise EndpointError(f"{where}: ContainerHostname {hostname!r} is used by two containers; give each its own")
    return [materialize(store, settings, c, hostname, where, log) for c, hostname, where in zip(containers, hostnames, places)]


class EndpointLog:
    """An endpoint's log, where building its environment writes (pip's output too); `also` gets sagelab's lines as well."""

    def __init__(self, log_path: Path, also: StepLog | None = None) -> None:
        self.log_path, self.also = log_path, also

    def log(self, message: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"[sagelab] {message}\n")
        if self.also is not None:
            self.also.log(message)


class ConsoleLog:
    """A build started from the terminal (`sagelab serve` in the foreground, `sagelab envs prepare`): its lines on stderr."""

    def __init__(self) -> None:
        self.log_path = Path("/dev/stderr")
        try:
            with open(self.log_path, "a"):
                pass
        except OSError:  # stderr is not something a path can open (a socket): pip's output is dropped
            self.log_path = Path(os.devnull)

    def log(self, message: str) -> None:
        print(f"[sagelab] {message}", file=sys.stderr, flush=True)


def with_environments(local: list[LocalContainer], log: StepLog, models: list[Path] | None = None,
                      *, deploy: bool = True, mode: str = "image") -> list[LocalContainer]:  # fmt: skip
    """The containers, each on its image's environment (with sagelab's model server) and its requirements.txt installed.

    As on SageMaker, where the inference container of a framework serves with the packages it
    trained with: a model pickled by scikit-learn 1.2.1 is loaded by scikit-learn 1.2.1.

    Args:
        local: the model's containers.
        log: where "installing requirements.txt ..." or "reusing environment ..." and the installer's output go.
        models: each container's model folder when already extracted (batch transform), else its model data.
        deploy: an endpoint or a server is starting (else a transform job), for the words of a failed build.
        mode: "image" (each image's environment) or "host" (sagelab's packages), [tool.sagelab] environment.

    Raises:
        EndpointError: an environment could not be built (the installer's last lines; no environment kept).
    """
    prepared = []
    for index, container in enumerate(local):
        code = requirements_folder(models[index] if models else container.model, container.environment)
        image = images.identify(container.image)
        on_image = environments.plan(image, None, mode=mode).spec is not None
        if code is None and not on_image:
            prepared.append(container)
            continue
        where = "the model" if len(local) == 1 else f"container {index + 1} ({container.hostname})"
        if code is not None:
            log.log(f"{where}: its code has a requirements.txt, which its container pip-installs when the model server starts")
        try:
            runtime = environments.prepare(log, image, code, mode=mode, purpose=environments.SERVER if deploy else environments.STEP,
                                           serving=True)  # fmt: skip
        except ExecutionError as exc:
            raise EndpointError(f"{where}: {exc}") from None
        python = runtime.python or sys.executable  # prepare builds an environment for every requirements.txt
        prepared.append(dataclasses.replace(container, environment={**container.environment, PYTHON_ENV: python}))
    return prepared


def served_model(settings: Settings, local: list[LocalContainer], mode: str = "Serial") -> tuple[Path, dict[str, str]]:
    """What the server is given: a single container's model and environment, or a pipeline model's description."""
    if len(local) == 1 and mode == "Serial":
        return local[0].model, local[0].environment
    pipeline = PipelineModel(tuple(ContainerModel(c.hostname, str(c.model), c.environment, c.image) for c in local), mode)
    document = json.dumps([pipeline.mode, [(c.hostname, c.model, c.environment, c.image) for c in pipeline.containers]])
    name = hashlib.sha256(document.encode()).hexdigest()[:16]
    return pipeline.save(settings.state_dir / "models" / "pipelines" / f"{name}.json"), {}


def open_registry(settings: Settings) -> Registry:
    return Registry(settings.state_dir / "registry.db", settings.region, settings.account)


def expand_packages(settings: Settings, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Containers with a ModelPackageName (a model made from a registered version) replaced by that version's containers."""
    if not any(c.get("ModelPackageName") for c in containers):
        return containers
    registry = open_registry(settings)
    try:
        expanded: list[dict[str, Any]] = []
        for container in containers:
            arn = container.get("ModelPackageName")
            if not arn:
                expanded.append(container)
                continue
            try:
                package = registry.by_arn(str(arn))
            except RegistryError as exc:
                raise EndpointError(f"ModelPackageName {arn}: {exc}") from None
            extra = container.get("Environment") or {}
            expanded += [{**c, "Environment": {**(c.get("Environment") or {}), **extra}} for c in package.containers]
        return expanded
    finally:
        registry.close()


def _resolve(settings: Settings, reference: str) -> ModelPackage:
    registry = open_registry(settings)
    try:
        return registry.resolve(reference)
    finally:
        registry.close()


def _serve_package(settings: Settings, package: ModelPackage, log: StepLog) -> tuple[Path, dict[str, str]]:
    try:
        local = materialize_all(LocalStore(settings.store), settings, package.containers)
        return served_model(settings, with_environments(local, log, mode=settings.environment))
    except EndpointError as exc:
        raise EndpointError(f"{package.ref}: {exc}") from None


def package_model(settings: Settings, reference: str, log: StepLog | None = None) -> tuple[ModelPackage, Path, dict[str, str]]:
    """A registered version (`GROUP/VERSION`, or `GROUP` for its latest Approved) ready to serve.

    Its requirements.txt environments are built (or reused) now, logging to `log` (default: stderr).
    """
    package = _resolve(settings, reference)
    model, env = _serve_package(settings, package, log or ConsoleLog())
    return package, model, env


def deploy_package(settings: Settings, reference: str, name: str, port: int = 0, capture: float | None = None) -> tuple[ModelPackage, EndpointInfo]:
    """Serve a registered version on a named local endpoint (created, or updated in place); `capture`: the percentage of
    requests captured, with their answers, under s3://BUCKET/datacapture/NAME/AllTraffic/."""
    package = _resolve(settings, reference)
    if package.status == "Rejected":
        raise EndpointError(f"{package.ref} is Rejected; approve it or deploy another version")
    hosting = Hosting(settings.state_dir, settings.region, settings.account)
    try:
        model, env = _serve_package(settings, package, EndpointLog(hosting.log_path(name)))
        if capture is not None:
            env = {**env, **data_capture(settings, LocalStore(settings.store), quick_config(capture, f"s3://{settings.default_bucket}/datacapture"), name)}
        return package, hosting.deploy(name, model, label=package.ref, environment=env, port=port, log_max_bytes=settings.endpoint_log_bytes)
    finally:
        hosting.close()


def data_capture(settings: Settings, store: ObjectStore, config: dict[str, Any] | None, endpoint: str, variant: str = "AllTraffic") -> dict[str, str]:
    """The server environment for an endpoint config's DataCaptureConfig: records go to the local store's folder for its DestinationS3Uri."""
    if not config or config.get("EnableCapture") is False:
        return {}
    if not isinstance(store, LocalStore):
        raise EndpointError("DataCaptureConfig: a local endpoint captures into the project's local store; this run's store is S3 "
                            "(run without --store s3 to capture)")  # fmt: skip
    destination = str(config.get("DestinationS3Uri") or "")
    if not destination.startswith("s3://"):
        raise EndpointError(f"DataCaptureConfig DestinationS3Uri must be an s3:// URI; got {destination!r}")
    return capture_environment(config, endpoint, variant, store.path_of(destination.rstrip("/") + "/"))


def startup_timeout(variant: dict[str, Any]) -> float:
    """How long a variant's model may take to answer /ping: its ContainerStartupHealthCheckTimeoutInSeconds, else 120 s here."""
    return float(variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or 120)


def recorded_containers(settings: Settings, hosting: Hosting, model_name: str) -> tuple[list[dict[str, Any]], str]:
    """The containers of a recorded model (PrimaryContainer, or Containers in order; registered versions expanded) and its mode.

    Raises:
        EndpointError: no such model, or one without containers or with another InferenceExecutionConfig mode.
    """
    model = hosting.describe("model", model_name)
    containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else list(model.get("Containers") or [])
    if not containers:
        raise EndpointError(f"model {model_name} has neither a PrimaryContainer nor Containers")
    mode = str((model.get("InferenceExecutionConfig") or {}).get("Mode", "Serial"))
    if mode not in ("Serial", "Direct"):
        raise EndpointError(f"model {model_name}: InferenceExecutionConfig Mode must be Serial or Direct, got {mode!r}")
    try:
        return expand_packages(settings, [dict(c) for c in containers]), mode
    except EndpointError as exc:
        raise EndpointError(f"model {model_name}: {exc}") from None


def deploy_config(settings: Settings, store: ObjectStore, name: str, config_name: str, log: StepLog | None = None) -> EndpointInfo:
    """Start endpoint `name` serving a recorded endpoint config's production variants, or move it there without downtime.

    Each variant gets a server of its own (the first on the endpoint's own port); requests are split by
    their InitialVariantWeight. A variant's model data is fetched from `store` and its environment built
    (both logged in the endpoint's log, and in `log` too); the endpoint's model label is the first
    variant's ModelName. A ServerlessConfig variant's server is held to its MemorySizeInMB, with one worker unless
    its environment says how many; an AsyncInferenceConfig is kept for InvokeEndpointAsync. A DataCaptureConfig
    captures each variant's traffic under its name.

    Raises:
        EndpointError: the config or a model is missing or cannot be served, or a server did not start
            (an endpoint being updated keeps serving its previous model).
    """
    hosting = Hosting(settings.state_dir, settings.region, settings.account)
    try:
        config = hosting.describe("endpoint-config", config_name)
        variants = config.get("ProductionVariants") or []
        if not variants or not all(v.get("ModelName") for v in variants):
            raise EndpointError(f"endpoint config {config_name} has a production variant without a ModelName (or none)")
        endpoint_log = EndpointLog(hosting.log_path(name), also=log)
        info = None
        for index, variant in enumerate(variants):
            model_name, variant_name = str(variant["ModelName"]), str(variant.get("VariantName") or "AllTraffic")
            containers, mode = recorded_containers(settings, hosting, model_name)
            local = with_environments(materialize_all(store, settings, containers, endpoint_log), endpoint_log, mode=settings.environment)
            model, env = served_model(settings, local, mode)
            env = {**env, **data_capture(settings, store, config.get("DataCaptureConfig"), name, variant_name)}
            if variant.get("ServerlessConfig"):  # its compute is sized by its memory, not by this machine's cores
                env.setdefault(WORKERS_ENV, "1")
            served = hosting.deploy(name, model, label=model_name, environment=env, log_max_bytes=settings.endpoint_log_bytes,
                                    timeout=startup_timeout(variant), variant=variant_name if index else None,
                                    memory_limit_mb=(variant.get("ServerlessConfig") or {}).get("MemorySizeInMB"))  # fmt: skip
            info = info or served
        hosting.set_variants(name, [(str(v.get("VariantName") or "AllTraffic"), float(v.get("InitialVariantWeight", 1.0))) for v in variants])
    finally:
        hosting.close()
    assert info is not None
    model_name = str(variants[0]["ModelName"])
    if info.failure_reason:  # the same model label as before: the new server failed and the old one still serves
        raise EndpointError(f"endpoint {name} did not start {model_name}: {info.failure_reason}; see {hosting.log_path(name)}")
    return info
