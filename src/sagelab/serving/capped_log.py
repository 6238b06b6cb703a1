"""A log file with a size cap: past it, the file moves to `<name>.1` (the one before is dropped) and a new one starts.

An endpoint's servers write through one of these (their output piped to the supervisor), so its
log never holds more than twice the cap, however long it serves and whatever its clients send.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class CappedLog:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max(4096, max_bytes)
        self._lock = threading.Lock()
        self._file = open(path, "ab")  # noqa: SIM115 - kept open while the endpoint serves; closed by close()
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._size + len(data) > self.max_bytes and self._size > 0:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def copy_from(self, stream: IO[bytes]) -> None:
        """Write everything `stream` gives, line by line, until it ends (a server's output, on a thread of its own)."""
        for line in iter(stream.readline, b""):
            self.write(line)
        stream.close()

    def start_copying(self, stream: IO[bytes]) -> threading.Thread:
        thread = threading.Thread(target=self.copy_from, args=(stream,), name=f"log-{self.path.name}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log (its rotated part too, when the current one is short)."""
    found: list[str] = []
    for part in (path, path.with_name(path.name + ".1")):
        try:
            with open(part, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 64 * 1024))
                found = log.read().decode("utf-8", "replace").splitlines()[-(lines - len(found)) :] + found
        except OSError:
            continue
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])
