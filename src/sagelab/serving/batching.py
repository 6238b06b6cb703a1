"""The inference runner: answers requests one model call at a time, batching concurrent default predictions.

Each server process calls user code one call at a time (as the containers' one-request-per-worker
model servers do), in one of two places:

- The inference thread, by default. Requests queue while it is busy; when it comes back it takes
  everything waiting. The event loop stays free meanwhile: /ping answers while a model runs, and a
  request the model has not answered within SAGEMAKER_MODEL_SERVER_TIMEOUT gets its 504.
- The event loop itself, for a batchable model that has proved fast: FAST_STREAK batches in a row,
  each answered within FAST_BATCH_SECONDS. Handing a request to a thread and back (a wake-up each
  way, the two threads trading the GIL) costs such a model more than its predict; on the loop,
  nothing waits longer than one batch. The requests the server read in this loop turn and the
  next are answered together. A slower batch sends the runner back to the thread until the model
  has proved fast again; a request larger than the model has proved fast on goes to the thread,
  and so does everything while the thread has work (one model call at a time). A batch on the
  loop that outlives SAGEMAKER_MODEL_SERVER_TIMEOUT (a model that hangs) cannot be answered 504,
  as the loop is the one blocked: the process exits, as gunicorn in the containers kills such a
  worker, and the server (or the endpoint) starts another.

With the default scikit-learn handlers on a scikit-learn estimator (batchable), the rows of the
requests taken together are concatenated into one `predict` call and the result rows are split
back to their callers. Batch size therefore adapts to load: one request at a time when idle, many
under load, and no timer adds latency. A batch whose predict fails is retried request by request,
so an error reaches only the request that caused it. User-defined input_fn, predict_fn, output_fn
or transform_fn are never batched: their semantics across rows are unknown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sagelab.serving.handlers import InferenceHandler, error_reply
from sagelab.serving.protocol import Reply

MAX_BATCH_REQUESTS = 64
FAST_BATCH_SECONDS = 0.005  # a batch this quick may run on the event loop: /ping waits no longer than that
FAST_STREAK = 8  # fast batches in a row before a batchable model is answered on the event loop
WATCH_INTERVAL = 1.0  # seconds between the watchdog's looks at a batch running on the event loop
_TIMEOUT_STATUS = 504

logger = logging.getLogger("sagelab.serving")


@dataclass(slots=True)
class _Job:
    body: bytes
    content_type: str | None
    accept: str | None
    headers: dict[str, str]
    future: asyncio.Future[Reply]
    timer: asyncio.TimerHandle | None = None  # the SAGEMAKER_MODEL_SERVER_TIMEOUT of a request sent to the thread (only those have one)


class InferenceRunner:
    """Answers the requests of one server process: on its inference thread, or on its event loop once the model has proved fast."""

    def __init__(self, handler: InferenceHandler, max_batch: int = MAX_BATCH_REQUESTS, timeout: float = 60.0) -> None:
        self.handler = handler
        self.max_batch = max_batch
        self.timeout = timeout
        self.batchable = handler.batchable
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gathered: list[_Job] = []  # requests to answer on the event loop, after one more loop turn
        self._fast_streak = 0  # batches in a row answered within FAST_BATCH_SECONDS
        self._proven_bytes = 0  # the largest body those batches held: a larger request goes to the thread
        self._with_thread = 0  # requests sent to the thread and not yet answered
        self._loop_batch_began: float | None = None  # when the batch running on the event loop began (for the watchdog)
        self._stopping = threading.Event()

    @property
    def on_loop(self) -> bool:
        """Whether requests are answered on the event loop (a batchable model that has proved fast), not the thread."""
        return self.batchable and self._fast_streak >= FAST_STREAK

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; replies are delivered on `loop`."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="sagelab-inference", daemon=True)
        self._thread.start()
        if self.batchable:
            threading.Thread(target=self._watch, name="sagelab-loop-watchdog", daemon=True).start()

    def submit(self, body: bytes, content_type: str | None, accept: str | None, headers: dict[str, str]) -> asyncio.Future[Reply]:
        """Queue a request; the future resolves to its Reply (never to an exception), a 504 past the timeout."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("start() the runner before submitting requests")
        job = _Job(body, content_type, accept, headers, loop.create_future())
        if self.on_loop and len(body) <= self._proven_bytes and not self._with_thread:
            self._gathered.append(job)
            if len(self._gathered) == 1:
                loop.call_soon(self._after_next_turn)
        else:
            self._to_thread(job)
        return job.future

    def _to_thread(self, job: _Job) -> None:
        assert self._loop is not None
        job.timer = self._loop.call_later(self.timeout, _expire, job.future, self.timeout)
        self._with_thread += 1
        self._queue.put(job)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the queued requests, then end the threads."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _after_next_turn(self) -> None:
        """Wait one more loop turn, so the requests the server reads in it join the batch."""
        assert self._loop is not None
        self._loop.call_soon(self._answer_gathered)

    def _answer_gathered(self) -> None:
        jobs, self._gathered = self._gathered, []
        for start in range(0, len(jobs), self.max_batch):
            batch = jobs[start : start + self.max_batch]
            if self._with_thread or not self.on_loop:  # since gathered: a larger request, or a slow batch
                for job in batch:
                    self._to_thread(job)
                continue
            self._loop_batch_began = began = time.perf_counter()
            try:
                replies = self._batch(batch) if len(batch) > 1 else [self._handle(batch[0])]
            except BaseException as exc:  # a reply for each, whatever happens: these requests have no timeout to end them
                replies = [error_reply(exc)] * len(batch)
            finally:
                self._loop_batch_began = None
            self._settle(batch, replies, time.perf_counter() - began)

    def _watch(self) -> None:
        """End the process if a batch on the event loop outlives the timeout: nothing else can end it."""
        while not self._stopping.wait(WATCH_INTERVAL):
            began = self._loop_batch_began
            if began is not None and time.perf_counter() - began > self.timeout:
                logger.error("the model did not answer within %g s (SAGEMAKER_MODEL_SERVER_TIMEOUT) and blocks this worker; "
                             "it exits, to be replaced", self.timeout)  # fmt: skip
                os._exit(1)

    def _handle(self, job: _Job) -> Reply:
        return self.handler.handle(job.body, job.content_type, job.accept, job.headers)

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
                began = time.perf_counter()
                self._deliver(jobs, self._batch(jobs), time.perf_counter() - began)
            else:
                for one in jobs:
                    began = time.perf_counter()
                    self._deliver([one], [self._handle(one)], time.perf_counter() - began)
            if stopping:
                return

    def _deliver(self, jobs: list[_Job], replies: list[Reply], seconds: float) -> None:
        try:
            jobs[0].future.get_loop().call_soon_threadsafe(self._settle, jobs, replies, seconds)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass

    def _settle(self, jobs: list[_Job], replies: list[Reply], seconds: float) -> None:
        """On the event loop: answer the batch's requests, and count it towards (or against) answering on the loop."""
        for job, reply in zip(jobs, replies):
            if job.timer is not None:
                job.timer.cancel()
                self._with_thread -= 1
            if not job.future.done():
                job.future.set_result(reply)
        if seconds < FAST_BATCH_SECONDS:
            self._fast_streak += 1
            self._proven_bytes = max(self._proven_bytes, sum(len(job.body) for job in jobs))
        else:
            self._fast_streak = self._proven_bytes = 0

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


def _expire(future: asyncio.Future[Reply], timeout: float) -> None:
    if not future.done():
        logger.error("a request took longer than SAGEMAKER_MODEL_SERVER_TIMEOUT (%g s); answered %d", timeout, _TIMEOUT_STATUS)
        future.set_result(Reply.error(_TIMEOUT_STATUS, f"the model did not answer within {timeout:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)"))
