"""uvicorn's server as `sagelab api` runs it (imported only when the server starts: uvicorn is an extra)."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn


class QuietServer(uvicorn.Server):
    """Ends with exit status 0 on Ctrl-C or SIGTERM, once drained (uvicorn's own server raises the signal again)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True
