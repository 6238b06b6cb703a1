"""A stand-in for Apache Livy in tests: the part of Livy's published REST API that notebook clients use, over real Spark.

Apache Livy cannot be installed here: it has no PyPI or Debian package (its releases are Java
archives from apache.org, built against a Spark distribution). So the tests run this instead: an
HTTP server on 127.0.0.1 that answers the requests of https://livy.apache.org/docs/latest/rest-api.html
that sparkmagic and sagelab send, with Livy's JSON shapes and status codes (read from Livy's
servlets: SessionServlet, InteractiveSessionServlet, JsonServlet, CsrfFilter):

    GET    /sessions                          {from, total, sessions}
    POST   /sessions                          201 + Location: the Session; an unknown field is a 400
    GET    /sessions/{id}                     {id, name, appId, owner, proxyUser, state, kind, appInfo, log, ...}
    GET    /sessions/{id}/state               {id, state}: not_started, starting, idle, busy, shutting_down, error, dead, killed
    DELETE /sessions/{id}                     {msg: "deleted"}; 404 {msg: "Session '7' not found."}
    GET    /sessions/{id}/log?from=&size=     {id, from, total, log}: "stdout: ", its lines, "\\nstderr: ", its lines
    GET    /sessions/{id}/statements          {total_statements, statements}
    POST   /sessions/{id}/statements          201 + Location: the Statement {id, code, state, output, progress, started, completed}
    GET    /sessions/{id}/statements/{n}      states waiting, running, available, error, cancelling, cancelled
    POST   /sessions/{id}/statements/{n}/cancel   {msg: "canceled"}

A statement's output is Livy's: {status: "ok", execution_count, data: {"text/plain": ...}} (the
code's stdout and stderr, and the value of a last expression, as Livy's Python REPL makes it) or
{status: "error", execution_count, ename, evalue, traceback}. Each session is a Python process of
its own (this file, run with --repl) holding a real local pyspark SparkSession (`spark`, `sc`) on
127.0.0.1, master local[2], Spark UI off unless the session's conf turns it on, running statements
one at a time in a job group named after the statement, as Livy does; cancelling a running
statement cancels that job group every 100 ms until the statement ends or Livy's 30 s
job-cancel timeout passes. Optional, as on a Livy server: HTTP basic auth (Livy behind LDAP) and
the X-Requested-By header its CSRF protection asks for.

Not here: batches, sessions of kinds other than pyspark, completion, session recovery, YARN.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# CreateInteractiveRequest's fields; anything else fails as Jackson's UnrecognizedPropertyException does in Livy
REQUEST_FIELDS = {"kind", "proxyUser", "jars", "pyFiles", "files", "driverMemory", "driverCores", "executorMemory", "executorCores",
                  "numExecutors", "archives", "queue", "name", "conf", "heartbeatTimeoutInSecond", "ttl", "idleTimeout"}  # fmt: skip
# Livy's InteractiveSession.create: request fields → Spark properties
REQUEST_PROPERTIES = {"driverCores": "spark.driver.cores", "driverMemory": "spark.driver.memory", "executorCores": "spark.executor.cores",
                      "executorMemory": "spark.executor.memory", "numExecutors": "spark.executor.instances", "name": "spark.app.name",
                      "queue": "spark.yarn.queue"}  # fmt: skip


class Statement:
    def __init__(self, statement_id: int, code: str) -> None:
        self.id, self.code = statement_id, code
        self.state = "waiting"
        self.output: dict[str, Any] | None = None
        self.progress = 0.0
        self.started = self.completed = 0

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "state": self.state, "output": self.output, "progress": self.progress,
                "started": self.started, "completed": self.completed}  # fmt: skip


class Session:
    """A Livy interactive session: a REPL process with a SparkSession, its statements, its log."""

    def __init__(self, session_id: int, request: dict[str, Any], folder: Path, cancel_timeout: float) -> None:
        self.id, self.request, self.cancel_timeout = session_id, request, cancel_timeout
        self.state = "not_started"
        self.app_id: str | None = None
        self.app_info: dict[str, str | None] = {"driverLogUrl": None, "sparkUiUrl": None}
        self.statements: list[Statement] = []
        self.lock = threading.RLock()
        self.stdout, self.stderr = folder / f"session-{session_id}.stdout", folder / f"session-{session_id}.stderr"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = {"spark.app.name": f"livy-session-{self.id}", **{str(k): str(v) for k, v in (self.request.get("conf") or {}).items()}}
        conf.update({prop: str(self.request[field]) for field, prop in REQUEST_PROPERTIES.items() if self.request.get(field) is not None})
        conf.update({"spark.master": "local[2]", "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
        conf.setdefault("spark.ui.enabled", "false")
        conf.setdefault("spark.ui.showConsoleProgress", "false")  # the statement's `progress` is the progress; the log stays readable
        read, write = os.pipe()
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"}
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen([sys.executable, __file__, "--repl", str(write)], stdin=subprocess.PIPE, stdout=out, stderr=err,
                                            pass_fds=(write,), env=env, start_new_session=True)  # fmt: skip
        os.close(write)
        self.state = "starting"
        self._send({"conf": conf})
        threading.Thread(target=self._listen, args=(read,), daemon=True, name=f"livy-session-{self.id}").start()

    def execute(self, code: str) -> Statement:
        with self.lock:
            if self.state not in ("idle", "busy"):
                raise RuntimeError(f"Session is in state {self.state}")
            statement = Statement(len(self.statements), code)
            self.statements.append(statement)
            self.state = "busy"
            self._send({"op": "run", "id": statement.id, "code": code})
            return statement

    def cancel(self, statement_id: int) -> None:
        with self.lock:
            if self.state not in ("idle", "busy"):
                raise RuntimeError(f"Session is in state {self.state}")
            if not 0 <= statement_id < len(self.statements):
                return
            statement = self.statements[statement_id]
            if statement.state == "waiting":
                statement.state, statement.completed = "cancelled", _now()
                self._send({"op": "cancel", "id": statement_id})
                return
            if statement.state != "running":
                return
            statement.state = "cancelling"
        threading.Thread(target=self._cancel, args=(statement,), daemon=True).start()

    def _cancel(self, statement: Statement) -> None:
        """Livy's way: cancel the statement's job group every 100 ms until it ends, or mark it cancelled after the timeout."""
        deadline = time.monotonic() + self.cancel_timeout
        while statement.state == "cancelling":
            if time.monotonic() > deadline:
                with self.lock:
                    if statement.state == "cancelling":
                        statement.state, statement.completed = "cancelled", _now()
                break
            self._send({"op": "cancel", "id": statement.id})
            time.sleep(0.1)

    def stop(self) -> None:
        with self.lock:
            self.state = "shutting_down"
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # the REPL and its JVM
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if self.process is not None and self.process.stdin is not None:
            with self.lock:
                self.process.stdin.close()
        with self.lock:
            self.state = "killed"

    def log_lines(self) -> list[str]:
        def lines(path: Path) -> list[str]:
            return path.read_text(errors="replace").splitlines() if path.is_file() else []

        return ["stdout: ", *lines(self.stdout), "\nstderr: ", *lines(self.stderr)]

    def view(self) -> dict[str, Any]:
        request = self.request
        return {"id": self.id, "name": request.get("name"), "appId": self.app_id, "owner": None, "proxyUser": request.get("proxyUser"),
                "state": self.state, "kind": "pyspark", "appInfo": dict(self.app_info), "log": self.log_lines()[-10:],
                "ttl": request.get("ttl"), "idleTimeout": request.get("idleTimeout"), "driverMemory": request.get("driverMemory"),
                "driverCores": request.get("driverCores", 0), "executorMemory": request.get("executorMemory"),
                "executorCores": request.get("executorCores", 0), "conf": request.get("conf") or {}, "archives": request.get("archives", []),
                "files": request.get("files", []), "heartbeatTimeoutInSecond": request.get("heartbeatTimeoutInSecond", 0),
                "jars": request.get("jars", []), "numExecutors": request.get("numExecutors", 0), "pyFiles": request.get("pyFiles", []),
                "queue": request.get("queue")}  # fmt: skip

    def _send(self, message: dict[str, Any]) -> None:
        try:
            assert self.process is not None and self.process.stdin is not None
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the REPL is gone (_listen marks the session dead), or stopped (its stdin closed)

    def _listen(self, read: int) -> None:
        with os.fdopen(read, "rb") as replies:
            for line in replies:
                self._event(json.loads(line))
        assert self.process is not None
        self.process.wait()
        with self.lock:
            if self.state not in ("shutting_down", "killed"):
                self.state = "dead"  # the REPL exited by itself: it failed to start, or died
                for statement in self.statements:
                    if statement.state in ("waiting", "running", "cancelling"):
                        statement.state = "error"

    def _event(self, event: dict[str, Any]) -> None:
        with self.lock:
            kind = event["event"]
            if kind == "ready":
                self.app_id = event["appId"]
                self.app_info["sparkUiUrl"] = event.get("sparkUiUrl")
                self.state = "idle"
                return
            statement = self.statements[event["id"]]
            if kind == "started":
                if statement.state == "waiting":
                    statement.state, statement.started = "running", _now()
            elif kind == "progress":
                if statement.state in ("running", "cancelling"):
                    statement.progress = event["progress"]
            elif kind == "result":
                statement.output = event["output"]
                statement.state = {"running": "available", "cancelling": "cancelled"}.get(statement.state, statement.state)
                statement.progress, statement.completed = 1.0, _now()
            if kind in ("result", "skipped") and self.state == "busy":
                self.state = "busy" if any(s.state in ("waiting", "running", "cancelling") for s in self.statements) else "idle"


class LivyStandIn:
    """The server: start() → its http://127.0.0.1:PORT URL; stop() ends every session (no Java left behind)."""

    def __init__(self, user: str | None = None, password: str | None = None, csrf: bool = True, cancel_timeout: float = 30.0) -> None:
        self.user, self.password, self.csrf, self.cancel_timeout = user, password, csrf, cancel_timeout
        self.sessions: dict[int, Session] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body) as received: what clients sent
        self._next_id = 0
        self._lock = threading.Lock()
        self._folder = Path(tempfile.mkdtemp(prefix="livy-standin-"))
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            server_standin = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for session in list(self.sessions.values()):
            session.stop()
        self.sessions.clear()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> LivyStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create(self, request: dict[str, Any]) -> Session:
        with self._lock:
            session = Session(self._next_id, request, self._folder, self.cancel_timeout)
            self._next_id += 1
            self.sessions[session.id] = session
        session.start()
        return session


class _Handler(BaseHTTPRequestHandler):
    server_standin: LivyStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        standin = self.server_standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if standin.user is not None and not self._authorized():
            return self._reply(401, {"msg": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="livy"'})
        if standin.csrf and method in ("POST", "DELETE") and self.headers.get("X-Requested-By") is None:
            return self._reply(400, "Missing Required Header for CSRF protection.")
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            return self._reply(400, str(exc))
        standin.requests.append((method, url.path, body))
        try:
            status, answer, headers = self._route(method, url.path.rstrip("/"), query, body)
        except RuntimeError as exc:  # Livy's IllegalStateException ("Session is in state dead")
            return self._reply(500, {"msg": str(exc)})
        self._reply(status, answer, headers)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        standin = self.server_standin
        if path == "/sessions" and method == "GET":
            start, size = int(query.get("from", 0)), int(query.get("size", 100))
            sessions = [standin.sessions[key].view() for key in sorted(standin.sessions)]
            return 200, {"from": start, "total": len(sessions), "sessions": sessions[start:start + size]}, {}
        if path == "/sessions" and method == "POST":
            request = body if isinstance(body, dict) else {}
            unknown = sorted(set(request) - REQUEST_FIELDS)
            if unknown:
                return 400, f'Unrecognized field "{unknown[0]}" (class org.apache.livy.server.interactive.CreateInteractiveRequest), not marked as ignorable', {}
            if request.get("kind", "pyspark") != "pyspark":
                return 400, f"the Livy stand-in runs pyspark sessions only, not {request['kind']!r}", {}
            session = standin.create(request)
            return 201, session.view(), {"Location": f"/sessions/{session.id}"}
        match = re.fullmatch(r"/sessions/([^/]+)(/.*)?", path)
        if not match:
            return 404, {"msg": f"no such resource: {path}"}, {}
        key, rest = match.group(1), match.group(2) or ""
        session = standin.sessions.get(int(key)) if key.isdigit() else None
        if session is None:
            return 404, {"msg": f"Session '{key}' not found."}, {}
        if rest == "" and method == "GET":
            return 200, session.view(), {}
        if rest == "" and method == "DELETE":
            standin.sessions.pop(session.id, None)
            session.stop()
            return 200, {"msg": "deleted"}, {}
        if rest == "/state" and method == "GET":
            return 200, {"id": session.id, "state": session.state}, {}
        if rest == "/log" and method == "GET":
            lines = session.log_lines()
            size = int(query.get("size", 100))
            size = len(lines) if size < 0 else size
            start = int(query.get("from", -1))
            start = max(0, len(lines) - size) if start < 0 else start
            return 200, {"id": session.id, "from": start, "total": len(lines), "log": lines[start:start + size]}, {}
        if rest == "/statements" and method == "GET":
            return 200, {"total_statements": len(session.statements), "statements": [s.view() for s in session.statements]}, {}
        if rest == "/statements" and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("code"), str):
                return 400, "a statement needs its code", {}
            if body.get("kind", "pyspark") != "pyspark":
                return 400, f"the Livy stand-in runs pyspark statements only, not {body['kind']!r}", {}
            statement = session.execute(body["code"])
            return 201, statement.view(), {"Location": f"/sessions/{session.id}/statements/{statement.id}"}
        found = re.fullmatch(r"/statements/(\d+)(/cancel)?", rest)
        if found and method == "GET" and not found.group(2):
            statement_id = int(found.group(1))
            if statement_id >= len(session.statements):
                return 404, "Statement not found", {}
            return 200, session.statements[statement_id].view(), {}
        if found and method == "POST" and found.group(2):
            session.cancel(int(found.group(1)))
            return 200, {"msg": "canceled"}, {}
        return 404, {"msg": f"no such resource: {method} {path}"}, {}

    def _authorized(self) -> bool:
        standin = self.server_standin
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == standin.user and password == standin.password

    def _reply(self, status: int, answer: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _now() -> int:
    return int(time.time() * 1000)


# -- the session process: a Python REPL on a local SparkSession, as Livy's fake_shell.py runs one ------------------------


def repl(reply_fd: int) -> None:
    """Run statements from stdin one at a time; report to `reply_fd` (JSON lines). stdout and stderr are the session's log."""
    import ast
    import contextlib
    import io
    import queue
    import traceback

    replies = os.fdopen(reply_fd, "w", buffering=1)
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            replies.write(json.dumps(message) + "\n")

    setup = json.loads(sys.stdin.readline())
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in setup["conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()  # a failure ends the process with its traceback in the log: the session is dead
    sc = spark.sparkContext
    namespace: dict[str, Any] = {"spark": spark, "sc": sc, "__name__": "__main__"}
    send({"event": "ready", "appId": sc.applicationId, "sparkUiUrl": sc.uiWebUrl})

    work: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()
    current: list[int | None] = [None]

    def read() -> None:
        for line in sys.stdin:
            message = json.loads(line)
            if message["op"] == "run":
                work.put(message)
            elif message["op"] == "cancel":
                cancelled.add(message["id"])
                sc.cancelJobGroup(str(message["id"]))
        work.put(None)

    def watch() -> None:
        last: tuple[int | None, float] = (None, -1.0)
        tracker = sc.statusTracker()
        while True:
            time.sleep(0.2)
            statement_id = current[0]
            if statement_id is None:
                continue
            tasks = done = 0
            for job_id in tracker.getJobIdsForGroup(str(statement_id)):
                job = tracker.getJobInfo(job_id)
                for stage_id in job.stageIds if job else []:
                    stage = tracker.getStageInfo(stage_id)
                    if stage:
                        tasks, done = tasks + stage.numTasks, done + stage.numCompletedTasks
            progress = done / tasks if tasks else 0.0
            if (statement_id, progress) != last:
                send({"event": "progress", "id": statement_id, "progress": progress})
                last = (statement_id, progress)

    def execute(code: str, count: int) -> dict[str, Any]:
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            body = ast.parse(code, "<stdin>").body
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                for node in body[:-1]:
                    exec(compile(ast.Module([node], []), "<stdin>", "exec"), namespace)  # noqa: S102 - the test's statement
                for node in body[-1:]:
                    exec(compile(ast.Interactive([node]), "<stdin>", "single"), namespace)  # noqa: S102 - a last expression prints its value
        except BaseException as exc:  # noqa: BLE001 - the statement's error is its output, as in Livy
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False)
            for index, line in enumerate(lines):
                if re.match(r'\s*File "<stdin>".*in <module>', line):
                    lines = lines[:1] + lines[index + 1:]
                    break
            return {"status": "error", "execution_count": count, "ename": type(exc).__name__, "evalue": str(exc), "traceback": lines}
        return {"status": "ok", "execution_count": count, "data": {"text/plain": (stdout.getvalue() + stderr.getvalue()).rstrip()}}

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=watch, daemon=True).start()
    while (message := work.get()) is not None:
        statement_id = message["id"]
        if statement_id in cancelled:
            send({"event": "skipped", "id": statement_id})
            continue
        sc.setJobGroup(str(statement_id), f"Job group for statement {statement_id}")
        current[0] = statement_id
        send({"event": "started", "id": statement_id})
        output = execute(message["code"], statement_id)
        current[0] = None
        send({"event": "result", "id": statement_id, "output": output})
    spark.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["--repl"]:
    repl(int(sys.argv[2]))
