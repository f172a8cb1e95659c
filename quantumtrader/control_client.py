"""Client of the daemon's control socket, for the CLI, the sidecar and tests.

The ZeroMQ guide's Lazy Pirate pattern (``lpclient``): a REQ socket, a reply
timeout, and on silence close + reopen + resend the *same* request (same id,
so the daemon can answer a repeat without doing the work twice), up to
``retries`` more times. A REQ socket stuck waiting for a lost reply is thrown
away rather than reused, which is the whole point of the pattern.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import zmq

from quantumtrader.protocol import control_request, encode, parse_object


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
            if self._socket.poll(self.timeout_ms, zmq.POLLIN):
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
