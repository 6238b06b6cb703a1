"""Step environments: requirements.txt installed once per hash, parity with the image's releases, version drift.

Every pip call goes to wheels these tests build themselves (PIP_NO_INDEX, PIP_FIND_LINKS), with
the machine's pip configuration switched off: no network. The fake `scikit-learn` wheels hold
only `sklearn/__init__.py` with its `__version__`.
"""

from __future__ import annotations

import base64
import doctest
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import definition, processing_step, write
from sagelab.config import load_settings
from sagelab.containers import environments
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine
from sagelab.errors import ConfigError

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:{}-cpu-py3"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def wheel(folder: Path, dist: str, version: str, module: str, source: str = "") -> None:
    """A pure-Python wheel of one module whose `__version__` is `version`."""
    stem = f"{dist.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n{source}",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: sagelab-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text.encode())}")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    wheel(folder, "sagelab-probe", "1.0", "sagelab_probe", "VALUE = 'probe one'\n")
    wheel(folder, "sagelab-probe-two", "2.0", "sagelab_probe_two")
    wheel(folder, "idna", "0.1", "idna")  # sagelab's environment has idna 3.x
    wheel(folder, "sagelab-fixture-greeting", "1.0", "sagelab_fixture_greeting", "def greet(name):\n    return 'hello ' + name\n")
    for version in ("1.1.3", "1.2.1", "1.2.2"):
        wheel(folder, "scikit-learn", version, "sklearn")
    return folder


@pytest.fixture(autouse=True)
def offline(wheels: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only `wheels`; environments are cached in the test's own folder."""
    for name in ("PIP_CONSTRAINT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_REQUIRE_VIRTUALENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("XDG_CACHE_HOME", str(project / "cache"))
    return project / "cache" / "sagelab" / "envs"


def engine(project: Path, parity: bool = False) -> LocalEngine:
    if parity:
        with open(project / "pyproject.toml", "a") as pyproject:
            pyproject.write("parity = true\n")
    return LocalEngine(load_settings(project))


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def training(name: str, tag: str, code_uri: str) -> dict[str, Any]:
    """A script-mode training step on the scikit-learn image `tag`, running train.py from `code_uri`."""
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": SKLEARN.format(tag), "TrainingInputMode": "File"},
            "HyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{code_uri}"'},
            "InputDataConfig": [],
            "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }


def train(lab: LocalEngine, files: dict[str, str], tag: str = "1.2-1") -> tuple[Any, str]:
    """Run one training step with these code files; returns its state and its log."""
    uri = f"s3://test-bucket/code/{hashlib.sha256(repr(files).encode()).hexdigest()[:12]}/sourcedir.tar.gz"
    lab.store.put_bytes(uri, tarball(files))
    execution = lab.start(parse(definition(training("Train", tag, uri))), "test", {})
    state = execution.steps["Train"]
    return state, Path(state.log_path).read_text()


def built(envs: Path) -> list[str]:
    """The environments in the cache (the published links) and any build folder left beside them."""
    return sorted(path.name for path in envs.iterdir() if not path.name.endswith(".lock")) if envs.is_dir() else []


PROBE = """
import os, shutil, sys
import pandas, sagelab_probe
print("probe:", sagelab_probe.VALUE, "pandas:", pandas.__version__)
print("python:", sys.executable)
print("pip:", shutil.which("pip"), "python3:", shutil.which("python3"))
"""


def test_requirements_are_installed_once_and_reused(project: Path, offline: Path) -> None:
    lab = engine(project)
    files = {"train.py": PROBE, "requirements.txt": "sagelab-probe==1.0\n"}
    state, log = train(lab, files)
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert "installing requirements.txt (hash " in log and "Successfully installed sagelab-probe-1.0" in log
    assert "probe: probe one pandas:" in log  # the requirement, and sagelab's own packages beside it
    (env,) = [name for name in built(offline) if "-" not in name]
    assert f"python: {offline / env}/bin/python" in log
    assert f"pip: {offline / env}/bin/pip python3: {offline / env}/bin/python3" in log  # a script's pip installs into it
    assert importlib.util.find_spec("sagelab_probe") is None  # sagelab's environment is untouched

    state, log = train(lab, files)
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert f"reusing environment {offline / env} (requirements.txt, hash {env})" in log
    assert "installing" not in log and "Successfully installed" not in log  # no pip call
    assert len(built(offline)) == 2  # the link and its folder


def test_a_pinned_requirement_wins_over_sagelabs_own_version(project: Path) -> None:
    code = "import idna, pandas\nprint('idna', idna.__version__, 'pandas', pandas.__version__)\n"
    state, log = train(engine(project), {"train.py": code, "requirements.txt": "idna==0.1\n"})
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert "idna 0.1 pandas" in log
    import idna

    assert idna.__version__ != "0.1"


def test_a_bad_requirement_fails_the_step_and_keeps_nothing(project: Path, offline: Path) -> None:
    state, log = train(engine(project), {"train.py": "print('never runs')\n", "requirements.txt": "no-such-package-xyz==9\n"})
    assert state.status == "Failed"
    reason = state.failure_reason
    assert reason.startswith("requirements.txt: pip could not install it (exit code 1), so the step did not run"), reason
    assert "No matching distribution found for no-such-package-xyz==9" in reason
    assert "Fix requirements.txt" in reason and "Traceback" not in reason
    assert "never runs" not in log
    assert built(offline) == []


def test_processing_code_requirements_and_a_scripts_own_pip_install(project: Path, offline: Path) -> None:
    """A FrameworkProcessor's sourcedir.tar.gz holds requirements.txt; two steps with it share one build."""
    lab = engine(project)
    lab.store.put_bytes("s3://test-bucket/code/sourcedir.tar.gz", tarball({"requirements.txt": "sagelab-probe\n"}))
    own_pip = (
        "import subprocess, sagelab_probe\n"
        "subprocess.run(['pip', 'install', '--quiet', 'sagelab-probe-two'], check=True)\n"
        "import sagelab_probe_two\n"
        "print('probe', sagelab_probe.VALUE, 'installed at', sagelab_probe_two.__file__)\n"
    )
    code = {"A": own_pip, "B": "import sagelab_probe\nprint('probe', sagelab_probe.VALUE)\n"}
    steps = [processing_step(name, code[name], inputs={"code": "s3://test-bucket/code/sourcedir.tar.gz"}) for name in code]
    for step in steps:
        step["Arguments"]["AppSpecification"]["ImageUri"] = SKLEARN.format("1.2-1")
    execution = lab.start(parse(definition(*steps)), "test", {})
    logs = [Path(state.log_path).read_text() for state in execution.steps.values()]
    assert execution.status == "Succeeded", ([s.failure_reason for s in execution.steps.values()], logs)
    assert sum("installing requirements.txt" in log for log in logs) == 1
    assert sum("reusing environment" in log for log in logs) == 1
    (env,) = [name for name in built(offline) if "-" not in name]
    assert f"probe probe one installed at {offline / env}/lib/python{PYTHON}/site-packages/sagelab_probe_two" in logs[0]
    assert "probe probe one" in logs[1]
    assert importlib.util.find_spec("sagelab_probe_two") is None


def test_parity_runs_on_the_images_release(project: Path) -> None:
    state, log = train(engine(project, parity=True), {"train.py": "import sklearn\nprint('sklearn', sklearn.__version__)\n"})
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert "installing the framework release of sagemaker-scikit-learn:1.2-1 (hash " in log
    assert "sklearn 1.2.1" in log  # the image's own, though 1.2.2 is there too
    assert f"numpy 1.24.1 (sagemaker-scikit-learn:1.2-1 ships it) is not installable on Python {PYTHON}" in log
    versions = state.properties[environments.PROPERTY]
    assert (versions["ImageVersion"], versions["StepVersion"], versions["Drift"]) == ("1.2.1", "1.2.1", False)


def test_a_parity_run_never_reuses_a_cached_step_of_a_run_without_parity(project: Path) -> None:
    files = {"train.py": "import sklearn\nprint('sklearn', sklearn.__version__)\n"}
    uri = "s3://test-bucket/code/cached/sourcedir.tar.gz"
    plain = engine(project)
    plain.store.put_bytes(uri, tarball(files))
    document = parse(definition(training("Train", "1.2-1", uri)))
    plain.start(document, "test", cache="content")
    assert "cached" in plain.start(document, "test", cache="content").steps["Train"].note
    on_parity = engine(project, parity=True).start(document, "test", cache="content").steps["Train"]
    assert on_parity.note == "ran: its code or input data changed since the last run"
    assert "sklearn 1.2.1" in Path(on_parity.log_path).read_text()


def test_parity_falls_back_to_the_closest_installable_release(project: Path) -> None:
    lab = engine(project, parity=True)
    files = {"train.py": "import sklearn\nprint('sklearn', sklearn.__version__)\n"}
    state, log = train(lab, files, tag="0.23-1")
    assert state.status == "Succeeded", (state.failure_reason, log)
    note = f"scikit-learn 0.23.2 is not installable on Python {PYTHON}; using 1.1.3, the closest"
    assert note in log and "sklearn 1.1.3" in log
    versions = state.properties[environments.PROPERTY]
    assert (versions["ImageVersion"], versions["StepVersion"], versions["Drift"]) == ("0.23.2", "1.1.3", True)
    state, log = train(lab, files, tag="0.23-1")
    assert "reusing environment" in log and note in log  # the reason is told again on every run


def test_drift_is_in_the_run_summary(project: Path) -> None:
    """One line per image and environment, naming the steps that share it."""
    steps = [processing_step(name, "print('prepared')") for name in ("Prep", "Score")]
    for step in steps:
        step["Arguments"]["AppSpecification"]["ImageUri"] = SKLEARN.format("1.2-1")
    write(project / "pipe.json", definition(*steps))
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    result = subprocess.run([str(Path(sys.executable).parent / "sagelab"), "run", "pipe.json"], cwd=project,
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    from importlib.metadata import version

    line = f"  Prep, Score: scikit-learn {version('scikit-learn')} in sagelab's environment, but sagemaker-scikit-learn:1.2-1 ships 1.2.1 (drift)"
    assert "Framework versions (the step's against its image's):\n" + line in result.stdout, result.stdout


def test_parity_must_be_a_boolean(project: Path) -> None:
    with open(project / "pyproject.toml", "a") as pyproject:
        pyproject.write('parity = "yes"\n')
    with pytest.raises(ConfigError, match="parity must be true or false; got 'yes'"):
        load_settings(project)


def test_closest_and_the_image_table() -> None:
    assert doctest.testmod(environments, raise_on_error=True).attempted >= 4
    assert environments.closest("2.1", ["2.0.1", "2.1.0", "2.1.2", "2.2.0"]) == "2.1.2"
    assert environments.closest("1.5.2", ["1.4.0", "1.7.6", "2.0.3"]) == "1.4.0"  # the nearer minor release
    assert environments.closest("1.4", ["1.3.2", "1.5.0", "1.5.1"]) == "1.5.1"  # equally near: the newer
    assert environments.closest("1.13.1", ["2.5.0", "2.5.1", "2.6.0"]) == "2.5.1"
    assert environments.closest("0.90", []) is None


def test_the_v3_model_trainers_requirements_go_to_a_cached_environment(project: Path, offline: Path) -> None:
    """tests/fixtures/sdk/v3/model_trainer_requirements.json (SDK v3): sm_train.sh pip-installs SourceCode.requirements."""
    fixtures = Path(__file__).parent / "fixtures" / "sdk" / "v3"
    local = engine(project)
    dump = fixtures / "model_trainer_requirements.s3"
    for file in (p for p in dump.rglob("*") if p.is_file()):
        local.store.put_file(f"s3://{file.relative_to(dump).as_posix()}", file)
    execution = local.start(parse((fixtures / "model_trainer_requirements.json").read_text()), "v3")
    train = execution.steps["Train"]
    log = Path(train.log_path).read_text()
    assert execution.status == "Succeeded", (train.failure_reason, log[-3000:])
    assert "installing requirements.txt" in log
    model = train.properties["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(fileobj=io.BytesIO(local.store.get_bytes(model))) as archive:
        assert archive.extractfile("greeting.txt").read() == b"hello sagelab"  # type: ignore[union-attr]
    assert importlib.util.find_spec("sagelab_fixture_greeting") is None  # sagelab's own environment is untouched


def test_sagelab_envs_lists_and_deletes_cached_environments(project: Path, offline: Path) -> None:
    state, _ = train(engine(project), {"train.py": "import sagelab_probe\n", "requirements.txt": "sagelab-probe==1.0\n"})
    assert state.status == "Succeeded"
    [key] = [cached.key for cached in environments.cached()]
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}

    def sagelab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "sagelab"), *args], cwd=project, capture_output=True,
                              text=True, env={**env, "COLUMNS": "200"}, timeout=60)  # fmt: skip

    listing = sagelab("envs")
    assert listing.returncode == 0 and key in listing.stdout and "requirements.txt" in listing.stdout, listing.stdout
    refused = sagelab("envs", "delete")
    assert refused.returncode == 1 and "name one environment" in refused.stderr and "Traceback" not in refused.stderr
    unknown = sagelab("envs", "delete", "nope")
    assert unknown.returncode == 1 and f"no environment match 'nope'; cached environments: {key}" in unknown.stderr
    deleted = sagelab("envs", "delete", key[:6])
    assert deleted.returncode == 0 and deleted.stdout.startswith("deleted 1 environment (")
    assert built(offline) == []
    again, log = train(engine(project), {"train.py": "import sagelab_probe\n", "requirements.txt": "sagelab-probe==1.0\n"})
    assert again.status == "Succeeded" and "installing requirements.txt" in log  # rebuilt on demand
