"""Load a pipeline for a profile: the one way the front ends turn what a user names into a `Loaded` definition."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelab.config import Settings
    from sagelab.definition.loader import Loaded
    from sagelab.store import ObjectStore


def load_pipeline(pipeline: Any, settings: Settings, *, name: str | None = None, store: ObjectStore | None = None) -> Loaded:
    """A definition file, `module:attribute`, a pipeline object, a dict or a JSON string, built for `settings`.

    For a run on this machine whose store is the project's folder (`store`, default the profile's),
    the pipeline's code builds its definition against `offline_aws`: a SageMaker SDK `Pipeline`'s
    uploads land in the store and nothing reaches AWS.
    """
    from sagelab.definition.loader import load, load_object

    named = isinstance(pipeline, str) and not pipeline.lstrip().startswith("{")
    with _building(settings, store) if not (named and Path(pipeline).is_file()) else nullcontext():
        loaded = load(pipeline, settings) if named else load_object(pipeline, name or "pipeline", settings)
    return loaded._replace(name=name) if name else loaded


def _building(settings: Settings, store: ObjectStore | None) -> AbstractContextManager[None]:
    from sagelab.store import LocalStore

    if settings.engine != "local" or (store is None and settings.s3_endpoint_url) or (store is not None and not isinstance(store, LocalStore)):
        return nullcontext()
    from sagelab.engines.local.offline_aws import offline_aws

    return offline_aws(settings, store if isinstance(store, LocalStore) else LocalStore(settings.store))
