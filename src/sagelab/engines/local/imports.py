"""Does each job step's code import only what its image and its own code provide? A check before any job runs.

A script that imports the project's package passes locally wherever the package is installed,
then fails on SageMaker with ModuleNotFoundError, minutes in. `missing_imports` reads each
Processing and Training step's code (the files the definition ships, from the pipeline's
artifacts or the store), follows its imports through the modules it ships, and names every
top-level module that is neither in Python's standard library, nor shipped with the code, nor
installed in the image's environment. What it cannot know it leaves alone: a step whose image
sagelab has no package list for, or whose environment is not built yet (`sagelab envs prepare`);
a step with a requirements.txt (pip installs what it names before the script starts); code
behind expressions; imports inside `try` (optional ones).
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sagelab.definition.model import PipelineDefinition, Step
from sagelab.errors import Problem

Fetch = Callable[[str], "bytes | None"]  # the bytes an S3 URI names, or None when they cannot be read
PROCESSING_CODE = "/opt/ml/processing/input/code"
_RUNPROC_COMMAND = re.compile(r'^\s*\S*python\S*\s+(\S+\.py)\s+"\$@"\s*$', re.MULTILINE)


def missing_imports(definition: PipelineDefinition, artifacts: Mapping[str, Path | bytes], fetch: Fetch) -> tuple[list[Problem], list[str]]:
    """Problems (a step imports what its image and code lack) and notes (steps left unchecked, and why)."""
    problems: list[Problem] = []
    notes: list[str] = []

    def read(uri: Any) -> bytes | None:
        if not isinstance(uri, str):
            return None
        local = artifacts.get(uri)
        if isinstance(local, Path):
            return local.read_bytes() if local.is_file() else None
        return local if local is not None else fetch(uri)

    for step in definition.all_steps():
        found = _code(step, read)
        if found is None:
            continue
        image, program, files = found
        if any(name == "requirements.txt" and _names_packages(data) for name, data in files.items()):
            notes.append(f"{step.name}: imports not checked (its requirements.txt installs packages first)")
            continue
        provided = _image_modules(image)
        if isinstance(provided, str):
            notes.append(f"{step.name}: imports not checked ({provided})")
            continue
        shipped = {name.split("/", 1)[0].removesuffix(".py") for name in files}
        missing = sorted(set(_imported(program, files)) - shipped - provided - set(sys.stdlib_module_names) - {"__future__"})
        if missing:
            names = ", ".join(missing)
            problems.append(Problem(step.pointer, f"step {step.name} imports {names}, which its image ({image.rsplit('/', 1)[-1]}) does not have "
                                                  f"and its code does not ship: ship the package with the step (dependencies=[...], "
                                                  f"as the SageMaker SDK's), or list it in a requirements.txt in its source_dir"))  # fmt: skip
    return problems, notes


def _code(step: Step, read: Callable[[Any], bytes | None]) -> tuple[str, str, dict[str, bytes]] | None:
    """The step's image, its entry script's name and its code files (name → bytes), or None when they cannot be read."""
    args = step.arguments
    if step.type == "Processing":
        image = args.get("AppSpecification", {}).get("ImageUri")
        inputs = {i.get("InputName"): i.get("S3Input", {}).get("S3Uri") for i in args.get("ProcessingInputs", [])}
        entrypoint = [part for part in args.get("AppSpecification", {}).get("ContainerEntrypoint", []) if isinstance(part, str)]
        launcher = read(inputs.get("entrypoint")) if any(part.endswith("/runproc.sh") for part in entrypoint) else None
        if launcher is not None:  # FrameworkProcessor: runproc.sh unpacks sourcedir.tar.gz and runs `python <script>`
            commands = _RUNPROC_COMMAND.findall(launcher.decode(errors="replace"))
            program = commands[-1] if commands else None
        else:
            program = next((part.removeprefix(PROCESSING_CODE + "/") for part in entrypoint if part.startswith(PROCESSING_CODE + "/")), None)
        code_uri = inputs.get("code")
    elif step.type == "Training":
        image = args.get("AlgorithmSpecification", {}).get("TrainingImage")
        hyperparameters = args.get("HyperParameters", {})
        program, code_uri = _text(hyperparameters.get("sagemaker_program")), _text(hyperparameters.get("sagemaker_submit_directory"))
    else:
        return None
    if not isinstance(image, str) or not program or not program.endswith(".py"):
        return None
    data = read(code_uri)
    if data is None:
        return None
    files = _unpack(data) if str(code_uri).endswith(".tar.gz") else {str(code_uri).rsplit("/", 1)[-1]: data}
    return (image, program, files) if files is not None and program in files else None


def _text(value: Any) -> str | None:
    """A hyperparameter as the job sees it: the SDK v2 JSON-encodes strings, v3 does not."""
    if not isinstance(value, str):
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _unpack(data: bytes) -> dict[str, bytes] | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            return {member.name.removeprefix("./"): archive.extractfile(member).read()  # type: ignore[union-attr]
                    for member in archive if member.isfile()}  # fmt: skip
    except (OSError, EOFError, tarfile.TarError):
        return None


def _names_packages(requirements: bytes) -> bool:
    return any(line.split("#", 1)[0].strip() for line in requirements.decode(errors="replace").splitlines())


def _imported(program: str, files: Mapping[str, bytes]) -> Iterator[str]:
    """The top-level modules the entry script imports, through the shipped modules it imports in turn."""
    seen: set[str] = set()
    queue = [program]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        for module in _imports(files[name]):
            top = module.split(".", 1)[0]
            shipped = [f for f in files if f.endswith(".py") and (f == f"{top}.py" or f.startswith(f"{top}/"))]
            queue.extend(shipped)
            if not shipped:
                yield top


def _imports(source: bytes) -> Iterator[str]:
    """Absolute imports outside `try` blocks (a try around an import makes it optional)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.Try) for statement in block.body for node in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module


def _image_modules(image_uri: str) -> set[str] | str:
    """The top-level modules the image's built environment has, or why they are unknown."""
    from sagelab.containers.environments import image as image_environment
    from sagelab.containers.environments import manifest
    from sagelab.containers.images import identify

    spec, why = manifest.lookup(identify(image_uri))
    if spec is None:
        return why
    modules = image_environment.modules(spec)
    return modules if modules is not None else f"the environment of {spec.image} is not built yet: sagelab envs prepare PIPELINE"
