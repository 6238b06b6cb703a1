"""Definitions made by the official SageMaker SDK (v2 and v3) parse and validate.

The fixtures and the scripts that generated them live in tests/fixtures/sdk/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagelab.definition import parse_file, validate
from sagelab.engines.local.runners import RUNNERS, unsupported_steps

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "sdk").glob("v*/*.json"))
FIXTURES = [f for f in FIXTURES if f.name != "versions.json"]


def test_fixtures_exist() -> None:
    assert {f.parent.name for f in FIXTURES} == {"v2", "v3"}
    assert len(FIXTURES) >= 6


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sdk_definition_parses_and_validates(path: Path) -> None:
    definition = parse_file(path)
    validate(definition, str(path))
    assert definition.steps


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_local_engine_names_exactly_the_step_types_it_cannot_run_yet(path: Path) -> None:
    definition = parse_file(path)
    types = {step.type for step in definition.all_steps()}
    problems = unsupported_steps(definition)
    assert {p.message.split(": ")[1].split(" ")[0] for p in problems} == types - set(RUNNERS)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_sdk_minimal_pipeline_runs_locally(project: Path, version: str) -> None:
    """The SDK's own definition runs unchanged, with the code the SDK uploaded placed in the local store."""
    from sagelab.config import load_settings
    from sagelab.engines.local import LocalEngine

    fixture = Path(__file__).parent / "fixtures" / "sdk" / version
    engine = LocalEngine(load_settings(project))
    dump = fixture / "minimal.s3"
    for file in (p for p in dump.rglob("*") if p.is_file()):
        engine.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
    definition = parse_file(fixture / "minimal.json")
    passed = engine.start(definition, "MinimalPipeline", {})
    assert passed.status == "Succeeded", [(s.name, s.failure_reason) for s in passed.steps.values()]
    failed = engine.start(definition, "MinimalPipeline", {"ShouldFail": "true"})
    assert failed.status == "Failed"
    fail_step = next(s for s in failed.steps.values() if s.type == "Fail")
    assert fail_step.status == "Failed" and failed.failure_reason == fail_step.failure_reason
