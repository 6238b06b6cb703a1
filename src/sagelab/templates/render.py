"""Render the project template into a new project, or bring a project up to the installed
template version, with copier (`pip install 'sagelab[project]'`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sagelab.errors import SagelabError
from sagelab.templates.versions import publish, source_path, template_cache

ANSWERS_FILE = ".copier-answers.yml"


class TemplateError(SagelabError):
    """A project cannot be created or updated from the template (bad answers, existing folder, ...)."""


def parse_data(values: list[str]) -> dict[str, str]:
    """`--data KEY=VALUE` options as answers to the template's questions."""
    answers = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key.strip():
            raise TemplateError(f"--data {value!r} must look like KEY=VALUE, e.g. --data aws_region=eu-west-1")
        answers[key.strip()] = text
    return answers


def create_project(destination: Path, data: dict[str, Any] | None = None, *, defaults: bool = False,
                   cache: Path | None = None, quiet: bool = False) -> str:  # fmt: skip
    """Render the template into `destination` (a new or empty folder); returns the template version used.

    `data` answers questions up front; the others are asked on the terminal, or take their
    defaults with `defaults=True` or when there is no terminal. The project's name defaults
    to the folder's name.

    Raises:
        TemplateError: the folder is not empty, an answer is invalid, or copier is missing.
    """
    copier = _copier()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise TemplateError(f"{destination} already exists and is not an empty folder; choose a new name")
    answers = dict(data or {})
    answers.setdefault("project_name", destination.absolute().name)
    answers.setdefault("sagelab_requirement", installed_requirement())
    cache = cache or template_cache()
    tag = publish(cache)
    try:
        copier.run_copy(source_path(cache), str(destination), data=answers, vcs_ref=tag,
                        defaults=defaults or not sys.stdin.isatty(), quiet=quiet, unsafe=False)  # fmt: skip
    except (copier.errors.CopierError, ValueError) as exc:
        raise TemplateError(f"cannot create {destination}: {_message(exc)}") from None
    return tag


def update_project(project: Path, data: dict[str, Any] | None = None, *, defaults: bool = False,
                   cache: Path | None = None, quiet: bool = False) -> str:  # fmt: skip
    """Apply what changed in the template between the project's version and the installed one;
    returns the version the project is at now.

    The project must be a git repository with nothing uncommitted, so the update is one
    reviewable diff; conflicts with the project's own edits are marked inline. Only questions
    that are new since the project's version are asked.

    Raises:
        TemplateError: no .copier-answers.yml, uncommitted changes, or copier is missing.
    """
    copier = _copier()
    answers_file = project / ANSWERS_FILE
    if not answers_file.is_file():
        raise TemplateError(f"{project.absolute()} has no {ANSWERS_FILE}: it was not made by sagelab init")
    cache = cache or template_cache()
    recorded = _recorded_source(answers_file)
    if recorded and Path(recorded).expanduser().absolute() != cache:
        raise TemplateError(
            f"{answers_file} names the template at {recorded}, but this sagelab keeps it at {cache}; "
            f"set SAGELAB_TEMPLATE_CACHE={recorded} or change _src_path in {ANSWERS_FILE} and commit"
        )
    tag = publish(cache)
    try:
        copier.run_update(str(project), data=dict(data or {}), vcs_ref=tag, overwrite=True, skip_answered=True,
                          defaults=defaults or not sys.stdin.isatty(), quiet=quiet, unsafe=False)  # fmt: skip
    except (copier.errors.CopierError, ValueError) as exc:
        raise TemplateError(f"cannot update {project}: {_message(exc)}") from None
    return tag


def installed_requirement() -> str:
    """The pip requirement that installs the sagelab running now, read from its install record (PEP 610):
    `sagelab==<version>` from a package index, `sagelab @ git+<url>@<commit>` from git, and from a folder
    its git remote at the checked-out commit when it has one, else `sagelab @ file:///<folder>`."""
    import json
    from importlib import metadata

    try:
        distribution = metadata.distribution("sagelab")
    except metadata.PackageNotFoundError:  # running from a source tree on sys.path
        return "sagelab"
    recorded = distribution.read_text("direct_url.json")
    if not recorded:
        return f"sagelab=={distribution.version}"
    info = json.loads(recorded)
    url = str(info.get("url", ""))
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        return f"sagelab @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}".rstrip("@")
    if "dir_info" in info and url.startswith("file://"):
        return _git_requirement(Path(url.removeprefix("file://"))) or f"sagelab @ {url}"
    return f"sagelab @ {url}"


def _git_requirement(folder: Path) -> str | None:
    """`sagelab @ git+<remote>@<commit>` for a git checkout with a remote (CI can fetch it), else None."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (folder / ".git").exists():
        return None

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False).stdout.strip()

    remote, commit = git("remote", "get-url", "origin"), git("rev-parse", "HEAD")
    if not remote or not commit:
        return None
    if remote.startswith("git@"):  # scp-like git@host:group/repo.git, which pip reads as ssh://git@host/group/repo.git
        host, _, path = remote.removeprefix("git@").partition(":")
        remote = f"ssh://git@{host}/{path}"
    return f"sagelab @ git+{remote}@{commit}"


def _recorded_source(answers_file: Path) -> str | None:
    for line in answers_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("_src_path:"):
            return line.partition(":")[2].strip().strip("'\"") or None
    return None


def _message(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def _copier() -> Any:
    try:
        import copier
        import copier.errors
    except ImportError:
        raise TemplateError("sagelab init needs copier: pip install 'sagelab[project]'") from None
    return copier
