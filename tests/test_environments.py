"""Host-mode step environments: requirements.txt installed once per hash over sagelab's packages, version drift, the cache.

(The image environments, which are the default, are tested in test_image_environments.py.)

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
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import definition, pip_offline, processing_step, wheel, write
from sagelab.config import load_settings
from sagelab.containers import environments
from sagelab.definition import parse
from sagelab.engines.local import LocalEngine
from sagelab.errors import ConfigError

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:{}-cpu-py3"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


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
    return pip_offline(monkeypatch, project / "cache", wheels)


def engine(project: Path) -> LocalEngine:
    """A local engine that runs steps on sagelab's own packages (environment = "host")."""
    pyproject = project / "pyproject.toml"
    if 'environment = "host"' not in pyproject.read_text():
        pyproject.write_text(pyproject.read_text() + 'environment = "host"\n')
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
    layer = project / ".sagelab" / "jobs" / f"{state.job_name}.python"  # the job's own venv over the environment
    assert f"python: {layer}/bin/python" in log
    assert f"pip: {layer}/bin/pip python3: {layer}/bin/python3" in log  # a script's pip installs into the job's venv
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
    first = execution.steps["A"]
    layer = project / ".sagelab" / "jobs" / f"{first.job_name}.python"
    assert f"probe probe one installed at {layer}/lib/python{PYTHON}/site-packages/sagelab_probe_two" in logs[0]  # that job only
    assert "probe probe one" in logs[1]
    assert not list((offline / env).rglob("sagelab_probe_two"))  # not in the shared environment
    assert importlib.util.find_spec("sagelab_probe_two") is None


def test_drift_is_in_the_run_summary(project: Path) -> None:
    """One line per image and environment, naming the steps that share it."""
    steps = [processing_step(name, "print('prepared')") for name in ("Prep", "Score")]
    for step in steps:
        step["Arguments"]["AppSpecification"]["ImageUri"] = SKLEARN.format("1.2-1")
    write(project / "pipe.json", definition(*steps))
    engine(project)  # environment = "host"
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    result = subprocess.run([str(Path(sys.executable).parent / "sagelab"), "run", "pipe.json"], cwd=project,
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    from importlib.metadata import version

    line = f"  Prep, Score: sagelab's environment: scikit-learn {version('scikit-learn')} (image 1.2.1), pandas {version('pandas')} (image 1.1.3)"
    assert "Environments (what each step ran on, against its image):\n" + line in result.stdout, result.stdout


def test_environment_must_be_image_or_host_and_parity_says_what_replaced_it(project: Path) -> None:
    with open(project / "pyproject.toml", "a") as pyproject:
        pyproject.write('environment = "docker"\n')
    with pytest.raises(ConfigError, match='environment must be "image" .* or "host" .*; got \'docker\''):
        load_settings(project)
    (project / "pyproject.toml").write_text("[tool.sagelab]\nparity = true\n")
    with pytest.raises(ConfigError, match="parity is gone: steps run on their image's packages by default now"):
        load_settings(project)


def test_closest_and_the_image_table() -> None:
    from sagelab.containers.environments import manifest

    assert doctest.testmod(manifest, raise_on_error=True).attempted >= 4
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


class Log:
    """A step log for calling `environments` directly."""

    def __init__(self, path: Path) -> None:
        self.log_path = path
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def tar_with(members: list[tarfile.TarInfo | tuple[str, str]]) -> bytes:
    """A .tar.gz of files (name, text) and of members given as they are (links)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            info = tarfile.TarInfo(member[0])
            info.size = len(member[1].encode())
            archive.addfile(info, io.BytesIO(member[1].encode()))
    return buffer.getvalue()


def process(lab: LocalEngine, archive: bytes, code: str = "print('ran')\n") -> tuple[Any, Any, str]:
    """Run a processing step whose code input is this sourcedir.tar.gz; returns the execution, the step and its log."""
    uri = f"s3://test-bucket/code/{hashlib.sha256(archive).hexdigest()[:12]}/sourcedir.tar.gz"
    lab.store.put_bytes(uri, archive)
    execution = lab.start(parse(definition(processing_step("Prep", code, inputs={"code": uri}))), "test", {})
    state = execution.steps["Prep"]
    return execution, state, Path(state.log_path).read_text()


def test_a_bad_sourcedir_archive_fails_the_step_saying_what_is_wrong(project: Path, offline: Path) -> None:
    """Unpacked for pip only when requirements.txt names files in it; then links out of it or corruption fail the step cleanly."""
    lab = engine(project)
    hosts = tarfile.TarInfo("hosts")
    hosts.type, hosts.linkname = tarfile.SYMTYPE, "/etc/hosts"
    execution, state, log = process(lab, tar_with([("requirements.txt", "-r other.txt\n"), ("other.txt", "sagelab-probe\n"), hosts]))
    assert execution.status == "Failed" and state.status == "Failed", (state.failure_reason, log)
    reason = state.failure_reason
    assert "sourcedir.tar.gz: cannot unpack it to install its requirements.txt, which names files in it: 'hosts' is a link to an absolute path" in reason
    assert "without links that point outside it" in reason and "Traceback" not in reason + log
    assert built(offline) == []

    # requirements.txt names nothing in the archive: pip gets requirements.txt alone, the link is never unpacked
    execution, state, log = process(lab, tar_with([("requirements.txt", "sagelab-probe\n"), hosts]), "import sagelab_probe\n")
    assert execution.status == "Succeeded", (state.failure_reason, log)

    # a truncated archive whose requirements.txt comes first
    whole = tar_with([("requirements.txt", "-r other.txt\n"), ("other.txt", "sagelab-probe\n"), ("data.bin", base64.b64encode(os.urandom(90000)).decode())])
    execution, state, log = process(lab, whole[: len(whole) // 2])
    assert execution.status == "Failed", (state.failure_reason, log)
    assert "it is not a complete .tar.gz (EOFError" in state.failure_reason and "Upload it again" in state.failure_reason
    assert "Traceback" not in state.failure_reason + log


def test_requirements_naming_files_in_an_archive_install_from_it(project: Path, offline: Path) -> None:
    execution, state, log = process(engine(project), tar_with([("requirements.txt", "-r other.txt\n"), ("other.txt", "sagelab-probe-two\n")]),
                                    "import sagelab_probe_two\nprint('two', sagelab_probe_two.__version__)\n")  # fmt: skip
    assert execution.status == "Succeeded", (state.failure_reason, log)
    assert "two 2.0" in log


def test_the_hash_covers_sagelabs_installed_distributions(project: Path, offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A requirement sagelab's environment satisfies installs nothing: upgrading it there makes a new environment."""
    site = tmp_path / "base-site"
    site.mkdir()
    real = environments.host.base_sites()
    monkeypatch.setattr(environments.host, "base_sites", lambda: [*real, str(site)])

    def install(version: str) -> None:  # as pip would: the old release's files go, the new one's come
        for old in site.iterdir():
            shutil.rmtree(old)
        wheel(tmp_path, "sagelab-probe", version, "sagelab_probe", f"VALUE = 'base {version}'\n")
        with zipfile.ZipFile(tmp_path / f"sagelab_probe-{version}-py3-none-any.whl") as archive:
            archive.extractall(site)

    install("1.5")
    assert "sagelab-probe==1.5" in environments.host._base_distributions()
    lab = engine(project)
    files = {"train.py": "import sagelab_probe\nprint('probe:', sagelab_probe.VALUE)\n", "requirements.txt": "sagelab-probe>=1.0\n"}
    state, log = train(lab, files)
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert "probe: base 1.5" in log and "Requirement already satisfied: sagelab-probe" in log
    state, log = train(lab, files)
    assert "reusing environment" in log  # nothing changed

    install("1.6")
    state, log = train(lab, files)
    assert state.status == "Succeeded", (state.failure_reason, log)
    assert "installing requirements.txt" in log and "probe: base 1.6" in log  # a new hash, not the environment built on 1.5
    assert environments.host._base_distributions() is environments.host._base_distributions()  # kept while the folders do not change


SETUP = """
import os
from setuptools import setup
with open({seen!r}, "a") as seen:
    seen.write(f"secret={{os.environ.get('AWS_SECRET_ACCESS_KEY')}} links={{bool(os.environ.get('PIP_FIND_LINKS'))}} "
               f"proxy={{os.environ.get('HTTPS_PROXY')}}\\n")
setup(name="sagelab-local-model", version="1.0", py_modules=["local_model"], package_dir={{"": "src"}})
"""


def test_a_local_package_is_keyed_by_its_code_and_built_without_aws_credentials(project: Path, offline: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`.` in requirements.txt: the code folder is part of the hash, and pip (setup.py) runs without the user's AWS credentials."""
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # setuptools from sagelab's environment: no index to fetch it from
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-users-real-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    seen = project / "seen.txt"
    lab = engine(project)
    script = "import local_model\nprint('model:', local_model.NAME)\n"
    for name in ("A", "B", "A"):
        files = {"train.py": script, "requirements.txt": ".\n", "setup.py": SETUP.format(seen=str(seen)), "src/local_model.py": f"NAME = {name!r}\n"}
        state, log = train(lab, files)
        assert state.status == "Succeeded", (state.failure_reason, log)
        assert f"model: {name}" in log  # B never gets A's package though the requirements read the same (src/ is not on the path)
    assert "reusing environment" in log  # A again: same code, same hash
    assert len([name for name in built(offline) if "-" not in name]) == 2
    lines = set(seen.read_text().splitlines())
    assert lines == {"secret=None links=True proxy=http://proxy.invalid:3128"}, lines


def test_an_editable_local_install_is_refused(project: Path, offline: Path) -> None:
    for requirements in ("-e .\n", "-r more.txt\n"):
        files = {"train.py": "print('never runs')\n", "requirements.txt": requirements, "more.txt": "--editable ./pkg\n"}
        state, log = train(engine(project), files)
        assert state.status == "Failed", log
        assert "is an editable install of a local folder, which sagelab does not make" in state.failure_reason
        assert "the cached environment outlives the job's folder" in state.failure_reason and "Write " in state.failure_reason
        assert "never runs" not in log and "Traceback" not in log
    assert built(offline) == []


def test_sdk_driver_requirements_stay_in_their_folder(tmp_path: Path, wheels: Path) -> None:
    """The drivers run pip in the requirements file's channel: relative references resolve there; names out of it are refused."""
    from sagelab.containers import drivers
    from sagelab.errors import ExecutionError

    root = tmp_path / "job"
    code = root / "input" / "data" / "code"
    (code / "reqs").mkdir(parents=True)
    (root / "input" / "data" / "sm_drivers").mkdir(parents=True)
    wheel(code, "sagelab-probe", "1.0", "sagelab_probe", "VALUE = 'from the code channel'\n")
    (code / "reqs" / "dev.txt").write_text("-r base.txt\n")
    (code / "reqs" / "base.txt").write_text("./sagelab_probe-1.0-py3-none-any.whl\n")  # relative to the folder pip runs in
    (code / "requirements.txt").write_text("sagelab-probe-two\n")

    def folder(name: str | None) -> Path | None:
        (root / "input" / "data" / "sm_drivers" / "sourcecode.json").write_text(json.dumps({"requirements": name}))
        return drivers.requirements_folder({}, root, tmp_path / "job.requirements")

    assert folder("requirements.txt") == code  # the channel itself: nothing copied
    mirror = folder("reqs/dev.txt")
    assert mirror == tmp_path / "job.requirements" and (mirror / "requirements.txt").read_text() == "-r reqs/dev.txt\n"
    log = Log(tmp_path / "log.txt")
    runtime = environments.prepare(log, None, mirror, mode="host")
    probe = subprocess.run([str(runtime.python), "-c", "import sagelab_probe; print(sagelab_probe.VALUE)"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert probe.stdout.strip() == "from the code channel", probe.stderr
    for escaping in ("../../sm_drivers/sourcecode.json", "/etc/hosts"):
        with pytest.raises(ExecutionError, match=f"names the requirements file {escaping!r}, which is outside its channel code"):
            folder(escaping)
    function = {"ContainerEntrypoint": ["/bin/bash", "/opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh"],
                "ContainerArguments": ["--dependency_settings", json.dumps({"dependency_file": "../code/requirements.txt"})]}  # fmt: skip
    with pytest.raises(ExecutionError, match="the function step's --dependency_settings names the requirements file"):
        drivers.requirements_folder(function, root, tmp_path / "job.requirements")


def test_a_pip_killed_by_a_signal_ends_the_build(tmp_path: Path) -> None:
    """Ctrl-C or a stopped execution during a build is not 'the requirements are wrong'."""
    from sagelab.errors import ExecutionError

    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nkill -TERM $$\n")
    python.chmod(0o755)
    with pytest.raises(ExecutionError, match="was stopped by signal 15, so the model server did not start"):
        environments.host._pip(Log(tmp_path / "log.txt"), python, ["install", "x"], tmp_path, "requirements.txt", environments.SERVER)


def test_a_failure_says_what_the_environment_was_for(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("no-such-package-xyz==9\n")
    from sagelab.errors import ExecutionError

    with pytest.raises(ExecutionError) as failed:
        environments.prepare(Log(tmp_path / "log.txt"), None, tmp_path, mode="host", purpose=environments.SERVER)
    assert "so the model server did not start and no environment was kept" in str(failed.value)
    assert str(failed.value).endswith("and deploy again")


def fake_environment(envs: Path, key: str, manifest: str = '{"built_for": "requirements.txt", "python": "py", "notes": []}') -> None:
    """A published environment without pip: a folder with a manifest and the `<key>` link to it."""
    folder = envs / f"{key}-built"
    folder.mkdir(parents=True)
    (folder / environments.cache.MANIFEST).write_text(manifest)
    (folder / "payload").write_bytes(b"x" * 1000)
    (envs / key).symlink_to(folder.name)


def test_sagelab_envs_delete_all_sizes_each_environment_once(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelab.cli import envs as cli

    keys = [f"{n:016x}" for n in range(5)]
    for key in keys:
        fake_environment(offline, key)
    sized: list[str] = []
    describe = environments.cache._describe

    def counted(key: str, manifest: Any) -> environments.CachedEnvironment:
        sized.append(key)
        return describe(key, manifest)

    monkeypatch.setattr(environments.cache, "_describe", counted)
    monkeypatch.setattr(environments, "cached", lambda: pytest.fail("delete --all lists and sizes every environment"))
    cli.delete(key=None, every=True)
    assert sorted(sized) == keys and built(offline) == []


def test_a_corrupt_manifest_or_a_concurrent_delete_is_an_error_not_a_traceback(project: Path, offline: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from sagelab.errors import ExecutionError

    fake_environment(offline, "00000000000000aa", "{not json")
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    listing = subprocess.run([str(Path(sys.executable).parent / "sagelab"), "envs"], cwd=project, capture_output=True, text=True,
                             env=env, timeout=60, check=False)  # fmt: skip
    assert listing.returncode == 1 and "Traceback" not in listing.stderr, listing.stderr
    assert "environment 00000000000000aa: its manifest" in listing.stderr and "is corrupt" in listing.stderr
    assert "sagelab envs delete 00000000000000aa" in listing.stderr
    assert environments.remove("00000000000000aa").key == "00000000000000aa"  # it can still be deleted

    fake_environment(offline, "00000000000000bb")
    monkeypatch.setattr(environments.cache, "keys", lambda: ["00000000000000bb"])  # listed, then deleted by someone else
    (offline / "00000000000000bb").unlink()
    with pytest.raises(ExecutionError, match="environment 00000000000000bb was deleted meanwhile"):
        environments.remove("00000000000000bb")
