"""The asynchronous endpoint's queue in-process: order, the concurrency bound, and RequestTTLSeconds.

RequestTTLSeconds is at least 60 through the API, so its expiry is tested here with a shorter one; the API's queue
(MaxConcurrentInvocationsPerInstance) and a serverless variant's throttle are tested on real endpoints in
test_awsapi_hosting.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from sagelab.awsapi.concurrency import AsyncQueue, AsyncRequest, serverless_slot
from sagelab.awsapi.errors import Throttling


def test_a_queue_runs_its_requests_in_order_at_most_its_concurrency_at_once_and_expires_those_that_waited_too_long() -> None:
    queue = AsyncQueue("test", concurrency=1)
    release, started, done = threading.Event(), threading.Event(), threading.Event()
    ran: list[str] = []
    expired: list[str] = []

    def blocking() -> None:
        started.set()
        release.wait(10)
        ran.append("first")

    def record(name: str) -> AsyncRequest:
        return AsyncRequest(lambda: ran.append(name), expired.append, ttl=60)

    queue.put(AsyncRequest(blocking, expired.append))
    assert started.wait(10)
    queue.put(AsyncRequest(lambda: ran.append("stale"), expired.append, ttl=0.05))  # waits behind `blocking` longer than its TTL
    queue.put(record("second"))
    queue.put(AsyncRequest(done.set, expired.append))
    threading.Timer(0.3, release.set).start()
    assert done.wait(10)
    assert ran == ["first", "second"]
    [reason] = expired
    assert reason.startswith("the request expired: it waited") and "RequestTTLSeconds (0.05 s)" in reason


def test_a_burst_of_requests_gets_as_many_workers_as_the_concurrency_allows_and_idle_workers_end() -> None:
    queue = AsyncQueue("test", concurrency=4, idle_seconds=0.2)
    lock, inside, most = threading.Lock(), [0], [0]
    everyone_in, finished = threading.Barrier(4, timeout=10), threading.Semaphore(0)

    def request() -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            everyone_in.wait()  # passes only once four run at once
        except threading.BrokenBarrierError:
            pass
        with lock:
            inside[0] -= 1
        finished.release()

    senders = [threading.Thread(target=lambda: [queue.put(AsyncRequest(request, print)) for _ in range(2)]) for _ in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    for _ in range(8):
        assert finished.acquire(timeout=15)
    assert most[0] == 4 and not everyone_in.broken
    deadline = time.monotonic() + 10
    while queue.workers and time.monotonic() < deadline:  # each ends after 0.2 s without a request
        time.sleep(0.05)
    assert queue.workers == 0
    done = threading.Event()
    queue.put(AsyncRequest(done.set, print))  # a new worker starts for it
    assert done.wait(10)


def test_a_serverless_slot_is_refused_past_max_concurrency_and_given_back_when_its_invocation_ends() -> None:
    with serverless_slot("ep", "AllTraffic", 2), serverless_slot("ep", "AllTraffic", 2):
        with pytest.raises(Throttling, match="answering its MaxConcurrency of 2"):
            with serverless_slot("ep", "AllTraffic", 2):
                pass
        with serverless_slot("ep", "Other", 1):  # each variant counts its own
            pass
    with serverless_slot("ep", "AllTraffic", 1):
        pass
