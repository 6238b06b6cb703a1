"""`%load_ext sagelab`: sparkmagic's magics in any IPython or Jupyter kernel, on the profile's Spark.

As in sparkmagic, Spark code runs in a namespace of its own (the "remote" side: `spark`, and `sc`
on local Spark), apart from the notebook's, and data crosses on purpose:

    %%configure -f {"driverMemory": "4g", "conf": {"spark.sql.shuffle.partitions": "8"}}
    %%spark                      run the cell on the Spark side
    %%sql -o top -n 100          a query; its rows as a pandas DataFrame, `top` in the notebook
    %%local                      run the cell in the notebook's namespace
    %%send_to_spark -i frame -t df -n frame     a pandas DataFrame (or a str) to the Spark side
    %%info   %%logs   %%cleanup -f   %spark status|stop|info

IPython refuses a cell magic whose cell is empty, so the magics that take no code (send_to_spark,
info, logs, cleanup) are line magics too: `%info`, `%send_to_spark -i frame -t df -n frame`.
Each Spark cell shows its jobs' progress (stages, tasks) as it runs, and buckets its code names
are mounted first on local Spark (`storage`).
"""

from __future__ import annotations

import ast
import json
import shlex
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class
from IPython.display import display

from sagelab.errors import SagelabError
from sagelab.spark.progress import watch
from sagelab.spark.sessions import SparkSessions

MAX_ROWS = 2500  # sparkmagic's default for %%sql -n
SAMPLE_FRACTION = 0.1  # and for -r


def load(shell: Any) -> None:
    """Register the magics with an IPython shell (`%load_ext sagelab` calls this)."""
    shell.register_magics(SparkMagics(shell))


class UsageError(SagelabError):
    """A magic's arguments are wrong: shown as one line, like every sagelab error."""


@magics_class
class SparkMagics(Magics):
    """sparkmagic's cell magics over `SparkSessions` (the local profile's settings unless `%spark profile NAME`)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.profile = "local"
        self.remote: dict[str, Any] = {}  # the Spark side's namespace

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's own namespace."""
        assert self.shell is not None, "registered with a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def sessions(self) -> SparkSessions:
        from sagelab.spark import manager

        return manager(self.profile)

    # -- running code ---------------------------------------------------------------------------

    @line_cell_magic
    def spark(self, line: str, cell: str | None = None) -> Any:
        """%%spark runs the cell on the Spark side (its last expression's value is shown);
        %spark status | stop | info | profile NAME."""
        if cell is not None:
            return self._guarded(lambda: self._on_spark(cell))
        command, _, rest = line.strip().partition(" ")
        if command == "status":
            print(f"{self.profile}: {'running' if self.sessions.running else 'not started'} ({self.sessions.target})")
        elif command == "stop":
            print("stopped the Spark session" if self.sessions.stop() else "no Spark session was running")
            self.remote.clear()
        elif command == "info":
            self._print_info()
        elif command == "profile" and rest.strip():
            self.profile = rest.strip()
            self.remote.clear()
            print(f"Spark cells use profile {self.profile} ({self.sessions.target})")
        else:
            self._error("usage: %spark status | stop | info | profile NAME")
        return None

    @cell_magic
    def local(self, line: str, cell: str) -> Any:
        """Run the cell in the notebook's own namespace."""
        return self._guarded(lambda: _run(cell, self.user_ns))

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

        def query() -> Any:
            session = self._session(cell)
            with watch(session, self._progress()):
                frame = session.sql(cell)
                if method == "sample":
                    frame = frame.sample(fraction=fraction)
                rows = (frame.limit(maxrows + 1) if maxrows >= 0 else frame).toPandas()
            cut = 0 <= maxrows < len(rows)
            rows = rows.head(maxrows) if cut else rows
            if method == "sample":
                print(f"a random sample of about {fraction:.0%} of the rows", flush=True)
            if cut:
                print(f"the first {maxrows} rows only: the query has more (-n -1 for all of them)", flush=True)
            if "-o" in options:
                self.user_ns[options["-o"]] = rows
            return None if "-q" in options else rows

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
                self.remote[name] = str(value)
                return
            import pandas

            if not isinstance(value, pandas.DataFrame):
                raise UsageError(f"%%send_to_spark -t df: {source} is a {type(value).__name__}, not a pandas DataFrame")
            frame = self._session("").createDataFrame(value)
            frame.createOrReplaceTempView(name)
            self.remote[name] = frame
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
        if "-f" in line.split() and self.sessions.running:
            self.sessions.stop()
            self.remote.clear()
        self._guarded(lambda: self.sessions.configure(options))
        if not self.sessions.running:
            settings = ", ".join(f"{key}={value}" for key, value in self.sessions.conf.items()) or "the defaults"
            print(f"the next Spark cell starts a session on {self.sessions.target} with {settings}")
        return None

    @line_cell_magic
    def info(self, line: str, cell: str | None = None) -> None:
        """The backend, the session (application, Spark UI) and its settings."""
        self._print_info()

    def _print_info(self) -> None:
        rows = self.sessions.info()
        width = max(len(key) for key, _ in rows)
        print("\n".join(f"{key:<{width}}  {value}" for key, value in rows))

    @line_cell_magic
    def logs(self, line: str, cell: str | None = None) -> None:
        """The end of the Spark driver's log."""
        print(self.sessions.log_tail())

    @line_cell_magic
    def cleanup(self, line: str, cell: str | None = None) -> None:
        """%%cleanup -f: stop the session and forget the Spark side's variables."""
        if "-f" not in line.split():
            return self._error("%%cleanup stops the Spark session and drops its variables: add -f to do it")
        self.sessions.stop()
        self.remote.clear()
        print("stopped the Spark session and cleared its variables")
        return None

    # -- helpers ----------------------------------------------------------------------------------

    def _session(self, code: str) -> Any:
        session = self.sessions.session()
        self.remote.setdefault("spark", session)
        if self.sessions.local:
            self.remote.setdefault("sc", session.sparkContext)
        self.sessions.mount(code)
        return session

    def _on_spark(self, cell: str) -> Any:
        session = self._session(cell)
        with watch(session, self._progress()):
            return _run(cell, self.remote)

    def _progress(self) -> Any:
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


def _run(code: str, namespace: dict[str, Any]) -> Any:
    """Execute `code` in `namespace` as a notebook cell: the value of a last bare expression is returned."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the user's own cell
    if not isinstance(last, ast.Expr):
        return None
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307 - the user's own cell
