"""Livy, EMR on EC2's classic interface: a Spark session on a Livy server, and notebook cells as its statements.

`spark = "livy+http://host:8998"` (or `livy+https://`) in a profile. The requests are Livy's
published REST API (https://livy.apache.org/docs/latest/rest-api.html), as sparkmagic sends them:

    POST   /sessions                       {"kind": "pyspark", "conf": {...}, "driverMemory": ..., ...}  → 201
    GET    /sessions/{id}/state            until "idle" (error, dead, killed: the session failed)
    POST   /sessions/{id}/statements       {"code": ..., "kind": "pyspark"}  → 201
    GET    /sessions/{id}/statements/{n}   until "available": output {status: ok, data: {text/plain}} or
                                           {status: error, ename, evalue, traceback}; `progress` meanwhile
    POST   /sessions/{id}/statements/{n}/cancel    on KeyboardInterrupt (the notebook's stop button)
    GET    /sessions/{id}/log?from=&size=  `%logs`
    DELETE /sessions/{id}                  `%spark stop`, `%cleanup -f`, the kernel's exit

Credentials never live in files: with SAGELAB_LIVY_USER (and SAGELAB_LIVY_PASSWORD) set, requests
carry HTTP basic auth (Livy behind LDAP, Knox or a proxy). POSTs and DELETEs carry the
X-Requested-By header that Livy's CSRF protection asks for.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from sagelab.errors import SagelabError

if TYPE_CHECKING:
    from sagelab.spark.backends import Show
    from sagelab.spark.sessions import SparkSessions

USER_VARIABLE = "SAGELAB_LIVY_USER"
PASSWORD_VARIABLE = "SAGELAB_LIVY_PASSWORD"
KIND = "pyspark"  # cells are Python
START_TIMEOUT = 600.0  # seconds for a session to become idle: YARN may queue it behind others
ENDED = ("error", "dead", "killed", "shutting_down", "success")  # session states it never comes back from
DONE = ("available", "error", "cancelled")  # statement states that carry no more change
MARK = "\x02sagelab\x03"  # prefixes the lines of %%sql's rows in a statement's output: other output cannot pass for them


class LivyRefusal(SagelabError):
    """Livy answered a request with an error status (`status`: 400, 404, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LivyClient:
    """Livy's REST API, one method a call; every failure is a one-line SagelabError naming the server and the call."""

    def __init__(self, target: str, timeout: float = 30.0) -> None:
        import urllib.request

        self.target = target
        self.url = target.removeprefix("livy+").rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Requested-By": "sagelab"}
        user = os.environ.get(USER_VARIABLE)
        if user:
            import base64

            password = os.environ.get(PASSWORD_VARIABLE, "")
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._opener = urllib.request.build_opener()  # honours HTTP(S)_PROXY and NO_PROXY, as sparkmagic's requests does

    def create_session(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/sessions", request)  # type: ignore[no-any-return]

    def session(self, session_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{session_id}")  # type: ignore[no-any-return]

    def state(self, session_id: int) -> str:
        return str(self._call("GET", f"/sessions/{session_id}/state")["state"])

    def delete_session(self, session_id: int) -> None:
        self._call("DELETE", f"/sessions/{session_id}", missing_ok=True)

    def run(self, session_id: int, code: str) -> dict[str, Any]:
        return self._call("POST", f"/sessions/{session_id}/statements", {"code": code, "kind": KIND})  # type: ignore[no-any-return]

    def statement(self, session_id: int, statement_id: int) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{session_id}/statements/{statement_id}")  # type: ignore[no-any-return]

    def cancel(self, session_id: int, statement_id: int) -> None:
        self._call("POST", f"/sessions/{session_id}/statements/{statement_id}/cancel", {})

    def log(self, session_id: int, start: int, size: int) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{session_id}/log?from={start}&size={size}")  # type: ignore[no-any-return]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise LivyRefusal(self._refusal(method, path, exc.code, exc.read()), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SagelabError(f"Livy at {self.target} did not answer {method} {path.split('?')[0]}: {reason} "
                               "(is the server up, and the URL's host and port right?)") from None  # fmt: skip
        except ValueError:
            raise SagelabError(f"Livy at {self.target} answered {method} {path} with something that is not JSON: is it a Livy server?") from None

    def _refusal(self, method: str, path: str, status: int, body: bytes) -> str:
        try:
            answer = json.loads(body)
            message = str(answer.get("msg", answer) if isinstance(answer, dict) else answer)
        except ValueError:
            message = body.decode(errors="replace").strip()[:200]
        if status == 401:
            given = f"refused the credentials of {USER_VARIABLE}" if USER_VARIABLE in os.environ and os.environ[USER_VARIABLE] else "asks for credentials"
            return f"Livy at {self.target} {given}: set {USER_VARIABLE} and {PASSWORD_VARIABLE} (never in a file)"
        return f"Livy at {self.target} answered {status} to {method} {path.split('?')[0]}: {message.splitlines()[0] if message else '(no message)'}"


class LivyBackend:
    """The profile's Livy session: started by the first Spark cell with `%%configure`'s settings, each cell a statement."""

    def __init__(self, sessions: SparkSessions) -> None:
        self.sessions = sessions
        self.target = sessions.target
        self.client = LivyClient(sessions.target)
        self.session_id: int | None = None

    @property
    def running(self) -> bool:
        return self.session_id is not None

    def request(self) -> dict[str, Any]:
        """The session request: sparkmagic's %%configure fields as given, and the Spark properties as `conf`."""
        return {"kind": KIND, **self.sessions.request, "conf": self.sessions.livy_conf}

    def start(self) -> int:
        """The session's id, creating it now and waiting until it is idle if there is none."""
        if self.session_id is not None:
            return self.session_id
        session = self.client.create_session(self.request())
        session_id = int(session["id"])
        print(f"starting Livy session {session_id} on {self.target} ...", flush=True)
        deadline, pause, state = time.monotonic() + START_TIMEOUT, 0.2, str(session.get("state"))
        try:
            while state != "idle":
                if state in ENDED:
                    raise SagelabError(f"Livy session {session_id} is {state} instead of idle: it did not start. From its log:\n"
                                       + _indent(_errors(self._tail(session_id, 200))))  # fmt: skip
                if time.monotonic() > deadline:
                    raise SagelabError(f"Livy session {session_id} is still {state} after {START_TIMEOUT:.0f} s: "
                                       "the cluster may be out of room (its YARN queue, its memory)")  # fmt: skip
                time.sleep(pause)
                pause = min(pause * 1.5, 2.0)
                state = self.client.state(session_id)
        except KeyboardInterrupt:
            self._delete_quietly(session_id)
            raise SagelabError(f"interrupted: deleted Livy session {session_id} before it started") from None
        except BaseException:
            self._delete_quietly(session_id)  # a failed start leaves nothing behind on the cluster
            raise
        self.session_id = session_id
        atexit.register(self._delete_at_exit)
        info = self.client.session(session_id)
        ui = (info.get("appInfo") or {}).get("sparkUiUrl")
        print(f"started Livy session {session_id} ({info.get('appId') or 'no application id'}){f'; Spark UI: {ui}' if ui else ''}", flush=True)
        return session_id

    def status(self) -> str:
        if self.session_id is None:
            return "not started"
        return f"running (Livy session {self.session_id}, {self.client.state(self.session_id)})"

    def run(self, code: str, show: Show) -> Any:
        text = self.execute(code, show)
        if text:
            print(text, flush=True)
        return None

    def execute(self, code: str, show: Show | None = None) -> str:
        """Run `code` as a statement and return its text output.

        Raises:
            SagelabError: the code failed on the Spark side (its error in one line and the end of its traceback),
                or the user interrupted it (Livy cancelled it; the session stays).
        """
        session_id = self.start()
        try:
            statement_id = int(self.client.run(session_id, code)["id"])
        except LivyRefusal as exc:
            if exc.status == 404:  # Livy ended the session (its idle timeout) or someone deleted it
                self._forget()
                raise SagelabError(f"Livy session {session_id} is gone (Livy ends idle sessions after livy.server.session.timeout): "
                                   "run the cell again to start a new one") from None  # fmt: skip
            raise
        try:
            statement = self._wait(session_id, statement_id, show)
        except KeyboardInterrupt:
            self.client.cancel(session_id, statement_id)
            try:
                statement = self._wait(session_id, statement_id, None)
            except KeyboardInterrupt:
                statement = {"state": "cancelling"}
            if statement.get("state") != "available":
                raise SagelabError(f"interrupted: Livy {statement.get('state')} statement {statement_id} (its Spark jobs); "
                                   f"session {session_id} stays") from None  # fmt: skip
        return _text(statement, statement_id)

    def sql(self, query: str, fraction: float | None, limit: int, show: Show) -> Any:
        """Run the query on the Livy side as sparkmagic does (its rows as JSON lines), and make the DataFrame here."""
        import pandas

        chain = f"spark.sql({query!r})" + (f".sample(False, {fraction!r})" if fraction is not None else "") + (f".limit({limit})" if limit >= 0 else "")
        code = (f"def _sagelab_rows():\n    import json\n    frame = {chain}\n    print({MARK!r} + json.dumps(frame.columns))\n"
                f"    for row in frame.toJSON().collect():\n        print({MARK!r} + row)\n_sagelab_rows()\ndel _sagelab_rows\n")  # fmt: skip
        lines = [line[len(MARK):] for line in self.execute(code, show).split("\n") if line.startswith(MARK)]
        if not lines:
            raise SagelabError("Livy's answer to %%sql holds no rows and no columns: was the output cut short?")
        columns = json.loads(lines[0])
        return pandas.DataFrame([json.loads(line) for line in lines[1:]], columns=columns)

    def send_frame(self, name: str, frame: Any, show: Show) -> None:
        """The frame's rows as JSON records (sparkmagic's way), read by Spark's JSON reader on the Livy side, in the frame's column order."""
        _check_name(name)
        if frame.empty:
            raise SagelabError("%%send_to_spark: the DataFrame has no rows, so Spark's JSON reader on Livy could make no columns of it")
        records = frame.to_json(orient="records", date_format="iso")
        columns = ["`" + str(column).replace("`", "``") + "`" for column in frame.columns]
        code = (f"import json as _sagelab_json\n"
                f"{name} = spark.read.json(spark.sparkContext.parallelize([_sagelab_json.dumps(r) for r in _sagelab_json.loads({records!r})]))"
                f".select({columns!r})\n{name}.createOrReplaceTempView({name!r})\ndel _sagelab_json\n")  # fmt: skip
        self.execute(code, show)

    def send_string(self, name: str, value: str) -> None:
        _check_name(name)
        self.execute(f"{name} = {value!r}")

    def info(self) -> list[tuple[str, str]]:
        rows = [("backend", "Livy"), ("url", self.target)]
        if self.session_id is None:
            rows.append(("session", "not started (the first %%spark or %%sql cell starts it)"))
        else:
            session = self.client.session(self.session_id)
            app = session.get("appInfo") or {}
            rows += [("session", f"{self.session_id} ({session.get('state')}, kind {session.get('kind')})"),
                     ("application", str(session.get("appId") or "none yet")),
                     ("Spark UI", str(app.get("sparkUiUrl") or "not reported by Livy")),
                     ("driver log", str(app.get("driverLogUrl") or "not reported by Livy (%logs shows the session's log)"))]  # fmt: skip
        rows += [(key, json.dumps(value) if not isinstance(value, str) else value) for key, value in sorted(self.sessions.request.items())]
        rows += [(key, value) for key, value in sorted(self.sessions.livy_conf.items())]
        return rows

    def log_tail(self, lines: int = 100) -> str:
        if self.session_id is None:
            return "no Livy session yet: the first %%spark or %%sql cell starts one"
        return self._tail(self.session_id, lines)

    def stop(self) -> bool:
        session_id = self._forget()
        if session_id is None:
            return False
        self.client.delete_session(session_id)
        return True

    def _wait(self, session_id: int, statement_id: int, show: Show | None) -> dict[str, Any]:
        started, pause, shown = time.monotonic(), 0.05, -1.0
        while True:
            statement = self.client.statement(session_id, statement_id)
            if statement.get("state") in DONE:
                if show is not None and shown >= 0:
                    show(f"Spark: statement {statement_id} in {time.monotonic() - started:.1f} s")
                return statement
            progress = float(statement.get("progress") or 0.0)
            if show is not None and 0 < progress < 1 and progress != shown:
                filled = int(10 * progress)
                show(f"Spark statement {statement_id}: [{'#' * filled}{'.' * (10 - filled)}] {progress:.0%}")
                shown = progress
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)

    def _tail(self, session_id: int, lines: int) -> str:
        total = int(self.client.log(session_id, 0, 0).get("total") or 0)
        return "\n".join(str(line) for line in self.client.log(session_id, max(0, total - lines), lines).get("log") or [])

    def _forget(self) -> int | None:
        session_id, self.session_id = self.session_id, None
        atexit.unregister(self._delete_at_exit)
        return session_id

    def _delete_at_exit(self) -> None:
        """The kernel is exiting: end the session rather than leave it to Livy's idle timeout."""
        if self.session_id is not None:
            self.client.timeout = 5.0
            self._delete_quietly(self.session_id)

    def _delete_quietly(self, session_id: int) -> None:
        """Delete a session on the way out of a failure or the process: the error that got us here is the one to show."""
        try:
            self.client.delete_session(session_id)
        except SagelabError:
            pass


def _text(statement: dict[str, Any], statement_id: int) -> str:
    """A finished statement's text/plain output; its error as one line and the end of the remote traceback."""
    output = statement.get("output") or {}
    if output.get("status") == "error" or statement.get("state") == "error":
        ename, evalue = output.get("ename", "Error"), str(output.get("evalue", "the statement failed")).strip()
        frames = "".join(output.get("traceback") or [])
        raised = list(re.finditer(rf"^([\w.]+\.)?{re.escape(ename)}\b", frames, re.MULTILINE))  # the error's own lines close the traceback
        frames = frames[: raised[-1].start()] if raised else frames
        tail = [line for line in frames.splitlines() if line.strip(" ^~") and not line.startswith("Traceback (most recent call last)")][-4:]
        where = f"\n  the end of Livy statement {statement_id}'s traceback:\n" + _indent("\n".join(tail)) if tail else ""
        raise SagelabError(f"{ename}: {evalue.splitlines()[0] if evalue else ''}{where}")
    data = output.get("data") or {}
    if "text/plain" in data:
        return str(data["text/plain"])
    return json.dumps(data["application/json"]) if "application/json" in data else ""


def _errors(log: str) -> str:
    """The lines of a log that say what went wrong (the last 8), or its last 10 lines when none says."""
    lines = [line for line in log.splitlines() if line.strip() and not line[0].isspace()]  # not traceback frames, code, carets
    errors = [line for line in lines if re.search(r"error|exception|invalid|fatal|denied|refused|not found|cannot", line, re.IGNORECASE)]
    return "\n".join(list(dict.fromkeys(errors))[-8:] or lines[-10:])


def _check_name(name: str) -> None:
    if not name.isidentifier():
        raise SagelabError(f"%%send_to_spark -n must be a Python name on the Livy side, such as frame; got {name!r}")


def _indent(text: str) -> str:
    return "\n".join(f"    {line[:300]}" for line in text.splitlines())
