"""The sidecar's clone of the daemon's state: snapshot + feed updates (the guide's clone pattern).

The feed SUB is connected first; then a control ``snapshot`` gives quotes,
positions and accounts valid at feed ``seq`` S; updates with seq <= S are
already in it, later ones are applied on top. Every feed message carries the
next seq, so a gap (the SUB's high-water mark overflowed) or a seq that goes
backwards (the daemon restarted) is seen at once and healed with a fresh
snapshot; the positions that changed meanwhile are pushed to WebSocket clients
as ``position_update`` messages, so they heal too. Either process can restart.

The SUB takes every topic, ``features.*`` included, because a seq gap can only
be told from a filtered-out message if nothing is filtered out; features are
kept as raw bytes (seq read from the tail without parsing), so they cost next
to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import orjson
import zmq
import zmq.asyncio

from quantumtrader.log import get_logger
from quantumtrader.protocol import iso_from_msc, now_msc, sidecar_envelope
from quantumtrader.sidecar.control import AsyncControl, ControlTimeout
from quantumtrader.sidecar.symbols import AppSymbols

log = get_logger("quantumtrader.sidecar.state")

_DRAIN_MAX = 1024  # messages handled per wake-up before yielding to HTTP and WebSocket work
_SNAPSHOT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_REPLAY_MAX = 50_000  # feed updates kept while a snapshot is in flight
#: How long the clone keeps a position a snapshot left out because its terminal's book was not known to the daemon
#: yet (a daemon just restarted, before the terminal's next heartbeat and positions): then told closed.
CARRY_S = 60.0


class Sink(Protocol):
    """Where live feed messages go (the WebSocket hub)."""

    def price(self, symbol: str, text: str, recv_ns: int) -> None: ...

    def reliable(self, symbol: str | None, text: str, recv_ns: int) -> None: ...

    def health(self, text: str) -> None: ...


def seq_of(raw: bytes) -> int | None:
    """The envelope's ``seq`` without parsing it: the daemon writes it last (``...,"seq":N}``)."""
    at = raw.rfind(b'"seq":')
    if at < 0:
        return None
    end = raw.find(b"}", at)
    try:
        return int(raw[at + 6 : end])
    except ValueError:
        return None


def envelope(kind: str, data: dict[str, Any]) -> str:
    """A message in the feed's envelope shape made by the sidecar itself (healing, replies)."""
    return orjson.dumps({"type": kind, "data": data, "timestamp": iso_from_msc(now_msc())}).decode()


class Clone:
    """Latest quotes, positions, accounts, features, recent signals and the daemon's health."""

    def __init__(
        self,
        endpoint: str,
        context: zmq.asyncio.Context,
        control: AsyncControl,
        sink: Sink,
        *,
        hwm: int,
        recent_signals: int,
        silence_s: float,
        names: AppSymbols | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._context = context
        self._control = control
        self._sink = sink
        self._hwm = hwm
        self._silence_s = silence_s
        self._clock = clock
        self.names = names or AppSymbols("")  # everything below is kept under the apps' names
        self.quotes: dict[str, dict[str, Any]] = {}
        # Every terminal's latest quote of each symbol: a position is priced by its own broker's quote.
        self.terminal_quotes: dict[tuple[str, str], dict[str, Any]] = {}
        self.positions: dict[tuple[str, str], dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self._listed_terminals: set[Any] = set()  # the terminals the last health listed (what the clone keeps)
        # Positions a snapshot did not have because the daemon did not know their terminal's book yet, by terminal,
        # kept until it does (then those it does not list are closed) or CARRY_S: see apply_snapshot.
        self._carried: dict[str, set[tuple[str, str]]] = {}
        self._carried_at: dict[str, float] = {}  # per terminal: when its positions were first carried
        self.features: dict[str, bytes] = {}
        self.signals: deque[dict[str, Any]] = deque(maxlen=recent_signals)
        self.daemon_health: dict[str, Any] = {}
        self.terminals: list[dict[str, Any]] = []
        self.last_seq: int | None = None
        self.snapshot_seq: int | None = None
        self.last_message_at = float("-inf")
        self._health_seq: int | None = None  # feed seq of the health held (a snapshot's older copy must not replace it)
        self.counters: Counter[str] = Counter()
        self._snapshot_wanted = asyncio.Event()
        self._resync_on_message = False
        self._replay: list[tuple[int, str, dict[str, Any]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: zmq.asyncio.Socket | None = None
        self.synced = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        sock = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, self._hwm)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.endpoint)
        self._socket = sock
        self._snapshot_wanted.set()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_feed(sock), name="feed"), loop.create_task(self._snapshots(), name="snapshots")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._socket is not None:
            self._socket.close(linger=0)

    def daemon_alive(self) -> bool:
        return self._clock() - self.last_message_at < self._silence_s

    def unreachable_health(self) -> str:
        """The health envelope WebSocket clients get from the sidecar while the daemon is silent, shaped as the
        daemon's (``status`` "unreachable", as ``/api/health`` says then). The daemon's own stop coming, and a
        client kept showing the last one, "healthy", for as long as the daemon was down (a hunt, 2026-12-05)."""
        data = {"status": "unreachable", "reachable": False, "uptime": None, "problems": [self.unreachable_problem()]}
        return sidecar_envelope("health", data, now_msc()).decode()

    def unreachable_problem(self) -> str:
        """Why the daemon counts as unreachable: how long it has been silent."""
        silent = self._clock() - self.last_message_at
        return f"no message from the daemon for {silent:.0f} s" if silent != float("inf") else "no message from the daemon yet"

    # -- feed ------------------------------------------------------------------------

    async def _read_feed(self, sock: zmq.asyncio.Socket) -> None:
        # Wait with the asyncio socket; drain with a plain one sharing it, and only while a whole
        # message is there (EVENTS), so the drain never ends in zmq.Again. Through the asyncio
        # socket every non-blocking recv made a Future, and the last one of each drain held the
        # Again with its traceback: a reference cycle per wake-up, ~50,000 objects of garbage every
        # few seconds at 2,000 ticks/s, whose collection stopped the loop for 25-40 ms.
        drain = zmq.Socket.shadow(sock.underlying)
        while True:
            # Wait with a timeout so a silent daemon is noticed (it publishes health every second).
            if not await sock.poll(int(self._silence_s * 1000)):
                if not self.daemon_alive():
                    if self.last_seq is not None:
                        log.warning("daemon silent; will resync when it is back", silent_s=self._silence_s)
                        self.last_seq = None
                        self._resync_on_message = True  # whatever it missed meanwhile, a new snapshot has
                        self.synced.clear()
                    self._sink.health(self.unreachable_health())  # again each silence_s while it lasts
                continue
            for _ in range(_DRAIN_MAX):
                if not drain.get(zmq.EVENTS) & zmq.POLLIN:
                    break
                self.handle(drain.recv_multipart(zmq.NOBLOCK), time.perf_counter_ns())
            await asyncio.sleep(0)  # let HTTP and WebSocket tasks run between batches

    def handle(self, frames: list[bytes], recv_ns: int) -> None:
        """One feed message: check the seq, update the clone, pass it on to the hub."""
        try:
            self._handle(frames, recv_ns)
        except Exception as exc:  # one bad message must cost a counter, never the reader
            self.counters["feed_rejects"] += 1
            self.counters[f"feed_reject_{type(exc).__name__}"] += 1

    def _handle(self, frames: list[bytes], recv_ns: int) -> None:
        if len(frames) != 2:
            self.counters["feed_rejects"] += 1
            return
        topic_b, raw = frames
        self.last_message_at = self._clock()
        self.counters["feed_messages"] += 1
        if self._resync_on_message:
            self._resync_on_message = False
            self._snapshot_wanted.set()
        seq = seq_of(raw)
        if seq is not None:
            self._check_seq(seq)
        kind, _, symbol = topic_b.decode("utf-8", "replace").partition(".")
        names = self.names
        if kind == "features":
            self.features[names.to_app(symbol)] = raw
            return
        env = orjson.loads(raw)
        data = env.get("data") if isinstance(env, dict) else None
        if not isinstance(data, dict):
            self.counters["feed_rejects"] += 1
            return
        # sidecar.symbol_suffix: the apps get (and the clone keeps) their names, not the broker's. data() learns
        # the data's symbol, which is the topic's: renamed, the topic's symbol is the renamed data's.
        renamed = names.active and (named := names.data(data, learn=True)) is not data
        if renamed:
            env["data"] = data = named
            if symbol:
                symbol = data["symbol"]
        if kind == "price":
            self._remember(seq, kind, data)
            if not self._set_quote(symbol, data):
                return  # another broker's price of it prices that terminal's positions only: no text for the clients
        text = orjson.dumps(env).decode() if renamed else raw.decode()
        if kind == "price":
            self._sink.price(symbol, text, recv_ns)
        elif kind == "signal":
            self.signals.appendleft(data)
            self._sink.reliable(symbol, text, recv_ns)
        elif kind == "position":
            told = self._apply_position(data)
            self._remember(seq, kind, data)
            if told is None:
                self.counters["positions_closed_again"] += 1
                return
            if told != data.get("status"):
                text = orjson.dumps({**env, "data": {**data, "status": told}}).decode()
            self._sink.reliable(None, text, recv_ns)
        elif kind == "account":
            self.accounts[str(data.get("terminal", ""))] = data
            self._remember(seq, kind, data)
            self._sink.reliable(None, text, recv_ns)
        elif kind == "trade":
            self._sink.reliable(None, text, recv_ns)
        elif kind == "health":
            self._take_health(data, seq)
            self._sink.health(text)
        else:
            self.counters["feed_unknown_topic"] += 1

    def _carry_unconfirmed(self, before: dict[tuple[str, str], dict[str, Any]], snap: dict[str, Any]) -> None:
        """Keep the positions the snapshot lacks only because the daemon has no book of their terminal yet.

        A restarted daemon knows a terminal's positions from its first positions event, up to a heartbeat after
        it starts; a snapshot taken sooner has none, and the clients were told every position closed, then
        opened again seconds later: to a trader, positions that vanished. The snapshot says whose books the
        daemon has (``positions_known``, as its health does per terminal); a daemon that does not say is taken at
        its word, as before."""
        listed = snap.get("positions_known")
        if not isinstance(listed, list):
            return
        known = set(listed)
        carried = 0
        now = self._clock()
        for key, pos in before.items():
            if key not in self.positions and key[0] not in known:
                self.positions[key] = pos
                self._carried.setdefault(key[0], set()).add(key)
                self._carried_at.setdefault(key[0], now)  # a later heal does not start its CARRY_S again
                carried += 1
        if carried:
            log.info("positions kept until their terminal reports to the daemon", positions=carried, terminals=len(self._carried))

    def _settle_carried(self, terminals: list[Any], notify: bool) -> None:
        """Close the carried positions of each terminal whose book the daemon now has (it did not list them), and
        all of them after CARRY_S: a terminal that never came back. ``notify`` False inside a snapshot, whose own
        healing tells the clients."""
        now = self._clock()
        known = {t.get("terminal") for t in terminals if isinstance(t, dict) and t.get("positions_known") is True}
        now_ns = time.perf_counter_ns()
        for terminal in [t for t in self._carried if t in known or now - self._carried_at[t] > CARRY_S]:
            self._carried_at.pop(terminal, None)
            for key in self._carried.pop(terminal):
                pos = self.positions.pop(key, None)
                if pos is not None and notify:
                    self._tell_closed(pos, now_ns)

    def _take_health(self, data: dict[str, Any], seq: int | None, notify: bool = True) -> None:
        """The daemon's health (from the feed, or a snapshot's: ``notify`` False), and the terminals it lists."""
        self.daemon_health = data
        self._health_seq = seq
        terminals = data.get("terminals")
        if isinstance(terminals, list):
            self.terminals = terminals
            if self._carried and not (notify and self._snapshot_wanted.is_set()):  # a heal is coming: it settles them
                self._settle_carried(terminals, notify)
            # The daemon lists every terminal it keeps; one it forgot to make room (daemon.max_terminals) holds no
            # position, and its account and quotes go here too, or ids that come and go would grow them for good.
            kept = {t.get("terminal") for t in terminals if isinstance(t, dict)}
            if kept != self._listed_terminals:  # most health messages list the same terminals: nothing to scan
                self._listed_terminals = kept
                for name in [name for name in self.accounts if name not in kept]:
                    del self.accounts[name]
                for key in [key for key in self.terminal_quotes if key[0] not in kept]:
                    del self.terminal_quotes[key]

    def default_account(self) -> dict[str, Any] | None:
        """The account ``/api/account`` gives when no terminal is named: a connected terminal's before any other,
        then by terminal id. The first id in order alone gave a terminal closed hours ago (its last account kept,
        as it is listed while retired) over the one trading now."""
        if not self.accounts:
            return None
        connected = {t.get("terminal") for t in self.terminals if isinstance(t, dict) and t.get("connected") is True}
        return self.accounts[min(self.accounts, key=lambda name: (name not in connected, name))]

    def _check_seq(self, seq: int) -> None:
        last = self.last_seq
        self.last_seq = seq
        if last is None:
            return
        if seq == last + 1:
            return
        if seq <= last:
            self.counters["feed_resets"] += 1  # a new daemon process counts from 1 again
            self._health_seq = None  # the old process's seqs say nothing of the new one's snapshot
            log.info("feed seq went back: daemon restarted; taking a fresh snapshot", seq=seq, last=last)
        else:
            self.counters["feed_gaps"] += 1
            self.counters["feed_lost"] += seq - last - 1
        self._snapshot_wanted.set()

    def _apply_position(self, data: dict[str, Any]) -> str | None:
        """Apply a position update; returns the status the clients are to be told: None for the close of one the
        clone does not hold (the clients were told already: a carried position let go after CARRY_S whose terminal
        then reported it closed while the daemon was down), "opened" for an update of one it does not hold."""
        key = (str(data.get("terminal", "")), str(data.get("ticket", "")))
        carried = self._carried.get(key[0])
        if carried is not None:
            carried.discard(key)  # the daemon has it again: no longer the clone's guess
        held = key in self.positions
        status = data.get("status")
        if status == "closed":
            self.positions.pop(key, None)
            return status if held else None
        self.positions[key] = {k: v for k, v in data.items() if k != "status"}
        return "opened" if status == "updated" and not held else status

    def _set_quote(self, symbol: str, data: dict[str, Any]) -> bool:
        """A price update: its terminal's latest quote (which prices that terminal's positions), and the symbol's
        when that terminal owns its series (``owner``; a daemon that does not say is taken at its word). Returns
        whether it is the symbol's: only those go to the WebSocket clients. Two brokers streaming EURUSD 1-2 pips
        apart made the app's quote flip between them 22 times in 6 s (a hunt, 2026-12-05)."""
        self.terminal_quotes[(str(data.get("terminal", "")), symbol)] = data
        if data.get("owner") is False:
            return False
        self.quotes[symbol] = data
        return True

    def _remember(self, seq: int | None, kind: str, data: dict[str, Any]) -> None:
        replay = self._replay
        if replay is not None and seq is not None:
            if len(replay) < _REPLAY_MAX:
                replay.append((seq, kind, data))
            else:
                self._replay = None  # too much happened meanwhile: take another snapshot
                self._snapshot_wanted.set()

    # -- snapshots -----------------------------------------------------------------------

    async def _snapshots(self) -> None:
        failures = 0
        while True:
            await self._snapshot_wanted.wait()
            self._snapshot_wanted.clear()
            self._replay = []
            try:
                reply = await self._control.request("snapshot", retries=0)
            except ControlTimeout:
                reply = None
            if reply is None or not reply.get("ok"):
                self._replay = None
                delay = _SNAPSHOT_BACKOFF_S[min(failures, len(_SNAPSHOT_BACKOFF_S) - 1)]
                failures += 1
                self.counters["snapshot_failures"] += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("no snapshot from the daemon yet; retrying", endpoint=self._control.endpoint, failures=failures)
                await asyncio.sleep(delay)
                self._snapshot_wanted.set()
                continue
            failures = 0
            if self._replay is None:
                # More than _REPLAY_MAX updates came while it was in flight and were not kept: applying it
                # would lose them (and tell clients that positions opened since are closed). Another is wanted.
                self.counters["snapshots_discarded"] += 1
                continue
            self.apply_snapshot(reply)

    def apply_snapshot(self, snap: dict[str, Any]) -> None:
        """Replace quotes, positions and accounts; replay newer updates; tell clients what changed."""
        seq = int(snap.get("feed_seq", 0))
        replay = self._replay or []
        self._replay = None
        before = self.positions
        named = partial(self.names.data, learn=True)  # the daemon's state of now: its names teach the mapping
        quotes = {q["symbol"]: q for q in (named(q) for q in snap.get("quotes", []) if isinstance(q, dict)) if "symbol" in q}
        self.quotes = quotes
        self.terminal_quotes = {
            (str(q.get("terminal", "")), str(q["symbol"])): q
            for q in (named(q) for q in snap.get("terminal_quotes", []) if isinstance(q, dict))
            if "symbol" in q
        }
        self.positions = {(str(p.get("terminal", "")), str(p.get("ticket", ""))): named(p) for p in snap.get("positions", []) if isinstance(p, dict)}
        self.accounts = {str(a.get("terminal", "")): a for a in snap.get("accounts", []) if isinstance(a, dict)}
        self._listed_terminals = set()  # accounts and quotes replaced: the next health prunes them whatever it lists
        if isinstance(snap.get("terminals"), list):
            self.terminals = snap["terminals"]
        health = snap.get("health")
        for keys in self._carried.values():
            keys.difference_update(self.positions)  # the daemon has these again: no longer the clone's guess
        self._carry_unconfirmed(before, snap)
        if isinstance(health, dict):  # the daemon's own word, as of this reply: it is alive
            self.last_message_at = max(self.last_message_at, self._clock())
            if self._health_seq is None or self._health_seq <= seq:  # not over a newer one the feed brought meanwhile
                self._take_health(health, seq, notify=False)
        for msg_seq, kind, data in replay:
            if msg_seq <= seq:
                continue  # the snapshot already holds it
            if kind == "price":
                self._set_quote(str(data.get("symbol")), data)
            elif kind == "position":
                self._apply_position(data)
            elif kind == "account":
                self.accounts[str(data.get("terminal", ""))] = data
        first = self.snapshot_seq is None
        self.snapshot_seq = seq
        self.counters["snapshots"] += 1
        self.synced.set()
        log.info("snapshot applied", feed_seq=seq, quotes=len(self.quotes), positions=len(self.positions), accounts=len(self.accounts))
        if not first:
            self._heal_clients(before)

    def _tell_closed(self, pos: dict[str, Any], now_ns: int) -> None:
        """A ``position_update`` closed for clients: one the daemon's feed never sent (a heal, a carried one let go)."""
        self._sink.reliable(None, envelope("position_update", {**pos, "status": "closed"}), now_ns)

    def _heal_clients(self, before: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Send WebSocket clients the position and account changes a gap or restart hid from them."""
        now_ns = time.perf_counter_ns()
        for key, pos in before.items():
            if key not in self.positions:
                self._tell_closed(pos, now_ns)
        for key, pos in self.positions.items():
            old = before.get(key)
            if old != pos:
                status = "opened" if old is None else "updated"
                self._sink.reliable(None, envelope("position_update", {**pos, "status": status}), now_ns)
        for account in self.accounts.values():
            self._sink.reliable(None, envelope("account_update", account), now_ns)
