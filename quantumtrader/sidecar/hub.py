"""WebSocket fan-out: one feed message in, one text frame out to every interested client.

Price updates are throttled once, here, per symbol (the classic throttle): a
tick of a symbol that has been quiet for ``1/max_updates_per_s`` goes out at
once (leading edge); otherwise it becomes the symbol's pending update,
replaced by any newer tick, and the pending one goes out when the interval is
up (trailing edge). So a busy symbol sends its latest quote every interval,
never older than the gap between two of its ticks, and a symbol that goes
quiet still delivers its last quote. (Holding the trailing send back in the
hope of a fresher tick was measured worse: every miss costs the whole wait.)
Then each client has its own bounded queue, read by its own sender task:

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
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from hdrh.histogram import HdrHistogram

from quantumtrader.metrics import PERCENTILES
from quantumtrader.sidecar.frames import FrameCache

#: Sends several text frames to one client; the writer may coalesce them into one socket write.
SendMany = Callable[[list[str]], Awaitable[None]]
#: Writes one message at once without waiting, or answers False (the socket is busy or paused): the fast lane.
WriteNow = Callable[[str], bool]

#: Close code for a client that fell too far behind (RFC 6455 registry: "Try Again Later").
CLOSE_TOO_SLOW = 1013


class Client:
    """One WebSocket connection's queues and sender task."""

    __slots__ = ("send", "write_now", "sending", "symbols", "fifo", "prices", "health_text", "wake", "closed", "queue_size", "hub", "task", "sent", "too_slow")

    def __init__(self, hub: Hub, send: SendMany, queue_size: int, write_now: WriteNow | None = None) -> None:
        self.hub = hub
        self.send = send
        self.write_now = write_now
        self.sending = False  # the pump has a batch in flight: nothing may overtake it
        self.symbols: set[str] | None = None  # None = every symbol (nothing subscribed yet)
        self.fifo: deque[tuple[str, int]] = deque()
        self.prices: dict[str, tuple[str, int]] = {}
        self.health_text: str | None = None
        self.wake = asyncio.Event()
        self.closed = asyncio.Event()
        self.queue_size = queue_size
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.too_slow = False

    def offer_price(self, symbol: str, text: str, recv_ns: int) -> None:
        # The fast lane: a client with nothing queued or in flight gets the quote written now,
        # in the fan-out's own pass, instead of waking its task (a task switch per client per
        # quote was most of a fan-out's time at 500 clients, and the last client waited for all).
        write_now = self.write_now
        if write_now is not None and not (self.sending or self.fifo or self.prices or self.health_text) and write_now(text):
            self._record(time.monotonic_ns() - recv_ns)
            self.sent += 1
            self.hub.counters["ws_prices_direct"] += 1
            return
        if symbol in self.prices:
            self.hub.counters["ws_prices_conflated"] += 1
        self.prices[symbol] = (text, recv_ns)
        self.wake.set()

    def offer(self, text: str, recv_ns: int) -> None:
        if len(self.fifo) >= self.queue_size:
            self.hub.drop_slow(self)
            return
        self.fifo.append((text, recv_ns))
        self.wake.set()

    def offer_health(self, text: str) -> None:
        self.health_text = text
        self.wake.set()

    def _record(self, elapsed_ns: int) -> None:
        hub = self.hub
        value = min(max(elapsed_ns, 1), 60_000_000_000)
        hub.latency.record_value(value)
        hub.latency_sum_ns += value

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
                done_ns = time.monotonic_ns()
                for _, recv_ns in batch:
                    if recv_ns:  # 0 = made here (replies, a subscribe's current quote), not from the feed
                        self._record(done_ns - recv_ns)
                self.sent += len(batch)
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
        self._pending: dict[str, tuple[str, int]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.counters: Counter[str] = Counter()
        self.frames = FrameCache(counters=self.counters)  # each fan-out's frames, built once for every client that can share them
        self.latency = HdrHistogram(1, 60_000_000_000, 3)  # feed receive -> WebSocket send, ns
        self.latency_sum_ns = 0  # for the mean: HdrHistogram.get_mean_value walks every bucket (~50 ms)

    # -- clients -------------------------------------------------------------------

    def full(self) -> bool:
        return len(self.clients) >= self.max_clients

    def add(self, send: SendMany, write_now: WriteNow | None = None) -> Client:
        client = Client(self, send, self.queue_size, write_now)
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
        if symbol in self._timers:  # a trailing send is due: this tick replaces its quote
            if symbol in self._pending:
                self.counters["ws_prices_throttled"] += 1
            self._pending[symbol] = (text, recv_ns)
            return
        now = self._clock()
        next_at = self._next_at.get(symbol, 0.0)
        if now >= next_at:
            self._next_at[symbol] = now + self.interval_s
            self._fan_out_price(symbol, text, recv_ns)
            return
        self._pending[symbol] = (text, recv_ns)
        self._timers[symbol] = asyncio.get_running_loop().call_later(next_at - now, self._flush, symbol)

    def _flush(self, symbol: str) -> None:
        del self._timers[symbol]
        pending = self._pending.pop(symbol, None)
        if pending is None:
            return
        self._next_at[symbol] = self._clock() + self.interval_s
        self._fan_out_price(symbol, *pending)

    def _fan_out_price(self, symbol: str, text: str, recv_ns: int) -> None:
        self.counters["ws_price_fanouts"] += 1
        for client in self._everything:
            client.offer_price(symbol, text, recv_ns)
        for client in self._by_symbol.get(symbol, ()):
            client.offer_price(symbol, text, recv_ns)

    def reliable(self, symbol: str | None, text: str, recv_ns: int) -> None:
        targets: list[Client]
        if symbol is None:
            targets = list(self.clients)
        else:
            targets = [*self._everything, *self._by_symbol.get(symbol, ())]
        for client in targets:
            client.offer(text, recv_ns)

    def health(self, text: str) -> None:
        for client in self.clients:
            client.offer_health(text)

    def latency_summary(self) -> dict[str, float]:
        """feed -> WebSocket send percentiles in µs, in one pass over the histogram (a few ms, not 50)."""
        hist = self.latency
        count = hist.get_total_count()
        out: dict[str, float] = {"count": float(count)}
        if count:
            for pct, value in hist.get_percentile_to_value_dict(list(PERCENTILES)).items():
                out[f"p{pct:g}_us"] = value / 1000.0
            out["max_us"] = hist.get_max_value() / 1000.0
            out["mean_us"] = self.latency_sum_ns / count / 1000.0
        return out

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
