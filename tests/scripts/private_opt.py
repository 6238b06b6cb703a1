"""Run a command with a private, empty /opt (tests of `sagelab setup` and shared mode).

    python private_opt.py COMMAND [ARG ...]

The machine's own /opt stays as it is: the command runs in a mount namespace of its own (a user
namespace too when not root, mapping the user to itself) where /opt is an empty tmpfs the user owns.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src", "sagelab", "containers"))
import _launch  # noqa: E402

command = sys.argv[1:]
uid, gid = os.getuid(), os.getgid()
user = uid != 0
_launch._unshare(_launch.CLONE_NEWNS | (_launch.CLONE_NEWUSER if user else 0), user)
if user:
    _launch._map_to_self(uid, gid)
_launch._mount(None, "/", None, _launch.MS_REC | _launch.MS_PRIVATE)
_launch._mount("tmpfs", "/opt", "tmpfs", 0, "mode=755")
os.execvp(command[0], command)
