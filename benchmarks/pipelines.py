"""Equivalent no-op chains for sagelab, Kedro and Metaflow, so a benchmark measures orchestration only.

Every tool runs N steps in a line, each waiting for the one before and doing nothing, so
the difference in wall clock is what each tool spends around a step: sagelab and Metaflow
one process per step, Kedro one function call per node inside one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROLE_ARN = "arn:aws:iam::000000000000:role/Bench"
PACKAGE = "bench_chain"


def _step_name(i: int) -> str:
    return f"Step{i:02d}"


def sagemaker_chain(steps: int) -> dict[str, Any]:
    """A pipeline definition of `steps` no-op Processing steps, step i depending on step i-1."""
    chain = []
    for i in range(steps):
        step: dict[str, Any] = {
            "Name": _step_name(i),
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.t3.medium", "InstanceCount": 1, "VolumeSizeInGB": 1}},
                "AppSpecification": {"ImageUri": "local/noop", "ContainerEntrypoint": ["python3", "-c", "pass"]},
                "RoleArn": ROLE_ARN,
            },
        }
        if i:
            step["DependsOn"] = [_step_name(i - 1)]
        chain.append(step)
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": chain}


def write_sagemaker_chain(path: Path, steps: int) -> Path:
    """Write the definition of `sagemaker_chain(steps)` to `path` and return it."""
    path.write_text(json.dumps(sagemaker_chain(steps), indent=2) + "\n", encoding="utf-8")
    return path


_NODES = '''"""{steps} no-op nodes in a chain: node i takes node i-1's output (a MemoryDataset)."""

from kedro.pipeline import Pipeline, node


def step(previous: int | None = None) -> int:
    """Do nothing; return a value because Kedro refuses to save None to a dataset."""
    return 0


def register_pipelines() -> dict[str, Pipeline]:
    nodes = [node(step, inputs=None, outputs="d00", name="step00")]
    nodes += [node(step, inputs=f"d{{i - 1:02d}}", outputs=f"d{{i:02d}}", name=f"step{{i:02d}}") for i in range(1, {steps})]
    return {{"__default__": Pipeline(nodes)}}
'''


def write_kedro_chain(folder: Path, steps: int, kedro_version: str) -> Path:
    """Write the smallest Kedro project whose `kedro run` runs `steps` chained no-op nodes."""
    package = folder / "src" / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    for conf in ("base", "local"):
        (folder / "conf" / conf).mkdir(parents=True, exist_ok=True)
    # Kedro refuses to run without a catalog (and warns without parameters), as `kedro new` writes
    # both; an empty catalog leaves every dataset a MemoryDataset.
    for name in ("catalog.yml", "parameters.yml"):
        (folder / "conf" / "base" / name).write_text("{}\n", encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{PACKAGE}"\nversion = "0.1.0"\n\n'
        f'[tool.kedro]\npackage_name = "{PACKAGE}"\nproject_name = "{PACKAGE}"\nkedro_init_version = "{kedro_version}"\n',
        encoding="utf-8",
    )
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "settings.py").write_text('"""Kedro defaults throughout."""\n', encoding="utf-8")
    (package / "pipeline_registry.py").write_text(_NODES.format(steps=steps), encoding="utf-8")
    return folder


def write_metaflow_chain(folder: Path, steps: int) -> Path:
    """Write a Metaflow flow of `steps` chained no-op steps (`start`, middle steps, `end`); return the flow file."""
    names = ["start", *(f"step{i:02d}" for i in range(1, steps - 1)), "end"]
    lines = [f'"""{steps} no-op steps in a chain."""', "", "from metaflow import FlowSpec, step", "", "", "class Chain(FlowSpec):"]
    for name, following in zip(names, [*names[1:], None]):
        lines += ["    @step", f"    def {name}(self):", f"        self.next(self.{following})" if following else "        pass", ""]
    lines += ["", 'if __name__ == "__main__":', "    Chain()", ""]
    folder.mkdir(parents=True, exist_ok=True)
    flow = folder / "chain_flow.py"
    flow.write_text("\n".join(lines), encoding="utf-8")
    return flow
