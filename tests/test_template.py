"""`sagelab init`: a generated project installs in a fresh virtualenv, passes its own tests, runs
its pipeline, builds its docs strictly, and its CI jobs that need no AWS pass when run here.

One project and one virtualenv are shared by the module (making them is most of the time). The
virtualenv gets sagelab from this checkout (`pip install -e <repo>[examples,docs]`) and the
project with its dev tools, from the package index as usual. AWS jobs are not run: their rules
are evaluated instead, to check that they stay out of pipelines without credentials.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import sagelab
from sagelab.config import load_settings
from sagelab.templates import TEMPLATE_DIR, TEMPLATE_VERSION, publish
from sagelab.templates.versions import shipped_versions, source_path

REPO = Path(sagelab.__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAGELAB = str(BIN / "sagelab")
NAME = "demo-project"
PACKAGE = "demo_project"
STAGES_RUN_HERE = ("test", "pipeline")


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The template's version repository, in a temporary folder instead of ~/.cache."""
    folder = tmp_path_factory.mktemp("template-cache") / "project-template"
    saved = os.environ.get("SAGELAB_TEMPLATE_CACHE")
    os.environ["SAGELAB_TEMPLATE_CACHE"] = str(folder)
    yield folder
    if saved is None:
        del os.environ["SAGELAB_TEMPLATE_CACHE"]
    else:
        os.environ["SAGELAB_TEMPLATE_CACHE"] = saved


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A project made by `sagelab init` non-interactively, as a user runs it."""
    parent = tmp_path_factory.mktemp("projects")
    ok(run([SAGELAB, "init", NAME, "--defaults", "--data", "aws_region=eu-west-1", "--data", "sagelab_requirement=sagelab"], cwd=parent))
    return parent / NAME


@pytest.fixture(scope="module")
def environment(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh virtualenv with sagelab from this checkout and the project installed; its environment variables."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    python = str(folder / "bin" / "python")
    ok(run([python, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[examples,docs]", "-e", f"{project}[dev]"], cwd=project, timeout=900))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SAGELAB_SANDBOX", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(folder)
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


def test_the_project_has_the_promised_layout(project: Path, cache: Path) -> None:
    for path in (
        "eda/01_load_and_profile.ipynb", "eda/02_explore.ipynb", "eda/03_baseline.ipynb", f"src/{PACKAGE}/data.py", f"src/{PACKAGE}/features.py", f"src/{PACKAGE}/model.py",
        f"src/{PACKAGE}/evaluation.py", f"src/{PACKAGE}/inference.py", "production/pipeline.py",
        "production/steps/preprocess.py", "production/steps/train.py", "production/steps/evaluate.py",
        "production/config/dev.toml", "production/config/staging.toml", "production/config/prod.toml",
        "data/sample.csv", "tests/test_pipeline.py", "pyproject.toml", "README.md", ".gitlab-ci.yml", "mkdocs.yml", "docs/index.md",
    ):  # fmt: skip
        assert (project / path).is_file(), path
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == f"v{TEMPLATE_VERSION}"
    assert answers["_src_path"] == source_path(cache)
    assert answers["project_name"] == NAME and answers["package_name"] == PACKAGE and answers["aws_region"] == "eu-west-1"
    assert not list(project.rglob("*.jinja")), "template suffixes leaked into the project"
    pyproject = (project / "pyproject.toml").read_text()
    assert '[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "eu-west-1"' in pyproject
    assert "secret" not in pyproject.lower() and "AKIA" not in pyproject
    assert load_settings(project, profile="ci").environment == load_settings(project).environment == "image"  # the steps ship the package


def test_the_readme_starts_with_two_commands(project: Path) -> None:
    readme = (project / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quickstart.splitlines() if line.strip()]
    assert commands == ['pip install "sagelab" -e ".[dev]"', "sagelab run production/pipeline.py:pipeline"]


def test_a_taken_folder_is_refused(project: Path) -> None:
    result = run([SAGELAB, "init", NAME, "--defaults"], cwd=project.parent)
    assert result.returncode == 1 and "already exists and is not an empty folder" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_answer_is_refused(tmp_path: Path, cache: Path) -> None:
    result = run([SAGELAB, "init", "ok-name", "--defaults", "--data", "aws_region=Mars"], cwd=tmp_path)
    assert result.returncode == 1 and "us-east-1" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- CI ---------------------------------------------------------------------------------------


def ci(project: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    return document


def jobs(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The jobs, with `extends` applied (one level, as the file uses it)."""
    found = {}
    for name, job in document.items():
        if isinstance(job, dict) and not name.startswith(".") and "script" in job:
            base = document.get(job.get("extends", ""), {})
            found[name] = {**base, **job, "variables": {**base.get("variables", {}), **job.get("variables", {})}}
    return found


def test_the_ci_file_matches_gitlabs_schema(project: Path) -> None:
    """check-jsonschema vendors GitLab's CI schema (from SchemaStore), so this runs offline."""
    ok(run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml"], cwd=project))


def test_the_ci_file_has_the_stages_and_a_pip_cache(project: Path) -> None:
    document = ci(project)
    assert document["stages"] == ["test", "pipeline", "sagemaker", "staging", "production"]
    assert document["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    assert document["default"]["cache"]["paths"] == [".cache/pip", ".cache/sagelab", ".cache/uv"]
    assert document["variables"]["XDG_CACHE_HOME"] == "$CI_PROJECT_DIR/.cache"
    found = jobs(document)
    assert {name: job["stage"] for name, job in found.items()} == {
        "lint": "test", "unit-tests": "test", "pipeline-local": "pipeline", "docs": "pipeline",
        "sagemaker-pipeline": "sagemaker", "deploy-staging": "staging", "deploy-production": "production",
    }  # fmt: skip
    assert 'sagelab run "$PIPELINE" --profile ci' in found["pipeline-local"]["script"]  # each step on its image's packages
    aws = "\n".join(line for job in found.values() for line in job["script"] if "--profile aws" in line)
    assert "sagelab run \"$PIPELINE\" --profile aws" in aws
    assert "sagelab deploy \"$MODEL_GROUP\" --profile aws --name demo-project-staging" in aws
    assert "sagelab invoke demo-project-staging --profile aws" in aws
    text = (project / ".gitlab-ci.yml").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]", text, re.IGNORECASE)


def evaluate_rule(expression: str, variables: dict[str, str]) -> bool:
    """GitLab's `rules: if:` for what the file uses: $VAR, ==, !=, &&, ||, parentheses, quoted strings."""
    tokens = re.findall(r"\$\w+|==|!=|&&|\|\||\(|\)|'[^']*'|\"[^\"]*\"", expression)
    assert "".join(tokens) == re.sub(r"\s+", "", expression), f"unsupported syntax in {expression!r}"
    position = 0

    def atom() -> Any:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            result = either()
            position += 1  # ")"
            return result
        return variables.get(token[1:]) or None if token.startswith("$") else token[1:-1]

    def comparison() -> Any:
        nonlocal position
        left = atom()
        if position < len(tokens) and tokens[position] in ("==", "!="):
            operator = tokens[position]
            position += 1
            right = atom()
            return (left == right) if operator == "==" else (left != right)
        return left

    def both() -> Any:
        nonlocal position
        result = comparison()
        while position < len(tokens) and tokens[position] == "&&":
            position += 1
            right = comparison()
            result = bool(result) and bool(right)
        return result

    def either() -> Any:
        nonlocal position
        result = both()
        while position < len(tokens) and tokens[position] == "||":
            position += 1
            right = both()
            result = bool(result) or bool(right)
        return result

    return bool(either())


def when(job: dict[str, Any], variables: dict[str, str]) -> str:
    """'on_success', 'manual' or 'never': how a job joins a pipeline with these variables."""
    if "rules" not in job:
        return "on_success"
    for rule in job["rules"]:
        if "if" not in rule or evaluate_rule(rule["if"], variables):
            return str(rule.get("when", "on_success"))
    return "never"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}, {"sagemaker-pipeline": "never", "deploy-staging": "never", "deploy-production": "never"}),
        ({"CI_COMMIT_BRANCH": "feature", "CI_DEFAULT_BRANCH": "main", "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci"}, {"sagemaker-pipeline": "never", "deploy-staging": "never", "deploy-production": "never"}),
        ({"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci"}, {"sagemaker-pipeline": "on_success", "deploy-staging": "on_success", "deploy-production": "manual"}),
        ({"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "AWS_ACCESS_KEY_ID": "AKIA...", "AWS_SECRET_ACCESS_KEY": "..."}, {"sagemaker-pipeline": "on_success", "deploy-staging": "on_success", "deploy-production": "manual"}),
    ],
    ids=["no-credentials", "feature-branch", "oidc-role", "access-keys"],
)
def test_aws_jobs_run_only_on_the_default_branch_with_credentials(project: Path, variables: dict[str, str], expected: dict[str, str]) -> None:
    found = jobs(ci(project))
    assert {name: when(job, variables) for name, job in found.items() if name in expected} == expected
    assert all(when(job, variables) == "on_success" for name, job in found.items() if job["stage"] in STAGES_RUN_HERE)


@pytest.fixture(scope="module")
def ci_runs(project: Path, environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every job of the test and pipeline stages, run here as GitLab would: its before_script and
    script lines in one shell, with the file's variables and GitLab's predefined ones."""
    document = ci(project)
    results = {}
    for name, job in sorted(jobs(document).items(), key=lambda item: document["stages"].index(item[1]["stage"])):
        if job["stage"] not in STAGES_RUN_HERE:
            continue
        env = {**environment, "CI": "true", "CI_PROJECT_DIR": str(project), "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
        for key, value in {**document["variables"], **job["variables"]}.items():
            env[key] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), str(value))
        # GitLab's cache of .cache/ is warm here, as after the project's first pipeline: the step environments
        # and uv's packages are the test run's own (the tests reach no package index).
        env.update({key: environment[key] for key in ("XDG_CACHE_HOME", "UV_CACHE_DIR")})
        lines = [*job.get("before_script", document["default"]["before_script"]), *job["script"]]
        script = "set -euo pipefail\n" + "\n".join(lines)
        results[name] = run(["bash", "-c", script], cwd=project, env=env, timeout=900)
    return results


def test_ci_lint_and_unit_tests_pass(ci_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    ok(ci_runs["lint"])
    tests = ok(ci_runs["unit-tests"]).stdout
    # test_data.py 4 + test_model.py 4 + test_notebook.py 3 (eda/01..03, run by nbclient);
    # the two pipeline tests are left to the pipeline stage.
    assert re.search(r"\b11 passed, 2 deselected", tests), tests[-2000:]


def test_ci_runs_the_pipeline_locally(ci_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = ok(ci_runs["pipeline-local"]).stdout
    assert "pipeline demo-project is valid (6 steps, 5 parameters)" in output
    assert re.search(r"Execution \w+ of demo-project: Succeeded", output), output[-3000:]
    assert "model-package/demo-project/1" in output


def test_ci_builds_the_docs_strictly(ci_runs: dict[str, subprocess.CompletedProcess[str]], project: Path) -> None:
    ok(ci_runs["docs"])
    site = project / "site"
    pages = sorted(p.parent.name for p in (site / "pipeline").glob("*/index.html"))
    assert pages == ["01-preprocess", "02-train", "03-evaluate", "04-checkmse", "05-register", "06-msetoohigh"]
    overview = (site / "pipeline" / "index.html").read_text()
    assert 'src="graph.svg"' in overview and 'class="mermaid"' in overview
    assert "MseThreshold" in overview
    train = (site / "pipeline" / "02-train" / "index.html").read_text()
    assert "train.py" in train and "demo_project" in train and "ml.m5.large" in train


def test_the_projects_pipeline_tests_pass(project: Path, environment: dict[str, str]) -> None:
    """tests/test_pipeline.py runs the whole pipeline with LocalEngine, and a failing gate."""
    result = ok(run([str(Path(environment["VIRTUAL_ENV"]) / "bin" / "python"), "-m", "pytest", "-m", "pipeline", "-q", "-p", "no:cacheprovider"], cwd=project, env=environment))
    assert "2 passed" in result.stdout, result.stdout[-2000:]


def test_docs_show_an_executions_statuses(project: Path, environment: dict[str, str], ci_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    ok(ci_runs["pipeline-local"])
    ok(run(["sagelab", "docs", "build", "--execution", "latest"], cwd=project, env=environment))
    svg = (project / "docs" / "pipeline" / "graph.svg").read_text()
    assert svg.count("✓ Succeeded") == 5 and "Skipped" in svg
    assert "Succeeded in execution" in (project / "docs" / "pipeline" / "05-register.md").read_text()


# -- updates ------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false"]
    return ok(run(["git", *identity, *args], cwd=cwd)).stdout


@pytest.fixture
def old_project(tmp_path: Path) -> tuple[Path, Path]:
    """A template repository with an older version (v0.9.0, without prod.toml and the README's update
    section) and the current one, and a project generated from the older tag, committed, with an edit of its own."""
    cache = tmp_path / "cache"
    old = tmp_path / "old-template"
    shutil.copytree(TEMPLATE_DIR, old)
    (old / "template" / "production" / "config" / "prod.toml.jinja").unlink()
    readme = old / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().split("## Updating from the template")[0])
    assert publish(cache, version="0.9.0", source=old) == "v0.9.0"
    assert publish(cache) == f"v{TEMPLATE_VERSION}"  # the current version, tagged after the old one

    import copier

    project = tmp_path / NAME
    copier.run_copy(str(cache), str(project), data={"project_name": NAME}, vcs_ref="v0.9.0", defaults=True, quiet=True)
    assert not (project / "production" / "config" / "prod.toml").exists()
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    features = project / "src" / PACKAGE / "features.py"
    features.write_text(features.read_text() + "\n\ndef bmi_squared(bmi: float) -> float:\n    return bmi * bmi\n")
    git(project, "commit", "-q", "-am", "a feature of our own")
    return project, cache


def assert_updated(project: Path) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == f"v{TEMPLATE_VERSION}"
    assert (project / "production" / "config" / "prod.toml").is_file()
    assert "## Updating from the template" in (project / "README.md").read_text()
    assert "def bmi_squared" in (project / "src" / PACKAGE / "features.py").read_text()
    assert "<<<<<<<" not in (project / "src" / PACKAGE / "features.py").read_text()


def test_copier_update_brings_the_newer_template(old_project: tuple[Path, Path]) -> None:
    project, _ = old_project
    ok(run([str(BIN / "copier"), "update", "--defaults", "--vcs-ref", f"v{TEMPLATE_VERSION}"], cwd=project))
    assert_updated(project)


def test_sagelab_init_update_brings_the_installed_template(old_project: tuple[Path, Path]) -> None:
    project, cache = old_project
    env = {**os.environ, "SAGELAB_TEMPLATE_CACHE": str(cache)}
    result = ok(run([SAGELAB, "init", "--update", "--defaults"], cwd=project, env=env))
    assert f"to template v{TEMPLATE_VERSION}" in result.stderr
    assert_updated(project)


def test_init_update_works_where_the_cache_never_saw_the_projects_version(old_project: tuple[Path, Path], tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A colleague's machine or CI: a fresh template cache gets the project's older version from the versions sagelab ships."""
    from sagelab.templates import versions

    project, cache = old_project
    shipped = tmp_path / "history" / "0.9.0"
    shipped.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(cache), "archive", "v0.9.0"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(shipped)], input=archive, check=True)  # the 0.9.0 tree, as sagelab would ship it
    monkeypatch.setattr(versions, "HISTORY_DIR", shipped.parent)
    shutil.rmtree(cache)  # another machine: the same place, never written
    assert versions.publish(cache) == f"v{TEMPLATE_VERSION}"
    assert git(cache, "tag", "--list").split() == ["v0.9.0", f"v{TEMPLATE_VERSION}"]
    from sagelab.templates.render import update_project

    assert update_project(project, defaults=True, cache=cache, quiet=True) == f"v{TEMPLATE_VERSION}"
    assert_updated(project)


def test_an_unchanged_template_is_not_republished(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert publish(cache) == publish(cache) == f"v{TEMPLATE_VERSION}"
    changed = tmp_path / "changed"
    shutil.copytree(TEMPLATE_DIR, changed)
    (changed / "template" / "NOTES.md").write_text("new\n")
    assert publish(cache, source=changed) == f"v{TEMPLATE_VERSION}.post1"  # changed without a version bump
    log = git(cache, "log", "--format=%s")
    assert log.count("sagelab project template") == 2 + len(shipped_versions())  # the shipped versions first


@pytest.mark.parametrize("name", ["01_load_and_profile", "02_explore", "03_baseline"])
def test_the_notebooks_are_valid_json_and_use_the_package(project: Path, name: str) -> None:
    notebook = json.loads((project / "eda" / f"{name}.ipynb").read_text())
    assert notebook["nbformat"] == 4 and all(cell["cell_type"] in ("markdown", "code") for cell in notebook["cells"])
    assert "from demo_project import data" in "".join(notebook["cells"][1]["source"])
    assert "demo-project" in "".join(notebook["cells"][0]["source"])


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "sagelab==0.1.0"),
        ({"url": "https://github.com/acme/sagelab.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}},
         "sagelab @ git+https://github.com/acme/sagelab.git@abc123"),
        ({"url": "file:///wheels/sagelab-0.1.0-py3-none-any.whl", "archive_info": {}}, "sagelab @ file:///wheels/sagelab-0.1.0-py3-none-any.whl"),
        ({"url": "file:///nowhere/sagelab", "dir_info": {"editable": True}}, "sagelab @ file:///nowhere/sagelab"),
    ],
)
def test_init_answers_how_the_running_sagelab_was_installed(monkeypatch: pytest.MonkeyPatch, record: dict[str, Any] | None, expected: str) -> None:
    """The generated README and CI install sagelab the way it was installed here (PEP 610's direct_url.json)."""
    import json
    from importlib import metadata

    from sagelab.templates.render import installed_requirement

    class Installed:
        version = "0.1.0"

        def read_text(self, name: str) -> str | None:
            return json.dumps(record) if record is not None and name == "direct_url.json" else None

    monkeypatch.setattr(metadata, "distribution", lambda name: Installed())
    assert installed_requirement() == expected


def test_a_checkout_with_a_remote_is_installed_from_git(tmp_path: Path) -> None:
    from sagelab.templates.render import _git_requirement

    checkout = tmp_path / "sagelab"
    checkout.mkdir()
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    ok(run([*git, "init", "-q"], cwd=tmp_path))
    ok(run([*git, "commit", "-q", "--allow-empty", "-m", "one"], cwd=tmp_path))
    assert _git_requirement(checkout) is None  # no remote: CI could not fetch it
    ok(run([*git, "remote", "add", "origin", "git@gitlab.example.com:ml/sagelab.git"], cwd=tmp_path))
    commit = run([*git, "rev-parse", "HEAD"], cwd=tmp_path).stdout.strip()
    assert _git_requirement(checkout) == f"sagelab @ git+ssh://git@gitlab.example.com/ml/sagelab.git@{commit}"
