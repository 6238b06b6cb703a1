"""Each sandbox mode gives steps the /opt/ml SageMaker's containers have, as far as the mode promises.

Every mode runs the same pipeline: the SDK's own repack step (a shell launcher, `_repack_script_launcher.sh`,
starting `python _repack_model.py`), a shell entry point, and a Python script that lists /opt/ml with a
subprocess. The namespace modes and shared mode run all three; remap mode runs the Python-only parts and
refuses the rest before starting, saying why and how to fix it. A mode this machine does not allow (the
root namespace as a normal user) is skipped with the machine's reason, so the suite runs as root and as a
normal user alike (CI does both).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT, SAGELAB, definition, processing_step, write
from sagelab.config import load_settings
from sagelab.containers import sandbox
from sagelab.engines.local import LocalEngine, StepRecord
from sagelab.errors import ConfigError

REPACK = ROOT / "tests" / "fixtures" / "corpus" / "scripts" / "pytorch"
PRIVATE_OPT = ROOT / "tests" / "scripts" / "private_opt.py"
BUCKET = "s3://sandbox-test"

LISTING = """
import subprocess
listing = subprocess.run(["ls", "/opt/ml/processing/input/data"], capture_output=True, text=True, check=True).stdout
open("/opt/ml/processing/output/listing/ls.txt", "w").write(listing)
"""
SHELL = 'ls /opt/ml/processing/input/data > /opt/ml/processing/output/listing/ls.txt && tar -C /opt/ml/processing/input -czf /opt/ml/processing/output/listing/data.tar.gz data'


def repack_step() -> dict[str, object]:
    """The Training step the SDK adds to register a framework model with an entry point (as in tests/fixtures/corpus)."""
    return {
        "Name": "Repack", "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                                       "TrainingInputMode": "File"},
            "HyperParameters": {"dependencies": "null", "inference_script": '"inference.py"', "model_archive": f"{BUCKET}/model/model.tar.gz",
                                "sagemaker_program": '"_repack_script_launcher.sh"', "sagemaker_region": '"us-east-1"',
                                "sagemaker_submit_directory": f'"{BUCKET}/code/sourcedir.tar.gz"', "source_dir": '"scripts"'},
            "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
                "S3DataDistributionType": "FullyReplicated", "S3DataType": "S3Prefix", "S3Uri": f"{BUCKET}/model/model.tar.gz"}}}],
            "OutputDataConfig": {"S3OutputPath": f"{BUCKET}/repacked"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
            "RoleArn": "arn:aws:iam::000000000000:role/R",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }  # fmt: skip


def shell_step() -> dict[str, object]:
    step = processing_step("Shell", "", inputs={"data": f"{BUCKET}/data"}, outputs=["listing"])
    step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] = ["sh", "-c", SHELL]  # type: ignore[index]
    return step


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def seeded(project: Path) -> Path:
    """The project with the model, the repack code (the SDK's scripts) and input data in its store."""
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\n\n[tool.sagelab]\nenvironment = "host"\n')
    store = LocalEngine(load_settings(project)).store
    store.put_bytes(f"{BUCKET}/model/model.tar.gz", tarball({"model.pth": b"weights"}))
    code = {name: (REPACK / name).read_bytes() for name in ("_repack_script_launcher.sh", "_repack_model.py", "inference.py")}
    store.put_bytes(f"{BUCKET}/code/sourcedir.tar.gz", tarball(code))
    for name in ("a.csv", "b.csv"):
        store.put_bytes(f"{BUCKET}/data/{name}", b"x,y\n1,2\n")
    return project


def run(project: Path, mode: str, *steps: dict[str, object], set_up: bool = True) -> tuple[dict[str, StepRecord], str]:
    """Run a pipeline of `steps` with the sandbox forced to `mode`: each step's record, and what the run printed."""
    pipeline = write(project / "pipeline.json", definition(*steps))
    env = {**os.environ, sandbox.FORCE: mode, "XDG_STATE_HOME": str(project / "state")}
    command = [SAGELAB, "run", str(pipeline)]
    if mode == "shared" and set_up:  # `sagelab setup` makes /opt/ml its link, in a private /opt
        command = [sys.executable, str(PRIVATE_OPT), "sh", "-c", f"{SAGELAB} setup --force && {shlex.join(command)}"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env, timeout=300)
    records = LocalEngine(load_settings(project)).records
    [latest] = records.executions(limit=1)
    return {step.name: step for step in records.steps(latest.id)}, result.stdout + result.stderr


def available(mode: str) -> None:
    """Skip a mode this machine does not allow, with its reason."""
    reason = sandbox.probe()[mode] if mode != "shared" else PRIVATE_OPT_PROBLEM
    if reason:
        pytest.skip(f"{mode} mode is not available here: {reason}")


PRIVATE_OPT_PROBLEM = "" if not sandbox.probe()["namespace"] or not sandbox.probe()["user-namespace"] else \
    "the test gives shared mode its /opt/ml link inside a private mount namespace, which needs one of the namespace modes"


@pytest.mark.parametrize("mode", ["namespace", "user-namespace", "shared"])
def test_every_program_sees_the_jobs_opt_ml(seeded: Path, mode: str) -> None:
    available(mode)
    listing = processing_step("Listing", LISTING, inputs={"data": f"{BUCKET}/data"}, outputs=["listing"])
    steps, output = run(seeded, mode, repack_step(), shell_step(), listing)
    assert {name: step.status for name, step in steps.items()} == dict.fromkeys(("Repack", "Shell", "Listing"), "Succeeded"), output
    store = LocalEngine(load_settings(seeded)).store
    for name in ("Shell", "Listing"):
        assert store.get_bytes(f"s3://test-bucket/{name}/listing/ls.txt") == b"a.csv\nb.csv\n"
        assert steps[name].properties[sandbox.PROPERTY] == mode  # type: ignore[index]
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes("s3://test-bucket/Shell/listing/data.tar.gz"))) as archive:
        assert sorted(archive.getnames()) == ["data", "data/a.csv", "data/b.csv"]
    repacked = steps["Repack"].properties["ModelArtifacts"]["S3ModelArtifacts"]  # type: ignore[index]
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(repacked))) as archive:
        assert {"model.pth", "code/inference.py"} <= set(archive.getnames())
    assert f"Sandbox: {mode} mode" in output
    if mode == "shared":
        assert f"/opt/ml now points to {seeded / 'state' / 'sagelab' / 'opt-ml'}" in output
    assert not Path("/opt/ml/processing").exists()  # nothing landed in the machine's own /opt/ml


SNOOP = """
import json, os
seen = {"home": os.environ["HOME"]}
for name in ("JOBS", "STORE", "AWSDIR"):
    folder = os.environ[name]
    seen[name] = sorted(os.listdir(folder)) if os.path.isdir(folder) else None
try:
    open(os.path.join(os.environ["JOBS"], "planted"), "w").close()
    seen["write"] = "allowed"
except OSError as exc:
    seen["write"] = exc.strerror
open(os.path.join(seen["home"], "mine"), "w").close()
json.dump(seen, open("/opt/ml/processing/output/seen/seen.json", "w"))
"""


@pytest.mark.parametrize("mode", ["namespace", "user-namespace", "shared", "remap"])
def test_a_step_sees_its_own_home_and_in_namespace_modes_no_other_job_nor_the_store(
        seeded: Path, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    available(mode)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the user's home, with AWS files a step must not see
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "credentials").write_text("[default]\n")
    state = seeded / ".sagelab"
    first = processing_step("First", "pass")
    second = processing_step("Second", SNOOP, outputs=["seen"], DependsOn=["First"])
    second["Arguments"]["Environment"] = {"JOBS": str(state / "jobs"), "STORE": str(state / "s3"), "AWSDIR": str(tmp_path / "home" / ".aws")}
    steps, output = run(seeded, mode, first, second)
    assert steps["Second"].status == "Succeeded", output + Path(steps["Second"].log_path or "").read_text()
    seen = json.loads(LocalEngine(load_settings(seeded)).store.get_bytes("s3://test-bucket/Second/seen/seen.json"))
    home = Path(seen["home"])
    assert home.name.endswith(".home") and home.parent == state / "jobs" and (home / "mine").exists()  # its own, in the job's folders
    if mode in ("namespace", "user-namespace"):
        assert seen["JOBS"] and all(name.startswith(home.name.removesuffix(".home")) for name in seen["JOBS"]), seen  # not First's
        assert not seen["STORE"] and not seen["AWSDIR"] and seen["write"] != "allowed", seen  # hidden: empty or absent
    else:  # the other modes change only what the step is told: its HOME
        assert "sandbox-test" in seen["STORE"] and seen["AWSDIR"] == ["credentials"], seen


COPY_AND_SCRIBBLE = (
    "import shutil; shutil.copyfile('/opt/ml/processing/input/data/blob.bin', '/opt/ml/processing/output/out/blob.bin'); "
    "open('/opt/ml/processing/input/data/blob.bin', 'ab').write(b'changed by the step'); "
    "open('/opt/ml/processing/input/data/new.txt', 'w').write('new')"
)


@pytest.mark.parametrize("mode", ["namespace", "user-namespace", "shared", "remap"])
def test_inputs_are_the_steps_own_files_and_outputs_move_into_the_store(seeded: Path, mode: str) -> None:
    """A large input is shown copy-on-write where a namespace allows (else copied, and the copy dropped after the job): the step
    may write into it, and the store's object never changes; its outputs are moved into the store, so no second copy is kept."""
    available(mode)
    store = LocalEngine(load_settings(seeded)).store
    blob = os.urandom(9 * 1024 * 1024)
    store.put_bytes(f"{BUCKET}/big/blob.bin", blob)
    steps, output = run(seeded, mode, processing_step("Copy", COPY_AND_SCRIBBLE, inputs={"data": f"{BUCKET}/big"}, outputs=["out"]))
    assert steps["Copy"].status == "Succeeded", output
    assert store.get_bytes(f"{BUCKET}/big/blob.bin") == blob and store.get_bytes("s3://test-bucket/Copy/out/blob.bin") == blob
    assert [info.key for info in store.list(f"{BUCKET}/big/")] == ["big/blob.bin"]  # the step's new file stayed its own
    [job] = [folder for folder in (seeded / ".sagelab" / "jobs").glob("pipelines-*-Copy-*") if "." not in folder.name]
    assert list((job / "processing" / "output" / "out").iterdir()) == []  # moved into the store, not copied
    log = Path(steps["Copy"].log_path or "").read_text()
    mounted = mode in ("namespace", "user-namespace")
    assert ("shown copy-on-write (nothing copied)" in log) == mounted, log
    assert not any((job / "processing" / "input" / "data").glob("*"))  # no copy of the input is kept (none was made where mounted)
    assert not job.with_name(f"{job.name}.overlay").exists()  # nor what the step wrote over it


def test_remap_mode_runs_python_and_refuses_other_programs_before_they_start(seeded: Path) -> None:
    python_only = processing_step("Python", "open('/opt/ml/processing/output/listing/ok.txt', 'w').write('ok')", outputs=["listing"])
    steps, output = run(seeded, "remap", repack_step(), shell_step(), python_only)
    assert steps["Python"].status == "Succeeded", output
    assert steps["Python"].properties[sandbox.PROPERTY] == "remap"  # type: ignore[index]
    for name, program in (("Repack", "_repack_script_launcher.sh"), ("Shell", "sh")):
        assert steps[name].status == "Failed"
        reason = steps[name].failure_reason or ""
        assert program in reason and "remap mode" in reason and "SAGELAB_SANDBOX" in reason, reason
        assert len(reason.splitlines()) == 1
        assert "Traceback" not in Path(steps[name].log_path or "").read_text()


def test_a_forced_mode_the_machine_lacks_fails_the_step_saying_so(project: Path) -> None:
    reasons = sandbox.probe()
    missing = next((mode for mode in ("namespace", "user-namespace", "shared") if reasons[mode]), None)
    if missing is None:
        pytest.skip("every mode works here")
    steps, output = run(project, missing, processing_step("P", "pass"), set_up=False)
    assert steps["P"].status == "Failed"
    assert f"forced to {missing} mode" in (steps["P"].failure_reason or ""), output


def test_remap_as_the_machines_best_names_the_reason_and_the_fix() -> None:
    box = sandbox.Sandbox("remap", {"namespace": "needs root", "user-namespace": "the kernel refuses unprivileged user namespaces"})
    reason = box.refusal(["/bin/sh", "/opt/ml/code/_repack_script_launcher.sh"]) or ""
    assert "'/bin/sh /opt/ml/code/_repack_script_launcher.sh' needs a real /opt/ml" in reason
    assert "(the kernel refuses unprivileged user namespaces)" in reason and "run `sagelab setup` once" in reason
    assert box.refusal(["python3", "/opt/ml/code/train.py"]) is None


@pytest.mark.parametrize(("before", "expected"), [
    ("missing", [["mkdir", "-p", "{opt}"], ["ln", "-s", "{link}", "{opt}/ml"]]),
    ("empty folder", [["rmdir", "{opt}/ml"], ["ln", "-s", "{link}", "{opt}/ml"]]),
    ("other link", [["ln", "-sfn", "{link}", "{opt}/ml"]]),
    ("our link", []),
])  # fmt: skip
def test_setup_replaces_only_what_it_may(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str, expected: list[list[str]]) -> None:
    opt, link = tmp_path / "opt", tmp_path / "state" / "sagelab" / "opt-ml"
    monkeypatch.setattr(sandbox, "OPT_ML", str(opt / "ml"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    if before != "missing":
        opt.mkdir()
    if before == "empty folder":
        (opt / "ml").mkdir()
    if before.endswith("link"):
        (opt / "ml").symlink_to(link if before == "our link" else tmp_path / "elsewhere")
    wanted = [[part.format(opt=opt, link=link) for part in command] for command in expected]
    assert sandbox.setup_commands() == wanted  # no sudo: the user may write the folder


def test_setup_never_replaces_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "model.tar.gz").write_bytes(b"keep me")
    monkeypatch.setattr(sandbox, "OPT_ML", str(tmp_path / "ml"))
    with pytest.raises(ConfigError, match="is a folder with files in it; move them elsewhere"):
        sandbox.setup_commands()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert sandbox.setup_commands(undo=True) == []  # not our link: undo leaves it


def test_the_probe_a_run_makes_is_remembered_until_the_machine_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    remembered = tmp_path / "sagelab" / "sandbox-probe.json"
    first = sandbox.probe(first=True)
    saved = json.loads(remembered.read_text())
    assert saved["reasons"] == first and saved["key"].startswith(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    remembered.write_text(json.dumps({"key": "another boot", "reasons": {"remap": ""}}))  # a stale answer is not used
    assert sandbox.probe(first=True) == first and json.loads(remembered.read_text())["key"] == saved["key"]
    sandbox.forget_probe()  # as `sagelab setup` does
    assert not remembered.exists()
