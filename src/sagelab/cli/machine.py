"""`sagelab doctor` and `sagelab setup`: what this machine gives steps, and the one-time shared /opt/ml."""

import shlex
import subprocess
from typing import Annotated

import typer

STATUS_COLORS = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor() -> None:
    """Check this machine for local runs: sandbox mode, Python, pip, disk, Java, AWS credentials; each problem with its fix."""
    from sagelab.cli.output import Table
    from sagelab.engines.local.doctor import checks

    found = checks()
    table = Table("Check", "Status", "Details", colors={"Status": STATUS_COLORS})
    for check in found:
        table.add_row(check.name, check.status, check.detail)
    table.print()
    fixes = [check for check in found if check.fix]
    if fixes:
        print("To fix:")
        for check in fixes:
            print(f"  {check.name}: {check.fix}")
    if any(check.status == "fail" for check in found):
        raise typer.Exit(1)


def setup(
    undo: Annotated[bool, typer.Option("--undo", help="Remove the shared /opt/ml link.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Make the link even where steps get a private /opt/ml without it.")] = False,
) -> None:
    """Make /opt/ml a link that jobs point at their own folder in turn (sudo, once), where steps cannot get a private /opt/ml.

    Needed on macOS and in containers without namespaces: there shell entry points and the programs a
    script starts see the job's files at /opt/ml, as in SageMaker's containers. `sagelab doctor` says
    whether this machine needs it.
    """
    from sagelab.containers import sandbox

    box = sandbox.current()
    if not undo and not force and box.mode in ("namespace", "user-namespace"):
        print(f"Nothing to do: steps get {box.describe()}. (--force makes the shared link anyway; "
              f"steps use it only with {sandbox.FORCE}=shared.)")  # fmt: skip
        return
    commands = sandbox.setup_commands(undo=undo)
    if not commands:
        print("Nothing to do: /opt/ml " + ("is not sagelab's link" if undo else f"already points to {sandbox.shared_link()}"))
        return
    sandbox.shared_link().parent.mkdir(parents=True, exist_ok=True)
    sandbox.forget_probe()  # the next run finds the link as it is now
    for command in commands:
        print(f"$ {shlex.join(command)}", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            print(f"sagelab: `{shlex.join(command)}` failed; stopped there")
            raise typer.Exit(1)
    if undo:
        print("/opt/ml is gone; steps fall back to the best mode left (sagelab doctor)")
    else:
        print(f"/opt/ml now points to {sandbox.shared_link()}: steps run in shared mode, one at a time")
