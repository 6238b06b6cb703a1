"""A model answered by an inference server process over HTTP: how batch transform runs a pipeline model.

`RemoteModel` has the part of `InferenceHandler` that batch transform uses (`handle`,
`execution_parameters`, `default_accept`); `pipeline_front` starts a pipeline model's front
server for a job, so its records go through the containers exactly as an endpoint's requests do.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sagelab.errors import ModelError
from sagelab.serving.pipeline_model import PipelineModel
from sagelab.serving.protocol import Reply, ServingSettings
from sagelab.serving.spawn import ServerProcess, start_all, stop_all

_TIMEOUT_GRACE = 5.0


class RemoteModel:
    """POST /invocations to the server on 127.0.0.1:`port`, on one keep-alive connection."""

    def __init__(self, port: int, default_accept: str, timeout: float) -> None:
        self.port, self.default_accept, self.timeout = port, default_accept, timeout + _TIMEOUT_GRACE
        self._connection: http.client.HTTPConnection | None = None

    def handle(self, body: bytes, content_type: str | None = None, accept: str | None = None,
               headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        """The server's answer; a server that does not answer is a 502."""
        request_headers = dict(headers or {})
        if content_type:
            request_headers["Content-Type"] = content_type
        if accept:
            request_headers["Accept"] = accept
        return self._request("POST", "/invocations", body, request_headers)

    def execution_parameters(self, workers: int) -> Reply:
        return self._request("GET", "/execution-parameters", None, {})

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        reused = self._connection is not None
        try:
            return self._exchange(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if not reused or not isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                return self._unanswered(exc)
        try:  # the server had closed the kept-alive connection: once more on a new one
            return self._exchange(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return self._unanswered(exc)

    def _exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return Reply(response.status, data, response.getheader("Content-Type") or "application/octet-stream")

    def _unanswered(self, exc: Exception) -> Reply:
        return Reply.error(502, f"the model server on 127.0.0.1:{self.port} did not answer: {exc}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@contextmanager
def pipeline_front(description: Path, settings: ServingSettings) -> Iterator[RemoteModel]:
    """A pipeline model's front server for the length of a job, and a client of it."""
    pipeline = PipelineModel.load(description)
    if pipeline.mode != "Serial":
        raise ModelError(f"{description} runs its containers in {pipeline.mode} mode; batch transform sends each "
                         "request through every container, which needs InferenceExecutionConfig Mode Serial")  # fmt: skip
    accept = pipeline.containers[-1].default_accept()
    server = ServerProcess(str(description), os.environ, label="the pipeline model", workers=settings.workers)
    start_all([server])
    remote = RemoteModel(server.port, accept, settings.timeout * len(pipeline.containers))
    try:
        yield remote
    finally:
        remote.close()
        stop_all([server])
