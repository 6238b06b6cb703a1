"""The `sagelab` command, run as a real subprocess the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAGELAB, definition, processing_step, surviving_processes, write



def sagelab(*args: str, cwd: Path, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SAGELAB_SANDBOX"}
    result = subprocess.run([SAGELAB, *args], cwd=cwd, capture_output=True, text=input is None, input=input, env=env, timeout=120)
    return result


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_help_lists_the_commands(project: Path) -> None:
    result = sagelab("--help", cwd=project)
    assert result.returncode == 0
    for command in ("validate", "run", "executions", "status", "logs", "s3"):
        assert command in result.stdout


def test_validate_reports_problems_with_locations(project: Path) -> None:
    good = write(project / "good.json", definition(processing_step("A", "pass")))
    result = sagelab("validate", str(good), cwd=project)
    assert result.returncode == 0 and "pipeline good is valid (1 step, 0 parameters)" in result.stdout
    bad = definition(processing_step("A", "pass", inputs={"x": {"Get": "Steps.Nope.ProcessingJobName"}}), {"Name": "R", "Type": "Lambda"})
    result = sagelab("validate", str(write(project / "bad.json", bad)), cwd=project)
    assert_user_error(result, "bad.json is not a valid pipeline definition (2 problems)",
                      "/Steps/0/Arguments/ProcessingInputs/0/S3Input/S3Uri/Get: Steps.Nope.ProcessingJobName names step Nope",
                      "/Steps/1/Type: step R: Lambda steps do not run locally yet")


def test_malformed_json_and_missing_files(project: Path) -> None:
    (project / "broken.json").write_text("{ not json")
    assert_user_error(sagelab("run", "broken.json", cwd=project), "not valid JSON: Expecting property name enclosed in double quotes at line 1")
    assert_user_error(sagelab("run", "nowhere.json", cwd=project), "no such file")
    assert not (project / ".sagelab" / "executions").exists()


def test_run_then_inspect_executions_status_and_logs(project: Path) -> None:
    first = processing_step("Hello", "print('hello from the step')", outputs=["out"])
    second = processing_step("Bye", "print('bye')", DependsOn=["Hello"])
    write(project / "pipe.json", definition(first, second, parameters=[{"Name": "N", "Type": "Integer", "DefaultValue": 1}]))
    result = sagelab("run", "pipe.json", "--param", "N=5", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Hello                          Succeeded" in result.stdout
    assert "Outputs:\n  Hello: s3://test-bucket/Hello/out" in result.stdout
    execution_id = result.stdout.split("Execution ")[1].split(" ")[0]

    listing = sagelab("executions", cwd=project)
    assert execution_id in listing.stdout and "Succeeded" in listing.stdout
    status = sagelab("status", execution_id[:5], cwd=project)
    assert status.returncode == 0 and "Hello" in status.stdout and "Bye" in status.stdout
    logs = sagelab("logs", "latest", "Hello", cwd=project)
    assert "hello from the step" in logs.stdout and "bye" not in logs.stdout
    both = sagelab("logs", execution_id, cwd=project)
    assert "==> Hello <==" in both.stdout and "==> Bye <==" in both.stdout
    assert_user_error(sagelab("logs", execution_id, "Nope", cwd=project), "has no log for step Nope")
    assert_user_error(sagelab("status", "zzzz", cwd=project), "no execution 'zzzz'")


def test_failed_run_exits_non_zero_with_the_reason(project: Path) -> None:
    write(project / "pipe.json", definition(processing_step("Boom", "raise ValueError('broken data')")))
    result = sagelab("run", "pipe.json", cwd=project)
    assert result.returncode == 1
    assert "step Boom failed: AlgorithmError" in result.stdout and "ValueError: broken data" in result.stdout
    assert "Traceback" not in result.stderr
    assert "sagelab status" in result.stdout


def test_bad_parameters_are_refused_before_running(project: Path) -> None:
    write(project / "pipe.json", definition(processing_step("A", "pass"), parameters=[{"Name": "Rate", "Type": "Float", "DefaultValue": 1.0}]))
    assert_user_error(sagelab("run", "pipe.json", "-p", "Rate=fast", cwd=project), "parameter Rate is Float; got 'fast'")
    assert_user_error(sagelab("run", "pipe.json", "-p", "Rat=1", cwd=project), "unknown parameter Rat (did you mean Rate?)")
    assert_user_error(sagelab("run", "pipe.json", "-p", "Rate", cwd=project), "--param 'Rate' must look like Name=Value")


def test_module_attribute_with_a_definition_method(project: Path) -> None:
    document = definition(processing_step("A", "print('from module')"))
    (project / "mypipes.py").write_text(
        "import json\n"
        "class Pipeline:\n"
        "    name = 'from-sdk'\n"
        f"    def definition(self):\n        return json.dumps({document!r})\n"
        "pipeline = Pipeline()\n"
        f"as_dict = {document!r}\n"
    )
    result = sagelab("run", "mypipes:pipeline", cwd=project)
    assert result.returncode == 0 and "of from-sdk: Succeeded" in result.stdout, result.stdout + result.stderr
    assert sagelab("validate", "mypipes.py:as_dict", cwd=project).returncode == 0
    assert_user_error(sagelab("run", "mypipes:missing", cwd=project), "mypipes has no attribute missing")
    (project / "broken_module.py").write_text("raise RuntimeError('cannot build')\n")
    assert_user_error(sagelab("run", "broken_module:pipeline", cwd=project), "RuntimeError: cannot build", "broken_module.py:1")


def test_bad_configuration(project: Path) -> None:
    write(project / "pipe.json", definition(processing_step("A", "pass")))
    (project / "pyproject.toml").write_text("[tool.sagelab]\nconcurency = 2\n")
    assert_user_error(sagelab("run", "pipe.json", cwd=project), "unknown key 'concurency'")
    (project / "pyproject.toml").write_text('[tool.sagelab]\naccount = 1234\n')
    assert_user_error(sagelab("run", "pipe.json", cwd=project), "account must be 12 digits")
    (project / "pyproject.toml").write_text("[tool.sagelab\n")
    assert_user_error(sagelab("run", "pipe.json", cwd=project), "is not valid TOML")
    assert_user_error(sagelab("run", "pipe.json", "--profile", "prod", cwd=project), "is not valid TOML")


def test_unknown_profile(project: Path) -> None:
    write(project / "pipe.json", definition(processing_step("A", "pass")))
    assert_user_error(sagelab("run", "pipe.json", "--profile", "prod", cwd=project), "profile 'prod' is not defined")


def test_s3_commands(project: Path) -> None:
    data = project / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n")
    (data / "sub" / "b.csv").write_text("3,4\n")
    assert sagelab("s3", "cp", "data", "s3://bucket-one/raw", "--recursive", cwd=project).returncode == 0
    listing = sagelab("s3", "ls", "s3://bucket-one/raw/", cwd=project).stdout
    assert "s3://bucket-one/raw/a.csv" in listing and "s3://bucket-one/raw/sub/b.csv" in listing
    assert sagelab("s3", "cat", "s3://bucket-one/raw/sub/b.csv", cwd=project).stdout == "3,4\n"
    assert sagelab("s3", "ls", cwd=project).stdout == "s3://bucket-one/\n"
    assert sagelab("s3", "cp", "-", "s3://bucket-one/stdin.txt", cwd=project, input=b"piped").returncode == 0
    assert sagelab("s3", "cp", "s3://bucket-one/stdin.txt", "out.txt", cwd=project).returncode == 0
    assert (project / "out.txt").read_text() == "piped"
    assert sagelab("s3", "cp", "s3://bucket-one/raw", "s3://bucket-two/copy", "-r", cwd=project).returncode == 0
    assert sagelab("s3", "cat", "s3://bucket-two/copy/sub/b.csv", cwd=project).stdout == "3,4\n"
    assert_user_error(sagelab("s3", "cp", "out.txt", "s3://bucket-one/../escape", cwd=project), "would escape")
    assert_user_error(sagelab("s3", "cat", "s3://bucket-one/missing", cwd=project), "does not exist")
    assert_user_error(sagelab("s3", "cp", "data", "s3://bucket-one/x", cwd=project), "add --recursive")
    assert_user_error(sagelab("s3", "ls", "s3://B!/x", cwd=project), "not a valid S3 bucket name")
    assert not list((project / ".sagelab" / "s3").glob("*escape*"))


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_stopped_or_killed_run_leaves_no_step_process_not_even_a_daemon(project: Path, signum: str) -> None:
    """Ctrl-C, SIGTERM and SIGHUP stop the run (Stopped, retryable); after any of them, or SIGKILL, nothing the step started lives on."""
    import signal
    import time

    marker = project / "step-started"
    daemon = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {str(marker)!r}], start_new_session=True)"
    slow = processing_step("Slow", f"{daemon}; import time; open({str(marker)!r}, 'w').close(); time.sleep(60)")
    after = processing_step("After", "pass", DependsOn=["Slow"])
    write(project / "pipe.json", definition(slow, after))
    process = subprocess.Popen([SAGELAB, "run", "pipe.json"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not marker.exists():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    assert surviving_processes(marker)  # the daemon runs, in a session of its own
    started = time.time()
    process.send_signal(getattr(signal, signum))
    stdout, stderr = process.communicate(timeout=30)
    if signum == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stdout + stderr
        assert time.time() - started < 10  # the 60 s step was terminated, not waited for
        assert "Stopped" in stdout and "Traceback" not in stderr
    time.sleep(1.0)
    assert surviving_processes(marker) == []  # no step process, not even its daemon, outlived the run
    status = sagelab("status", "latest", cwd=project).stdout
    assert "Slow" in status and ("Stopped" if signum != "SIGKILL" else "Interrupted") in status


def test_logs_follow_prints_until_the_execution_ends(project: Path) -> None:
    import time

    marker = project / "started"
    step = processing_step("Ticker", f"import time\nopen({str(marker)!r}, 'w').close()\nfor i in range(4):\n    print('tick', i, flush=True); time.sleep(0.3)")
    write(project / "pipe.json", definition(step))
    running = subprocess.Popen([SAGELAB, "run", "pipe.json"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not marker.exists():
        assert time.time() < deadline
        time.sleep(0.05)
    follow = sagelab("logs", "latest", "Ticker", "--follow", cwd=project)
    running.wait(timeout=30)
    assert follow.returncode == 0
    assert [line for line in follow.stdout.splitlines() if line.startswith("tick")] == [f"tick {i}" for i in range(4)]


def test_definition_is_built_for_the_profile(project: Path) -> None:
    """A pipeline written with sagelab.pipeline takes the profile's bucket and role."""
    from conftest import EXAMPLE

    (project / "pyproject.toml").write_text(
        '[tool.sagelab.profiles.aws]\nengine = "sagemaker"\naccount = "123456789012"\nbucket = "team-bucket"\n'
        'role = "arn:aws:iam::123456789012:role/Team"\n'
    )
    local = sagelab("definition", f"{EXAMPLE}/pipeline.py:pipeline", cwd=project).stdout
    aws = sagelab("definition", f"{EXAMPLE}/pipeline.py:pipeline", "--profile", "aws", cwd=project).stdout
    assert "s3://team-bucket/diabetes/code/" in aws and "arn:aws:iam::123456789012:role/Team" in aws
    assert "team-bucket" not in local


def test_a_sagemaker_execution_shows_in_the_local_view(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --profile aws` follows SageMaker's snapshots with the same view as a local run."""
    from sagelab.api.backends import follow
    from sagelab.cli.view import _plain
    from sagelab.engines.sagemaker import ExecutionSnapshot, StepSnapshot

    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/demo/execution/abc123"
    running = ExecutionSnapshot(arn, "demo", "Executing", 100.0, None, None, (StepSnapshot("Prep", "Executing", "Processing", 100.0),))
    failed = ExecutionSnapshot(arn, "demo", "Failed", 100.0, 130.0, "Step failure: One or multiple steps failed.", (
        StepSnapshot("Prep", "Succeeded", "Processing", 100.0, 110.0),
        StepSnapshot("Train", "Failed", "Training", 110.0, 130.0, "AlgorithmError: boom"),
    ))
    on_snapshot = follow(_plain, "demo")
    for snapshot in (running, running, failed):
        on_snapshot(snapshot)
    out = capsys.readouterr().out
    assert out.count("Prep                           Executing") == 1  # an unchanged step is not repeated
    assert "Prep                           Succeeded in 10.00s" in out
    assert "Train                          Failed in 20.00s\n    AlgorithmError: boom" in out
    assert "Execution abc123 of demo: Failed in 30.00s" in out


def test_a_key_too_long_for_a_file_name_is_one_line(project: Path) -> None:
    (project / "f.txt").write_text("x")
    result = sagelab("s3", "cp", "f.txt", f"s3://bucket-one/{'k' * 300}/x", cwd=project)
    assert_user_error(result, "is longer than a file name may be (255 bytes)")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_user_error_is_one_line_and_a_sagelab_bug_a_traceback_that_says_so(project: Path) -> None:
    import sys

    bad = subprocess.run([SAGELAB, "validate", "missing.json"], cwd=project, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    bug = ("import sys\nfrom sagelab.cli import main\nfrom sagelab.cli.app import app\n"
           "@app.command()\ndef boom() -> None:\n    {}['missing']\n"
           "sys.argv = ['sagelab', 'boom']\nmain()\n")  # fmt: skip
    crashed = subprocess.run([sys.executable, "-c", bug], cwd=project, capture_output=True, text=True)
    assert crashed.returncode == 70, crashed.stderr
    assert "Traceback" in crashed.stderr and "KeyError: 'missing'" in crashed.stderr
    assert crashed.stderr.rstrip().endswith("(see README.md, Reporting a bug).")


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def test_logs_and_the_metric_scan_read_a_large_log_in_flat_memory(project: Path) -> None:
    """A 300 MB log: `sagelab logs` and the metric scan stay far below its size (peak RSS of their process)."""
    import sys

    write(project / "p.json", definition(processing_step("P", "print('step ran')")))
    subprocess.run([SAGELAB, "run", "p.json"], cwd=project, capture_output=True, check=True)
    [log] = (project / ".sagelab" / "executions").glob("*/P.log")
    line = ("epoch 7: train loss=0.4521 " + "x" * 170 + "\n").encode()
    with open(log, "ab") as out:
        for _ in range(300):
            out.write(line * (1_000_000 // len(line)))
    peak = {}
    for name, command in {
        "logs": [SAGELAB, "logs", "latest", "P"],
        "metrics": [sys.executable, "-c", "import pathlib, sys; from sagelab.engines.local.training import final_metrics; "
                    "print(final_metrics(pathlib.Path(sys.argv[1]), {'MetricDefinitions': [{'Name': 'loss', 'Regex': 'loss=([0-9.]+)'}]}, 0))",
                    str(log)],
    }.items():  # fmt: skip
        measured = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], cwd=project, capture_output=True, text=True, check=True)
        peak[name] = int(measured.stdout.split()[-1])
    assert log.stat().st_size > 290_000_000 and max(peak.values()) < 100, peak  # MB


def imported_modules(*argv: str, cwd: Path) -> set[str]:
    """The modules `sagelab ARGV` imports, from `python -X importtime`."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "sagelab.cli", *argv], cwd=cwd, capture_output=True, text=True)
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_commands_import_only_what_they_use_and_reading_creates_no_file(tmp_path: Path) -> None:
    """Start-up stays light: help and read-only commands import neither the serving stack, the checks nor TLS, and
    reading an empty folder's executions, endpoints or models writes nothing there."""
    heavy = {"sagelab.serving", "sagelab.engines.local.checks", "http.client", "ssl"}
    for argv in (["--help"], ["run", "--help"], ["executions"], ["endpoints"], ["models", "groups"]):
        assert not imported_modules(*argv, cwd=tmp_path) & heavy, argv
    assert "sagelab.engines.local.scheduler" not in imported_modules("executions", cwd=tmp_path)
    for argv in (["executions"], ["endpoints"], ["models", "groups"], ["models", "list", "g"], ["status", "latest"]):
        subprocess.run([SAGELAB, *argv], cwd=tmp_path, capture_output=True)
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_steps_never_use_s3_imports_neither_the_s3_handler_nor_package_metadata(tmp_path: Path) -> None:
    """The S3 endpoint's HTTP stack is imported when a step first connects, and package metadata (email.*) when a
    step's image has packages to compare: a run of plain steps pays for neither."""
    (tmp_path / "pyproject.toml").write_text("[tool.sagelab]\n", encoding="utf-8")
    write(tmp_path / "pipeline.json", definition(processing_step("A", "pass"), processing_step("B", "pass")))
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "sagelab.cli", "run", "pipeline.json"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and "Succeeded" in result.stdout, result.stdout + result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"sagelab.store.s3_handler", "http.server", "importlib.metadata", "sagelab.serving"}


def test_tables_keep_every_cell_whole_and_print_markup_as_text() -> None:
    """A listing never cuts a long S3 URI to the terminal's width, nor reads brackets in a cell as markup."""
    from sagelab.cli.output import Table

    uri = "s3://a-bucket-with-a-long-name/pipelines/train/2026-12-06/model/output/model.tar.gz"
    table = Table("Version", "Model data", "Reason", colors={"Version": {"1": "red"}})
    table.add_row("1", f"{uri}\n{uri}.2", "[/red] not markup")
    plain = table.render().splitlines()
    width = len(uri) + 2  # the widest cell of the column: its second line
    assert plain == [f"Version  {'Model data'.ljust(width)}  Reason", f"1        {uri.ljust(width)}  [/red] not markup", f"         {uri}.2"]
    assert "\033[1;31m1\033[0m" in table.render(color=True) and "\033[" not in table.render()
    with pytest.raises(ValueError):
        table.add_row("1")


def test_the_live_view_prints_step_names_and_log_lines_as_text(tmp_path: Path) -> None:
    """A step's last log line (or its name) holding rich markup is shown as it is, never parsed (`[/red]` used to crash the view)."""
    import io
    import time

    from rich.console import Console

    from sagelab.cli.view import _table
    from sagelab.engines.local import Execution, StepState

    log = tmp_path / "step.log"
    log.write_text("epoch 1 [/red] loss=[bold]0.5\n")
    state = StepState("[b]Train", "Training", "Executing", started=time.time(), log_path=str(log))
    execution = Execution("abc", "p[/]", "arn", {state.name: state}, time.time())
    out = io.StringIO()
    Console(file=out, width=200).print(_table(execution))
    assert "epoch 1 [/red] loss=[bold]0.5" in out.getvalue() and "[b]Train" in out.getvalue() and "p[/] · abc" in out.getvalue()


def test_version_and_shell_completion(tmp_path: Path) -> None:
    import sagelab

    assert subprocess.run([SAGELAB, "--version"], capture_output=True, text=True, check=True).stdout.startswith(f"sagelab {sagelab.__version__} ")
    for shell in ("bash", "zsh", "fish"):  # the script for a named shell (--show-completion detects the user's own)
        script = subprocess.run([SAGELAB], env={**os.environ, "_SAGELAB_COMPLETE": f"source_{shell}"}, capture_output=True, text=True, check=True).stdout
        assert "_SAGELAB_COMPLETE" in script, shell
    env = {**os.environ, "_SAGELAB_COMPLETE": "complete_bash", "COMP_WORDS": "sagelab sta", "COMP_CWORD": "1"}
    assert subprocess.run([SAGELAB], capture_output=True, text=True, env=env, cwd=tmp_path).stdout.split() == ["status"]


def test_a_table_on_a_narrow_terminal_cuts_its_widest_column_in_the_middle() -> None:
    from sagelab.cli.output import Table

    uri = "s3://sagemaker-us-east-1-000000000000/pipelines-8b3v9f323xef-Train-p11eoygwmq/output/model.tar.gz"
    table = Table("Version", "Status", "Model data")
    table.add_row("1", "PendingManualApproval", uri)
    [_, row] = table.render(width=80).splitlines()
    assert len(row) <= 80 and row.startswith("1        PendingManualApproval  s3://sagemaker") and row.endswith("output/model.tar.gz")
    assert "…" in row and uri in table.render()  # piped (no width): whole


def test_listing_commands_print_json(project: Path) -> None:
    """--json on the registry's and the environments' listings; an empty project lists nothing, and writes nothing."""
    import json

    assert json.loads(sagelab("models", "groups", "--json", cwd=project).stdout) == []
    assert_user_error(sagelab("models", "list", "g", "--json", cwd=project), "no model package group 'g'")
    assert json.loads(sagelab("endpoints", "--json", cwd=project).stdout) == []
    environments = json.loads(sagelab("envs", "--json", cwd=project).stdout)
    assert all(set(env) == {"key", "built_for", "created", "size", "path"} for env in environments)
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml"]
