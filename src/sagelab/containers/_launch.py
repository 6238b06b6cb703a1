"""Start one step command with `/opt/ml` private to its job.

Run as a script (it imports nothing from sagelab, to start fast):

    python _launch.py JOB_ROOT WORKDIR -- COMMAND [ARG ...]

On Linux with mount rights it enters a private mount namespace and bind-mounts JOB_ROOT
onto /opt/ml, so unmodified scripts and any program they start see their own /opt/ml.
Without those rights it falls back to remapping /opt/ml paths inside Python (see
_pathshim.py), which covers Python scripts only. A Python script runs in this process
(no second interpreter start); any other command is exec'd.
"""

import os
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PYTHONS = {"python", "python3", f"python3.{sys.version_info[1]}"}


def _die_with_sagelab() -> None:
    """Be killed when sagelab dies, so a killed run leaves no step running (Linux)."""
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # sagelab died before prctl took effect
        os._exit(137)


def _enter_namespace(root: str) -> bool:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    return bool(libc.mount(root.encode(), b"/opt/ml", None, MS_BIND | MS_REC, None) == 0)


def _run_in_process(argv: list[str]) -> None:
    """Run `python SCRIPT|-c CODE|-m MODULE ARGS` in this interpreter, as `python` would."""
    if argv[0] == "-m":
        import runpy

        sys.argv = [argv[1], *argv[2:]]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    source: str | bytes
    if argv[0] == "-c":
        name, source, sys.argv = "<string>", argv[1], ["-c", *argv[2:]]
        sys.path[0] = ""
    else:
        name = os.path.abspath(argv[0])
        with open(name, "rb") as file:
            source = file.read()
        sys.argv = argv
        sys.path[0] = os.path.dirname(name)
    main = type(sys)("__main__")
    if name != "<string>":
        main.__file__ = name
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    code = compile(source, name, "exec")
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException as exc:  # print as `python script.py` would, without our frames
        import traceback

        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is not code:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        raise SystemExit(1) from None


def _in_process(command: list[str]) -> bool:
    """True for `python script.py ...`, `python -c CODE ...` and `python -m MODULE ...`."""
    if os.path.basename(command[0]) not in PYTHONS or len(command) < 2:
        return False
    first = command[1]
    return not first.startswith("-") or (first in ("-c", "-m") and len(command) > 2)


def main() -> None:
    root, workdir, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        raise SystemExit("usage: _launch.py JOB_ROOT WORKDIR -- COMMAND [ARG ...]")
    _die_with_sagelab()
    # SAGELAB_SANDBOX=shim forces the fallback, to test it where namespaces work too.
    isolated = os.environ.get("SAGELAB_SANDBOX") != "shim" and _enter_namespace(root)
    in_process = _in_process(command)
    if not isolated:
        if not in_process:
            raise SystemExit(
                f"sagelab: cannot give {command[0]!r} a private /opt/ml: mount namespaces need root "
                "(or CAP_SYS_ADMIN); only Python scripts run without them"
            )
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _pathshim  # type: ignore[import-not-found]

        del sys.path[0]
        _pathshim.install(root)
    os.chdir(workdir)  # under the shim, os.chdir itself maps /opt/ml
    if in_process:
        _run_in_process(command[1:])
    else:
        program = sys.executable if os.path.basename(command[0]) in PYTHONS else command[0]
        try:
            os.execvp(program, [command[0], *command[1:]])
        except OSError as exc:
            raise SystemExit(f"sagelab: cannot start {command[0]!r}: {exc.strerror}") from None


if __name__ == "__main__":
    main()
