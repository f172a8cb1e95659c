"""The control socket: a ROUTER that answers the sidecar and the CLI.

Requests are decoded by :func:`quantumtrader.protocol.decode_control` and
dispatched by ``type`` to handlers registered by the subsystems that own them
(the daemon registers ``status`` and ``snapshot``; execution adds trade
operations). A handler returns the reply's fields or raises ``ControlError``
with a message for the client. REQ clients (an empty delimiter frame) and
DEALER clients (none) are both served: the reply echoes whatever envelope
frames the request came with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import zmq

from quantumtrader.metrics import LogLimiter, RejectLog
from quantumtrader.protocol import ProtocolError, control_id, control_reply, decode_control, encode

Handler = Callable[[dict[str, Any]], dict[str, Any]]
#: Told of a reply that could not be encoded: (request type, the exception).
FailureLog = Callable[[Any, Exception], None]


def reply_frame(reply: dict[str, Any], kind: Any, failed: FailureLog) -> bytes:
    """The reply's bytes, or those of a 500 that says why when JSON cannot carry it.

    A reply holding an integer beyond 64 bits (once: a terminal's lost_events)
    raised inside the drain: that client and every request still queued
    behind it got no answer at all and timed out, for as long as the state
    stayed so. Now the one reply is a 500 and the rest are answered.
    """
    try:
        return encode(reply)
    except Exception as exc:  # orjson's JSONEncodeError (a TypeError) or anything a default hook raises
        failed(kind, exc)
        return encode(control_reply(str(reply.get("id", "")), ok=False, error=f"internal error: the reply could not be encoded ({type(exc).__name__})", status=500))


class Responder:
    """Answers one control request later (a trade's reply waits for the terminal's).

    Holds the ROUTER envelope of the request so the answer reaches the right
    client, whenever it is ready; answering twice is ignored.
    """

    __slots__ = ("_socket", "_envelope", "request_id", "done", "_kind", "_failed")

    def __init__(self, socket: zmq.Socket[bytes], envelope: list[bytes], request_id: str, kind: Any, failed: FailureLog) -> None:
        self._socket = socket
        self._envelope = envelope
        self.request_id = request_id
        self.done = False
        self._kind = kind  # the request's type: what a reply that cannot be encoded is logged under
        self._failed = failed

    def ok(self, **fields: Any) -> None:
        self._send(control_reply(self.request_id, **fields))

    def error(self, message: str, status: int = 400, **fields: Any) -> None:
        self._send(control_reply(self.request_id, ok=False, error=message, status=status, **fields))

    def _send(self, reply: dict[str, Any]) -> None:
        if self.done:
            return
        self.done = True
        self._socket.send_multipart(self._envelope + [reply_frame(reply, self._kind, self._failed)])


AsyncHandler = Callable[[dict[str, Any], Responder], None]


class ControlError(Exception):
    """A request the daemon understood but refuses; ``status`` maps to an HTTP code in the sidecar."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    def __init__(self, socket: zmq.Socket[bytes], rejects: RejectLog, max_bytes: int, log: Any, failure_log: LogLimiter) -> None:
        self._socket = socket
        self._rejects = rejects
        self._max_bytes = max_bytes
        self._log = log
        # a handler that fails on every request of a kind logs its traceback once per interval, not per request
        self._failure_log = failure_log
        self.handlers: dict[str, Handler] = {}
        self.async_handlers: dict[str, AsyncHandler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        """A handler that answers at once: returns the reply's fields or raises ControlError."""
        self.handlers[kind] = handler

    def register_async(self, kind: str, handler: AsyncHandler) -> None:
        """A handler that answers later through the :class:`Responder` it is given."""
        self.async_handlers[kind] = handler

    def drain(self, limit: int = 256) -> int:
        """Answer up to ``limit`` waiting requests without blocking."""
        handled = 0
        while handled < limit:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            handled += 1
            answer = self._answer(frames)
            if answer is not None:
                self._socket.send_multipart(frames[:-1] + [answer])
        return handled

    def _answer(self, frames: list[bytes]) -> bytes | None:
        """The reply's frame, or None when a :class:`Responder` will send it later."""
        try:
            request = decode_control(frames[-1], self._max_bytes)
        except ProtocolError as exc:
            self._rejects.reject("control", exc.reason, exc.detail)
            return encode(control_reply(_readable_id(frames[-1], self._max_bytes), ok=False, error=f"{exc.reason}: {exc.detail}", status=400))
        reply = self._reply(request, frames)
        return None if reply is None else reply_frame(reply, request["type"], self._failed)

    def _reply(self, request: dict[str, Any], frames: list[bytes]) -> dict[str, Any] | None:
        req_id = request.get("id", "")
        async_handler = self.async_handlers.get(request["type"])
        if async_handler is not None:
            responder = Responder(self._socket, frames[:-1], req_id, request["type"], self._failed)
            try:
                async_handler(request, responder)
            except ControlError as exc:
                self._refused(request["type"], exc)
                responder.error(str(exc), exc.status)
            except Exception as exc:
                self._failed(request["type"], exc)
                responder.error(f"internal error: {type(exc).__name__}", 500)
            return None
        handler = self.handlers.get(request["type"])
        if handler is None:
            self._rejects.reject("control", "unknown_type", str(request["type"])[:40])
            known = ", ".join(sorted([*self.handlers, *self.async_handlers]))
            return control_reply(req_id, ok=False, error=f"unknown request type {request['type']!r} (known: {known})", status=400)
        try:
            return control_reply(req_id, **handler(request))
        except ControlError as exc:
            self._refused(request["type"], exc)
            return control_reply(req_id, ok=False, error=str(exc), status=exc.status)
        except Exception as exc:  # a bug in one handler must not take the daemon down
            self._failed(request["type"], exc)
            return control_reply(req_id, ok=False, error=f"internal error: {type(exc).__name__}", status=500)

    def _refused(self, kind: Any, exc: ControlError) -> None:
        """A field the request got wrong (400, 422) is a reject like any bad input from outside: counted and
        logged once per interval (``bad_value``). A refusal on the merits (no such position, a risk rule,
        trading halted) is an answer, not a reject."""
        if exc.status in (400, 422):
            self._rejects.reject("control", "bad_value", f"{str(kind)[:40]}: {exc}"[:200])

    def _failed(self, kind: Any, exc: Exception) -> None:
        self._failure_log.log(f"control {str(kind)[:40]}", self._log.error, "control handler failed", type=kind, exc_info=exc)


def _readable_id(raw: bytes, max_bytes: int) -> str:
    """The id of a request refused as malformed, when it has a readable one.

    A client matches replies by id: without it the refusal looks like silence,
    and the client retries and reports "no answer" instead of the reason.
    """
    if len(raw) > max_bytes:
        return ""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    return (control_id(msg) or "") if type(msg) is dict else ""
