"""Every public name of sagelab.pipeline has a docstring, and the generated reference is current."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import sagelab.pipeline as package

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gen_api_reference.py"


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_api_reference", TOOL)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_every_public_name_has_a_docstring() -> None:
    tool = _tool()
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for member, value in tool.members(obj):
                doc = inspect.getdoc(value.fget) if isinstance(value, property) else inspect.getdoc(getattr(obj, member))
                if not doc:
                    missing.append(f"{name}.{member}")
    assert missing == []


def test_reference_is_current() -> None:
    tool = _tool()
    assert tool.OUT.read_text() == tool.render(), "regenerate it: python tools/gen_api_reference.py"
