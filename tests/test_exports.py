"""Public packages say what they export, and every name they export exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["sagelab.definition", "sagelab.store", "sagelab.engines.local"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for exported in module.__all__:
        assert hasattr(module, exported), exported


def test_core_import_stays_light() -> None:
    """Importing the definition format must not pull in the CLI, the engines or HTTP machinery."""
    import subprocess
    import sys

    code = "import sys, sagelab.definition; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    for heavy in ("typer", "rich", "http.server", "sagelab.engines", "sagelab.cli", "boto3"):
        assert heavy not in loaded, heavy
