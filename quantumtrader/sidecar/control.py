"""The sidecar's client of the daemon's control ROUTER: asyncio, many requests in flight.

One DEALER socket (the ROUTER serves DEALER clients: no empty delimiter) with
replies matched to requests by ``id``, so a slow trade never holds up a
snapshot or a status query, and no thread pool is needed. Queries follow the
Lazy Pirate pattern of :mod:`quantumtrader.control_client` (timeout, then the
*same* request, same id, again, ``retries`` times; unlike REQ a DEALER is never
stuck waiting for a lost reply, so the socket is kept and ZeroMQ reconnects it
to a restarted daemon by itself); trades are sent
once and wait one long timeout (the daemon's own command timeout x its retries
plus a margin), because resending an order is what the idempotency key exists
to avoid, and the daemon's answer is authoritative.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import zmq
import zmq.asyncio

from quantumtrader.log import get_logger
from quantumtrader.protocol import control_reply, control_request, encode, request_fingerprint, request_id_reused

log = get_logger("quantumtrader.sidecar.control")


class ControlTimeout(TimeoutError):
    """No reply within the timeout (after every retry)."""


class AsyncControl:
    def __init__(self, endpoint: str, context: zmq.asyncio.Context, *, timeout_ms: int, retries: int) -> None:
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._context = context
        self._socket: zmq.asyncio.Socket | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # request id in flight -> (what it asks: protocol.request_fingerprint, its type for the refusal of another)
        self._asked: dict[str, tuple[str, str]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.timeouts = 0

    def _open(self) -> zmq.asyncio.Socket:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        self._socket = sock
        self._reader = asyncio.get_running_loop().create_task(self._read(sock), name="control-reader")
        return sock

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frames = await sock.recv_multipart()
            except (zmq.ZMQError, asyncio.CancelledError):
                return
            try:
                reply = orjson.loads(frames[-1])
            except orjson.JSONDecodeError:
                continue
            if not isinstance(reply, dict):
                continue
            future = self._pending.pop(str(reply.get("id", "")), None)
            if future is not None and not future.done():
                future.set_result(reply)

    def _close_socket(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    async def request(self, kind: str, *, timeout_ms: int | None = None, retries: int | None = None, **fields: Any) -> dict[str, Any]:
        """The daemon's reply (``ok`` false included) or ControlTimeout."""
        msg = control_request(kind, **fields)
        frame = encode(msg)
        timeout_s = (timeout_ms or self.timeout_ms) / 1000.0
        asked = request_fingerprint(msg)
        same = self._pending.get(msg["id"])
        first = self._asked.get(msg["id"])
        if same is not None and first is not None and first[0] != asked:
            # Another request under an id in flight (an app's Idempotency-Key used for a close while its trade waits):
            # it shared the trade's reply, "Position closed successfully" of a close never sent, and the daemon's own
            # check never saw it (the review of the change, 2026-12-06). Refused as the daemon refuses it.
            return control_reply(msg["id"], ok=False, error=request_id_reused(msg["id"], f"a {first[1]} request still in flight"), status=422)
        if same is not None:  # the same request in flight (an app's repeated Idempotency-Key): one reply serves both
            try:
                return await asyncio.wait_for(asyncio.shield(same), timeout_s)
            except asyncio.TimeoutError:
                raise ControlTimeout(f"no reply from the daemon at {self.endpoint} to {kind!r}") from None
        tries = 1 + (self.retries if retries is None else retries)
        for _attempt in range(tries):
            sock = self._socket or self._open()
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[msg["id"]] = future
            self._asked[msg["id"]] = (asked, kind)
            try:
                await sock.send(frame)
                return await asyncio.wait_for(future, timeout_s)
            except asyncio.TimeoutError:
                self.timeouts += 1
            finally:
                self._pending.pop(msg["id"], None)
                self._asked.pop(msg["id"], None)
        raise ControlTimeout(f"no reply from the daemon at {self.endpoint} to {kind!r}")

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        reader = self._reader
        self._close_socket()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
