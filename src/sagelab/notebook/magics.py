"""`%load_ext sagelab`: sparkmagic's magics in any IPython or Jupyter kernel, on the profile's Spark.

As in sparkmagic, Spark code runs on a side of its own (the "remote" side: `spark`, and `sc` on
local Spark and Livy), apart from the notebook's namespace, and data crosses on purpose:

    %%configure -f {"driverMemory": "4g", "conf": {"spark.sql.shuffle.partitions": "8"}}
    %%spark                      run the cell on the Spark side
    %%sql -o top -n 100          a query; its rows as a pandas DataFrame, `top` in the notebook
    %%local                      run the cell in the notebook's namespace
    %%send_to_spark -i frame -t df -n frame     a pandas DataFrame (or a str) to the Spark side
    %%info   %%logs   %%cleanup -f   %spark status|stop|info

IPython refuses a cell magic whose cell is empty, so the magics that take no code (send_to_spark,
info, logs, cleanup) are line magics too: `%info`, `%send_to_spark -i frame -t df -n frame`.
Where the Spark side is comes from the profile's `spark` setting, or `%%configure {"url": ...}`:
this process (local Spark, Spark Connect) or a Livy server, each behind `sagelab.spark.backend`.
Each Spark cell shows its progress as it runs.

`%sagelab local [--port N]` points the kernel's boto3 and SageMaker SDK at `sagelab api` (as
`eval "$(sagelab env)"` does for a shell, STS's account answer included), `%sagelab aws` back at
AWS (`sagelab.notebook.local_api`).
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.display import display

from sagelab.errors import SagelabError

if TYPE_CHECKING:
    from sagelab.spark.backends import Show, SparkBackend
    from sagelab.spark.sessions import SparkSessions

MAX_ROWS = 2500  # sparkmagic's default for %%sql -n
SAMPLE_FRACTION = 0.1  # and for -r


def load(shell: Any) -> None:
    """Register the magics with an IPython shell (`%load_ext sagelab` calls this)."""
    shell.register_magics(SparkMagics(shell))
    shell.register_magics(LocalApiMagics(shell))


class UsageError(SagelabError):
    """A magic's arguments are wrong: shown as one line, like every sagelab error."""


@magics_class
class SparkMagics(Magics):
    """sparkmagic's cell magics over the profile's Spark backend (the local profile's unless `%spark profile NAME`)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.profile = "local"

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's own namespace."""
        assert self.shell is not None, "registered with a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def sessions(self) -> SparkSessions:
        """The profile's settings, and what %%configure changed."""
        from sagelab.spark import manager

        return manager(self.profile)

    @property
    def backend(self) -> SparkBackend:
        """Where the Spark side is: this process or a Livy server."""
        from sagelab.spark import backend

        return backend(self.profile)

    # -- running code ---------------------------------------------------------------------------

    @line_cell_magic
    def spark(self, line: str, cell: str | None = None) -> Any:
        """%%spark runs the cell on the Spark side (its last expression's value is shown);
        %spark status | stop | info | profile NAME."""
        if cell is not None:
            return self._guarded(lambda: self.backend.run(cell, self._progress()))
        command, _, rest = line.strip().partition(" ")
        if command == "status":
            self._guarded(lambda: print(f"{self.profile}: {self.backend.status()} ({self.backend.target})"))
        elif command == "stop":
            self._guarded(lambda: print("stopped the Spark session" if self.backend.stop() else "no Spark session was running"))
        elif command == "info":
            self._guarded(self._print_info)
        elif command == "profile" and rest.strip():
            self._guarded(lambda: self._use_profile(rest.strip()))
        else:
            self._error("usage: %spark status | stop | info | profile NAME")
        return None

    @cell_magic
    def local(self, line: str, cell: str) -> Any:
        """Run the cell in the notebook's own namespace."""
        from sagelab.spark.backends import run_cell

        return self._guarded(lambda: run_cell(cell, self.user_ns))

    @cell_magic
    def sql(self, line: str, cell: str) -> Any:
        """%%sql [-o VAR] [-n MAXROWS] [-m take|sample] [-r FRACTION] [-q]: the query's rows as a pandas DataFrame."""
        try:
            options = _options(line, {"-o": str, "-n": int, "-m": str, "-r": float}, flags={"-q"})
        except UsageError as exc:
            return self._error(str(exc))
        method = options.get("-m", "take")
        if method not in ("take", "sample"):
            return self._error(f"%%sql -m must be take or sample; got {method!r}")
        maxrows, fraction = options.get("-n", MAX_ROWS), options.get("-r", SAMPLE_FRACTION)
        if not 0.0 <= fraction <= 1.0:
            return self._error(f"%%sql -r must be a fraction between 0 and 1; got {fraction}")

        def query() -> Any:
            limit = maxrows + 1 if maxrows >= 0 else -1  # one more than shown: tells whether rows were cut
            quiet = "-q" in options  # a quiet cell shows nothing: no progress, no notes, no rows
            rows = self.backend.sql(cell, fraction if method == "sample" else None, limit, _silent if quiet else self._progress())
            cut = 0 <= maxrows < len(rows)
            rows = rows.head(maxrows) if cut else rows
            if method == "sample" and not quiet:
                print(f"a random sample of about {fraction:.0%} of the rows", flush=True)
            if cut and not quiet:
                print(f"the first {maxrows} rows only: the query has more (-n -1 for all of them)", flush=True)
            if "-o" in options:
                self.user_ns[options["-o"]] = rows
            return None if quiet else rows

        return self._guarded(query)

    @line_cell_magic
    def send_to_spark(self, line: str, cell: str | None = None) -> None:
        """%%send_to_spark -i VAR [-t df|str] [-n NAME]: a notebook variable to the Spark side (a DataFrame also as a SQL view)."""
        try:
            options = _options(line, {"-i": str, "-t": str, "-n": str})
        except UsageError as exc:
            return self._error(str(exc))
        source = str(options.get("-i", ""))
        kind, name = options.get("-t", "str"), str(options.get("-n", source))
        if not source or source not in self.user_ns:
            return self._error(f"%%send_to_spark -i names no variable of this notebook: {source!r}")
        if kind not in ("df", "str"):
            return self._error(f"%%send_to_spark -t must be df or str; got {kind!r}")
        value = self.user_ns[source]

        def send() -> None:
            if kind == "str":
                self.backend.send_string(name, str(value))
                return
            import pandas

            if not isinstance(value, pandas.DataFrame):
                raise UsageError(f"%%send_to_spark -t df: {source} is a {type(value).__name__}, not a pandas DataFrame")
            self.backend.send_frame(name, value, self._progress())
            print(f"{name}: a Spark DataFrame of {len(value)} rows on the Spark side, and a SQL view", flush=True)

        self._guarded(send)
        return None

    # -- the session ----------------------------------------------------------------------------

    @cell_magic
    def configure(self, line: str, cell: str) -> None:
        """%%configure [-f] {json}: driverMemory, executorCores, conf, url, ... for the next session (-f restarts a running one)."""
        try:
            options = json.loads(cell or "{}")
        except ValueError as exc:
            return self._error(f"%%configure takes a JSON object: {exc}")
        if not isinstance(options, dict):
            return self._error("%%configure takes a JSON object, e.g. {\"driverMemory\": \"4g\"}")

        def apply() -> None:
            if self.backend.running:
                if "-f" not in line.split():
                    raise UsageError("a Spark session is running: %%configure -f restarts it with these settings")
                self.backend.stop()
            self.sessions.configure(options)
            settings = {**self.sessions.request, **self.sessions.livy_conf} if self.sessions.livy else self.sessions.conf
            shown = ", ".join(f"{key}={value}" for key, value in settings.items()) or "the defaults"
            print(f"the next Spark cell starts a session on {self.sessions.target} with {shown}")

        self._guarded(apply)
        return None

    @line_cell_magic
    def info(self, line: str, cell: str | None = None) -> None:
        """The backend, the session (application, Spark UI) and its settings."""
        self._guarded(self._print_info)

    def _use_profile(self, name: str) -> None:
        from sagelab.spark import backend

        target = backend(name).target  # an unknown profile fails here, before the switch
        self.profile = name
        print(f"Spark cells use profile {name} ({target})")

    def _print_info(self) -> None:
        rows = self.backend.info()
        width = max(len(key) for key, _ in rows)
        print("\n".join(f"{key:<{width}}  {value}" for key, value in rows))

    @line_cell_magic
    def logs(self, line: str, cell: str | None = None) -> None:
        """The end of the session's log: the Spark driver's, or the Livy session's."""
        self._guarded(lambda: print(self.backend.log_tail()))

    @line_cell_magic
    def cleanup(self, line: str, cell: str | None = None) -> None:
        """%%cleanup -f: stop the session and forget the Spark side's variables (on Livy: delete the session)."""
        if "-f" not in line.split():
            return self._error("%%cleanup stops the Spark session and drops its variables: add -f to do it")
        def cleanup() -> None:
            self.backend.stop()
            print("stopped the Spark session and cleared its variables")

        self._guarded(cleanup)
        return None

    # -- helpers ----------------------------------------------------------------------------------

    def _progress(self) -> Show:
        """A line in the cell that each progress report replaces."""
        from IPython.display import DisplayHandle, Pretty

        handle: DisplayHandle | None = None

        def show(line: str) -> None:
            nonlocal handle
            if handle is None:
                handle = display(Pretty(line), display_id=True)  # type: ignore[no-untyped-call]
            else:
                handle.update(Pretty(line))  # type: ignore[no-untyped-call]

        return show

    def _guarded(self, action: Any) -> Any:
        """Run `action`; a sagelab error is one line in the cell, not a traceback."""
        try:
            return action()
        except SagelabError as exc:
            return self._error(str(exc))

    def _error(self, message: str) -> None:
        import sys

        print(message, file=sys.stderr)
        return None


@magics_class
class LocalApiMagics(Magics):
    """`%sagelab local [--port N] [--profile NAME]`: this kernel's AWS clients on `sagelab api`; `%sagelab aws`: on AWS again."""

    @line_magic
    def sagelab(self, line: str) -> None:
        """%sagelab local [--port N] [--profile NAME] | %sagelab aws: where boto3 and the SageMaker SDK send their calls."""
        from sagelab.notebook.local_api import use_aws, use_local

        command, _, rest = line.strip().partition(" ")
        try:
            if command == "local":
                options = _options(rest, {"--port": int, "--profile": str})
                print(use_local(options.get("--port"), options.get("--profile", "local")))
            elif command == "aws" and not rest.strip():
                print(use_aws())
            else:
                raise UsageError("usage: %sagelab local [--port N] [--profile NAME] | %sagelab aws")
        except SagelabError as exc:
            print(exc, file=sys.stderr)


def _options(line: str, valued: dict[str, type], flags: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """`-o top -n 10 -q` → {"-o": "top", "-n": 10, "-q": True}."""
    words, options = shlex.split(line), {}
    index = 0
    while index < len(words):
        word = words[index]
        if word in flags:
            options[word] = True
        elif word in valued and index + 1 < len(words):
            try:
                options[word] = valued[word](words[index + 1])
            except ValueError:
                raise UsageError(f"{word} takes a {valued[word].__name__}; got {words[index + 1]!r}") from None
            index += 1
        else:
            raise UsageError(f"unknown option {word!r}; options: {', '.join([*valued, *flags])}")
        index += 1
    return options


def _silent(line: str) -> None:
    """The progress of a quiet (-q) cell: shown nowhere."""
