"""Property-based fuzzing of definitions: whatever a file holds, sagelab gives a result or one clear error.

Each case takes a valid definition (the example pipeline, SDK-written ones, the tests' own steps)
and mutates it: a value anywhere replaced by random JSON (expressions and deep nesting included),
a member dropped or added, or the file's bytes re-encoded or damaged. Parsing and validation then
either accept it or raise `DefinitionError` whose every problem names a JSON location in the
document (or, for a missing member, the object that lacks it). Any other exception is a bug. CI runs a bounded number of cases;
`scripts/fuzz` runs 10,000 (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE, definition, processing_step
from sagelab.config import load_settings
from sagelab.definition import parse, parse_file, validate
from sagelab.engines.local import LocalEngine
from sagelab.errors import DefinitionError, ParameterError

FIXTURES = Path(__file__).parent / "fixtures"
BASES = [
    json.loads((EXAMPLE / "pipeline.json").read_text()),
    json.loads((FIXTURES / "sdk" / "v2" / "abalone.json").read_text()),
    json.loads((FIXTURES / "corpus" / "definitions" / "tuning.json").read_text()),
    definition(processing_step("A", "pass", outputs=["out"]),
               processing_step("B", "pass", inputs={"in": {"Get": "Steps.A.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}})),
]  # fmt: skip
CASES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize="FUZZ_EXAMPLES" not in os.environ,  # CI: the same cases every run; the soak explores
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=300))
expressions = st.one_of(
    st.builds(lambda text: {"Get": text}, st.one_of(st.text(max_size=40), st.sampled_from(["Parameters.X", "Steps.A", "Execution.PipelineExecutionId", "Steps.A.ProcessingOutputConfig"]))),
    st.builds(lambda on, values: {"Std:Join": {"On": on, "Values": values}}, scalars, st.lists(scalars, max_size=3)),
    st.builds(lambda argument: {"Std:Join": argument}, scalars),
    st.builds(lambda argument: {"Std:JsonGet": argument}, st.dictionaries(st.sampled_from(["Path", "PropertyFile", "S3Uri", "x"]), scalars, max_size=3)),
)  # fmt: skip
json_values = st.recursive(
    st.one_of(scalars, expressions),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=20), children, max_size=4)),
    max_leaves=20,
)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"Std:Join": {"On": "", "Values": [value]}}
    return value


def mutate(document: Any, data: st.DataObject) -> Any:
    """`document` with one random change at a random place."""
    document = copy.deepcopy(document)
    parent: Any = None
    key: Any = None
    node = document
    while isinstance(node, (dict, list)) and node and data.draw(st.integers(0, 3), label="descend") != 0:
        parent, key = node, data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))), label="key")
        node = node[key]
    action = data.draw(st.sampled_from(["replace", "drop", "add", "deep"]), label="action")
    if parent is None:
        return data.draw(json_values, label="document") if action == "replace" else document
    if action == "replace":
        parent[key] = data.draw(json_values, label="value")
    elif action == "deep":
        parent[key] = nested(data.draw(st.integers(1, 600), label="depth"))
    elif action == "drop" and isinstance(parent, dict):
        del parent[key]
    elif action == "drop":
        parent.pop(key)
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=30), label="new key")] = data.draw(json_values, label="new value")
    else:
        parent.append(data.draw(json_values, label="new item"))
    return document


def resolves(document: Any, pointer: str) -> bool:
    """Whether a JSON pointer (RFC 6901) names a value in `document`."""
    node = document
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def check(document: Any) -> None:
    try:
        validate(parse(document))
    except DefinitionError as error:
        assert error.problems, "a DefinitionError names at least one problem"
        for problem in error.problems:
            assert problem.message.strip(), problem
            located = resolves(document, problem.pointer) or resolves(document, problem.pointer.rpartition("/")[0])  # or a missing member's object
            assert located, f"{problem.pointer!r} is not a location in the document: {problem}"


@CASES
@given(base=st.sampled_from(BASES), data=st.data())
def test_a_mutated_definition_is_accepted_or_refused_with_located_problems(base: Any, data: st.DataObject) -> None:
    check(mutate(base, data))


@CASES
@given(base=st.sampled_from(BASES), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252"]),
       damage=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3))  # fmt: skip
def test_a_definition_file_in_any_encoding_or_damaged_gives_a_result_or_one_error(
        tmp_path_factory: Any, base: Any, encoding: str, damage: list[tuple[int, int]]) -> None:  # fmt: skip
    text = json.dumps(base, ensure_ascii=False, indent=1) + "é"[: encoding != "utf-8"]  # a non-ASCII character in a place JSON allows
    data = bytearray(text.encode(encoding, errors="replace"))
    for position, byte in damage:
        data[position % len(data)] = byte
    path = tmp_path_factory.mktemp("fuzz") / "pipeline.json"
    path.write_bytes(bytes(data))
    try:
        validate(parse_file(path), str(path))
    except DefinitionError as error:
        assert error.problems and all(p.message.strip() for p in error.problems)
        assert str(path) in str(error)


@settings(CASES, max_examples=int(os.environ.get("FUZZ_ENGINE_EXAMPLES", "20")))
@given(data=st.data())
def test_what_validates_runs_to_an_end_each_step_succeeding_or_failing_with_a_reason(tmp_path_factory: Any, data: st.DataObject) -> None:
    document = mutate(BASES[-1], data)
    try:
        parsed = parse(document)
        validate(parsed)
    except DefinitionError:
        event("refused by validation")
        return
    event("ran")
    project = tmp_path_factory.mktemp("run")
    (project / "pyproject.toml").write_text('[project]\nname = "fuzz"\n\n[tool.sagelab]\nenvironment = "host"\n')
    try:
        execution = LocalEngine(load_settings(project)).start(parsed, "fuzz")
    except (DefinitionError, ParameterError):
        return  # refused before it started: a step type or parameter the engine does not take
    assert execution.status in ("Succeeded", "Failed"), execution.status
    for step in execution.steps.values():
        assert step.status in ("Succeeded", "Failed", "NotStarted", "Skipped"), (step.name, step.status)
        assert step.status != "Failed" or step.failure_reason, step.name
