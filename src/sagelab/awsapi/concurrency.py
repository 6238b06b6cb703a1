"""How many invocations an endpoint takes at once, in the local API's process, as SageMaker bounds them.

- A serverless variant answers at most its ServerlessConfig's MaxConcurrency invocations at a time; one
  more is refused with sagemaker-runtime's ThrottlingException (HTTP 400), which boto3 retries with backoff
  before giving up ("reached max retries"), as it does against SageMaker.
- An asynchronous endpoint queues its requests, oldest first, and sends at most its
  AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance times its instance count to the
  model at once (without one, SageMaker "chooses an optimal value": here the CPU count, the model
  server's default worker count). A request still queued after its RequestTTLSeconds (6 hours unless
  given) expires: its failure is written and the model never sees it.

Both count only what passes through this process: `sagelab invoke` and the endpoint's own URL reach the
model directly. Queued asynchronous requests live in this process and are lost when it stops (SageMaker
keeps its queue).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sagelab.awsapi.errors import Throttling

REQUEST_TTL = 21600  # seconds an asynchronous request may wait in the queue unless RequestTTLSeconds says (SageMaker's default)
IDLE_WORKER = 30.0  # seconds a queue's worker thread waits for a request before it ends (a busy queue keeps its workers)

logger = logging.getLogger("sagelab.awsapi")


_IN_FLIGHT: dict[tuple[str, str], int] = {}
_IN_FLIGHT_LOCK = threading.Lock()


@contextmanager
def serverless_slot(endpoint: str, variant: str, max_concurrency: int) -> Iterator[None]:
    """Hold one of the variant's MaxConcurrency slots while the block runs.

    Raises:
        Throttling: all of them are taken.
    """
    key = (endpoint, variant)
    with _IN_FLIGHT_LOCK:
        taken = _IN_FLIGHT.get(key, 0)
        if taken >= max_concurrency:
            raise Throttling(f"The serverless variant {variant} of endpoint {endpoint} is answering its MaxConcurrency of {max_concurrency} "
                            "invocation(s); retry with backoff, or raise MaxConcurrency in its ServerlessConfig")  # fmt: skip
        _IN_FLIGHT[key] = taken + 1
    try:
        yield
    finally:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT[key] -= 1
            if not _IN_FLIGHT[key]:
                del _IN_FLIGHT[key]


@dataclass
class AsyncRequest:
    """One queued InvokeEndpointAsync: `run` invokes the model and writes the answer, `expire` writes a failure that says why."""

    run: Callable[[], None]
    expire: Callable[[str], None]
    ttl: float = REQUEST_TTL
    queued: float = field(default_factory=time.monotonic)


class AsyncQueue:
    """An asynchronous endpoint's queue: at most `concurrency` requests at the model at a time, the others waiting in order.

    Worker threads start as requests come, one for each request no idle worker will take (up to `concurrency`),
    and end after IDLE_WORKER seconds without one.
    """

    def __init__(self, endpoint: str, concurrency: int, idle_seconds: float = IDLE_WORKER) -> None:
        self.endpoint, self.concurrency, self.idle_seconds = endpoint, concurrency, idle_seconds
        self._requests: queue.SimpleQueue[AsyncRequest] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the three counts below
        self._queued = self._idle = self._workers = 0

    @property
    def workers(self) -> int:
        """How many worker threads the queue has now."""
        with self._lock:
            return self._workers

    def put(self, request: AsyncRequest) -> None:
        """Queue the request; a worker takes it once one of the `concurrency` is free."""
        with self._lock:
            self._requests.put(request)
            self._queued += 1
            if self._queued > self._idle and self._workers < self.concurrency:
                threading.Thread(target=self._work, name=f"sagelab-async-{self.endpoint}", daemon=True).start()
                self._workers += 1  # counted once started: it waits for this lock before taking anything
                self._idle += 1

    def _work(self) -> None:
        while True:
            try:
                request = self._requests.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queued == 0:  # nothing came while it waited: end (put starts another when needed)
                        self._workers -= 1
                        self._idle -= 1
                        return
                continue
            with self._lock:
                self._queued -= 1
                self._idle -= 1
            try:
                waited = time.monotonic() - request.queued
                if waited > request.ttl:
                    request.expire(f"the request expired: it waited {waited:.0f} s in endpoint {self.endpoint}'s queue, longer than its "
                                   f"RequestTTLSeconds ({request.ttl:g} s), so the model never saw it")  # fmt: skip
                else:
                    request.run()
            except BaseException:  # a failure to write the outcome must not stop the queue, nor leave its counts wrong
                logger.exception("an asynchronous request to endpoint %s failed", self.endpoint)
            with self._lock:
                self._idle += 1


_QUEUES: dict[str, AsyncQueue] = {}
_QUEUES_LOCK = threading.Lock()


def async_queue(endpoint: str, per_instance: int | None, instances: int) -> AsyncQueue:
    """The endpoint's queue for its current config (a config that changes the concurrency gets a new queue; the old one drains)."""
    concurrency = (per_instance or os.cpu_count() or 1) * max(1, instances)
    with _QUEUES_LOCK:
        found = _QUEUES.get(endpoint)
        if found is None or found.concurrency != concurrency:
            found = _QUEUES[endpoint] = AsyncQueue(endpoint, concurrency)
        return found
