"""Pipe input mode: a training channel streamed to the algorithm through named pipes, as SageMaker streams it from S3.

In Pipe mode the algorithm opens /opt/ml/input/data/<channel>_0, a FIFO, and reads the channel's data to its end;
it may then open <channel>_1 for another pass over the data (an epoch), and so on. The data is the channel's
objects in key order, back to back (a manifest's objects in its order). With RecordWrapperType RecordIO each
object is one RecordIO record (MXNet's format, which SageMaker's built-in algorithms and PipeModeDataset read).
An AugmentedManifestFile channel (Pipe mode only) sends, for each JSON line of the manifest, one piece per name
in AttributeNames, in that order: the object a `-ref` attribute points to, else the attribute's value (a string
as it is, any other value as JSON); each a record of its own with RecordIO wrapping.

A feeder thread per channel writes the passes while the job runs and stops with it. Where SageMaker differs:
it gives a Pipe-mode channel no folder, where sagelab also stages the channel's files at
/opt/ml/input/data/<channel> (sagelab's built-in XGBoost reads them there).
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sagelab.engines.local.job import StepFailed
from sagelab.errors import StoreError
from sagelab.store import ObjectStore

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_MAX_PART = (1 << 29) - 1  # a RecordIO part's length has 29 bits
_CHUNK = 1 << 20


def recordio(payload: bytes) -> bytes:
    """`payload` as one RecordIO record, as dmlc's RecordIOWriter writes it.

    A record is the magic number, a word of (continuation flag << 29 | length), the bytes and zeros to a multiple
    of 4. Where the magic number occurs in the payload at a multiple of 4, the record is split there into parts
    (flags 1, 2, ..., 3) and the occurrence left out, which readers put back: so a reader can always find the
    next record by the magic number.
    """
    parts: list[bytes] = []
    start = 0
    for offset in range(0, len(payload) - 3, 4):
        if payload[offset : offset + 4] == _MAGIC_BYTES:
            parts.append(_part(1 if start == 0 else 2, payload[start:offset]))
            start = offset + 4
    parts.append(_part(3 if start else 0, payload[start:]))
    return b"".join(parts)


def _part(flag: int, data: bytes) -> bytes:
    if len(data) > _MAX_PART:
        raise StepFailed(f"ClientError: a record of {len(data):,} bytes is larger than RecordIO allows ({_MAX_PART:,})")
    return struct.pack("<II", RECORDIO_MAGIC, flag << 29 | len(data)) + data + b"\0" * (-len(data) % 4)


def object_records(store: ObjectStore, uris: list[str], wrap: bool) -> Callable[[], Iterator[bytes]]:
    """One pass over the objects `uris`, as chunks: back to back, or each a RecordIO record with `wrap`."""

    def chunks() -> Iterator[bytes]:
        for uri in uris:
            if wrap:
                yield recordio(store.get_bytes(uri))
                continue
            with store.open(uri) as stream:
                while chunk := stream.read(_CHUNK):
                    yield chunk

    return chunks


def augmented_records(store: ObjectStore, uri: str, attributes: list[str], wrap: bool, name: str) -> Callable[[], Iterator[bytes]]:
    """One pass over an augmented manifest: per line, each attribute in `attributes` (a `-ref` one as the object it names).

    Raises:
        StepFailed: the manifest cannot be read, a line is not a JSON object, lacks an attribute, or a `-ref` is no S3 URI.
    """
    if not attributes:
        raise StepFailed(f"ClientError: channel {name}: an AugmentedManifestFile channel needs AttributeNames (the attributes to send, in order)")
    try:
        lines = store.get_bytes(uri).decode("utf-8").splitlines()
    except (StoreError, UnicodeDecodeError) as exc:
        raise StepFailed(f"ClientError: channel {name}: cannot read the augmented manifest {uri}: {exc}") from None
    pieces: list[tuple[str, Any]] = []  # ("ref", uri) or ("value", the attribute's value)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise StepFailed(f"ClientError: channel {name}: line {number} of {uri} is not JSON ({exc})") from None
        if not isinstance(entry, dict):
            raise StepFailed(f"ClientError: channel {name}: line {number} of {uri} is not a JSON object")
        for attribute in attributes:
            if attribute not in entry:
                raise StepFailed(f"ClientError: channel {name}: line {number} of {uri} has no attribute {attribute!r} (AttributeNames)")
            value = entry[attribute]
            if attribute.endswith("-ref"):
                if not (isinstance(value, str) and value.startswith("s3://")):
                    raise StepFailed(f"ClientError: channel {name}: line {number} of {uri}: {attribute} must be an s3:// URI; got {value!r}")
                pieces.append(("ref", value))
            else:
                pieces.append(("value", value))

    def chunks() -> Iterator[bytes]:
        for kind, value in pieces:
            if kind == "ref":
                data = store.get_bytes(value)
            else:
                data = (value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))).encode("utf-8")
            yield recordio(data) if wrap else data

    return chunks


class ChannelPipe:
    """Feeds a channel's passes into <folder>/<channel>_0, _1, ... while a job runs.

    Each FIFO is made when the pass before it was written; the feeder waits for the algorithm to open it. A reader
    that stops before the end (it has what it needs) ends that pass.
    """

    def __init__(self, folder: Path, channel: str, chunks: Callable[[], Iterator[bytes]]) -> None:
        self.folder, self.channel, self.chunks = folder, channel, chunks
        self.error: str | None = None  # why a pass could not be sent, for the job's failure
        self._epoch = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._feed, name=f"sagelab-pipe-{channel}", daemon=True)

    def fifo(self, epoch: int) -> Path:
        return self.folder / f"{self.channel}_{epoch}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.fifo(0))
        self._thread.start()

    def _feed(self) -> None:
        while True:
            fd = os.open(self.fifo(self._epoch), os.O_WRONLY)  # waits for the algorithm, or for stop()
            if self._stopping.is_set():
                os.close(fd)
                return
            pipe = os.fdopen(fd, "wb")
            try:
                for chunk in self.chunks():
                    pipe.write(chunk)
                pipe.flush()
            except BrokenPipeError:
                pass  # the algorithm closed the pipe before the end: this pass is over
            except (StoreError, StepFailed, OSError) as exc:
                self.error = f"channel {self.channel}, pass {self._epoch}: {exc}"
                return
            finally:
                # The next pass's FIFO exists before this one ends: a reader at its end can open the next at once.
                if self.error is None:
                    os.mkfifo(self.fifo(self._epoch + 1))
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
            self._epoch += 1

    def stop(self, patience: float = 5.0) -> None:
        """Stop feeding (the job ended): a feeder waiting for a reader is let go. One stuck writing to a pipe that a
        process the job left behind holds open but never reads (possible outside a PID namespace) is given up on
        after `patience` seconds; it is a daemon thread, and ends with sagelab."""
        self._stopping.set()
        deadline = time.monotonic() + patience
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:  # opening the FIFO for reading releases a writer waiting in open()
                os.close(os.open(self.fifo(self._epoch), os.O_RDONLY | os.O_NONBLOCK))
            except OSError:
                pass
            self._thread.join(0.05)
