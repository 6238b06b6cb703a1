"""The inference thread: runs handlers off the event loop, batching concurrent default predictions.

Each server process has one inference thread, so user code is never called concurrently
(as with the containers' one-request-per-worker model servers). Requests queue while the
thread is busy; when it comes back it takes everything waiting. With the default scikit-learn
handlers on a scikit-learn estimator, the waiting requests' rows are concatenated into one
`predict` call and the result rows are split back to their callers. Batch size therefore
adapts to load: one request at a time when idle, many under load, and no timer adds latency.
A batch whose predict fails is retried request by request, so an error reaches only the
request that caused it. User-defined input_fn, predict_fn, output_fn or transform_fn are never
batched: their semantics across rows are unknown.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from sagelab.serving.handlers import InferenceHandler, error_reply
from sagelab.serving.protocol import Reply

MAX_BATCH_REQUESTS = 64


@dataclass
class _Job:
    body: bytes
    content_type: str | None
    accept: str | None
    headers: dict[str, str]
    future: asyncio.Future[Reply]


class InferenceRunner:
    """Owns the inference thread of one server process."""

    def __init__(self, handler: InferenceHandler, max_batch: int = MAX_BATCH_REQUESTS) -> None:
        self.handler = handler
        self.max_batch = max_batch
        self.batchable = handler.batchable
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; replies are delivered on `loop`."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="sagelab-inference", daemon=True)
        self._thread.start()

    def submit(self, body: bytes, content_type: str | None, accept: str | None, headers: dict[str, str]) -> asyncio.Future[Reply]:
        """Queue a request; the future resolves to its Reply (never to an exception)."""
        if self._loop is None:
            raise RuntimeError("start() the runner before submitting requests")
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._queue.put(_Job(body, content_type, accept, headers, future))
        return future

    def stop(self, timeout: float | None = None) -> None:
        """Finish the queued requests, then end the thread."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, stopping = [job], False
            while len(jobs) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
            if self.batchable and len(jobs) > 1:
                self._deliver(jobs, self._batch(jobs))
            else:
                for one in jobs:
                    self._deliver([one], [self.handler.handle(one.body, one.content_type, one.accept, one.headers)])
            if stopping:
                return

    def _deliver(self, jobs: list[_Job], replies: list[Reply]) -> None:
        try:
            jobs[0].future.get_loop().call_soon_threadsafe(_resolve, [(job.future, reply) for job, reply in zip(jobs, replies)])
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    def _batch(self, jobs: list[_Job]) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(jobs)
        groups: dict[Any, list[tuple[int, Any, str]]] = {}
        for index, job in enumerate(jobs):
            try:
                data, media = self.handler.prepare(job.body, job.content_type, job.accept)
            except BaseException as exc:
                replies[index] = error_reply(exc)
                continue
            dense = isinstance(data, np.ndarray) and data.ndim == 2
            key = (data.shape[1], data.dtype.str) if dense else ("alone", index)
            groups.setdefault(key, []).append((index, data, media))
        for members in groups.values():
            outcomes = self._predict_group([data for _, data, _ in members])
            for (index, _, media), outcome in zip(members, outcomes):
                if isinstance(outcome, BaseException):
                    replies[index] = error_reply(outcome)
                    continue
                try:
                    replies[index] = self.handler.encode(outcome, media)
                except BaseException as exc:
                    replies[index] = error_reply(exc)
        return [reply if reply is not None else Reply.error(500, "no reply") for reply in replies]

    def _predict_group(self, inputs: list[Any]) -> list[Any]:
        """One predict over the concatenated rows, split back; request by request if that fails."""
        if len(inputs) > 1:
            try:
                prediction = self.handler.predict(np.concatenate(inputs))
                total = sum(len(x) for x in inputs)
                if isinstance(prediction, np.ndarray) and prediction.ndim >= 1 and prediction.shape[0] == total:
                    parts, start = [], 0
                    for x in inputs:
                        parts.append(prediction[start : start + len(x)])
                        start += len(x)
                    return parts
            except BaseException:  # retried one by one below, so the error reaches the request that caused it
                pass
        outcomes: list[Any] = []
        for x in inputs:
            try:
                outcomes.append(self.handler.predict(x))
            except BaseException as exc:
                outcomes.append(exc)
        return outcomes


def _resolve(pairs: list[tuple[asyncio.Future[Reply], Reply]]) -> None:
    for future, reply in pairs:
        if not future.done():
            future.set_result(reply)
