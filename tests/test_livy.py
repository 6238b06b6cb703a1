"""The Livy backend (EMR on EC2's classic interface) against a stand-in for Livy that runs real Spark.

Apache Livy cannot be installed here (no PyPI or Debian package), so `livy_standin.LivyStandIn`
stands in for it: an HTTP server on 127.0.0.1 that answers the requests of Livy's published REST
API with Livy's JSON shapes and status codes, each session a Python process with a real local
pyspark SparkSession. The first test holds the stand-in to that API with plain HTTP requests, not
our client; sparkmagic's own client would be the better witness, but it does not install beside
this project's packages (it wants pandas < 3 and builds gssapi against Kerberos headers).
The magics run in IPython's InteractiveShell, in this process, as a notebook's cells.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagelab.config import load_settings
from sagelab.errors import ConfigError, SagelabError

pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None:
    if os.environ.get("CI"):
        pytest.fail("CI has no Java: .ci/run installs it", pytrace=False)
    pytest.skip("no Java here (sagelab doctor says how to install it)", allow_module_level=True)

from livy_standin import LivyStandIn  # noqa: E402 - after the skips: it is only useful with Spark

USER, PASSWORD = "analyst", secrets.token_hex(8)


@pytest.fixture(scope="module")
def standin() -> Iterator[LivyStandIn]:
    """A Livy stand-in that asks for basic auth and the CSRF header, as a locked-down Livy does."""
    server = LivyStandIn(user=USER, password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        processes = [session.process for session in server.sessions.values() if session.process is not None]
        server.stop()
        assert all(process.poll() is not None for process in processes)


@pytest.fixture
def project(tmp_path: Path, standin: LivyStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project whose `emr` profile is the stand-in, with the credentials in the environment; a clean slate of Spark backends."""
    import sagelab.spark

    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "demo"\n\n[tool.sagelab.profiles.emr]\nspark = "livy+{standin.url}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAGELAB_LIVY_USER", USER)
    monkeypatch.setenv("SAGELAB_LIVY_PASSWORD", PASSWORD)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))
    yield tmp_path
    for profile in list(sagelab.spark._BACKENDS):
        sagelab.spark.stop(profile)
    sagelab.spark._BACKENDS.clear()
    sagelab.spark._SESSIONS.clear()


class Notebook:
    """Cells run in an IPython shell, each giving back what it printed (stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        InteractiveShell.clear_instance()
        self.shell = InteractiveShell.instance(config=config)
        self.capsys = capsys
        self.run("%load_ext sagelab")

    def run(self, cell: str) -> tuple[str, str]:
        self.capsys.readouterr()
        result = self.shell.run_cell(cell)
        out, err = self.capsys.readouterr()
        assert result.error_in_exec is None and result.error_before_exec is None, (cell, out, err)
        return out, err

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[no-any-return]


def _call(url: str, method: str = "GET", body: Any = None, auth: bool = True, csrf: bool = True) -> tuple[int, Any, dict[str, str]]:
    """One request to the stand-in with nothing but urllib: (status, JSON answer, headers)."""
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if csrf:
        headers["X-Requested-By"] = "test"
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method, headers=headers)
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def _until(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def test_the_standin_answers_livys_published_rest_api(standin: LivyStandIn) -> None:
    url = standin.url
    assert _call(f"{url}/sessions", auth=False)[0] == 401
    assert _call(f"{url}/sessions", "POST", {"kind": "pyspark"}, csrf=False)[:2] == (400, "Missing Required Header for CSRF protection.")
    status, answer, _ = _call(f"{url}/sessions", "POST", {"kind": "pyspark", "driverMem": "1g"})
    assert status == 400 and 'Unrecognized field "driverMem"' in answer
    assert _call(f"{url}/sessions/77")[:2] == (404, {"msg": "Session '77' not found."})

    status, session, headers = _call(f"{url}/sessions", "POST", {"kind": "pyspark", "name": "probe", "executorCores": 1, "conf": {"spark.sql.shuffle.partitions": "2"}})
    assert status == 201 and headers["Location"] == f"/sessions/{session['id']}"
    assert session["state"] in ("not_started", "starting") and session["kind"] == "pyspark" and session["name"] == "probe"
    assert {"id", "appId", "owner", "proxyUser", "appInfo", "log", "conf", "driverMemory", "numExecutors", "queue"} <= set(session)
    base = f"{url}/sessions/{session['id']}"
    _until(lambda: _call(f"{base}/state")[1]["state"] == "idle")
    assert _call(f"{base}/state")[1] == {"id": session["id"], "state": "idle"}
    listed = _call(f"{url}/sessions")[1]
    assert listed["from"] == 0 and session["id"] in [s["id"] for s in listed["sessions"]]
    assert _call(base)[1]["appId"].startswith("local-")

    status, statement, headers = _call(f"{base}/statements", "POST", {"code": "x = 6 * 7\nprint('hello')\nx", "kind": "pyspark"})
    assert status == 201 and headers["Location"] == f"{base.removeprefix(url)}/statements/{statement['id']}"
    assert {"id", "code", "state", "output", "progress", "started", "completed"} <= set(statement) and statement["state"] in ("waiting", "running")
    done = _until(lambda: (s := _call(f"{base}/statements/{statement['id']}")[1])["state"] == "available" and s)
    assert done["output"] == {"status": "ok", "execution_count": statement["id"], "data": {"text/plain": "hello\n42"}} and done["progress"] == 1.0
    failing = _call(f"{base}/statements", "POST", {"code": "spark.conf.get('spark.sql.shuffle.partitions') + 1"})[1]
    failed = _until(lambda: (s := _call(f"{base}/statements/{failing['id']}")[1])["state"] == "available" and s)["output"]
    assert failed["status"] == "error" and failed["ename"] == "TypeError" and isinstance(failed["traceback"], list)
    assert _call(f"{base}/statements")[1]["total_statements"] == 2
    assert _call(f"{base}/statements/9")[:2] == (404, "Statement not found")

    log = _call(f"{base}/log?from=0&size=2")[1]
    assert log["id"] == session["id"] and log["from"] == 0 and log["total"] > 2 and log["log"][0] == "stdout: " and len(log["log"]) == 2
    assert _call(f"{base}/statements/0/cancel", "POST", {})[:2] == (200, {"msg": "canceled"})
    assert _call(base, "DELETE")[:2] == (200, {"msg": "deleted"})
    assert _call(base)[0] == 404


def test_a_notebook_on_livy(project: Path, standin: LivyStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    notebook = Notebook(capsys)
    out, _ = notebook.run("%spark profile emr")
    assert f"Spark cells use profile emr (livy+{standin.url})" in out
    assert "emr: not started" in notebook.run("%spark status")[0]
    out, _ = notebook.run('%%configure\n{"driverMemory": "1g", "name": "notebook", "conf": {"spark.sql.shuffle.partitions": "3", "spark.ui.enabled": "true"}}')
    assert "the next Spark cell starts a session on livy+http://127.0.0.1:" in out and "driverMemory=1g" in out

    out, err = notebook.run('%%spark\nraw = spark.range(40).selectExpr("id AS a", "id * id AS b")\nraw.createOrReplaceTempView("raw")\n'
                            'print(spark.conf.get("spark.sql.shuffle.partitions"), sc.appName)\nraw.count()')  # fmt: skip
    assert re.search(r"started Livy session \d+ \(local-\d+\); Spark UI: http://127.0.0.1:\d+", out), out
    assert "3 notebook\n40" in out and not err
    [(_, _, request)] = [r for r in standin.requests if r[:2] == ("POST", "/sessions") and isinstance(r[2], dict) and r[2].get("name") == "notebook"]
    assert request == {"kind": "pyspark", "driverMemory": "1g", "name": "notebook",  # sparkmagic's request: fields as given, Spark properties in conf
                       "conf": {"spark.sql.shuffle.partitions": "3", "spark.ui.enabled": "true"}}
    [session_id] = list(standin.sessions)

    out, err = notebook.run("%%spark\ndef f(x):\n    return x / 0\nf(1)")
    assert err.splitlines()[0] == "ZeroDivisionError: division by zero" and 'File "<stdin>", line 2, in f' in err and "Traceback" not in err + out

    out, err = notebook.run("%%sql -o top -n 5\nSELECT a, b FROM raw ORDER BY a DESC")
    assert "the first 5 rows only: the query has more" in out, (out, err)
    top = notebook.ns["top"]
    assert list(top.columns) == ["a", "b"] and len(top) == 5 and int(top.a.max()) == 39 and int(top.b[0]) == 39 * 39
    out, _ = notebook.run("%%sql -q -n -1 -o everything\nSELECT b, a FROM raw")
    assert not out.strip() and list(notebook.ns["everything"].columns) == ["b", "a"] and len(notebook.ns["everything"]) == 40
    out, _ = notebook.run("%%sql -q -n 3 -o few\nSELECT a FROM raw")  # quiet: not even the note that rows were cut
    assert not out.strip() and len(notebook.ns["few"]) == 3
    out, _ = notebook.run("%%sql -m sample -r 0.5 -n -1 -o sampled\nSELECT * FROM raw")
    assert "a random sample of about 50% of the rows" in out and "the first" not in out and 0 < len(notebook.ns["sampled"]) < 40

    notebook.ns["frame"] = pd.DataFrame({"name": ["x", "y's", 'z"'], "k": [1, 2, 3], "when": pd.to_datetime(["2026-01-01", "2026-01-02", None])})
    assert "frame: a Spark DataFrame of 3 rows" in notebook.run("%send_to_spark -i frame -t df -n frame")[0]
    assert "['name', 'k', 'when']" in notebook.run("%%spark\nframe.columns")[0]
    notebook.run("%%sql -o joined\nSELECT SUM(k) AS total, MAX(name) AS last FROM frame")
    assert notebook.ns["joined"].to_dict("records") == [{"total": 6, "last": 'z"'}]
    notebook.ns["greeting"] = "it's \"quoted\"\nand \\ two lines"
    notebook.run("%send_to_spark -i greeting -t str")
    assert notebook.run("%%spark\nprint(greeting == " + repr(notebook.ns["greeting"]) + ")")[0].strip() == "True"
    assert "-n must be a Python name" in notebook.run("%send_to_spark -i greeting -t str -n not-a-name")[1]

    out, _ = notebook.run("%info")
    assert re.search(rf"session +{session_id} \(idle, kind pyspark\)", out) and re.search(r"application +local-\d+", out), out
    assert re.search(r"Spark UI +http://127.0.0.1:\d+", out) and re.search(r"driverMemory +1g", out), out
    out, _ = notebook.run("%logs")
    assert "stderr:" in out

    # a long statement (four tasks; two finish, two sleep) cancelled as the notebook's stop button does it: KeyboardInterrupt
    def interrupt_at_half_way() -> None:
        session = standin.sessions[session_id]
        _until(lambda: any("time.sleep" in s.code and s.progress >= 0.5 for s in session.statements))
        time.sleep(2.5)  # the client polls the statement at least once a second: it has seen the progress by now
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_at_half_way, daemon=True).start()
    started = time.monotonic()
    out, err = notebook.run("%%spark\nimport time\nsc.parallelize(range(4), 4).foreach(lambda i: time.sleep(0 if i < 2 else 120))")
    assert time.monotonic() - started < 120
    assert re.search(r"Spark statement \d+: \[#####\.\.\.\.\.\] 50%", out), out  # its progress, shown in the cell
    assert re.fullmatch(rf"interrupted: Livy cancelled statement \d+ \(its Spark jobs\); session {session_id} stays\n", err), err
    assert notebook.run("%%spark\n1 + 1")[0].strip() == "2"
    assert f"emr: running (Livy session {session_id}, idle)" in notebook.run("%spark status")[0]

    # -f restarts the session with the new settings, which reach the Spark side
    assert "a Spark session is running: %%configure -f" in notebook.run('%%configure\n{"conf": {"spark.sql.shuffle.partitions": "5"}}')[1]
    notebook.run('%%configure -f\n{"conf": {"spark.sql.shuffle.partitions": "5"}, "jars": []}')
    assert session_id not in standin.sessions
    assert notebook.run("%%spark\nspark.conf.get('spark.sql.shuffle.partitions')")[0].strip().endswith("'5'")
    [session_id] = list(standin.sessions)

    assert "stopped the Spark session" in notebook.run("%cleanup -f")[0]
    assert session_id not in standin.sessions
    assert ("DELETE", f"/sessions/{session_id}", None) in standin.requests
    assert "emr: not started" in notebook.run("%spark status")[0]
    assert "unknown option 'driverMem'" in notebook.run('%%configure\n{"driverMem": "1g"}')[1]


def test_a_session_that_dies_while_starting_is_one_error_with_its_log(project: Path, standin: LivyStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = Notebook(capsys)
    notebook.run("%spark profile emr")
    notebook.run('%%configure\n{"driverMemory": "1x"}')
    before = set(standin.sessions)
    _, err = notebook.run("%%spark\n1")
    assert re.match(r"Livy session \d+ is dead instead of idle: it did not start\. From its log:\n", err), err
    assert "Invalid maximum heap size: -Xmx1x" in err and "Traceback" not in err
    assert set(standin.sessions) == before  # the dead session was deleted, not left on the server
    assert "emr: not started" in notebook.run("%spark status")[0]


def test_unreachable_or_refusing_livy_is_one_line(project: Path, standin: LivyStandIn, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    notebook = Notebook(capsys)
    notebook.run("%spark profile emr")
    notebook.run(f'%%configure\n{{"url": "livy+http://127.0.0.1:{closed}"}}')
    _, err = notebook.run("%%spark\n1")
    assert re.fullmatch(rf"Livy at livy\+http://127.0.0.1:{closed} did not answer POST /sessions: \[Errno 111\] Connection refused "
                        r"\(is the server up, and the URL's host and port right\?\)\n", err), err  # fmt: skip

    notebook.run(f'%%configure\n{{"url": "livy+{standin.url}"}}')
    monkeypatch.setenv("SAGELAB_LIVY_PASSWORD", "wrong")
    _, err = notebook.run("%%spark\n1")
    assert err == f"Livy at livy+{standin.url} refused the credentials of SAGELAB_LIVY_USER: set SAGELAB_LIVY_USER and SAGELAB_LIVY_PASSWORD (never in a file)\n"
    monkeypatch.delenv("SAGELAB_LIVY_USER")
    assert "asks for credentials" in notebook.run("%%spark\n1")[1]


def test_livy_settings_are_checked(tmp_path: Path) -> None:
    from sagelab.spark.sessions import SparkSessions

    for value, message in [("http://emr-master:8998", "write livy\\+http://emr-master:8998 for a Livy server"),
                           ("livy+http://me:secret@emr-master:8998", "SAGELAB_LIVY_USER and SAGELAB_LIVY_PASSWORD variables, never in a file"),
                           ("livy://emr-master:8998", 'spark must be "local.*"livy\\+http://host:8998"')]:  # fmt: skip
        (tmp_path / "pyproject.toml").write_text(f'[tool.sagelab]\nspark = "{value}"\n')
        with pytest.raises(ConfigError, match=message):
            load_settings(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.sagelab]\nspark = "livy+https://emr-master:8998"\n')
    sessions = SparkSessions(load_settings(tmp_path))
    sessions.configure({"driverMemory": "2g", "queue": "analysts", "conf": {"spark.sql.shuffle.partitions": 8}})
    assert sessions.request == {"driverMemory": "2g", "queue": "analysts"} and sessions.livy_conf == {"spark.sql.shuffle.partitions": "8"}
    with pytest.raises(SagelabError, match="Livy server .* no SparkSession in this process"):
        sessions.session()
    with pytest.raises(ConfigError, match="queue is a Livy session option, and this profile's Spark is local"):
        sessions.configure({"url": "local[2]", "queue": "analysts"})
