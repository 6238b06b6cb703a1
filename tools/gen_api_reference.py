"""Write the API references in docs/reference/ (sagelab.pipeline, sagelab.api) from the docstrings.

    python tools/gen_api_reference.py          (tests/test_api_reference.py checks they are current)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"
PAGES = {"sagelab.pipeline": REFERENCE / "pipeline.md", "sagelab.api": REFERENCE / "api.md"}


def members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties a class defines itself, in source order."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (property, classmethod, staticmethod)) or inspect.isfunction(value):
            yield name, value


def signature(name: str, value: Any) -> str:
    function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
    if isinstance(value, property) or not callable(function):
        return name
    try:
        return f"{name}{inspect.signature(function)}"
    except (TypeError, ValueError):
        return name


def render(module: str) -> str:
    import importlib

    package = importlib.import_module(module)
    lines = [f"# {module} — API reference", "", "Generated from the docstrings by `tools/gen_api_reference.py`.", ""]
    lines += [inspect.getdoc(package) or "", ""]
    for name in package.__all__:
        obj = getattr(package, name)
        kind = "class" if inspect.isclass(obj) else "function"
        lines += [f"## `{signature(name, obj) if kind == 'function' else name}`", "", f"*{kind}*", "", inspect.getdoc(obj) or "", ""]
        if inspect.isclass(obj):
            for member, value in members(obj):
                target = value.fget if isinstance(value, property) else value
                doc = inspect.getdoc(getattr(obj, member)) if not isinstance(value, property) else inspect.getdoc(target)
                lines += [f"### `{name}.{signature(member, value)}`", "", doc or "", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for module, page in PAGES.items():
        page.write_text(render(module))
        print(f"wrote {page}")
