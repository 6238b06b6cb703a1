"""`sagelab validate` names a module a step imports that neither its image nor its code provides.

The steps run on the scikit-learn 1.2-1 image, whose environment the test run has built
(scripts/test: sagelab envs prepare tests/fixtures/images/pipeline.json).
"""

from __future__ import annotations

from pathlib import Path

from conftest import sagelab

SCRIPT = "import json\nimport pandas\nfrom sklearn.linear_model import LinearRegression\nfrom churnlib.features import scale\n"


def _project(tmp_path: Path, shipped: bool, requirements: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "src" / "churnlib").mkdir(parents=True)
    (tmp_path / "src" / "churnlib" / "__init__.py").write_text("")
    (tmp_path / "src" / "churnlib" / "features.py").write_text("import numpy\nimport yaml\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n")
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "prep.py").write_text(SCRIPT)
    (tmp_path / "steps" / "train.py").write_text(SCRIPT)
    if requirements:
        (tmp_path / "steps" / "requirements.txt").write_text(requirements)
    ship = 'source_dir="steps", dependencies=["src/churnlib"]' if shipped else 'source_dir="steps"'
    (tmp_path / "pipeline.py").write_text(f"""
from sagelab.pipeline import Pipeline, processing, training
prep = processing("Prep", code="prep.py", {ship}, framework="sklearn:1.2-1", outputs=["out"])
train = training("Train", entry_point="train.py", {ship}, framework="sklearn:1.2-1", channels={{"train": prep.outputs["out"]}})
pipeline = Pipeline("imports", [prep, train])
""")
    return tmp_path


def test_a_package_the_image_lacks_and_the_code_does_not_ship_is_named(tmp_path: Path) -> None:
    result = sagelab("validate", "pipeline.py:pipeline", cwd=_project(tmp_path, shipped=False), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "step Prep imports churnlib, which its image (sagemaker-scikit-learn:1.2-1-cpu-py3) does not have" in result.stderr
    assert "step Train imports churnlib" in result.stderr and "dependencies=[...]" in result.stderr


def test_a_shipped_package_is_followed_into_its_own_imports(tmp_path: Path) -> None:
    """numpy is the image's; yaml is not (pyyaml is no scikit-learn image package); torch is optional (inside try)."""
    result = sagelab("validate", "pipeline.py:pipeline", cwd=_project(tmp_path, shipped=True), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "step Prep imports yaml," in result.stderr and "torch" not in result.stderr and "numpy" not in result.stderr


def test_a_requirements_txt_leaves_the_imports_to_pip(tmp_path: Path) -> None:
    result = sagelab("validate", "pipeline.py:pipeline", cwd=_project(tmp_path, shipped=True, requirements="pyyaml\n"), check=False)
    assert result.returncode == 0, result.stderr
    assert "is valid (2 steps" in result.stdout and "note: Prep: imports not checked (its requirements.txt installs packages first)" in result.stderr
