"""`Pipeline`: steps and parameters compiled to a SageMaker pipeline definition."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import PipelineError

if TYPE_CHECKING:
    from sagelab.config import Settings
from sagelab.pipeline._callsite import call_site, where
from sagelab.pipeline.expressions import (
    Comparison,
    Condition,
    In,
    Join,
    JsonGet,
    Not,
    Or,
    Parameter,
    Property,
)
from sagelab.pipeline.steps import BuildContext, Step


class Pipeline:
    """A named pipeline. `definition()` gives the JSON SageMaker accepts; building never touches the network.

    Example:
        >>> from sagelab.pipeline import Pipeline, fail
        >>> pipeline = Pipeline("demo", [fail("Stop", "always")], bucket="my-bucket", region="eu-west-1")
        >>> pipeline.to_dict()["Steps"][0]["Arguments"]
        {'ErrorMessage': 'always'}
    """

    def __init__(
        self,
        name: str,
        steps: list[Step],
        parameters: list[Parameter] | None = None,
        *,
        bucket: str | None = None,
        region: str | None = None,
        role: str | None = None,
    ) -> None:
        self.site = call_site()
        self.name = name
        self.steps = list(steps)
        self.parameters = list(parameters or [])
        self.bucket, self.region, self.role = bucket, region, role
        self._settings: Settings | None = None
        self._compiled: tuple[dict[str, Any], dict[str, Path | bytes]] | None = None

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}: {len(self.steps)} steps>"

    def all_steps(self) -> Iterator[Step]:
        """Every step, condition branches included."""
        pending = list(reversed(self.steps))
        while pending:
            step = pending.pop()
            yield step
            pending.extend(reversed(step.branches()))

    def with_settings(self, settings: Settings) -> Pipeline:
        """This pipeline built for a profile: its bucket, region, role and instance defaults
        (values given to the Pipeline itself still win)."""
        built = copy.copy(self)
        built._settings, built._compiled = settings, None
        return built

    def definition(self) -> str:
        """The definition JSON, byte-identical for the same code and data."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The definition as a dict (what `definition()` serialises)."""
        return self._compile()[0]

    def artifacts(self) -> dict[str, Path | bytes]:
        """S3 URI → local file or bytes: what the engine uploads before the pipeline runs."""
        return self._compile()[1]

    def _context(self) -> BuildContext:
        from sagelab.config import find_project_root, load_settings

        settings = self._settings or load_settings(find_project_root(self.site[0].parent))
        return BuildContext(
            pipeline=self.name,
            bucket=self.bucket or settings.default_bucket,
            region=self.region or settings.region,
            role=self.role or settings.role_arn,
            instance_type=settings.instance_type,
            instance_count=settings.instance_count,
            volume_size_gb=settings.volume_size_gb,
        )

    def _compile(self) -> tuple[dict[str, Any], dict[str, Path | bytes]]:
        if self._compiled is None:
            self._check_steps()
            context = self._context()
            document = {
                "Version": "2020-12-01",
                "Metadata": {},
                "Parameters": [p.declaration() for p in self._parameters()],
                "PipelineExperimentConfig": {
                    "ExperimentName": {"Get": "Execution.PipelineName"},
                    "TrialName": {"Get": "Execution.PipelineExecutionId"},
                },
                "Steps": [step.compile(context) for step in self.steps],
            }
            self._check_definition(document)
            self._compiled = document, context.artifacts.objects
        return self._compiled

    def _check_steps(self) -> None:
        seen: dict[str, Step] = {}
        for step in self.all_steps():
            if step.name in seen and seen[step.name] is not step:
                raise PipelineError(f"{where(step.site)}: step name {step.name} is already used by the step built at {where(seen[step.name].site)}")
            seen[step.name] = step
        for step in self.all_steps():
            for referenced in _referenced_steps(step):
                if seen.get(referenced.name) is not referenced:
                    raise PipelineError(
                        f"{where(step.site)}: step {step.name} uses {referenced.name} (built at {where(referenced.site)}), "
                        f"which is not in pipeline {self.name}; add it to the steps list"
                    )
            for name in step.depends_on:
                target = name if isinstance(name, str) else name.name
                if target not in seen:
                    raise PipelineError(f"{where(step.site)}: step {step.name} depends on {target}, which is not in pipeline {self.name}")

    def _parameters(self) -> list[Parameter]:
        found = {p.name: p for p in self.parameters}
        for step in self.all_steps():
            for parameter in _walk(vars(step), Parameter):
                known = found.setdefault(parameter.name, parameter)
                if known.declaration() != parameter.declaration():
                    raise PipelineError(f"{where(step.site)}: parameter {parameter.name} is declared twice, differently: {known!r} and {parameter!r}")
        return list(found.values())

    def _check_definition(self, document: dict[str, Any]) -> None:
        """The format's own validation, with each problem traced back to the step's line."""
        from sagelab.definition import parse
        from sagelab.definition.validator import find_problems

        problems = find_problems(parse(document, source=f"pipeline {self.name}"))
        if problems:
            sites = {step.name: step.site for step in self.all_steps()}
            parsed = parse(document)
            lines = []
            for problem in problems:
                step = next((s for s in parsed.all_steps() if problem.pointer.startswith(s.pointer + "/") or problem.pointer == s.pointer), None)
                site = where(sites[step.name]) if step else where(self.site)
                lines.append(f"{site}: {problem.message}")
            raise PipelineError("\n".join(lines))


def _referenced_steps(step: Step) -> Iterator[Step]:
    for value in _walk({k: v for k, v in vars(step).items() if k not in ("then", "otherwise")}, Property):
        yield value.step


def _walk(value: Any, kind: type, seen: set[int] | None = None) -> Iterator[Any]:
    """Every object of `kind` inside step attributes, expressions and conditions."""
    seen = seen if seen is not None else set()
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, kind):
        yield value
    if isinstance(value, dict):
        children: list[Any] = list(value.values())
    elif isinstance(value, (list, tuple)):
        children = list(value)
    elif isinstance(value, Join):
        children = value.values
    elif isinstance(value, JsonGet):
        children = [value.report, value.s3_uri]
    elif isinstance(value, Comparison):
        children = [value.left, value.right]
    elif isinstance(value, In):
        children = [value.value, *value.options]
    elif isinstance(value, Not):
        children = [value.condition]
    elif isinstance(value, Or):
        children = value.conditions
    elif isinstance(value, (Step, Condition)):
        children = []  # a step's own values are walked from its vars(); other conditions hold none
    elif type(value).__module__.startswith("sagelab.pipeline"):
        children = list(vars(value).values())  # Channel, resources, ...
    else:
        children = []
    for child in children:
        yield from _walk(child, kind, seen)
