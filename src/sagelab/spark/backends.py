"""Where a notebook's Spark code runs: the one interface the magics use, and the backend a profile's `spark` setting picks.

`InProcessBackend` runs cells in this process, with a namespace of their own, on local Spark or a
Spark Connect session (`SparkSessions`); `LivyBackend` (`sagelab.spark.livy`) sends them to a Livy
server as statements. The magics (`sagelab.notebook.magics`) choose nothing themselves: they ask
`sagelab.spark.backend(profile)` and call what `SparkBackend` offers.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sagelab.spark.progress import watch

if TYPE_CHECKING:
    from sagelab.spark.sessions import SparkSessions

Show = Callable[[str], None]
"""Shows one line of progress in the cell, replacing the previous one."""


class SparkBackend(Protocol):
    """What the magics need of a Spark backend."""

    @property
    def target(self) -> str:
        """The profile's `spark` setting this backend serves: local[*], sc://..., livy+http://..."""

    @property
    def running(self) -> bool:
        """A session is up (started by the first Spark cell)."""

    def status(self) -> str:
        """`running` or `not started`, with what the backend knows more (Livy: the session id and state)."""

    def run(self, code: str, show: Show) -> Any:
        """Run a cell on the Spark side; return what the cell shows (None: nothing, or it was printed)."""

    def sql(self, query: str, fraction: float | None, limit: int, show: Show) -> Any:
        """The query's rows as a pandas DataFrame: a sample of about `fraction` of them if given, `limit` at most (-1: all)."""

    def send_frame(self, name: str, frame: Any, show: Show) -> None:
        """A pandas DataFrame to the Spark side: a Spark DataFrame `name`, and a SQL view of that name."""

    def send_string(self, name: str, value: str) -> None:
        """A string to the Spark side, as variable `name`."""

    def info(self) -> list[tuple[str, str]]:
        """What `%info` shows: the backend, the session, its settings."""

    def log_tail(self, lines: int = 100) -> str:
        """The end of the session's log (the Spark driver's, or Livy's)."""

    def stop(self) -> bool:
        """End the session and forget the Spark side's variables; False when none was running."""


def open_backend(sessions: SparkSessions) -> SparkBackend:
    """The backend for the sessions' current `spark` setting."""
    if sessions.livy:
        from sagelab.spark.livy import LivyBackend

        return LivyBackend(sessions)
    return InProcessBackend(sessions)


class InProcessBackend:
    """Cells run in this process, in a namespace of their own (`spark`, and `sc` on local Spark), on local Spark or Spark Connect."""

    def __init__(self, sessions: SparkSessions) -> None:
        self.sessions = sessions
        self.namespace: dict[str, Any] = {}  # the Spark side's variables

    @property
    def target(self) -> str:
        return self.sessions.target

    @property
    def running(self) -> bool:
        return self.sessions.running

    def status(self) -> str:
        return "running" if self.running else "not started"

    def run(self, code: str, show: Show) -> Any:
        session = self._session(code)
        with watch(session, show):
            return run_cell(code, self.namespace)

    def sql(self, query: str, fraction: float | None, limit: int, show: Show) -> Any:
        session = self._session(query)
        with watch(session, show):
            frame = session.sql(query)
            if fraction is not None:
                frame = frame.sample(fraction=fraction)
            return (frame.limit(limit) if limit >= 0 else frame).toPandas()

    def send_frame(self, name: str, frame: Any, show: Show) -> None:
        remote = self._session("").createDataFrame(frame)
        remote.createOrReplaceTempView(name)
        self.namespace[name] = remote

    def send_string(self, name: str, value: str) -> None:
        self.namespace[name] = value

    def info(self) -> list[tuple[str, str]]:
        return self.sessions.info()

    def log_tail(self, lines: int = 100) -> str:
        return self.sessions.log_tail(lines)

    def stop(self) -> bool:
        self.namespace.clear()
        return self.sessions.stop()

    def _session(self, code: str) -> Any:
        session = self.sessions.session()
        self.namespace.setdefault("spark", session)
        if self.sessions.local:
            self.namespace.setdefault("sc", session.sparkContext)
        self.sessions.mount(code)
        return session


def run_cell(code: str, namespace: dict[str, Any]) -> Any:
    """Execute `code` in `namespace` as a notebook cell: the value of a last bare expression is returned."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 - the user's own cell
    if not isinstance(last, ast.Expr):
        return None
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307 - the user's own cell
