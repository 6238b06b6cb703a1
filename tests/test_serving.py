"""The inference server: archives, codecs, handler conventions, and real servers on 127.0.0.1.

Servers run as `python -m sagelab.serving` subprocesses on free ports, spoken to over real HTTP
(http.client); handler conventions are also checked in-process through InferenceHandler.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from unittest.mock import ANY

import joblib
import numpy as np
import pytest
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from sagelab.errors import ModelError, SagelabError
from sagelab.serving import codecs, extract_model, resolve_model
from sagelab.serving import batching
from sagelab.serving.batching import FAST_BATCH_SECONDS, FAST_STREAK, InferenceRunner
from sagelab.serving.handlers import InferenceHandler
from sagelab.serving.http_protocol import JoiningTransport
from sagelab.serving.protocol import ServingSettings

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


# -- fixtures: models, code, servers --------------------------------------------------------


@pytest.fixture(scope="session")
def iris() -> LogisticRegression:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture(scope="session")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory, iris: LogisticRegression) -> Path:
    """A SageMaker scikit-learn model folder with no code: the default handlers serve it."""
    folder = tmp_path_factory.mktemp("sklearn-model")
    joblib.dump(iris, folder / "model.joblib")
    return folder


@pytest.fixture(scope="session")
def echo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LinearRegression that predicts its first feature, so each answer names its request."""
    folder = tmp_path_factory.mktemp("echo-model")
    X = np.random.default_rng(0).normal(size=(50, 3))
    joblib.dump(LinearRegression().fit(X, X[:, 0]), folder / "model.joblib")
    return folder


def model_with_code(folder: Path, code: str, *, weights: Any = None, extra: dict[str, str] | None = None) -> Path:
    (folder / "code").mkdir(parents=True, exist_ok=True)
    (folder / "code" / "inference.py").write_text(textwrap.dedent(code))
    for name, text in (extra or {}).items():
        (folder / "code" / name).write_text(textwrap.dedent(text))
    if weights is not None:
        joblib.dump(weights, folder / "model.joblib")
    return folder


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Loading user code puts folders on sys.path and `inference` in sys.modules; undo that."""
    path, had = list(sys.path), sys.modules.get("inference")
    yield
    sys.path[:] = path
    sys.modules.pop("inference", None)
    if had is not None:
        sys.modules["inference"] = had


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        return http_request(self.port, method, path, body, headers, timeout)

    def invoke(self, body: bytes | str, content_type: str | None = "application/json", accept: str | None = None) -> tuple[int, str, bytes]:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        data = body.encode() if isinstance(body, str) else body
        status, response_headers, payload = self.request("POST", "/invocations", data, headers)
        return status, response_headers.get("content-type", ""), payload

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def http_request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def start_server(model: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = (), name: str = "server") -> Server:  # fmt: skip
    ready = tmp_path / f"{name}.ready"
    log = tmp_path / f"{name}.log"
    where = [] if "--fd" in args else ["--port", "0"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagelab.serving", str(model), *where, "--ready-file", str(ready), *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "SAGELAB_MODEL_CACHE": str(tmp_path / "cache"), **(env or {})},
            pass_fds=pass_fds,
        )  # fmt: skip
    deadline = time.time() + 60
    while not ready.exists():
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.02)
    return Server(process, json.loads(ready.read_text())["port"], log)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start servers for a test; each is stopped (SIGTERM, then kill) afterwards."""
    servers: list[Server] = []

    def start(model: Path, *args: str, **kwargs: Any) -> Server:
        server = start_server(model, tmp_path, *args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.stop()


def test_importing_serving_stays_light() -> None:
    """The CLI and the endpoint manager import sagelab.serving; the server's dependencies load only to serve."""
    code = "import sys, sagelab.serving; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    for heavy in ("numpy", "uvicorn", "uvloop", "sklearn", "sagelab.serving.handlers"):
        assert heavy not in loaded, heavy


# -- model archives ---------------------------------------------------------------------------


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return path


def file_member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_extract_model_unpacks_a_model_archive(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "model.tar.gz", [file_member("model.joblib", b"weights"), file_member("code/inference.py", b"#"),
                                                   link_member("latest", "model.joblib")])  # fmt: skip
    target = extract_model(archive, tmp_path / "model")
    assert (target / "model.joblib").read_bytes() == b"weights"
    assert (target / "code" / "inference.py").is_file()
    assert (target / "latest").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([file_member("ok.txt"), file_member("../evil.txt")], "'..'"),
        ([file_member("/tmp/evil.txt")], "absolute path"),
        ([link_member("escape", "../../etc/passwd")], "outside the model folder"),
        ([link_member("escape", "/etc/passwd")], "absolute path"),
        ([link_member("hard", "../outside", tarfile.LNKTYPE)], "outside the model folder"),
        ([link_member("here", "."), link_member("up", "here/..")], "outside"),
        ([link_member("etc", "sub"), file_member("etc/passwd")], "inside the link 'etc'"),
        ([(tarfile.TarInfo("dev"), None)], "device file"),
    ],
    ids=["dotdot", "absolute", "symlink-escape", "symlink-absolute", "hardlink-escape", "symlink-chain", "through-link", "device"],
)
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, members: list[Any], reason: str) -> None:
    if members[0][0].name == "dev":
        members[0][0].type = tarfile.CHRTYPE
    archive = make_tar(tmp_path / "evil.tar.gz", members)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with pytest.raises(ModelError, match="refused") as caught:
        extract_model(archive, workdir / "model")
    assert reason in str(caught.value)
    assert list(workdir.iterdir()) == []  # no half-extracted folder, no temp folder
    assert not (tmp_path / "evil.txt").exists()


def test_resolve_model_extracts_an_archive_once_by_content(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "model.tar.gz", [file_member("model.joblib", b"one")])
    first = resolve_model(archive, tmp_path / "cache")
    assert resolve_model(archive, tmp_path / "cache") == first
    assert resolve_model(tmp_path / "cache") == (tmp_path / "cache").resolve()  # a folder is itself
    other = make_tar(tmp_path / "other.tar.gz", [file_member("model.joblib", b"two")])
    assert resolve_model(other, tmp_path / "cache") != first
    with pytest.raises(ModelError, match="no model at"):
        resolve_model(tmp_path / "missing.tar.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="neither a folder nor a tar archive"):
        resolve_model(tmp_path / "notes.txt")


# -- codecs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "application/jsonlines", "application/x-npy",
                                          "application/x-npz", "text/libsvm"])  # fmt: skip
def test_every_codec_round_trips(content_type: str) -> None:
    matrix = np.array([[1.5, 0.0, 3.0], [4.0, 5.25, 0.0]])
    value: Any = scipy.sparse.csr_matrix(matrix) if content_type in ("application/x-npz", "text/libsvm") else matrix
    decoded = codecs.decode(codecs.encode(value, content_type), content_type)
    dense = decoded.toarray() if hasattr(decoded, "toarray") else decoded
    np.testing.assert_allclose(dense, matrix)


@pytest.mark.parametrize("prediction", [np.array([0, 1, 2]), np.array([0.1, 1e-5, 1e20], dtype=np.float32), np.array([[1 / 3, 7.0]]),
                                        np.array(["setosa", "virginica"]), np.array([True, False]), [[1, 2], [3, 4]]])  # fmt: skip
def test_encoders_write_what_the_toolkit_writes(prediction: Any) -> None:
    """sagemaker_inference.encoder: numpy.savetxt(fmt="%s") for CSV, json.dumps with tolist() for JSON."""
    expected_csv = io.StringIO()
    np.savetxt(expected_csv, prediction, delimiter=",", fmt="%s")
    assert codecs.array_to_csv(prediction) == expected_csv.getvalue().encode()
    expected_json = json.dumps(prediction, default=lambda value: value.tolist())
    assert codecs.array_to_json(prediction) == expected_json.encode()


def test_csv_follows_the_toolkit() -> None:
    assert codecs.array_to_csv(np.array([0, 1, 2])) == b"0\n1\n2\n"  # numpy.savetxt: one value a line
    assert codecs.csv_to_numpy("1,2,3").shape == (3,)  # one row is 1-D, as numpy.genfromtxt returns it
    np.testing.assert_array_equal(codecs.csv_to_numpy("1,,3\n4,5,6\n"), [[1, np.nan, 3], [4, 5, 6]])
    assert codecs.array_to_json(np.array([0, 1])) == b"[0, 1]"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/csv", "1,2\n3", "row 2 has 1 values but row 1 has 2"),
        ("text/csv", "1,x", "'x' is not a number"),
        ("application/json", "[[1, 2]", "not valid JSON"),
        ("application/x-npy", "not numpy", "numpy.save"),
        ("application/x-npz", "not an archive", "save_npz"),
    ],
)
def test_undecodable_payloads_say_what_was_expected(content_type: str, body: str, message: str) -> None:
    with pytest.raises(Exception, match=message) as caught:
        codecs.decode(body.encode(), content_type)
    assert getattr(caught.value, "status", None) == 400


# -- handler conventions, in process -------------------------------------------------------------


def test_default_handlers_serve_a_joblib_model(sklearn_model: Path, iris: LogisticRegression, clean_imports: None) -> None:
    handler = InferenceHandler(sklearn_model).load()
    assert handler.framework == "sklearn" and handler.user_functions == [] and handler.batchable
    reply = handler.invoke(json.dumps(ROWS).encode(), "application/json", "application/json")
    assert json.loads(reply.body) == iris.predict(np.array(ROWS, dtype=np.float32)).tolist()
    assert reply.content_type == "application/json"


def test_the_four_handler_functions(tmp_path: Path, iris: LogisticRegression, clean_imports: None) -> None:
    model = model_with_code(tmp_path, """
        import json, os
        import joblib
        CALLS = []

        def model_fn(model_dir):
            CALLS.append("model_fn")
            return joblib.load(os.path.join(model_dir, "model.joblib"))

        def input_fn(input_data, content_type):
            CALLS.append(("input_fn", type(input_data).__name__, content_type))
            return json.loads(input_data)["rows"]

        def predict_fn(input_data, model):
            return model.predict_proba(input_data)

        def output_fn(prediction, accept, context):
            CALLS.append(("output_fn", accept, context.system_properties["model_dir"]))
            return json.dumps({"probabilities": prediction.tolist()}), "application/vnd.probabilities+json"
    """, weights=iris)  # fmt: skip
    handler = InferenceHandler(model).load()
    reply = handler.invoke(json.dumps({"rows": ROWS}).encode(), "application/json", None)
    assert reply.content_type == "application/vnd.probabilities+json"
    np.testing.assert_allclose(json.loads(reply.body)["probabilities"], iris.predict_proba(ROWS))
    calls = sys.modules["inference"].CALLS
    # JSON and CSV reach input_fn as str; a missing Accept becomes the default (application/json).
    assert calls == ["model_fn", ("input_fn", "str", "application/json"), ("output_fn", "application/json", str(model))]
    assert not handler.batchable


def test_transform_fn_alone(tmp_path: Path, clean_imports: None) -> None:
    model = model_with_code(tmp_path, """
        def model_fn(model_dir):
            return "the model"

        def transform_fn(model, input_data, content_type, accept):
            return f"{model} got {len(input_data)} {type(input_data).__name__} as {content_type} for {accept}"
    """)  # fmt: skip
    handler = InferenceHandler(model, ServingSettings(default_accept="text/plain")).load()
    reply = handler.invoke(b"\x00\x01", "application/octet-stream", "*/*")
    assert reply.body == b"the model got 2 bytes as application/octet-stream for text/plain"
    assert reply.content_type == "text/plain"


def test_transform_fn_with_other_handlers_is_refused(tmp_path: Path, clean_imports: None) -> None:
    model = model_with_code(tmp_path, """
        def transform_fn(model, input_data, content_type, accept):
            return b""

        def predict_fn(input_data, model):
            return input_data
    """)
    with pytest.raises(ModelError, match="defines transform_fn and predict_fn"):
        InferenceHandler(model)


def test_missing_model_fn_says_what_to_do(tmp_path: Path, clean_imports: None) -> None:
    (tmp_path / "weights.bin").write_bytes(b"?")
    with pytest.raises(ModelError, match="Please provide a model_fn implementation"):
        InferenceHandler(tmp_path).load()


def test_submit_directory_tarball_and_requirements_note(tmp_path: Path, iris: LogisticRegression, clean_imports: None,
                                                       caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("SAGELAB_MODEL_CACHE", str(tmp_path / "cache"))
    joblib.dump(iris, tmp_path / "model.joblib")
    source = tmp_path / "src"
    source.mkdir()
    (source / "serve.py").write_text("from helpers import double\n\ndef predict_fn(data, model):\n    return double(model.predict(data))\n")
    (source / "helpers.py").write_text("def double(values):\n    return values * 2\n")
    (source / "requirements.txt").write_text("some-package==1.0\n")
    sourcedir = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(sourcedir, "w:gz") as archive:
        for path in source.iterdir():
            archive.add(path, arcname=path.name)
    settings = ServingSettings(program="serve.py", submit_directory=str(sourcedir))
    with caplog.at_level("WARNING", logger="sagelab.serving"):
        handler = InferenceHandler(tmp_path, settings).load()
    assert "requirements.txt is not installed by sagelab" in caplog.text
    reply = handler.invoke(b"5.1,3.5,1.4,0.2", "text/csv", "text/csv")
    assert reply.body == f"{iris.predict([ROWS[0]])[0] * 2}\n".encode()
    with pytest.raises(ModelError, match="no missing.py"):
        InferenceHandler(tmp_path, ServingSettings(program="missing.py", submit_directory=str(source)))


def test_xgboost_defaults_name_the_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_imports: None) -> None:
    (tmp_path / "xgboost-model").write_bytes(b"booster")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if xgboost were not installed
    handler = InferenceHandler(tmp_path)
    assert handler.framework == "xgboost" and handler.default_accept == "text/csv"
    with pytest.raises(ModelError, match="need the xgboost package"):
        handler.load()


def test_xgboost_defaults_with_a_real_booster(tmp_path: Path, clean_imports: None) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = load_iris(return_X_y=True)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y), num_boost_round=3)
    booster.save_model(str(tmp_path / "model.ubj"))  # SageMaker's name has no extension; XGBoost would warn
    (tmp_path / "model.ubj").rename(tmp_path / "xgboost-model")
    handler = InferenceHandler(tmp_path).load()
    csv_reply = handler.invoke(b"5.1,3.5,1.4,0.2\n7.7,3.0,6.1,2.3", "text/csv", None)
    assert csv_reply.content_type == "text/csv" and len(csv_reply.body.splitlines()) == 2
    libsvm_reply = handler.invoke(b"0 1:5.1 2:3.5 3:1.4 4:0.2", "text/libsvm", "application/json")
    assert np.argmax(json.loads(libsvm_reply.body)[0]) == 0
    assert handler.handle(b"[[1, 2]]", "application/json").status == 415


def test_micro_batching_shares_predict_calls_and_routes_rows_back(echo_model: Path, clean_imports: None) -> None:
    handler = InferenceHandler(echo_model).load()
    calls: list[int] = []

    class Recorder(BaseEstimator):  # type: ignore[misc]
        def predict(self, X: np.ndarray) -> np.ndarray:
            calls.append(len(X))
            time.sleep(0.05 if len(calls) == 1 else 0)  # let requests pile up behind the first
            if np.any(X[:, 0] == -1):
                raise ValueError("poisoned row")
            return X[:, 0] * 10

    handler.model = Recorder()
    runner = InferenceRunner(handler)

    async def scenario() -> list[Any]:
        runner.start(asyncio.get_running_loop())
        futures = [runner.submit(json.dumps([[i, 0, 0]] * (i % 3 + 1)).encode(), "application/json", None, {}) for i in range(30)]
        futures.append(runner.submit(b"[[-1, 0, 0]]", "application/json", None, {}))
        return list(await asyncio.gather(*futures))

    replies = asyncio.run(scenario())
    runner.stop()
    for i, reply in enumerate(replies[:30]):
        assert reply.status == 200 and json.loads(reply.body) == [i * 10.0] * (i % 3 + 1)
    assert replies[30].status == 500 and b"poisoned row" in replies[30].body
    assert max(calls) > 3, calls  # some predict call served several requests' rows at once


class _Recorder(BaseEstimator):  # type: ignore[misc]
    """A batchable model recording the thread and the rows of each predict; it takes `delay` seconds, or with `hang` waits for `release`."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.delay = 0.0
        self.hang = False
        self.release = threading.Event()

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append((threading.get_ident(), len(X)))
        time.sleep(self.delay)
        if self.hang:
            self.release.wait(10)
        return X[:, 0] * 10


def _recording_runner(model_dir: Path, timeout: float = 60.0) -> tuple[InferenceRunner, _Recorder]:
    handler = InferenceHandler(model_dir).load()
    handler.model = model = _Recorder()
    return InferenceRunner(handler, timeout=timeout), model


def _rows(runner: InferenceRunner, *rows: int) -> Any:
    return runner.submit(json.dumps([[i, 0, 0] for i in rows]).encode(), "application/json", None, {})


async def _prove_fast(runner: InferenceRunner) -> None:
    runner.start(asyncio.get_running_loop())
    for i in range(FAST_STREAK):
        await _rows(runner, i)
    assert runner.on_loop


def test_a_fast_model_is_answered_on_the_event_loop_until_a_slow_batch_sends_it_back_to_the_thread(echo_model: Path,
                                                                                                   clean_imports: None) -> None:  # fmt: skip
    runner, model = _recording_runner(echo_model)

    async def scenario() -> list[Any]:
        await _prove_fast(runner)
        together = await asyncio.gather(*(_rows(runner, i) for i in range(5)))  # submitted in one loop turn: one predict
        model.delay = FAST_BATCH_SECONDS * 2
        slow = [await _rows(runner, 7)]
        assert not runner.on_loop
        model.delay = 0
        return [*together, *slow, await _rows(runner, 8)]

    replies = asyncio.run(scenario())
    runner.stop()
    loop_thread = threading.get_ident()  # asyncio.run ran the loop on this thread
    assert [json.loads(r.body) for r in replies] == [[i * 10.0] for i in [*range(5), 7, 8]]
    threads = [thread for thread, _ in model.calls]
    assert loop_thread not in threads[:FAST_STREAK]  # the thread, until the model has proved fast
    assert model.calls[FAST_STREAK:FAST_STREAK + 2] == [(loop_thread, 5), (loop_thread, 1)]  # then the loop, the five together
    assert threads[-1] != loop_thread  # the slow batch sent the next request back to the thread


def test_a_request_larger_than_the_model_proved_fast_on_goes_to_the_thread_and_so_does_what_comes_meanwhile(
        echo_model: Path, clean_imports: None) -> None:  # fmt: skip
    runner, model = _recording_runner(echo_model)

    async def scenario() -> list[Any]:
        await _prove_fast(runner)
        return await asyncio.gather(_rows(runner, *range(50)), _rows(runner, 3))

    large, small = asyncio.run(scenario())
    runner.stop()
    assert json.loads(large.body) == [i * 10.0 for i in range(50)] and json.loads(small.body) == [30.0]
    assert threading.get_ident() not in [thread for thread, _ in model.calls[FAST_STREAK:]]


def test_a_model_that_hangs_on_the_event_loop_ends_its_worker(echo_model: Path, clean_imports: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    runner, model = _recording_runner(echo_model, timeout=0.3)
    exits: list[int] = []

    def exit_process(code: int) -> None:  # what os._exit would do, recorded; then the model lets go
        exits.append(code)
        model.release.set()

    monkeypatch.setattr(batching, "WATCH_INTERVAL", 0.05)
    monkeypatch.setattr(os, "_exit", exit_process)

    async def scenario() -> Any:
        await _prove_fast(runner)
        model.hang = True
        return await _rows(runner, 1)

    asyncio.run(scenario())
    runner.stop()
    assert model.calls[-1][0] == threading.get_ident()  # it hung on the event loop
    assert exits == [1]


def test_a_response_goes_out_in_one_write_and_a_lone_write_at_the_end_of_the_loop_turn() -> None:
    class Socket:  # the transport's side: what reached the socket, write by write
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def close(self) -> None:
            self.closed = True

        def is_closing(self) -> bool:
            return self.closed

    async def scenario() -> None:
        sent = Socket()
        transport = JoiningTransport(cast(asyncio.Transport, sent), asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"[0]")
        assert sent.writes == [b"HTTP/1.1 200 OK\r\n\r\n[0]"]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")  # an answer to HEAD: no body follows
        assert len(sent.writes) == 1
        await asyncio.sleep(0)
        assert sent.writes[1:] == [b"HTTP/1.1 200 OK\r\n\r\n"]
        transport.write(b"HTTP/1.1 413 Request Entity Too Large\r\n\r\n")
        transport.close()  # what is held goes out first
        assert sent.writes[2:] == [b"HTTP/1.1 413 Request Entity Too Large\r\n\r\n"] and transport.is_closing()

    asyncio.run(scenario())


# -- real servers ---------------------------------------------------------------------------------


def test_ping_execution_parameters_and_unknown_paths(serve: Any, sklearn_model: Path) -> None:
    server = serve(sklearn_model, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"})
    assert server.request("GET", "/ping")[0] == 200
    assert server.request("HEAD", "/ping")[:2] == (200, {"content-type": "application/json", "content-length": "0", "date": ANY})
    status, _, body = server.request("GET", "/execution-parameters")
    workers = os.cpu_count()  # SAGEMAKER_MODEL_SERVER_WORKERS's default, as in the images
    assert (status, json.loads(body)) == (200, {"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2})
    assert server.request("GET", "/nope")[0] == 404
    assert server.request("GET", "/invocations")[0] == 405


def test_every_content_type_both_ways(serve: Any, sklearn_model: Path, iris: LogisticRegression) -> None:
    server = serve(sklearn_model)
    expected = iris.predict(np.array(ROWS, dtype=np.float32)).tolist()
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, np.array(ROWS))
    scipy.sparse.save_npz(npz, scipy.sparse.csr_matrix(np.array(ROWS)))
    requests = {
        "application/json": json.dumps(ROWS).encode(),
        "text/csv": "\n".join(",".join(map(str, row)) for row in ROWS).encode(),
        "application/jsonlines": "\n".join(json.dumps(row) for row in ROWS).encode(),
        "application/x-npy": npy.getvalue(),
        "application/x-npz": npz.getvalue(),
        "text/libsvm": "\n".join(" ".join(f"{i + 1}:{v}" for i, v in enumerate(row)) for row in ROWS).encode(),
    }
    for content_type, body in requests.items():
        status, _, payload = server.invoke(body, content_type, "application/json")
        assert status == 200, (content_type, payload)
        assert json.loads(payload) == expected, content_type
    answers = {
        "application/json": lambda b: json.loads(b),
        "text/csv": lambda b: [int(line) for line in b.decode().splitlines()],
        "application/jsonlines": lambda b: [json.loads(line) for line in b.decode().splitlines()],
        "application/x-npy": lambda b: np.load(io.BytesIO(b)).tolist(),
        "application/x-npz": lambda b: np.load(io.BytesIO(b))["arr_0"].tolist(),
        "text/libsvm": lambda b: [(int(line.split(":")[1]) if line else 0) for line in b.decode().split("\n")[:-1]],
    }
    for accept, read in answers.items():
        status, content_type, payload = server.invoke(requests["application/json"], "application/json", accept)
        assert (status, content_type) == (200, accept), payload
        assert read(payload) == expected, accept


def test_accept_fallbacks(serve: Any, sklearn_model: Path) -> None:
    server = serve(sklearn_model, env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    for accept in (None, "*/*", "text/html, */*;q=0.1"):
        status, content_type, _ = server.invoke(json.dumps(ROWS), "application/json", accept)
        assert (status, content_type) == (200, "text/csv"), accept
    status, content_type, _ = server.invoke(json.dumps(ROWS), "application/json", "text/html, application/x-npy")
    assert (status, content_type) == (200, "application/x-npy")
    status, _, _ = server.invoke(json.dumps(ROWS), None, "application/json")  # no Content-Type: JSON
    assert status == 200


def test_bad_requests_get_4xx_with_a_message(serve: Any, sklearn_model: Path) -> None:
    server = serve(sklearn_model, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01"})
    cases = [
        (("5.1,3.5,1.4,0.2", "image/png", None), 415, "image/png is not supported"),
        (("5.1,3.5,1.4,0.2", "text/csv", "text/html"), 406, "cannot answer with Accept: text/html"),
        (("5.1,oops,1.4,0.2", "text/csv", None), 400, "'oops' is not a number"),
        (('{"instances": [1, 2]}', "application/json", None), 400, "not numeric"),
        (("[[1, 2]", "application/json", None), 400, "not valid JSON"),
        ((b"\xff\xfe", "text/csv", None), 400, "not UTF-8"),
        (("1," * 10_000, "text/csv", None), 413, "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
    ]
    for (body, content_type, accept), status, message in cases:
        got, _, payload = server.invoke(body, content_type, accept)
        assert got == status and message in payload.decode(), (status, payload)
    # A chunked body has no Content-Length: it is refused as soon as it passes the limit, before it ends. The client sends two
    # 8 KB chunks (past the 10 KB limit) and no last chunk, and reads the answer (sending on could meet the closed connection).
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        chunk = b"1," * 4000
        raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2)  # fmt: skip
        answer = b""
        while b"SAGEMAKER_MAX_PAYLOAD_IN_MB" not in answer and (received := raw.recv(65536)):
            answer += received
    assert answer.startswith(b"HTTP/1.1 413") and b"SAGEMAKER_MAX_PAYLOAD_IN_MB" in answer, answer[:300]
    assert server.invoke(json.dumps(ROWS), "application/json")[0] == 200  # still serving


def test_a_raising_handler_gets_500_and_the_server_keeps_serving(serve: Any, tmp_path: Path) -> None:
    model = model_with_code(tmp_path / "model", """
        import sys

        def model_fn(model_dir):
            return None

        def transform_fn(model, input_data, content_type, accept):
            if input_data == "boom":
                raise RuntimeError("the model exploded")
            if input_data == "exit":
                sys.exit(3)
            return input_data.upper(), "text/plain"
    """)  # fmt: skip
    server = serve(model)
    status, _, body = server.invoke("boom", "text/csv")
    assert status == 500 and b"RuntimeError: the model exploded" in body
    assert server.invoke("exit", "text/csv")[0] == 500
    assert server.invoke("fine", "text/csv") == (200, "text/plain", b"FINE")
    assert "Traceback" in server.log.read_text() and "the model exploded" in server.log.read_text()


def test_many_parallel_requests_each_get_their_own_answer(serve: Any, echo_model: Path) -> None:
    server = serve(echo_model)

    def call(i: int) -> tuple[int, Any]:
        rows = [[float(i), 1.0, 2.0]] * (i % 4 + 1)
        content_type, body = ("text/csv", "\n".join(",".join(map(str, r)) for r in rows)) if i % 2 else ("application/json", json.dumps(rows))
        status, _, payload = server.invoke(body, content_type, "application/json")
        return status, json.loads(payload)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, range(400)))
    for i, (status, values) in enumerate(results):
        assert status == 200 and len(values) == i % 4 + 1
        np.testing.assert_allclose(values, [i] * (i % 4 + 1), atol=1e-4)


def test_two_workers_share_the_port(serve: Any, echo_model: Path) -> None:
    server = serve(echo_model, "--workers", "2")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: server.invoke(json.dumps([[i, 0, 0]]), "application/json"), range(80)))
    assert all(status == 200 for status, _, _ in results)
    assert server.request("GET", "/execution-parameters")[2] == b'{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}'
    assert server.stop() == 0


def test_the_dealer_takes_turns_gives_back_a_dead_workers_queue_and_waits_out_a_lack_of_descriptors() -> None:
    """serving.dispatch on its own: connections dealt in turn to the serving slots; those queued for a worker that exited go
    to the others; when accept() fails (no file descriptor left) the connections stay queued and one line is logged."""
    import logging
    import resource

    from sagelab.serving.dispatch import Dealer, receive

    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    logging.getLogger("sagelab.serving").addHandler(handler)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        dealer = Dealer(listener)
        workers = {slot: dealer.open(slot) for slot in (0, 1)}
        for end in workers.values():
            end.setblocking(False)
        for slot in workers:
            dealer.ready(slot)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(4)]
        time.sleep(0.1)
        dealer.accept()
        taken: dict[int, list[socket.socket]] = {0: [], 1: []}
        receive(workers[0], taken[0].append)
        assert len(taken[0]) == 2  # and two wait for worker 1, which "exits" without taking them
        dealer.close(1)
        receive(workers[0], taken[0].append)
        assert len(taken[0]) == 4
        peers = sorted(c.getpeername()[1] for c in taken[0])
        assert peers == sorted(c.getsockname()[1] for c in clients)  # the very connections the clients opened
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        late = socket.create_connection(listener.getsockname())
        time.sleep(0.1)
        spare = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (16, hard))
            try:
                while True:
                    spare.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
            started = time.monotonic()
            dealer.accept()
            assert time.monotonic() - started >= 0.4  # it paused instead of spinning on a listener that stays readable
        finally:
            for fd in spare:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        logging.getLogger("sagelab.serving").removeHandler(handler)
        assert sum("accepting a connection failed" in r.getMessage() for r in logged) == 1
        dealer.accept()  # descriptors again: the queued connection is dealt
        receive(workers[0], taken[0].append)
        assert len(taken[0]) == 5 and taken[0][-1].getpeername()[1] == late.getsockname()[1]
        for connection in [*clients, late, *taken[0]]:
            connection.close()
        dealer.close_all()
        workers[0].close()


WHO_ANSWERS = """
    import os

    def model_fn(model_dir):
        return None

    def transform_fn(model, input_data, content_type, accept):
        return str(os.getpid()), "text/plain"
"""


def test_connections_are_dealt_to_the_workers_in_turn_and_a_dead_worker_is_replaced(serve: Any, tmp_path: Path) -> None:
    """Keep-alive connections spread evenly over the workers (not as the kernel wakes them), and
    after a worker is killed the server starts another and deals it the new connections."""
    server = serve(model_with_code(tmp_path / "model", WHO_ANSWERS), "--workers", "2")

    def pids_of_connections(count: int) -> list[str]:
        connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(count)]
        try:
            pids = []
            for _ in range(3):  # each connection keeps its worker for its whole life
                for connection in connections:
                    connection.request("POST", "/invocations", body=b"", headers={"Content-Type": "text/plain"})
                    pids.append(connection.getresponse().read().decode())
            assert pids[:count] * 3 == pids
            return pids[:count]
        finally:
            for connection in connections:
                connection.close()

    first = pids_of_connections(8)
    assert sorted(first.count(pid) for pid in set(first)) == [4, 4]
    os.kill(int(first[0]), signal.SIGKILL)
    deadline = time.time() + 30
    while True:  # the survivor serves alone until its new sibling has loaded the model, then they take turns again
        after = pids_of_connections(8)
        if sorted(after.count(pid) for pid in set(after)) == [4, 4] or time.time() > deadline:
            break
        time.sleep(0.1)
    assert "starting another" in server.log.read_text()
    assert first[0] not in after and sorted(after.count(pid) for pid in set(after)) == [4, 4], after
    assert server.stop() == 0


def test_a_stop_signal_while_a_dead_worker_is_being_replaced_stops_the_server(serve: Any, tmp_path: Path) -> None:
    """SIGTERM in the moment between a worker's death and its replacement's fork stops the replacement too
    (before, it was forked after stop() had signalled the workers, and served on while the server waited for it)."""
    server = serve(model_with_code(tmp_path / "model", WHO_ANSWERS), "--workers", "2")
    os.kill(int(server.invoke(b"", "text/plain")[2]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "starting another" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stop(timeout=15) == 0  # the server waits 0.2 s after that line before it forks


def test_a_model_tarball_is_served(serve: Any, sklearn_model: Path, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(sklearn_model / "model.joblib", arcname="model.joblib")
    server = serve(archive)
    assert server.invoke(json.dumps(ROWS), "application/json")[0] == 200
    assert list((tmp_path / "cache").iterdir())  # extracted into the cache


SLOW = """
    import time

    def model_fn(model_dir):
        return open(model_dir + "/name.txt").read()

    def transform_fn(model, input_data, content_type, accept):
        time.sleep(float(input_data or 0))
        return model, "text/plain"
"""


def slow_model(folder: Path, name: str) -> Path:
    model = model_with_code(folder, SLOW)
    (model / "name.txt").write_text(name)
    return model


def test_sigterm_drains_a_request_in_flight(serve: Any, tmp_path: Path) -> None:
    server = serve(slow_model(tmp_path / "model", "drained"))
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(server.invoke("1.5", "text/csv")))
    thread.start()
    time.sleep(0.5)  # the request is in the model now
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(ConnectionRefusedError):  # no longer accepting
        http_request(server.port, "GET", "/ping")
    thread.join(10)
    assert result == [(200, "text/plain", b"drained")]
    assert server.process.wait(10) == 0


def test_a_request_over_the_timeout_gets_504(serve: Any, tmp_path: Path) -> None:
    server = serve(slow_model(tmp_path / "model", "late"), env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"})
    status, _, body = server.invoke("2", "text/csv")
    assert status == 504 and b"SAGEMAKER_MODEL_SERVER_TIMEOUT" in body
    assert server.request("GET", "/ping")[0] == 200  # the server answers while the model is busy
    # Once the slow call is done the model serves again; a request that waited too long behind it
    # may itself time out, so ask until one is answered (bounded), rather than racing the clock.
    deadline = time.monotonic() + 15
    answer = server.invoke("0", "text/csv")
    while answer[0] == 504 and time.monotonic() < deadline:
        answer = server.invoke("0", "text/csv")
    assert answer == (200, "text/plain", b"late")


HANGS_ON_MINUS_ONE = """
    import os
    import time

    import numpy as np
    from sklearn.base import BaseEstimator

    class Echo(BaseEstimator):
        def predict(self, X):
            if X[0, 0] == -1:
                time.sleep(3)  # three times SAGEMAKER_MODEL_SERVER_TIMEOUT
            return np.full(len(X), os.getpid())

    def model_fn(model_dir):
        return Echo()
"""


def test_a_fast_model_that_hangs_on_the_event_loop_is_replaced(serve: Any, tmp_path: Path) -> None:
    """A batchable model answered on the event loop that then hangs cannot get its 504 (the loop is
    what is blocked): its worker exits once the timeout has passed, and another takes its place."""
    server = serve(model_with_code(tmp_path / "model", HANGS_ON_MINUS_ONE), "--workers", "2",
                   env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"})  # fmt: skip

    def post(connection: http.client.HTTPConnection, rows: bytes) -> http.client.HTTPResponse:
        connection.request("POST", "/invocations", body=rows, headers={"Content-Type": "application/json"})
        return connection.getresponse()

    for _ in range(5):  # on a loaded machine a batch may take over 5 ms and send the model back to the thread: try again
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(3 * FAST_STREAK):  # one keep-alive connection, one worker: it proves the model fast
            response = post(connection, b"[[10, 2]]")  # as long as the request that hangs: no longer than proved fast
            assert response.status == 200
            pid = json.loads(response.read())[0]
        try:
            assert post(connection, b"[[-1, 2]]").status == 504  # it hung on the thread: 504, and the thread goes on
        except (http.client.RemoteDisconnected, ConnectionResetError):
            break  # it hung on the event loop: the worker ended
        finally:
            connection.close()
    else:
        pytest.fail("the model was never answered on the event loop")
    deadline = time.monotonic() + 30
    while "starting another" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert "blocks this worker" in log and "starting another" in log, log
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert server.invoke("[[1, 2]]")[0] == 200


def test_fd_takeover_drops_no_request(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port, fd = listener.getsockname()[1], listener.fileno()
    listener.set_inheritable(True)
    old = start_server(slow_model(tmp_path / "old", "old"), tmp_path, "--fd", str(fd), pass_fds=(fd,), name="old")
    new: Server | None = None
    answers: list[Any] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status, _, body = http_request(port, "POST", "/invocations", b"0.05", {"Content-Type": "text/csv"}, timeout=10)
                answers.append((status, body))
            except OSError as exc:
                answers.append(("failed", repr(exc)))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        new = start_server(slow_model(tmp_path / "new", "new"), tmp_path, "--fd", str(fd), pass_fds=(fd,), name="new")
        assert old.stop() == 0  # SIGTERM: the old server drains while the new one answers
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        for server in (old, new):
            if server is not None and server.process.poll() is None:
                server.stop()
        listener.close()
    assert [a for a in answers if a[0] != 200] == []
    bodies = [body for _, body in answers]
    assert b"old" in bodies and b"new" in bodies
    assert bodies[-1] == b"new"


def test_startup_errors_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    model = model_with_code(tmp_path / "model", "raise ImportError('no such thing')\n")
    done = subprocess.run([sys.executable, "-m", "sagelab.serving", str(model), "--port", "0"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "importing the inference code" in done.stderr and "no such thing" in done.stderr
    assert issubclass(ModelError, SagelabError)
