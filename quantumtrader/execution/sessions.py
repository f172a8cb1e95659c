"""One command session per terminal: a REQ socket driven by the Lazy Pirate pattern.

The ZeroMQ guide's Lazy Pirate (``lpclient``): send, wait ``timeout_ms`` for
the reply; on silence close the REQ socket (it is stuck waiting for a reply
that may never come), open a fresh one and resend the *same* command with the
*same* id, at most ``retries`` more times; then give up and report the
outcome as unknown. The EA answers a repeated id from its reply cache, so a
retry never executes twice.

Nothing here blocks while the daemon runs: the socket is polled by the
daemon's poller (``watch``), timeouts are monotonic deadlines the loop wakes
up for, and commands to one terminal wait in that terminal's queue, one in
flight at a time, so a slow terminal delays only its own commands. Only at a
stop, the loop gone, does :meth:`CommandSession.await_inflight` block, bounded
by ``execution.stop_wait_ms``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from quantumtrader.protocol import ProtocolError, decode_reply, encode

#: ``on_done(reply or None, attempts, round_trip_ns)``; None means every try timed out.
Done = Callable[[dict[str, Any] | None, int, int], None]
#: Asked when a command leaves the queue (and when :meth:`CommandSession.recheck_queue` is called): False
#: drops it unsent, the gate having answered its requester. What was true when it was queued (the kill
#: switch off, a fresh quote) may not be seconds later, behind a terminal that does not answer.
Gate = Callable[[], bool]


@dataclass(slots=True)
class Pending:
    command: dict[str, Any]
    frame: bytes
    on_done: Done
    gate: Gate | None = None
    attempts: int = 0
    first_sent_ns: int = 0


class CommandSession:
    def __init__(
        self,
        terminal: str,
        endpoint: str,
        *,
        context: zmq.Context[Any],
        timeout_ms: int,
        retries: int,
        queue_max: int,
        watch: Callable[[zmq.Socket[bytes], Callable[[], None]], None],
        unwatch: Callable[[zmq.Socket[bytes]], None],
        on_reject: Callable[[str, str], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.terminal = terminal
        self.endpoint = endpoint
        self._context = context
        self._timeout_s = timeout_ms / 1000.0
        self._retries = retries
        self._queue_max = queue_max
        self._watch = watch
        self._unwatch = unwatch
        self._on_reject = on_reject
        self._monotonic = monotonic
        self._socket: zmq.Socket[bytes] | None = None
        self.queue: deque[Pending] = deque()
        self.inflight: Pending | None = None
        self.deadline = float("inf")
        self.timeouts = 0
        self.completed = 0

    # -- public ----------------------------------------------------------------

    def submit(self, command: dict[str, Any], on_done: Done, gate: Gate | None = None) -> bool:
        """Queue a command; False when the terminal's queue is full."""
        if len(self.queue) >= self._queue_max:
            return False
        self.queue.append(Pending(command, encode(command), on_done, gate))
        if self.inflight is None:
            self._send_next()
        return True

    def recheck_queue(self) -> int:
        """Ask every queued command's gate now (the kill switch went on); returns how many were dropped."""
        before = len(self.queue)
        self.queue = deque(p for p in self.queue if p.gate is None or p.gate())
        return before - len(self.queue)

    def retarget(self, endpoint: str) -> None:
        """The terminal said hello with a (possibly new) endpoint: reconnect, resend what is in flight."""
        if endpoint == self.endpoint and self._socket is not None:
            return
        self.endpoint = endpoint
        self._reopen()
        if self.inflight is not None:
            self._send(self.inflight)

    def check(self, now: float) -> None:
        """Lazy Pirate step: retry or give up on a command whose reply is overdue."""
        if self.inflight is None or now < self.deadline:
            return
        self.timeouts += 1
        pending = self.inflight
        self._reopen()  # the REQ socket may be stuck: throw it away
        if pending.attempts <= self._retries:
            self._send(pending)
            return
        self._finish(None)

    def drop_queued(self) -> list[dict[str, Any]]:
        """At a stop: the commands not yet sent, taken out of the queue (returned so their orders can be answered)."""
        dropped = [pending.command for pending in self.queue]
        self.queue.clear()
        return dropped

    def await_inflight(self, until: float) -> None:
        """At a stop, the loop gone: the command in flight gets until ``until`` (monotonic) to be answered.

        Blocking, on this socket alone; Lazy Pirate retries go on as in the
        loop. Its ``on_done`` runs as usual if the reply comes (or every try
        times out). One look even when ``until`` has passed: a reply may be
        waiting already.
        """
        while self.inflight is not None and self._socket is not None:
            now = self._monotonic()
            wait_s = max(0.0, min(self.deadline, until) - now)
            if self._socket.poll(math.ceil(wait_s * 1000)):
                self._on_readable()
                continue
            now = self._monotonic()
            if now >= until:  # before a resend: one sent now could never be heard
                return
            if now >= self.deadline:
                self.check(now)

    def close(self) -> None:
        if self._socket is not None:
            self._unwatch(self._socket)
            self._socket.close(linger=0)
            self._socket = None

    # -- internals -------------------------------------------------------------

    def _reopen(self) -> None:
        self.close()
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.endpoint.startswith("tcp://["):  # an IPv6 literal, which a hello may announce: unreachable without it
            sock.setsockopt(zmq.IPV6, 1)  # (not for names: with it on, "localhost" resolves to ::1 first, and the EA binds 127.0.0.1)
        sock.connect(self.endpoint)
        self._socket = sock
        self._watch(sock, self._on_readable)

    def _send(self, pending: Pending) -> None:
        if self._socket is None:
            self._reopen()
        assert self._socket is not None
        pending.attempts += 1
        if not pending.first_sent_ns:
            pending.first_sent_ns = time.perf_counter_ns()
        # A REQ socket that is connecting queues the message; it never blocks here.
        self._socket.send(pending.frame, zmq.NOBLOCK)
        self.deadline = self._monotonic() + self._timeout_s

    def _send_next(self) -> None:
        while self.queue:
            pending = self.queue.popleft()
            if pending.gate is None or pending.gate():
                self.inflight = pending
                self._send(pending)
                return

    def _on_readable(self) -> None:
        sock = self._socket
        if sock is None:
            return
        try:
            # All of it: a REQ socket that left a frame unread refuses the next send (EFSM).
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        pending = self.inflight
        try:
            if len(frames) != 1:
                raise ProtocolError("bad_type", f"a reply is one frame, got {len(frames)}")
            reply = decode_reply(frames[0])
        except ProtocolError as exc:
            self._on_reject(exc.reason, f"reply from {self.terminal}: {exc.detail}")
            self._reopen()  # a REQ must not send again before a valid recv; start clean and let the timeout retry
            return
        if pending is None or reply["id"] != pending.command["id"]:
            self._on_reject("bad_id", f"reply from {self.terminal} for {reply['id']!r}, none expected")
            return
        self._finish(reply)

    def _finish(self, reply: dict[str, Any] | None) -> None:
        pending = self.inflight
        assert pending is not None
        self.inflight = None
        self.deadline = float("inf")
        self.completed += 1
        pending.on_done(reply, pending.attempts, time.perf_counter_ns() - pending.first_sent_ns)
        self._send_next()
