"""WebSocket fan-out: one feed message in, one text frame out to every interested client.

Price updates are throttled once, here, per symbol, to at most one per
``interval = 1/max_updates_per_s``, latest wins. A tick that finds its
symbol's window open goes out at once (leading edge) and shuts the window for
an interval; ticks that come while it is shut are held, each replacing the
last, and when the window opens the held quote goes out at once (trailing
edge), so a symbol that goes quiet still delivers its last quote.

Why the plain trailing edge: what a trader sees is staleness, the time a
phone shows a quote after a newer one exists, and sending the held quote the
moment the window opens is what ends it soonest. Until 2026-12-04 a busy
symbol (4 or more ticks held in an interval) kept its window open up to half
an interval for its next tick instead: the quotes that went out were younger
(qt-bench ws, the generator's ~100 ticks/s per symbol: tick -> client p99
5-12 ms, now 45-54), but the newer quote held meanwhile was not shown, and
with real ticks, which come in bursts, the wait often found no tick. On the
EURUSD file replayed as 20 symbols, phones are now 23 % less stale on
average and more than 200 ms behind 0.1 % of the time instead of 8 %
(bench/results/ws-runs/throttle-ab/); simulated over the whole files at their
own pace and 10x and 75x faster (``bench/throttle_sim.py``, checked send for
send against this class as it was at b106dbd), 8-31 % less stale. The rate
is at most ``max_updates_per_s`` either way.

Then every message goes to each interested client. A client with nothing
queued or in flight and a socket that takes writes gets it in the hub's own
pass (the fast lane: the shared frames straight to its transport, one write
per client when the pass ends); otherwise it waits in the client's bounded
queue, read by its own sender task:

- prices: one slot per symbol, latest wins (a client that is briefly slow gets
  the newest quote, never a backlog of old ones);
- health: one slot, latest wins;
- signals, positions, trades, accounts: a FIFO that is never thinned; when it
  holds ``queue_size`` messages the client is too far behind and is
  disconnected (code 1013, "try again later") and counted, so one stalled
  phone costs a bounded amount of memory and never slows anyone else.

Before a client subscribes to a symbol it receives every symbol; after, only
the symbols it subscribed to (price updates and signals; account, positions,
trades and health go to everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from hdrh.histogram import HdrHistogram

from quantumtrader.metrics import LatencyRecorder
from quantumtrader.sidecar.frames import FrameCache

#: Sends several text frames to one client; the writer may coalesce them into one socket write.
SendMany = Callable[[list[str]], Awaitable[None]]


class FastWriter(Protocol):
    """A connection's fast lane: messages written straight to its socket, no task involved."""

    def ready(self) -> bool:
        """The socket takes writes now (not paused by a full buffer, not closing)."""

    def write(self, texts: list[str]) -> None:
        """Every one of them, in order, in one socket write."""


#: Clients flushed between two clock reads when timing fast-lane writes (an upper bound for each).
_TIMED_EVERY = 32

#: Close code for a client that fell too far behind (RFC 6455 registry: "Try Again Later").
CLOSE_TOO_SLOW = 1013


class Client:
    """One WebSocket connection's queues and sender task."""

    __slots__ = ("send", "writer", "corked", "corked_ns", "sending", "symbols", "fifo", "prices", "health_text", "wake", "closed", "queue_size", "hub", "task", "too_slow")

    def __init__(self, hub: Hub, send: SendMany, queue_size: int, writer: FastWriter | None = None) -> None:
        self.hub = hub
        self.send = send
        self.writer = writer
        self.corked: list[str] = []  # fast-lane messages of this pass, written when it ends
        self.corked_ns: list[int] = []  # and when the feed gave each one (0: made here)
        self.sending = False  # the pump has a batch in flight: nothing may overtake it
        self.symbols: set[str] | None = None  # None = every symbol (nothing subscribed yet)
        self.fifo: deque[tuple[str, int]] = deque()
        self.prices: dict[str, tuple[str, int]] = {}
        self.health_text: str | None = None
        self.wake = asyncio.Event()
        self.closed = asyncio.Event()
        self.queue_size = queue_size
        self.task: asyncio.Task[None] | None = None
        self.too_slow = False

    def _write_now(self, text: str, recv_ns: int) -> bool:
        """The fast lane: with nothing queued or in flight, the message goes out in the hub's own pass.

        Waking the client's task instead cost a task switch per client per
        message (at 500 clients most of a fan-out's time, and the last client
        waited for all). Anything queued or a batch in flight keeps the queue,
        so nothing is overtaken; a paused socket (its buffer full) says no.
        The message is held until the pass ends (:meth:`Hub.flush`), so that
        everything for this client in the same pass is one socket write.
        """
        if not self.corked:
            writer = self.writer
            if writer is None or self.sending or self.fifo or self.prices or self.health_text is not None or not writer.ready():
                return False
            self.hub.cork(self)
        self.corked.append(text)
        self.corked_ns.append(recv_ns)
        return True

    def offer_price(self, symbol: str, text: str, recv_ns: int) -> bool:
        """Written in this pass (True) or queued in the symbol's slot, latest wins (False)."""
        if self._write_now(text, recv_ns):
            return True
        if symbol in self.prices:
            self.hub.counters["ws_prices_conflated"] += 1
        self.prices[symbol] = (text, recv_ns)
        self.wake.set()
        return False

    def offer(self, text: str, recv_ns: int) -> bool:
        """A message that is never dropped: written in this pass (True) or queued (False); too many queued drops the client."""
        if self._write_now(text, recv_ns):
            return True
        if len(self.fifo) >= self.queue_size:
            self.hub.drop_slow(self)
            return False
        self.fifo.append((text, recv_ns))
        self.wake.set()
        return False

    def offer_health(self, text: str) -> None:
        if not self._write_now(text, 0):
            self.health_text = text
            self.wake.set()

    def reply(self, text: str) -> None:
        """A direct answer to this client (pong, handshake, signals on request): queued with the reliable ones."""
        self.offer(text, 0)

    async def pump(self) -> None:
        """Send whatever is queued; sleep when nothing is. Runs until cancelled or the send fails."""
        send = self.send
        try:
            while True:
                if not (self.fifo or self.prices or self.health_text):
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                # Everything queued goes out in one batch (one socket write with the fast writer):
                # reliable messages first, in order, then the latest price per symbol, then health.
                batch = list(self.fifo)
                self.fifo.clear()
                if self.prices:
                    batch.extend(self.prices.values())
                    self.prices = {}
                if self.health_text is not None:
                    batch.append((self.health_text, 0))
                    self.health_text = None
                self.sending = True
                try:
                    await send([text for text, _ in batch])
                finally:
                    self.sending = False
                done_ns = time.perf_counter_ns()
                for _, recv_ns in batch:
                    if recv_ns:  # 0 = made here (replies, a subscribe's current quote), not from the feed
                        self.hub.record(done_ns - recv_ns)
        except Exception:  # the connection went away: the endpoint sees it on receive and cleans up
            self.hub.counters["ws_send_failures"] += 1
        finally:
            self.closed.set()


class Hub:
    """Every connected client, indexed by what they want."""

    def __init__(self, *, max_updates_per_s: float, queue_size: int, max_clients: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = 1.0 / max_updates_per_s
        self.queue_size = queue_size
        self.max_clients = max_clients
        self._clock = clock
        self.clients: set[Client] = set()
        self._everything: set[Client] = set()
        self._by_symbol: dict[str, set[Client]] = {}
        self._next_at: dict[str, float] = {}
        self._pending: dict[str, str] = {}  # the quote held while the symbol's window is shut
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._corked: list[Client] = []  # clients with fast-lane messages held until this pass ends
        self.counters: Counter[str] = Counter()
        self.frames = FrameCache(counters=self.counters)  # each fan-out's frames, built once for every client that can share them
        # feed receive -> WebSocket send, ns (a held quote from its release: _send_held); buffered: no pure-Python record per message
        self._latency = LatencyRecorder()

    # -- clients -------------------------------------------------------------------

    def full(self) -> bool:
        return len(self.clients) >= self.max_clients

    def add(self, send: SendMany, writer: FastWriter | None = None) -> Client:
        client = Client(self, send, self.queue_size, writer)
        self.clients.add(client)
        self._everything.add(client)
        client.task = asyncio.get_running_loop().create_task(client.pump(), name="ws-pump")
        self.counters["ws_connections"] += 1
        return client

    async def remove(self, client: Client) -> None:
        self.clients.discard(client)
        self._everything.discard(client)
        for symbol in list(client.symbols or ()):
            self._unindex(client, symbol)
        task = client.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def subscribe(self, client: Client, symbol: str) -> None:
        if client.symbols is None:
            client.symbols = set()
            self._everything.discard(client)
        client.symbols.add(symbol)
        self._by_symbol.setdefault(symbol, set()).add(client)

    def unsubscribe(self, client: Client, symbol: str) -> None:
        if client.symbols is None or symbol not in client.symbols:
            return
        client.symbols.discard(symbol)
        self._unindex(client, symbol)
        client.prices.pop(symbol, None)

    def _unindex(self, client: Client, symbol: str) -> None:
        members = self._by_symbol.get(symbol)
        if members is not None:
            members.discard(client)
            if not members:
                del self._by_symbol[symbol]

    def drop_slow(self, client: Client) -> None:
        """Too far behind on messages that must not be dropped: disconnect it (the endpoint closes)."""
        if client.too_slow:
            return
        client.too_slow = True
        client.fifo.clear()
        client.prices.clear()
        self.counters["ws_disconnected_slow"] += 1
        if client.task is not None:
            client.task.cancel()
        client.closed.set()

    # -- feed side (the Clone's Sink) -----------------------------------------------------

    def price(self, symbol: str, text: str, recv_ns: int) -> None:
        now = self._clock()
        if now >= self._next_at.get(symbol, 0.0):  # the window is open: this tick goes out now
            timer = self._timers.pop(symbol, None)
            if timer is not None:
                timer.cancel()
            if self._pending.pop(symbol, None) is not None:  # a fresher tick than the held one
                self.counters["ws_prices_throttled"] += 1
            self._send(symbol, text, recv_ns, now)
            return
        if symbol in self._pending:
            self.counters["ws_prices_throttled"] += 1
        self._pending[symbol] = text
        if symbol not in self._timers:
            self._timers[symbol] = asyncio.get_running_loop().call_later(self._next_at[symbol] - now, self._send_held, symbol)

    def _send_held(self, symbol: str) -> None:
        """The symbol's window is open again: its held quote goes out now (trailing edge).

        Its feed -> WebSocket time is counted from now: the wait is the
        throttle's rule, not the sidecar's work, and counted from the feed it
        filled the histogram's tail with waits up to an interval long, which
        told an operator nothing about a slow sidecar (``qt-bench ws`` shows
        what the wait costs a phone: staleness)."""
        del self._timers[symbol]
        pending = self._pending.pop(symbol, None)
        if pending is not None:
            self._send(symbol, pending, time.perf_counter_ns(), self._clock())

    def _send(self, symbol: str, text: str, recv_ns: int, now: float) -> None:
        self._next_at[symbol] = now + self.interval_s
        self._fan_out_price(symbol, text, recv_ns)

    def _fan_out_price(self, symbol: str, text: str, recv_ns: int) -> None:
        self.counters["ws_price_fanouts"] += 1
        direct = 0  # clients that took the fast lane
        for client in self._everything:
            direct += client.offer_price(symbol, text, recv_ns)
        for client in self._by_symbol.get(symbol, ()):
            direct += client.offer_price(symbol, text, recv_ns)
        self.counters["ws_prices_direct"] += direct

    def reliable(self, symbol: str | None, text: str, recv_ns: int) -> None:
        clients = self.clients if symbol is None else itertools.chain(self._everything, self._by_symbol.get(symbol, ()))
        direct = 0  # clients that took the fast lane
        for client in clients:
            direct += client.offer(text, recv_ns)
        self.counters["ws_reliable_direct"] += direct

    def health(self, text: str) -> None:
        for client in self.clients:
            client.offer_health(text)

    def cork(self, client: Client) -> None:
        """``client`` holds fast-lane messages: write them when this pass of the loop ends."""
        if not self._corked:
            asyncio.get_running_loop().call_soon(self.flush)
        self._corked.append(client)

    def flush(self) -> None:
        """One socket write per client for everything the pass gave it.

        A pass is whatever runs before the loop turns: one feed drain (every
        message that waited while the last fan-out ran, its signal after a
        quote, health) or one timer. Written one fan-out at a time, messages
        that queued up behind a 490-client fan-out each cost a whole pass of
        socket writes again (~4.5 ms: the kernel's loopback send is most of
        it), so a burst queued up; held to the end of the pass, they share
        one write per client. Timed per ``_TIMED_EVERY`` clients (one clock
        read each: an upper bound for them): a histogram record per client
        cost about a microsecond, twice the rest of a client's share.
        """
        clients, self._corked = self._corked, []
        done: dict[int, int] = {}  # feed receive time -> messages written
        for n, client in enumerate(clients, 1):
            texts, stamps = client.corked, client.corked_ns
            client.corked, client.corked_ns = [], []
            try:
                client.writer.write(texts)  # type: ignore[union-attr]  # corked only with a writer
            except Exception:  # the connection went away: the endpoint sees it on receive and cleans up
                self.counters["ws_send_failures"] += 1
            else:
                for recv_ns in stamps:
                    if recv_ns:  # 0 = made here, not from the feed
                        done[recv_ns] = done.get(recv_ns, 0) + 1
            if n % _TIMED_EVERY == 0:
                self._record_done(done)
        self._record_done(done)

    def _record_done(self, done: dict[int, int]) -> None:
        now_ns = time.perf_counter_ns()
        for recv_ns, count in done.items():
            self.record(now_ns - recv_ns, count)
        done.clear()

    def record(self, elapsed_ns: int, count: int = 1) -> None:
        """``count`` feed -> WebSocket send samples of ``elapsed_ns``."""
        if count == 1:
            self._latency.record(elapsed_ns)
        else:
            self._latency.record_count(elapsed_ns, count)

    @property
    def latency(self) -> HdrHistogram:
        """Every feed -> WebSocket send sample so far (folded in when read)."""
        return self._latency.fold()

    def latency_summary(self) -> dict[str, float]:
        """feed -> WebSocket send percentiles in µs (one numpy pass) and the mean."""
        out = self._latency.summary()
        if out["count"]:
            out["mean_us"] = self._latency.total_ns / out["count"] / 1000.0
        return out

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
