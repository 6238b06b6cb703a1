"""Every version of the project template that sagelab has shipped, kept as tagged commits of a
git repository in the user's cache folder.

`copier update` works out what changed in a template by rendering the old version and the new
one, so it needs both, as tags of a git repository. The template ships inside the sagelab
package; `publish` commits the installed one to the cache repository and tags it
`v<TEMPLATE_VERSION>`, so the cache gains a version each time sagelab is upgraded and a project
can be updated from the version it was made with to the installed one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sagelab.errors import SagelabError

TEMPLATE_DIR = Path(__file__).parent / "project"
# Bump with every change to project/ that projects should receive through `sagelab init --update`;
# a change without a bump is still published, as v<version>.post<N>. Before bumping, copy project/
# as it was released to history/<the old version>/: `copier update` needs the version a project was
# made with, and a machine whose cache never saw it (a colleague's, CI) gets it from there.
TEMPLATE_VERSION = "1.2.0"
HISTORY_DIR = Path(__file__).parent / "history"
CACHE_VARIABLE = "SAGELAB_TEMPLATE_CACHE"
# Commits made here must not depend on the user's git configuration (signing, hooks, identity).
_GIT_SETTINGS = (
    "-c", "user.name=sagelab", "-c", "user.email=sagelab@localhost", "-c", "commit.gpgsign=false",
    "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "init.defaultBranch=main",
)  # fmt: skip


class TemplateCacheError(SagelabError):
    """The template's cache repository cannot be written, or git is missing."""


def template_cache() -> Path:
    """Where the template's versions are kept: $SAGELAB_TEMPLATE_CACHE, else the user cache folder."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser().absolute()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "sagelab" / "project-template").absolute()


def source_path(cache: Path) -> str:
    """How .copier-answers.yml names the cache: `~/...` under the home folder, so that the file
    reads the same for everyone on a team."""
    try:
        return "~/" + cache.relative_to(Path.home()).as_posix()
    except ValueError:
        return cache.as_posix()


def publish(cache: Path | None = None, version: str = TEMPLATE_VERSION, source: Path = TEMPLATE_DIR) -> str:
    """Commit `source` to the cache repository unless its newest commit holds it already, and
    return the tag that names it (`v<version>`, or `v<version>.post<N>` for later changes)."""
    if not (source / "copier.yml").is_file():
        raise TemplateCacheError(f"the project template is missing from {source}: reinstall sagelab (its package data lacks the template)")
    cache = cache or template_cache()
    with _locked(cache):
        if not (cache / ".git").is_dir():
            _git(cache, "init", "-q")
        existing = set(_git(cache, "tag", "--list").split())
        for shipped, folder in shipped_versions():
            if f"v{shipped}" not in existing and _version_key(shipped) < _version_key(version):
                _commit_tree(cache, folder, shipped)
                _git(cache, "tag", f"v{shipped}")
        _commit_tree(cache, source, version)
        wanted = f"v{version}"
        here = [t for t in _git(cache, "tag", "--points-at", "HEAD").split() if t == wanted or t.startswith(f"{wanted}.post")]
        if here:
            return max(here, key=lambda tag: (len(tag), tag))  # v1.0.0 < v1.0.0.post1 < ... < v1.0.0.post10
        existing = set(_git(cache, "tag", "--list").split())
        tag, post = wanted, 0
        while tag in existing:
            post += 1
            tag = f"{wanted}.post{post}"
        _git(cache, "tag", tag)
        return tag


def shipped_versions() -> list[tuple[str, Path]]:
    """The earlier template versions this sagelab ships (history/<version>/), oldest first."""
    if not HISTORY_DIR.is_dir():
        return []
    found = [(folder.name, folder) for folder in HISTORY_DIR.iterdir() if (folder / "copier.yml").is_file()]
    return sorted(found, key=lambda item: _version_key(item[0]))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.replace(".post", ".").split("."))


def _commit_tree(cache: Path, source: Path, version: str) -> None:
    """Make the cache's work tree `source` and commit it, unless the newest commit holds it already."""
    for child in cache.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(source, cache, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(cache, "add", "-A")
    fresh = _git(cache, "rev-parse", "-q", "--verify", "HEAD", check=False) == ""
    if fresh or _git(cache, "status", "--porcelain"):
        _git(cache, "commit", "-q", "-m", f"sagelab project template {version}")


def _git(cwd: Path, *args: str, check: bool = True) -> str:
    if shutil.which("git") is None:
        raise TemplateCacheError("sagelab init needs git (copier keeps template versions as git tags); install git")
    result = subprocess.run(["git", *_GIT_SETTINGS, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise TemplateCacheError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout.strip()


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One `publish` at a time per cache (two `sagelab init` at once would mix their trees)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = open(cache.with_name(f"{cache.name}.lock"), "w")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise TemplateCacheError(f"cannot write the template cache {cache}: {exc.strerror}; set {CACHE_VARIABLE}") from None
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent inits are the user's to avoid
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        lock.close()
