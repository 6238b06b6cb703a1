"""Start one step command with `/opt/ml` private to its job.

Run as a script (it imports nothing from sagelab, to start fast):

    python _launch.py MODE JOB_ROOT WORKDIR [--hide FOLDER]... [--keep PATH]... [--overlay FOLDER=TARGET]... -- COMMAND [ARG ...]
    python _launch.py --probe SHARED_LINK [--first]    # which modes this machine allows, as JSON

MODE is how the job gets its /opt/ml (best first; `sandbox.py` picks the best one that works):

- namespace: root (CAP_SYS_ADMIN). A private mount namespace with JOB_ROOT bound onto /opt/ml.
- user-namespace: any user, where the kernel allows unprivileged user namespaces. The same,
  inside a user namespace that maps the user to itself (files stay the user's own).
- shared=LINK: /opt/ml is a symlink to LINK, made once by `sagelab setup`. The job takes the lock
  beside LINK and points LINK at JOB_ROOT, so jobs take turns; the lock goes with the process.
- remap: Python only. /opt/ml paths are remapped inside this interpreter (_pathshim.py); programs
  the script starts see the real /opt/ml.

In the namespace modes each --hide FOLDER (the project's .sagelab with other jobs' folders and the
store, ~/.aws) is covered by an empty read-only tmpfs, but for the --keep paths inside it (the
job's own folders), and each --overlay shows a store FOLDER at the container path TARGET copy-on-write
(an input read in place, the step's writes kept in JOB_ROOT.overlay/N). A missing /opt/ml (a read-only /opt, no right to create it) is made in the
namespace alone: a tmpfs over /opt holds it, with /opt's own entries bound back in. A Python script
runs in this process (no second interpreter start); any other command is exec'd.
"""

import os
import sys

TYPE_CHECKING = False  # mypy reads it as true; importing typing would cost each step ~3 ms
if TYPE_CHECKING:
    from collections.abc import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
OPT_ML = "/opt/ml"
PROBE_MARKER = ".sagelab-probe"
PYTHONS = {"python", "python3", f"python3.{sys.version_info[1]}"}
_host_path = os.fspath  # where a path the step names really is: itself, except in remap mode


class Unavailable(Exception):
    """This machine does not allow a mode; the message says why."""


class _Libc:
    """The C library's functions (`_libc().mount(...)`), called as ctypes.CDLL(None, use_errno=True) calls them.

    Built on _ctypes, the C module under ctypes, with ctypes' own two definitions (an int result, a
    C function that keeps errno): importing ctypes itself would cost every step ~1.6 ms more.
    """

    def __init__(self) -> None:
        import _ctypes

        class Int(_ctypes._SimpleCData):  # type: ignore[type-arg]  # ctypes.c_int
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):  # CDLL's function type
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = Int

        self._handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # None: this process's own symbols, libc's among them
        self._function = Function
        self.get_errno = _ctypes.get_errno

    def __getattr__(self, name: str) -> "Callable[..., int]":
        function = self._function((name, self))  # type: ignore[arg-type]  # AttributeError where the C library has no such function
        setattr(self, name, function)
        return function


_LIBC: "list[_Libc]" = []


def _libc() -> _Libc:
    try:
        if not _LIBC:
            _LIBC.append(_Libc())
        _LIBC[0].unshare  # noqa: B018 - Linux only
    except (OSError, AttributeError, ImportError):
        raise Unavailable("mount namespaces are Linux only") from None
    return _LIBC[0]


def _check(result: int, what: str) -> None:
    if result != 0:
        code = _libc().get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _encode(value: "str | None") -> "bytes | None":
    return None if value is None else value.encode()


def _mount(source: "str | None", target: str, fstype: "str | None", flags: int, data: "str | None" = None) -> None:
    _check(_libc().mount(_encode(source), target.encode(), _encode(fstype), flags, _encode(data)), f"mount on {target}")


def _unshare(flags: int, user: bool) -> None:
    import errno

    try:
        _check(_libc().unshare(flags), "unshare")
    except OSError as exc:
        if not user:
            raise Unavailable("a private mount namespace needs root (CAP_SYS_ADMIN)") from None
        reasons = {
            errno.EPERM: "the kernel refuses unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=0, "
            "kernel.apparmor_restrict_unprivileged_userns=1, or a container's seccomp profile)",
            errno.ENOSPC: "user namespaces are capped (sysctl user.max_user_namespaces is 0 or reached)",
            errno.EINVAL: "this kernel has no user namespaces",
        }
        raise Unavailable(reasons.get(exc.errno or 0, f"cannot create a user namespace: {exc.strerror}")) from None


def _map_to_self(uid: int, gid: int) -> None:
    """Map this user (and group) to itself in the new user namespace (ids read before entering it)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        descriptor = os.open(f"/proc/self/{name}", os.O_WRONLY)  # no O_TRUNC: proc refuses it here
        try:
            os.write(descriptor, text.encode())
        finally:
            os.close(descriptor)


def _make_mountpoint() -> None:
    """Give /opt/ml a directory to mount on, in this namespace only, when the real one is missing."""
    if os.path.isdir(OPT_ML) and not os.path.islink(OPT_ML):
        return
    parent, name = os.path.split(OPT_ML)
    if not os.path.isdir(parent):
        raise Unavailable(f"{parent} does not exist, so there is nothing to hold {OPT_ML}")
    # /opt/ml may be a symlink or a file: the job's own folder takes its place
    _cover(parent, [entry for entry in os.listdir(parent) if entry != name], writable=True)
    os.mkdir(OPT_ML)


def _overlay(lower: str, target: str, scratch: str) -> None:
    """Show `lower` (a store folder) at `target` copy-on-write: the step reads the store's files in place, and
    what it writes there lands in `scratch`, never in the store. Where the kernel refuses an overlay, a copy."""
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    for folder in (upper, work, target):
        os.makedirs(folder, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    try:
        try:  # volatile: no sync of the upper layer at unmount, which would flush the whole disk's dirty data (all the step wrote)
            _mount("overlay", target, "overlay", 0, options + ",volatile")
        except OSError:  # kernels before 5.10
            _mount("overlay", target, "overlay", 0, options)
    except OSError as exc:
        import shutil

        print(f"[sagelab] {target}: no overlay here ({exc.strerror}); the input is copied", flush=True)
        shutil.copytree(lower, target, dirs_exist_ok=True)


def _hide(folder: str, keep: "list[str]") -> None:
    """Lay an empty read-only tmpfs over `folder` (other jobs' folders, the store, ~/.aws), showing only the paths in `keep`."""
    inside = [os.path.relpath(path, folder) for path in keep if path.startswith(folder.rstrip("/") + "/") and os.path.lexists(path)]
    _cover(folder, inside, writable=False)


def _cover(folder: str, shown: "list[str]", writable: bool) -> None:
    """Lay a tmpfs over `folder` and bind back the `shown` paths (relative to it) from the real folder."""
    scratch = _scratch_folder()  # keeps the real folder reachable while its entries are bound back
    try:
        _mount(folder, scratch, None, MS_BIND | MS_REC)
        _mount("tmpfs", folder, "tmpfs", 0, "mode=755")
        for relative in shown:
            source, target = os.path.join(scratch, relative), os.path.join(folder, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
                continue
            if os.path.isdir(source):
                os.mkdir(target)
            else:
                open(target, "wb").close()
            _mount(source, target, None, MS_BIND | MS_REC)
        if not writable:
            _mount(None, folder, None, MS_REMOUNT | MS_RDONLY)
    finally:
        _libc().umount2(scratch.encode(), MNT_DETACH)
        os.rmdir(scratch)


def _scratch_folder() -> str:
    """A new empty folder under TMPDIR (tempfile would cost each step ~5 ms to import)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    for attempt in range(100):
        path = os.path.join(base, f".sagelab-opt-{os.getpid()}-{attempt}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise Unavailable(f"cannot make a scratch folder in {base}")


def _enter_namespace(root: str, user: bool, hidden: "list[str]", kept: "list[str]", overlays: "list[str]") -> None:
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWNS | (CLONE_NEWUSER if user else 0), user)
    if user:
        _map_to_self(uid, gid)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _make_mountpoint()
    _mount(root, OPT_ML, None, MS_BIND | MS_REC)
    for index, spec in enumerate(overlays):
        lower, _, target = spec.rpartition("=")
        _overlay(lower, target, f"{root}.overlay/{index}")
    for folder in hidden:
        if os.path.isdir(folder) and not os.path.islink(folder):
            _hide(folder, kept)


def _contain(parent: int) -> None:
    """Run the rest of this launcher as the first process of a new PID namespace, where the kernel allows one.

    When that process ends, the kernel kills every process left in the namespace: a daemon a step
    starts (even in a session of its own) ends with the step, and with sagelab, as in a container.
    This process stays outside: it waits, then exits as the step did. The step runs in a child of the
    namespace's init, which reaps orphans; signals sagelab sends to the job's process group reach the
    step directly (init, as PID 1, ignores them).
    """
    try:
        _check(_libc().unshare(CLONE_NEWPID), "unshare")
    except (OSError, Unavailable):
        _die_with_sagelab(parent)
        return  # no PID namespace here: the job's process group is what sagelab stops
    import _signal as signal  # type: ignore[import-not-found]  # the C module under `signal`, without the ~10 ms enum wrapper

    status_read, status_write = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(status_read)
        _die_with_sagelab(None)  # if the outer launcher is killed, the namespace goes with init
        try:
            _mount("proc", "/proc", "proc", 0)  # `ps` in the step shows the step's processes (not where /proc is locked)
        except OSError:
            pass
        step = os.fork()
        if step == 0:
            os.close(status_write)
            return
        while True:
            pid, status = os.wait()
            if pid == step:
                os.write(status_write, str(status).encode())
                os._exit(0)
    os.close(status_write)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # they reach the step through the process group; stay to report its end
    _die_with_sagelab(parent)
    with os.fdopen(status_read, "rb") as pipe:
        reported = pipe.read()
    os.waitpid(init, 0)
    if not reported:  # init died without a word: it was killed
        os.kill(os.getpid(), signal.SIGKILL)
    status = int(reported)
    if os.WIFSIGNALED(status):  # end as the step ended, so sagelab sees the signal
        if os.WTERMSIG(status) not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled, nor need resetting
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def shared_problem(link: str) -> str:
    """Why shared mode cannot run here ('' when it can)."""
    try:
        target = os.readlink(OPT_ML)
    except OSError:
        return f"{OPT_ML} is not sagelab's shared link: run `sagelab setup` once"
    if target != link:
        return f"{OPT_ML} points to {target}, not to this user's {link}: run `sagelab setup`"
    if not os.access(os.path.dirname(link), os.W_OK):
        return f"cannot write {os.path.dirname(link)}"
    return ""


def _take_turn(link: str, root: str) -> None:
    """Shared mode: wait for /opt/ml, then point it at this job until this process (and what it starts) ends."""
    import fcntl

    problem = shared_problem(link)
    if problem:
        raise Unavailable(problem)
    lock = os.open(f"{link}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("[sagelab] waiting for /opt/ml: another job holds it (shared mode, jobs take turns)", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    os.set_inheritable(lock, True)  # held by the command this process becomes
    staged = f"{link}.{os.getpid()}"
    os.symlink(root, staged)
    os.replace(staged, link)


def _die_with_sagelab(parent: "int | None") -> None:
    """Be killed when the parent dies, so a killed run leaves no step running (Linux).

    Set after entering a user namespace, which clears it. `parent` is the pid the parent must
    still have (it died before prctl took effect otherwise); None where it cannot be seen (the
    parent of a PID namespace's first process is outside it).
    """
    try:
        _libc().prctl(PR_SET_PDEATHSIG, 9)  # SIGKILL
    except (Unavailable, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(137)


def _load_in_process(argv: "list[str]") -> "Callable[[], None]":
    """Set up `python SCRIPT|-c CODE|-m MODULE ARGS` in this interpreter, as `python` would; returns what runs it.

    A script or -c code is compiled here, before the launcher forks into the job's PID namespace:
    compiling in the forked child costs ~1.5 ms more (its first writes copy the parent's pages).
    """
    if argv[0] == "-m":
        import runpy

        sys.argv = [argv[1], *argv[2:]]
        sys.path[0] = _host_path(os.getcwd())  # the import system looks at real paths only
        module = argv[1]

        def run_module() -> None:
            runpy.run_module(module, run_name="__main__", alter_sys=True)

        return run_module
    source: "str | bytes"
    if argv[0] == "-c":
        name, source, sys.argv = "<string>", argv[1], ["-c", *argv[2:]]
        sys.path[0] = ""
    else:
        name = os.path.abspath(argv[0])
        with open(name, "rb") as file:
            source = file.read()
        sys.argv = argv
        sys.path[0] = _host_path(os.path.dirname(name))
    main = type(sys)("__main__")
    if name != "<string>":
        main.__file__ = name
    main.__dict__["__builtins__"] = __builtins__
    code = compile(source, name, "exec")

    def run() -> None:
        sys.modules["__main__"] = main
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

    return run


def runs_in_process(command: "list[str]") -> bool:
    """True for `python script.py ...`, `python -c CODE ...` and `python -m MODULE ...`: what remap mode can run."""
    if os.path.basename(command[0]) not in PYTHONS or len(command) < 2:
        return False
    first = command[1]
    return not first.startswith("-") or (first in ("-c", "-m") and len(command) > 2)


def _probe_namespace(root: str, user: bool) -> str:
    """Try a namespace mode in a child process; '' if the job would see its own /opt/ml, else why not."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            _enter_namespace(root, user, [], [], [])
            reason = "" if os.path.exists(os.path.join(OPT_ML, PROBE_MARKER)) else "the bind mount did not show the job's folder"
        except (OSError, Unavailable) as exc:
            reason = str(exc)
        os.write(write, reason.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reason = pipe.read().decode()
    os.waitpid(pid, 0)
    return reason


def probe(link: str, first: bool = False) -> "dict[str, str]":
    """Each mode, best first, with why this machine does not allow it ('' where it does).

    With `first`, stop at the first mode that works: the modes after it are left out.
    """
    import tempfile

    reasons: "dict[str, str]" = {}
    with tempfile.TemporaryDirectory(prefix="sagelab-probe-") as root:
        open(os.path.join(root, PROBE_MARKER), "w").close()
        for mode, user in (("namespace", False), ("user-namespace", True)):
            if first and "" in reasons.values():
                return reasons
            try:
                _libc()
                reasons[mode] = _probe_namespace(root, user)
            except Unavailable as exc:
                reasons[mode] = str(exc)
    if first and "" in reasons.values():
        return reasons
    reasons["shared"] = shared_problem(link)
    reasons["remap"] = ""
    return reasons


def _enter(mode: str, root: str, command: "list[str]", options: "dict[str, list[str]]") -> None:
    if mode in ("namespace", "user-namespace"):
        _enter_namespace(root, mode == "user-namespace", options["--hide"], options["--keep"], options["--overlay"])
    elif mode.startswith("shared="):
        _take_turn(mode.partition("=")[2], root)
    elif mode == "remap":
        if not runs_in_process(command):
            raise Unavailable(f"{command[0]!r} is not a Python script, and only Python sees a remapped /opt/ml")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _pathshim  # type: ignore[import-not-found]

        del sys.path[0]
        global _host_path
        _host_path = _pathshim.install(root)
    else:
        raise SystemExit(f"sagelab: unknown sandbox mode {mode!r}")


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:
        import json  # here only: it costs every step ~7 ms to import

        print(json.dumps(probe(sys.argv[2], first=sys.argv[3:4] == ["--first"])))
        return
    mode, root, workdir, *rest = sys.argv[1:]
    options: "dict[str, list[str]]" = {"--hide": [], "--keep": [], "--overlay": []}
    while len(rest) > 1 and rest[0] in options:
        options[rest[0]].append(rest[1])
        rest = rest[2:]
    if rest[:1] != ["--"] or len(rest) < 2:
        raise SystemExit("usage: _launch.py MODE JOB_ROOT WORKDIR [--hide FOLDER]... [--keep PATH]... [--overlay FOLDER=TARGET]... -- COMMAND [ARG ...]")
    command = rest[1:]
    parent = os.getppid()
    try:
        _enter(mode, root, command, options)
    except (OSError, Unavailable) as exc:
        raise SystemExit(f"sagelab: cannot give this job its /opt/ml in {mode.partition('=')[0]} mode: {exc}") from None
    os.chdir(workdir)  # under remap, os.chdir itself maps /opt/ml
    run = _load_in_process(command[1:]) if runs_in_process(command) else None
    if mode in ("namespace", "user-namespace"):
        _contain(parent)
    else:
        _die_with_sagelab(parent)
    if run is not None:
        run()
    else:
        program = sys.executable if os.path.basename(command[0]) in PYTHONS else command[0]
        try:
            os.execvp(program, [command[0], *command[1:]])
        except OSError as exc:
            raise SystemExit(f"sagelab: cannot start {command[0]!r}: {exc.strerror}") from None


if __name__ == "__main__":
    main()
