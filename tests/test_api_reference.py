"""Every public name of sagelab.pipeline and sagelab.api has a docstring, and the generated references are current."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gen_api_reference.py"


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_api_reference", TOOL)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("module", ["sagelab.pipeline", "sagelab.api"])
def test_every_public_name_has_a_docstring(module: str) -> None:
    tool = _tool()
    package = importlib.import_module(module)
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


@pytest.mark.parametrize("module", ["sagelab.pipeline", "sagelab.api"])
def test_reference_is_current(module: str) -> None:
    tool = _tool()
    assert tool.PAGES[module].read_text() == tool.render(module), "regenerate it: python tools/gen_api_reference.py"
