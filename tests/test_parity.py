"""sagelab.pipeline compiles the same definition as the official SageMaker SDK v2.

tests/fixtures/parity/pipelines.py writes two pipelines with sagelab; generate_sdk_v2.py
writes the same pipelines with the SDK v2 and saved its definitions in sdk_v2/. Only the
differences listed in `normalize` are tolerated; anything else fails with a diff.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PARITY = Path(__file__).parent / "fixtures" / "parity"
REGENERATE = "/work/venvs/sdk2/bin/python tests/fixtures/parity/generate_sdk_v2.py"
CASES = [("train_evaluate", "TrainEvaluate"), ("branches", "Branches")]

# `s3://<bucket>/<pipeline>/code/<sha256>/<file>`: both name code by a content hash, but the
# SDK hashes other bytes (its own tarball, the path it was given), so only the segment differs.
CODE_HASH = re.compile(r"/code/[0-9a-f]{64}/")
# Training keys the SDK v2 adds by default that change neither what runs locally nor what
# SageMaker does by default (debugger hook with no collections, the default system profiler).
SDK_ONLY_TRAINING_KEYS = ("DebugHookConfig", "ProfilerConfig")


def _load_pipelines() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sagelab_parity_pipelines", PARITY / "pipelines.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step, condition branches included."""
    found = []
    for step in steps:
        found.append(step)
        if step.get("Type") == "Condition":
            found += _steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))
    return found


def _unhash(value: Any) -> Any:
    if isinstance(value, str):
        return CODE_HASH.sub("/code/<sha256>/", value)
    if isinstance(value, dict):
        return {key: _unhash(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unhash(item) for item in value]
    return value


def normalize(document: dict[str, Any], *, sdk: bool) -> dict[str, Any]:
    """Remove exactly the documented, intended differences (key order: compared as dicts)."""
    document = _unhash(copy.deepcopy(document))  # code hashes differ by design, see CODE_HASH
    if sdk:
        for step in _steps(document["Steps"]):
            if step.get("Type") == "Training":
                for key in SDK_ONLY_TRAINING_KEYS:  # SDK-only defaults, see SDK_ONLY_TRAINING_KEYS
                    step["Arguments"].pop(key, None)
    return document


def _diff(sagelab: dict[str, Any], sdk: dict[str, Any]) -> str:
    ours = json.dumps(sagelab, indent=2, sort_keys=True).splitlines()
    theirs = json.dumps(sdk, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(ours, theirs, "sagelab (normalized)", "sdk v2 (normalized)", lineterm="", n=3))


@pytest.mark.parametrize(("function", "name"), CASES, ids=[name for _, name in CASES])
def test_sagelab_compiles_what_the_sdk_v2_does(function: str, name: str) -> None:
    fixture = PARITY / "sdk_v2" / f"{name}.json"
    assert fixture.is_file(), f"{fixture} is missing; regenerate it with: {REGENERATE}"
    sdk = normalize(json.loads(fixture.read_text()), sdk=True)
    pipeline = getattr(_load_pipelines(), function)()
    assert pipeline.name == name
    ours = normalize(pipeline.to_dict(), sdk=False)
    if ours != sdk:
        pytest.fail(f"sagelab's {name} differs from the SDK v2's (after the documented normalizations):\n{_diff(ours, sdk)}", pytrace=False)


def test_normalization_keeps_everything_but_the_hash() -> None:
    uri = "s3://b/P/code/" + "ab" * 32 + "/train.py"
    encoded = json.dumps(uri)
    assert _unhash({"a": [uri, encoded]}) == {"a": ["s3://b/P/code/<sha256>/train.py", '"s3://b/P/code/<sha256>/train.py"']}
    assert _unhash("s3://b/P/code/abc/train.py") == "s3://b/P/code/abc/train.py"
