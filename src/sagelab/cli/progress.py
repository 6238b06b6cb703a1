"""Progress bars for large transfers: rich bars fed by the bytes-moved callbacks of boto3's transfers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LARGE = 8 * 1024 * 1024  # transfers above this show a progress bar; smaller ones are over before a bar would draw


@contextmanager
def transfer_bar(label: str, size: int) -> Iterator[Callable[[int], None] | None]:
    """A bar on stderr for a transfer of `size` bytes, or None (no callback) when it is small."""
    if size < LARGE:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    # The label names a file or an S3 key, which may hold brackets: text, never markup.
    columns = (TextColumn("{task.description}", markup=False, style="progress.description"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=size)
        yield lambda moved: bar.advance(task, moved)


@contextmanager
def announced_upload(uri: str, size: int) -> Iterator[Callable[[int], None] | None]:
    """A line per upload (a run on SageMaker uploads its code and data first), and a bar for a large one."""
    print(f"upload: {uri} ({size / 1e6:,.1f} MB)", file=sys.stderr, flush=True)
    with transfer_bar(f"upload {uri.rsplit('/', 1)[-1]}", size) as sent:
        yield sent
