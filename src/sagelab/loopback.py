"""The listening socket of a sagelab server a user starts (`sagelab api`, `sagelab ui`): 127.0.0.1 only, and already
listening when the address is printed, so the first request is queued rather than refused."""

from __future__ import annotations

import socket

from sagelab.errors import ConfigError


def listen(port: int, command: str) -> socket.socket:
    """A socket bound to 127.0.0.1:`port` (0: any free port) and listening; ConfigError naming `command` when the port is taken."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(("127.0.0.1", port))
    except OSError as exc:
        listening.close()
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; is `{command}` running already? Choose another port with --port") from None
    listening.listen(2048)
    return listening
