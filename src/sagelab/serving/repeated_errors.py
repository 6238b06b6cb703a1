"""Logging a model's errors without flooding the log: each distinct error in full once, then counted.

A client sending the same malformed payload a thousand times a second would otherwise write a
traceback per request (gigabytes an hour). Here an error is known by its type, message shape and
where it was raised; the first is logged with its traceback, the repeats are counted and summed up
once a minute ("... raised ValueError 12,345 more times in the last minute"). The client still gets
the error's message in its reply: only the log is spared.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from dataclasses import dataclass

WINDOW = 60.0  # seconds between summaries of an error's repeats
_FORGET_AFTER = 3600.0  # an error unseen for this long is logged in full again when it comes back
_NUMBERS = re.compile(r"\d+")


@dataclass
class _Seen:
    description: str
    last: float
    repeats: int = 0  # since the last line about it


class RepeatedErrors:
    """Logs to `logger` the first of each distinct error in full and a count of its repeats per WINDOW."""

    def __init__(self, logger: logging.Logger, window: float = WINDOW) -> None:
        self.logger = logger
        self.window = window
        self._seen: dict[tuple[str, ...], _Seen] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None

    def report(self, what: str, exc: BaseException) -> None:
        """Log `what` ("the model raised ValueError") with `exc`'s message and traceback if this error is new, else count it."""
        key = _key(exc)
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.last < _FORGET_AFTER:
                seen.repeats += 1
                seen.last = now
                self._start_flusher()
                return
            self._seen[key] = _Seen(f"{what} ({key[1]})", now)
        self.logger.error("%s while answering a request: %s (repeats are counted, not logged)", what, exc, exc_info=exc)

    def flush(self) -> None:
        """Log how often each error came back since its last line (called each WINDOW, and at exit)."""
        with self._lock:
            counted = [(seen.description, seen.repeats) for seen in self._seen.values() if seen.repeats]
            for seen in self._seen.values():
                seen.repeats = 0
        for description, repeats in counted:
            what, _, shape = description.partition(" (")
            self.logger.error("%s %s more time%s in the last minute (%s", what, f"{repeats:,}", "" if repeats == 1 else "s", shape)

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_every_window, name="sagelab-repeated-errors", daemon=True)
            self._flusher.start()

    def _flush_every_window(self) -> None:
        while True:
            time.sleep(self.window)
            self.flush()


def _key(exc: BaseException) -> tuple[str, ...]:
    """The error's type, its message with numbers blanked (a row number differs, the error does not), and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return (type(exc).__qualname__, _NUMBERS.sub("#", str(exc))[:200], where)
