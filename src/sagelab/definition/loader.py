"""Find a definition from what a user types: a JSON file, or `module:attribute` naming a pipeline object."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any, NamedTuple

from sagelab.definition.model import PipelineDefinition
from sagelab.definition.parser import parse, parse_file
from sagelab.errors import DefinitionError, Problem, SagelabError

_GENERIC_NAMES = {"pipeline", "definition"}


class Loaded(NamedTuple):
    """A definition ready to run: the parsed JSON, the pipeline's name, and the local
    code and data its S3 URIs stand for (S3 URI → file or bytes), which the engine uploads."""

    definition: PipelineDefinition
    name: str
    artifacts: dict[str, Path | bytes]


def load(spec: str, settings: Any = None) -> Loaded:
    """Load what `spec` names: a definition JSON file, or `module:attribute` /
    `path/to/file.py:attribute` naming an object with a `definition()` method (a sagelab
    or SageMaker SDK Pipeline), a definition dict, or a JSON string. A sagelab Pipeline is
    built for `settings` (a profile's bucket, region and role) when they are given.
    """
    path = Path(spec)
    if path.is_file():
        stem = path.name.split(".")[0]
        # examples/abalone/pipeline.json is the abalone pipeline
        return Loaded(parse_file(path), path.absolute().parent.name if stem in _GENERIC_NAMES else stem, {})
    module_name, colon, attribute = spec.rpartition(":")
    if not colon or not module_name or not attribute:
        raise DefinitionError(
            [Problem("", "no such file; name a definition JSON file or module:attribute (e.g. pipelines.abalone:pipeline)")],
            spec,
        )
    target = _attribute(_import(module_name, spec), attribute, spec)
    return load_object(target, attribute, settings, spec)


def load_object(target: Any, attribute: str = "pipeline", settings: Any = None, spec: str | None = None) -> Loaded:
    """A definition ready to run from a Python object: anything with `definition()` (a sagelab or SageMaker
    SDK Pipeline), a definition dict, or a JSON string. `attribute` names it when it has no `name`;
    `spec` is where it came from, for error messages."""
    spec = spec or attribute
    name = str(getattr(target, "name", None) or attribute)
    artifacts: dict[str, Path | bytes] = {}
    if settings is not None and callable(getattr(target, "with_settings", None)):
        target = target.with_settings(settings)
    if callable(getattr(target, "definition", None)):
        try:
            if callable(getattr(target, "artifacts", None)):
                artifacts = dict(target.artifacts())
            target = target.definition()
        except SagelabError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise DefinitionError([Problem("", f"{attribute}.definition() failed: {type(exc).__name__}: {exc}")], spec) from None
    if isinstance(target, (str, bytes, dict)):
        return Loaded(parse(target, source=spec), name, artifacts)
    problem = Problem("", f"{attribute} is a {type(target).__name__}; expected an object with definition(), a dict or a JSON string")
    raise DefinitionError([problem], spec)


def _import(module_name: str, spec: str) -> Any:
    try:
        if module_name.endswith(".py") or "/" in module_name:
            file = Path(module_name)
            if not file.is_file():
                raise DefinitionError([Problem("", f"{file} does not exist")], spec)
            module_spec = importlib.util.spec_from_file_location(file.stem, file)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.path.insert(0, str(file.parent.absolute()))
            module_spec.loader.exec_module(module)
            return module
        sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(module_name)
    except SagelabError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: report where it broke, without our frames
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{frame.filename}:{frame.lineno}"
        raise DefinitionError([Problem("", f"importing {module_name} failed at {where}: {type(exc).__name__}: {exc}")], spec) from None


def _attribute(module: Any, attribute: str, spec: str) -> Any:
    try:
        return getattr(module, attribute)
    except AttributeError:
        names = ", ".join(n for n in dir(module) if not n.startswith("_")) or "nothing"
        raise DefinitionError([Problem("", f"{module.__name__} has no attribute {attribute}; it defines: {names}")], spec) from None
