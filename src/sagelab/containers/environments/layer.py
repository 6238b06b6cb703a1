"""A job's own layer over its environment, where the step's own `pip install` goes.

Scripts in SageMaker's templates often `pip install` what they need. In the container that
changes only that job's container; here it must change only that job, never the cached
environment other steps share, nor sagelab's own. Each job runs on a venv of its own (PEP 405:
a `pyvenv.cfg`, a link to the interpreter, an empty site-packages) whose `.pth` file adds the
environment's site-packages after its own: pip sees what the environment has as installed (a
requirement it satisfies installs nothing, so offline work still works) and installs anything
else into the job's venv, which comes first. Making one is a few file writes, not a venv build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sagelab.containers.environments.manifest import PYTHON

__all__ = ["base_sites", "job_layer", "pip_launchers"]

_PIP_LAUNCHER = "#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"


def job_layer(folder: Path, python: str | None) -> str:
    """Make a job's venv in `folder` over the environment of `python` (None: sagelab's); returns its interpreter."""
    base = Path(python or sys.executable)
    sites = _site_folders(base)
    real = base.resolve()
    site = folder / "lib" / f"python{PYTHON}" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (folder / "pyvenv.cfg").write_text(f"home = {real.parent}\ninclude-system-site-packages = false\nversion = {sys.version.split()[0]}\n")
    (site / "_sagelab_environment.pth").write_text("".join(f"import site; site.addsitedir({path!r})\n" for path in sites))
    interpreter = folder / "bin" / "python"
    interpreter.parent.mkdir(exist_ok=True)
    for name in ("python", "python3", f"python{PYTHON}"):
        link = folder / "bin" / name
        if not link.is_symlink():
            link.symlink_to(real)
    pip_launchers(folder / "bin", interpreter)  # the environment's pip, installing into the job's venv
    return str(interpreter)


def pip_launchers(folder: Path, python: Path) -> None:
    """`pip`, `pip3` and `pip3.X` commands in a venv's bin that run the pip `python` imports, for the venv of `python`."""
    for name in ("pip", "pip3", f"pip{PYTHON}"):
        launcher = folder / name
        launcher.write_text(_PIP_LAUNCHER.format(python=python))
        launcher.chmod(0o755)


def _site_folders(python: Path) -> list[str]:
    """The site-packages folders the environment of `python` imports from: its venv's, else sagelab's own."""
    if python == Path(sys.executable):
        return base_sites()
    return [str(python.parent.parent / "lib" / f"python{PYTHON}" / "site-packages")]


def base_sites() -> list[str]:
    """sagelab's own site-packages folders, which host-mode environments and job venvs append to their own."""
    import site

    folders = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [folder for folder in folders if os.path.isdir(folder)]
