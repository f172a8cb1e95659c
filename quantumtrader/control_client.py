"""Client of the daemon's control socket, for the CLI, the sidecar and tests.

The ZeroMQ guide's Lazy Pirate pattern (``lpclient``): a REQ socket, a reply
timeout, and on silence close + reopen + resend the *same* request (same id,
so the daemon can answer a repeat without doing the work twice), up to
``retries`` more times. A REQ socket stuck waiting for a lost reply is thrown
away rather than reused, which is the whole point of the pattern.

The wait for a reply is polled in slices of :data:`POLL_SLICE_MS`: on Windows
Ctrl-C does not interrupt pyzmq's poll, so one poll of the whole timeout made
``qt-daemon trade`` ignore it for up to 15 s x 3 tries. Python raises the
KeyboardInterrupt between two slices.
"""

from __future__ import annotations

import math
import time
from types import TracebackType
from typing import Any

import zmq

from quantumtrader.protocol import control_request, encode, parse_object


#: The longest single poll of a wait for a reply: how late Ctrl-C may be noticed on Windows.
POLL_SLICE_MS = 200


class ControlTimeout(TimeoutError):
    """No reply from the daemon after every retry."""


class ControlClient:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout_ms: int = 2000,
        retries: int = 2,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket[bytes] | None = None

    def _connect(self) -> zmq.Socket[bytes]:
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return the reply dict (``ok`` false replies included)."""
        msg = control_request(kind, **fields)
        frame = encode(msg)
        for _attempt in range(self.retries + 1):
            if self._socket is None:
                self._socket = self._connect()
            self._socket.send(frame)
            if _wait_readable(self._socket, self.timeout_ms):
                reply = parse_object(self._socket.recv())
                if reply.get("id") == msg["id"]:
                    return reply
            # Lazy Pirate: abandon the socket (it may be stuck expecting a reply) and retry afresh.
            self._socket.close(linger=0)
            self._socket = None
        raise ControlTimeout(f"no reply from {self.endpoint} after {self.retries + 1} tries of {self.timeout_ms} ms")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _wait_readable(sock: zmq.Socket[bytes], timeout_ms: int) -> bool:
    """True once ``sock`` has a message, False after ``timeout_ms``: polled in slices of at most POLL_SLICE_MS up
    to a monotonic deadline (the module's docstring says why)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left_ms = math.ceil((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            return False
        if sock.poll(min(POLL_SLICE_MS, left_ms), zmq.POLLIN):
            return True
