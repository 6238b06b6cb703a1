"""Dealing connections to a server's workers in turn, instead of letting them race for the socket.

Workers that all accept on one shared socket split connections as the kernel wakes them, which
is far from even: 16 keep-alive connections often landed 13 and 3, or all 16 on one worker,
leaving a core idle for the connections' whole life (a load balancer's pool keeps them open),
and micro-batches small where they are many. Node's cluster module has the same finding and
the same cure: the server process accepts and hands each connection to the next worker.

Here the server process accepts (serve's supervisor loop) and sends each accepted socket's
file descriptor over a Unix datagram channel to a worker, which adopts it into its event loop
(worker.py). A connection costs one more system call pair when opened, none per request.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

logger = logging.getLogger("sagelab.serving")

BACKLOG = 2048  # connections the kernel queues before the server accepts them
_MAX_ACCEPTS_PER_WAKE = 64  # then reap workers and wake again: a connection flood never starves the rest
_ACCEPT_RETRY = 0.5  # seconds to wait after accept() fails (out of file descriptors, say)


class Dealer:
    """The server process's side: one channel per worker slot, connections dealt to them in turn.

    The server keeps both ends of each channel, so connections dealt to a worker that dies before
    it took them are still queued on the worker's end: `close` takes them back and deals them to
    the other workers instead of losing them.
    """

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self._channels: dict[int, tuple[socket.socket, socket.socket]] = {}  # slot -> (server's end, worker's end)
        self._ready: set[int] = set()  # slots whose worker has loaded the model
        self._next = 0

    def open(self, slot: int) -> socket.socket:
        """A new channel for the worker in `slot`; returns the end the worker takes."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        self._channels[slot] = (ours, theirs)
        return theirs

    def ready(self, slot: int) -> None:
        """The worker in `slot` serves: deal it connections (until then they go to the others)."""
        if slot in self._channels:
            self._ready.add(slot)

    def close(self, slot: int) -> None:
        """The worker in `slot` has exited: deal what it had not taken to the others."""
        self._ready.discard(slot)
        ours, theirs = self._channels.pop(slot)
        theirs.setblocking(False)
        orphans: list[socket.socket] = []
        receive(theirs, orphans.append)
        ours.close()
        theirs.close()
        for connection in orphans:
            with connection:
                self._deal(connection)

    def close_all(self, keep: socket.socket | None = None) -> None:
        """Close every channel end (in a new worker: every one but its own, `keep`)."""
        for pair in self._channels.values():
            for end in pair:
                if end is not keep:
                    end.close()
        self._channels.clear()
        self._ready.clear()

    def accept(self) -> None:
        """Accept what is waiting on the listener (up to a bound) and deal each connection out."""
        for _ in range(_MAX_ACCEPTS_PER_WAKE):
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. too many open files: the connection stays queued for later
                logger.error("accepting a connection failed: %s; trying again in %g s", exc, _ACCEPT_RETRY)
                time.sleep(_ACCEPT_RETRY)  # the listener stays readable: without a pause this would spin, logging
                return
            with connection:
                self._deal(connection)

    def _deal(self, connection: socket.socket) -> None:
        slots = sorted(self._ready) or sorted(self._channels)  # a loading worker queues them if none serves
        for attempt in range(len(slots)):
            slot = slots[(self._next + attempt) % len(slots)]
            try:
                socket.send_fds(self._channels[slot][0], [b"c"], [connection.fileno()])
            except OSError:  # the worker's queue is full: the next one
                continue
            self._next = (self._next + attempt + 1) % len(slots)
            return
        logger.error("no server worker could take a connection; it was closed")


def receive(channel: socket.socket, adopt: Callable[[socket.socket], None]) -> None:
    """Adopt every connection waiting on a worker's (non-blocking) channel end; call it when readable."""
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(channel, 16, 1)
        except (BlockingIOError, InterruptedError):
            return
        for fd in fds:
            adopt(socket.socket(fileno=fd))
