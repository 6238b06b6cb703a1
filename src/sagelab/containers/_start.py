"""How a step's launcher starts: `python _start.py ARGS` runs `_launch.main()` (see _launch.py for ARGS).

A script is compiled from source on every start, a module comes from its bytecode cache: through
this stub each step skips compiling the launcher (~3 ms).
"""

import _launch  # type: ignore[import-not-found]  # beside this file, first on sys.path

_launch.main()
