"""The daemon runtime: one thread, one poller, every socket it owns.

The loop (DESIGN.md, "The flow"): wait on the events PULL and the control
ROUTER with a timeout equal to the time left until the next monotonic
deadline (health, staleness, status line), after a batch first spinning for
up to ``busy_poll_us`` on the events socket alone; drain up to ``batch_max`` events
per wake-up without blocking; decode and validate each (rejects are counted,
never raised); handle every event in arrival order (a tick: market state and
its price update, published before the next event is decoded); then pass the
batch's ticks to features and signals together, so each kernel is called
once per batch.

Shutdown is ordered (uvicorn's shape): :meth:`Daemon.stop` only sets a flag
(safe from a signal handler), the loop finishes its pass, then sockets are
closed with a bounded linger so nothing hangs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
import zmq

from quantumtrader.config import Config
from quantumtrader.daemon.control import ControlError, ControlServer
from quantumtrader.daemon.feed import FeedPublisher
from quantumtrader.daemon.market import MarketState
from quantumtrader.daemon.terminals import TerminalRegistry
from quantumtrader.log import get_logger
from quantumtrader.metrics import LogLimiter, Metrics, RejectLog
from quantumtrader.priority import PriorityResult
from quantumtrader.protocol import (
    ProtocolError,
    app_account,
    app_position,
    decode_event,
    iso_from_msc,
    now_msc,
    price_update,
)
from quantumtrader.shutdown import stop_signal

log = get_logger("quantumtrader.daemon")

#: Longest the poller sleeps, so a stop request is honoured promptly even on a quiet market.
_MAX_POLL_MS = 200
#: A gap between two health passes longer than this (and than 3 health intervals) means the loop was frozen.
_FROZEN_S = 2.0
_HARD_MAX_FRAME_BYTES = 256 * 1024 * 1024
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
#: What a terminal not registered (no hello, nor a heartbeat with its fields) may not send: an id that never said hello
#: (a stray sender) had its positions counted against risk.max_open_positions, its account replace the app's and feed
#: the daily loss, and its positions keep its slot (a review, 2026-12-05). A real EA's come again after its heartbeat.
#: Not authentication: an id that sends a hello first is registered, whoever sent it.
_NEEDS_REGISTRATION = frozenset(("account", "positions"))
#: How long health names the latest terminal refused for want of a slot (too_many_terminals).
REFUSED_TERMINAL_SHOWN_S = 60.0
#: After a search for a terminal slot to free found none, the next search waits this long: a sender inventing ids
#: at the cap must not cost a scan of every session per event.
_ROOM_RETRY_S = 1.0
#: A terminal's "registered" and "said bye" lines: at most one each per this interval, the rest counted in the next
#: (a hunt, 2026-12-06: a sender repeating hello and bye wrote 7,500 lines in 3 s). A second so that a trader's
#: chart change (bye, then hello at once) still shows both lines, and a second one seconds later too.
_SESSION_LOG_INTERVAL_S = 1.0


def _registers(msg: dict[str, Any]) -> bool:
    """Whether a validated event registers its terminal: a hello, or a heartbeat that repeats the hello fields."""
    return msg["type"] == "hello" or (msg["type"] == "heartbeat" and "command_endpoint" in msg)


def _symbol_filter(value: Any, max_symbols: int) -> frozenset[str] | None:
    """A snapshot's ``symbols`` as a set, or None for all: a list of at most ``daemon.max_symbols`` strings, else a 400.

    A set, because the filter is tested once per quote on the loop's thread: a list of 100,000 names searched
    per quote (a 1 MB request; 4 MB are allowed) held every tick for 19 s."""
    if value is None:
        return None
    if type(value) is not list or len(value) > max_symbols or not all(type(s) is str for s in value):
        raise ControlError(f"symbols must be a list of at most {max_symbols} symbol names")
    return frozenset(value)



def usable_cpus(process: psutil.Process) -> int:
    """The CPUs this process may run on (its affinity: a VPS or a job object may allow fewer than the machine has)."""
    try:
        return len(process.cpu_affinity() or ()) or (psutil.cpu_count() or 1)
    except (AttributeError, psutil.Error, OSError):  # cpu_affinity() does not exist on macOS
        return psutil.cpu_count() or 1


def busy_poll_us(configured: int, cpus: int) -> int:
    """``daemon.busy_poll_us``, except 0 on one CPU: there the spin can never see a tick arrive, because ZeroMQ's
    I/O thread, which would deliver it, needs the very CPU the spin holds (at a raised priority on Windows,
    where the raise is always granted, it starves that thread, the store's writer and the terminals)."""
    if configured and cpus < 2:
        log.warning("busy polling off: this process may run on one CPU only", busy_poll_us=configured, cpus=cpus)
        return 0
    return configured

class Daemon:
    """The daemon process's runtime state. Build with a resolved :class:`Config`."""

    def __init__(self, config: Config, *, context: zmq.Context[Any] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._monotonic = monotonic
        self._context = context or zmq.Context.instance()
        self._stop = False
        self._started = monotonic()
        self._last_housekeeping = self._started
        dc = config.daemon
        self.metrics = Metrics()
        # bound once: the tick path records without a dict lookup per sample
        self._ea_to_receive = self.metrics.histograms["ea_to_receive"].record
        self._receive_to_publish = self.metrics.histograms["receive_to_publish"].record
        self.rejects = RejectLog(log.warning, dc.reject_log_interval_s, monotonic)
        self._internal_log = LogLimiter(dc.reject_log_interval_s, monotonic)
        self._session_log = LogLimiter(_SESSION_LOG_INTERVAL_S, monotonic)
        self.terminals = TerminalRegistry(dc.heartbeat_s, dc.stale_heartbeats)
        self.market = MarketState()
        self._quote = self.market.quote  # bound once, like the recorders above: called per tick
        self.counters = self.metrics.counters
        self.last_tick_msc = 0
        self.last_signal_msc = 0
        self._tick_hooks: list[Callable[[list[dict[str, Any]], int], None]] = []
        self._periodic_hooks: list[Callable[[float], None]] = []
        self._status_extra: list[Callable[[], dict[str, Any]]] = []
        self._health_problems: list[Callable[[], list[str]]] = []
        self._health_extra: list[Callable[[], dict[str, Any]]] = []
        self._watched: dict[zmq.Socket[bytes], Callable[[], None]] = {}
        self._event_hooks: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._terminal_keepers: list[Callable[[str], str | None]] = [self._keeps_positions]
        self._forget_hooks: list[Callable[[str], None]] = []
        self._room_search_after = 0.0  # monotonic: no terminal slot search before (one found none)
        self._refused_terminal: tuple[str, float, int] | None = None  # the latest id refused for want of a slot; when (monotonic, msc)
        # Every symbol the daemon keeps state of (quotes, features, models, saved): resumed from the saved state (the
        # signal stage adds those at start) or first ticked in this run; daemon.max_symbols caps it. A terminal that
        # outlived a restart ticks the resumed ones before its heartbeat registers it again: those ticks are used.
        self.symbols: set[str] = set()
        # Until then (monotonic; set when the loop starts) an unregistered terminal may add a symbol: one that
        # outlived a restart without saved state (a first start, a new data directory) ticks before its next
        # heartbeat registers it, and an ops check saw every price dark for ~5 s, 245 ticks refused.
        self._adopt_symbols_until = 0.0
        self.signal_hooks: list[Callable[[dict[str, Any]], None]] = []  # called with each signal after it is published
        self.pending_trades: Callable[[], int] = lambda: 0  # orders sent and not answered (the execution engine sets it)
        self._deadlines: list[Callable[[], float]] = []
        self._sockets_open = False
        self._process = psutil.Process()
        self.tick_priority = PriorityResult("normal", True, "not set: the loop runs at the priority it was started with")

    # -- lifecycle -------------------------------------------------------------

    def bind(self) -> None:
        """Bind the events, feed and control sockets. Raises zmq.ZMQError if a port is taken."""
        dc = self.config.daemon
        eps = self.config.endpoints
        ctx = self._context
        self.events = ctx.socket(zmq.PULL)
        self.events.setsockopt(zmq.RCVHWM, dc.events_hwm)
        # Hard cap against memory exhaustion. Above it libzmq drops the sender's
        # connection, so it sits far above max_message_bytes, which is the limit
        # that is counted (too_large) without disturbing the sender.
        self.events.setsockopt(zmq.MAXMSGSIZE, _HARD_MAX_FRAME_BYTES)
        self.feed_socket = ctx.socket(zmq.PUB)
        self.feed_socket.setsockopt(zmq.SNDHWM, dc.feed_hwm)
        self.control_socket = ctx.socket(zmq.ROUTER)
        for sock in (self.events, self.feed_socket, self.control_socket):
            sock.setsockopt(zmq.LINGER, dc.linger_ms)
        try:
            self.events.bind(eps.events)
            self.feed_socket.bind(eps.feed)
            self.control_socket.bind(eps.control)
        except zmq.ZMQError:
            self.close()
            raise
        self._sockets_open = True
        self.feed = FeedPublisher(self.feed_socket)
        self._publish = self.feed.publish
        self.control = ControlServer(self.control_socket, self.rejects, dc.max_message_bytes, log, self._internal_log)
        self.control.register("status", self.control_status)
        self.control.register("snapshot", self.control_snapshot)
        self.control.register("specs", self.control_specs)
        self.control.register("stop", self.control_stop)
        # The daemon's own problems through the same mechanism as the subsystems', the terminals' first.
        self.health_problems(self._terminal_problems)
        self.health_problems(self._clock_problems)
        self._spin_items = [(self.events, _POLLIN)]  # for the busy poll, built once
        self.poller = zmq.Poller()  # registered once; the loop reuses it
        self.poller.register(self.events, zmq.POLLIN)
        self.poller.register(self.control_socket, zmq.POLLIN)

    def stop(self) -> None:
        """Ask the loop to finish. Safe to call from a signal handler or another thread."""
        self._stop = True

    def close(self) -> None:
        for name in ("events", "feed_socket", "control_socket"):
            sock = getattr(self, name, None)
            if sock is not None and not sock.closed:
                sock.close(linger=self.config.daemon.linger_ms)
        self._sockets_open = False

    # -- extension points (signals, execution, supervisor) ---------------------

    def on_ticks(self, hook: Callable[[list[dict[str, Any]], int], None]) -> None:
        """``hook(ticks, received_ns)`` after quotes are updated and prices published."""
        self._tick_hooks.append(hook)

    def every_pass(self, hook: Callable[[float], None]) -> None:
        """``hook(now)`` on every loop pass with the monotonic time; must not block."""
        self._periodic_hooks.append(hook)

    def status_fields(self, provider: Callable[[], dict[str, Any]]) -> None:
        self._status_extra.append(provider)

    def health_problems(self, provider: Callable[[], list[str]]) -> None:
        """``provider()`` -> what is wrong now (empty: nothing); any makes health degraded and is listed in it."""
        self._health_problems.append(provider)

    def health_fields(self, provider: Callable[[], dict[str, Any]]) -> None:
        """``provider()`` -> fields added to health (a subsystem's state the apps show), read each time health is built."""
        self._health_extra.append(provider)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """``hook()`` when the loop ends, in reverse order of registration, before sockets close."""
        self._shutdown_hooks.append(hook)

    def on_event(self, kind: str, hook: Callable[[dict[str, Any]], None]) -> None:
        """``hook(msg)`` after the daemon handled a validated hello/account/positions/heartbeat/bye."""
        self._event_hooks.setdefault(kind, []).append(hook)

    def keeps_terminal(self, provider: Callable[[str], str | None]) -> None:
        """``provider(terminal)`` -> why that terminal's session must be kept (None: the subsystem holds nothing of it).

        Asked only when every ``daemon.max_terminals`` slot is taken and a new id comes (:meth:`make_room`)."""
        self._terminal_keepers.append(provider)

    def on_terminal_forgotten(self, hook: Callable[[str], None]) -> None:
        """``hook(terminal)`` after ``terminal``'s session was forgotten to make room: drop what is kept of it."""
        self._forget_hooks.append(hook)

    def watch(self, socket: zmq.Socket[bytes], on_readable: Callable[[], None]) -> None:
        """Poll ``socket`` in the loop's poller; call ``on_readable()`` when it has input."""
        self._watched[socket] = on_readable
        self.poller.register(socket, zmq.POLLIN)

    def unwatch(self, socket: zmq.Socket[bytes]) -> None:
        if self._watched.pop(socket, None) is not None:
            self.poller.unregister(socket)

    def next_deadline(self, provider: Callable[[], float]) -> None:
        """``provider()`` -> the monotonic time something needs the loop awake (inf for never)."""
        self._deadlines.append(provider)

    # -- the loop --------------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`stop`. Binds first if needed; closes sockets at the end."""
        if not self._sockets_open:
            self.bind()
        dc = self.config.daemon
        now = self._monotonic()
        next_health = now
        next_status = now + dc.status_interval_s if dc.status_interval_s > 0 else float("inf")
        status_ticks = 0
        status_at = now
        spin_ns = busy_poll_us(dc.busy_poll_us, usable_cpus(self._process)) * 1000
        spin_until = 0
        self._last_housekeeping = now  # the kernels' warm-up since __init__ was no freeze
        self._adopt_symbols_until = now + 2 * dc.heartbeat_s  # two default heartbeats: every live EA has sent one
        log.info(
            "daemon serving",
            events=self.config.endpoints.events,
            feed=self.config.endpoints.feed,
            control=self.config.endpoints.control,
        )
        try:
            while not self._stop:
                now = self._monotonic()
                wake = min(next_health, next_status, *(provider() for provider in self._deadlines))
                wait_ms = int(min(_MAX_POLL_MS, max(0.0, (wake - now) * 1000 + 0.999)))  # clamped before int(): a deadline may be inf
                if spin_until and wait_ms:
                    if self._busy_poll(spin_until):
                        wait_ms = 0  # an event is waiting: the poll below returns at once
                    else:
                        spin_until = 0  # spun out: sleep in the poller until the next batch
                ready = dict(self.poller.poll(wait_ms))
                if self.events in ready:
                    self.drain_events()
                    spin_until = time.perf_counter_ns() + spin_ns if spin_ns else 0
                if self.control_socket in ready:
                    self._guarded("control", self.control.drain)
                for sock in ready:
                    callback = self._watched.get(sock)  # None for our own sockets, or one unwatched meanwhile
                    if callback is not None:
                        self._guarded("watched socket", callback)
                now = self._monotonic()
                for hook in self._periodic_hooks:
                    try:  # inline, not _guarded: free until something raises, and this runs every pass
                        hook(now)
                    except Exception as exc:
                        self.internal_error("periodic work", exc)
                if now >= next_health:
                    next_health = now + dc.health_interval_s
                    self._guarded("housekeeping", self._housekeeping, now)
                if now >= next_status:
                    ticks = self.counters["ticks"]
                    self._guarded("status", self._log_status, ticks - status_ticks, now - status_at)
                    status_ticks, status_at = ticks, now
                    next_status = now + dc.status_interval_s
        finally:
            log.info("daemon stopping", ticks=self.counters["ticks"], rejects=self.rejects.total, signal=stop_signal())
            for hook in reversed(self._shutdown_hooks):
                try:
                    hook()
                except Exception:
                    log.exception("shutdown hook failed")
            self.close()

    def _busy_poll(self, until_ns: int) -> bool:
        """Ask the events socket for input without sleeping until ``until_ns``; True as soon as it has some.

        Busy polling (``daemon.busy_poll_us``): a thread that blocks between
        ticks 100 µs apart wakes to caches that other work (on a VM, another
        guest on the same core) has taken, and pays for it in every step of
        the next tick. Spinning keeps the core and its caches. It costs CPU
        only after a batch, so an idle daemon sleeps as before; control and
        watched sockets wait at most this long, as does a stop request.
        """
        # zmq_poll, not a ZMQ_EVENTS read: it lets go of the GIL while it
        # looks (a spin of ZMQ_EVENTS reads left the store's writer thread
        # 1 % of its insert rate), at the same ~2 µs a try. perf_counter, not
        # monotonic: before Python 3.13 Windows' monotonic moves in ~15.6 ms
        # steps, which would turn a 200 µs spin into up to 15.6 ms.
        items = self._spin_items
        clock = time.perf_counter_ns
        while clock() < until_ns:
            if zmq.zmq_poll(items, 0):
                return True
        return False

    def drain_events(self) -> int:
        """Receive, validate and process up to ``batch_max`` waiting events. Returns how many."""
        dc = self.config.daemon
        received_ns = time.perf_counter_ns()
        clock_msc = now_msc()
        mono = self._monotonic()
        recv = self.events.recv
        pending = self.events.get
        quote = self.quote_tick
        sessions = self.terminals.sessions
        max_terminals = dc.max_terminals
        quotes = self.market.quotes  # one per symbol ever ticked (the first terminal to tick one owns it)
        max_symbols = dc.max_symbols
        kept_symbols = self.symbols
        owned: list[dict[str, Any]] = []  # ticks of the terminals that own their symbols: the features' input
        last_tick: dict[str, Any] | None = None
        n_ticks = count = 0
        for i in range(dc.batch_max):
            # Most wake-ups at 10,000 ticks/s bring one event. Asking ZMQ_EVENTS
            # whether a second waits (~1.2 µs) is cheaper than the zmq.Again
            # that an empty recv raises (~3 µs, exception object included),
            # and that time sits between a tick's price and its signal.
            if i == 1 and not pending(_EVENTS) & _POLLIN:
                break
            try:
                raw = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            count += 1
            try:
                msg = decode_event(raw, clock_msc, max_bytes=dc.max_message_bytes, max_skew_ms=dc.max_clock_skew_ms)
            except ProtocolError as exc:
                self.rejects.reject("events", exc.reason, exc.detail)
                if exc.sender is not None:  # received, so not lost: its seq is accounted (ProtocolError)
                    self.terminals.refused(*exc.sender)
                continue
            except Exception as exc:  # a validation bug must cost one message, not the daemon
                self.rejects.reject("events", "internal_error", repr(exc)[:200])
                continue
            # Each id costs a session and, once it says hello, a command socket (1,023 at most per process):
            # past the cap a new id is refused unless its event registers it and a slot can be freed (make_room).
            # Under it this is one length check per event.
            if len(sessions) >= max_terminals and msg["terminal"] not in sessions:
                wants_in = _registers(msg)
                if not (wants_in and self.make_room(msg["terminal"], mono)):
                    self.rejects.reject("events", "too_many_terminals", msg["terminal"])
                    if wants_in:  # a terminal that wanted in, which health tells of (not a stray sender's every event)
                        self._refused_terminal = (msg["terminal"], mono, clock_msc)
                    continue
            kind = msg["type"]
            try:  # free in CPython 3.11+ until something raises; a per-event function call would not be
                if kind == "hello":
                    self.handle_hello(msg, mono, clock_msc)
                else:
                    session, known = self.terminals.seen(msg["terminal"], msg["seq"], mono, clock_msc)
                    if not known:  # once per terminal: seen() creates the session
                        self.rejects.reject("events", "unknown_terminal", msg["terminal"])
                    if kind == "tick":
                        if session.gone:  # said bye: its ticks are not the market's (never checked for silence again,
                            self.counters["ticks_after_bye"] += 1  # it kept a symbol it took back for good) until a hello or heartbeat
                            continue
                        symbol = msg["symbol"]
                        if symbol not in quotes and symbol not in kept_symbols:  # a new symbol is state for good
                            if not session.registered and mono >= self._adopt_symbols_until:
                                self.rejects.reject("events", "not_registered", f"{msg['terminal']}: a tick of {symbol}")
                                continue
                            if len(kept_symbols) >= max_symbols:  # resumed ones count: the saved state grew each run
                                self.rejects.reject("events", "too_many_symbols", symbol)
                                continue
                            kept_symbols.add(symbol)
                        # Its price goes out now, not after the rest of the batch is
                        # decoded: a burst's first ticks do not wait for its last.
                        if quote(msg, received_ns):
                            owned.append(msg)
                        last_tick = msg
                        n_ticks += 1
                        continue
                    if not session.registered and kind in _NEEDS_REGISTRATION:
                        self.rejects.reject("events", "not_registered", f"{msg['terminal']}: {kind}")
                        continue
                    if kind == "account":
                        self.handle_account(msg)
                    elif kind == "positions":
                        self.handle_positions(msg)
                    elif kind == "heartbeat":
                        self.handle_heartbeat(msg)
                    elif kind == "bye":
                        self.handle_bye(msg)
                for hook in self._event_hooks.get(kind, ()):
                    hook(msg)
            except Exception as exc:  # a subsystem failing on one event costs that event, never the daemon
                self.rejects.reject("events", "internal_error", f"{kind}: {exc!r}"[:200])
                self.internal_error(f"{kind} event", exc)
        self.counters["events"] += count
        if last_tick is not None:
            self.end_tick_batch(owned, n_ticks, last_tick["time_msc"], received_ns)
        return count

    def make_room(self, newcomer: str, now: float) -> bool:
        """Free a terminal slot for ``newcomer``: forget the session silent longest that is stale or said bye and that
        nothing keeps (positions, orders: :meth:`keeps_terminal`). False when there is none (the newcomer is refused).

        Off the tick path: called only when every slot is taken and a new id's event would register it (a hello, or
        a heartbeat with the hello fields): a made-up id's refused event took the slot of a terminal that was
        stale after a network blip, whose heartbeat was then refused (the review of the change, 2026-12-05).
        A keeper or hook that raises costs this search, logged, never the loop."""
        if now < self._room_search_after:
            return False
        try:
            return self._forget_one(newcomer, now)
        except Exception as exc:
            self.internal_error("terminal slot", exc)
            return False

    def _forget_one(self, newcomer: str, now: float) -> bool:
        kept: dict[str, str] = {}
        for session in self.terminals.forgettable():
            terminal = session.terminal
            reason = next(filter(None, (keeper(terminal) for keeper in self._terminal_keepers)), None)
            if reason:
                kept[terminal] = reason
                continue
            self.terminals.forget(terminal)
            self.market.forget(terminal)
            for hook in self._forget_hooks:  # each on its own: the slot is free whatever one of them does
                try:
                    hook(terminal)
                except Exception as exc:
                    self.internal_error("forgetting a terminal", exc)
            self.counters["terminals_forgotten"] += 1
            log.info(
                "terminal forgotten to make room for a new one",
                terminal=terminal,
                silent_s=round(now - session.last_seen, 1),
                said_bye=session.gone,
                newcomer=newcomer,
                max_terminals=self.config.daemon.max_terminals,
            )
            return True
        self._room_search_after = now + _ROOM_RETRY_S
        self._internal_log.log(  # once per interval: a sender at the cap retries every event
            "no terminal slot",
            log.warning,
            "no terminal slot for a new terminal: every one is live or holds something",
            newcomer=newcomer,
            max_terminals=self.config.daemon.max_terminals,
            kept=dict(list(kept.items())[:10]),
        )
        return False

    def _keeps_positions(self, terminal: str) -> str | None:
        market = self.market  # or held them before the restart and has not listed its own since: its saved book is kept
        return "it holds positions" if market.positions.get(terminal) or market.restored_positions.get(terminal) else None

    def internal_error(self, where: str, exc: BaseException) -> None:
        """A subsystem raised inside the loop (a bug, or a failure nobody handled, such as a full disk under
        SQLite): counted in ``internal_errors``, logged with its traceback at most once per
        ``daemon.reject_log_interval_s`` per place, and the loop goes on. Without this one bad hello or
        one failed write ended ``run()``."""
        self.counters["internal_errors"] += 1
        self._internal_log.log(where, log.error, "internal error; the daemon goes on", where=where, error=repr(exc)[:300], exc_info=exc)

    def _guarded(self, where: str, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:
            self.internal_error(where, exc)

    # -- event handlers ----------------------------------------------------------

    def handle_hello(self, msg: dict[str, Any], mono: float, clock_msc: int) -> None:
        session = self.terminals.hello(msg, mono, clock_msc)
        self.counters["hellos"] += 1
        self._session_log.log(  # keyed by endpoint and platform too: a hello that moves them is always said
            ("hello", session.terminal, session.command_endpoint, session.platform),
            log.info,
            "terminal registered",
            terminal=session.terminal,
            platform=session.platform,
            command_endpoint=session.command_endpoint,
            symbols=len(session.symbols),
            hellos=session.hellos,
        )

    def quote_tick(self, tick: dict[str, Any], received_ns: int) -> bool:
        """Market state and the price update of one validated tick; True if its terminal owns the symbol."""
        owns = self._quote(tick, received_ns)
        data = price_update(tick, owns)
        self._publish("price", data, tick["time_msc"], tick["symbol"], data["timestamp"])
        sent_ns = tick.get("sent_ns")
        if sent_ns is not None and received_ns > sent_ns:
            self._ea_to_receive(received_ns - sent_ns)
        return owns

    def end_tick_batch(self, owned: list[dict[str, Any]], n_ticks: int, last_time_msc: int, received_ns: int) -> None:
        """After a batch's ticks are quoted: counters, the publish latency, then features and signals."""
        self.counters["ticks"] += n_ticks
        if len(owned) != n_ticks:
            self.counters["ticks_not_owner"] += n_ticks - len(owned)
        self.last_tick_msc = last_time_msc
        self._receive_to_publish(time.perf_counter_ns() - received_ns)
        if owned:
            for hook in self._tick_hooks:  # features and signals: each tick of the terminal that owned its symbol when it was quoted
                try:
                    hook(owned, received_ns)
                except Exception as exc:
                    self.internal_error("tick hook", exc)

    def handle_account(self, msg: dict[str, Any]) -> None:
        self.market.accounts[msg["terminal"]] = msg
        self.feed.publish("account", app_account(msg), msg["time_msc"])

    def handle_positions(self, msg: dict[str, Any]) -> None:
        terminal = msg["terminal"]
        for status, pos in self.market.update_positions(terminal, msg["positions"]):
            price = self.market.current_price(terminal, pos["symbol"], pos["side"])
            self.feed.publish("position", app_position(pos, terminal, price, status), msg["time_msc"])
            self.counters[f"positions_{status}"] += 1
            if status != "updated":  # said in the log too: a soak saw a position closed by its stop with only a counter to show
                log.info(
                    f"position {status}",
                    terminal=terminal,
                    ticket=pos["ticket"],
                    symbol=pos["symbol"],
                    side=pos["side"],
                    lots=pos["lots"],
                    profit=pos["profit"],
                    comment=pos["comment"],
                )

    def handle_heartbeat(self, msg: dict[str, Any]) -> None:
        session = self.terminals.sessions[msg["terminal"]]
        session.ea_dropped = msg["dropped"]
        if (not session.registered or session.gone) and _registers(msg):
            # A terminal met after a daemon restart: its heartbeat carries the hello fields. Or one
            # that said bye and still beats: the bye came from another process under its id (a copy
            # of the EA that failed to start) or its new hello was lost; it is alive, so it trades.
            back = session.gone
            self.terminals.register(session, msg)
            log.info("terminal registered from heartbeat", terminal=session.terminal, command_endpoint=session.command_endpoint, after_bye=back)
            for hook in self._event_hooks.get("hello", ()):
                hook(msg)
        elif "specs" in msg:  # the hello's fields again: the symbols' specs of now (a cross's tick value moves with its rate)
            session.specs = msg["specs"]

    def handle_bye(self, msg: dict[str, Any]) -> None:
        self.terminals.bye(msg["terminal"], msg.get("reason", ""))
        self.market.release(msg["terminal"])
        self._room_search_after = 0.0  # a slot may be free now: the next newcomer need not wait out a failed search
        self._session_log.log(("bye", msg["terminal"]), log.info, "terminal said bye", terminal=msg["terminal"], reason=msg.get("reason", ""))

    # -- periodic work -------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        gap = now - self._last_housekeeping
        self._last_housekeeping = now
        frozen = gap > max(_FROZEN_S, 3 * self.config.daemon.health_interval_s)
        if frozen:
            # The loop itself did not run (SIGSTOP, a VM paused, a swap storm): the terminals' events of that time
            # are still in the sockets, unread. Judged now, every terminal was "silent" for as long as the daemon
            # was frozen: a soak saw "terminal stale" logged, symbols released and health degraded 0.5 ms after
            # SIGCONT. Their silence is timed afresh from now.
            self.terminals.restart_silence_clocks(now)
            log.warning("the daemon's loop did not run; terminals' silence timed afresh", stalled_s=round(gap, 1))
        for session in self.terminals.update_stale(now):
            self._room_search_after = 0.0  # as at a bye
            freed = self.market.release(session.terminal)
            log.warning("terminal stale", terminal=session.terminal, silent_s=round(now - session.last_seen, 1), symbols_released=len(freed))
        silent_s = self.config.daemon.owner_silent_s
        if silent_s and not frozen:  # after a freeze the first batch read may hold one terminal's ticks and not the owner's
            connected = {session.terminal for session in self.terminals.connected()}
            for symbol, owner, other in self.market.hand_over_silent(time.perf_counter_ns(), int(silent_s * 1e9), connected):
                self.counters["symbols_handed_over"] += 1
                log.warning("symbol handed over: its owner sent no tick of it while another terminal did", symbol=symbol, silent=owner, now_from=other, silent_s=silent_s)
        for session in self.terminals.retire_silent(now, self.config.daemon.retire_after_s):
            self.counters["terminals_retired"] += 1
            log.warning("terminal retired: silent too long, health no longer waits for it", terminal=session.terminal, silent_s=round(now - session.last_seen, 1))
        self.rejects.flush()
        self._flush_session_log()
        self.feed.publish("health", self.health(), now_msc())

    def _flush_session_log(self) -> None:
        """Hellos and byes the rate limit held back and no later line counted: said now, one line each. Then, as
        terminal ids come from outside, the limiter is started afresh once it remembers far more than can be live."""
        for key, count in self._session_log.overdue():
            kind, terminal = key[:2]  # type: ignore[index]  # this limiter's keys are the tuples above
            log.info("terminal registered again" if kind == "hello" else "terminal said bye again", terminal=terminal, count_since_last_log=count)
        if len(self._session_log) > 4 * self.config.daemon.max_terminals:
            self._session_log = LogLimiter(_SESSION_LOG_INTERVAL_S, self._monotonic)

    def _log_status(self, ticks: int, seconds: float) -> None:
        connected = self.terminals.connected()
        extra: dict[str, Any] = {}
        for provider in self._status_extra:
            extra.update(provider())
        log.info(
            "status",
            ticks_per_s=round(ticks / seconds, 1) if seconds > 0 else 0.0,
            symbols=len(self.market.quotes),
            symbols_kept=len(self.symbols),  # what daemon.max_symbols counts: resumed ones included
            terminals=len(connected),
            stale=len(self.terminals.degraded_by()),
            retired=sum(1 for s in self.terminals.sessions.values() if s.retired),
            rejects=self.rejects.total,
            **extra,
        )

    # -- queries (control socket, health) --------------------------------------------

    def health(self) -> dict[str, Any]:
        """The daemon's part of ``/api/health`` (PROTOCOL.md), also published on the feed."""
        terminals = self.terminals.to_json()
        books = self.market.positions
        for entry in terminals:  # added to the protocol: whose book the daemon has since it started (the sidecar keeps
            entry["positions_known"] = entry["terminal"] in books  # a restart's unconfirmed positions until this says so)
        problems = [problem for provider in self._health_problems for problem in provider()]
        return {
            "status": "degraded" if problems else "healthy",
            "problems": problems,
            "uptime": round(self._monotonic() - self._started, 3),
            "terminals": terminals,
            "data_flow": {
                "last_market_update": iso_from_msc(self.last_tick_msc) if self.last_tick_msc else None,
                "last_signal": iso_from_msc(self.last_signal_msc) if self.last_signal_msc else None,
                "pending_trades": self.pending_trades(),
            },
            "latency": self.metrics.latency(),
            "memory": {"rss_mb": round(self._process.memory_info().rss / 1e6, 1)},
            "counters": dict(self.counters),
            "rejects": {k: v for k, v in self.rejects.counts.items() if v},
            "rejects_by_source": dict(self.rejects.by_source),
            "feed_seq": self.feed.seq,
            "tick_priority": self.tick_priority.to_json(),
            **{k: v for provider in self._health_extra for k, v in provider().items()},
        }

    def _terminal_problems(self) -> list[str]:
        """Why the terminals make health degraded, in words: none connected, or one stale. An ops check saw
        'degraded' with an empty ``problems`` after a restart, the reason left to be read from the terminal list."""
        # Times as UTC instants, not ages: the same problem reads the same in every health message (alerts dedupe).
        problems = [
            f"terminal {s.terminal}: silent since {iso_from_msc(s.last_seen_msc)} (stale; health waits for it until daemon.retire_after_s)"
            for s in self.terminals.degraded_by()
        ]
        if not self.terminals.connected():
            problems.insert(0, "no terminal connected: none has sent a hello, or a heartbeat with its fields, and been heard lately")
        refused = self._refused_terminal
        if refused is not None and self._monotonic() - refused[1] < REFUSED_TERMINAL_SHOWN_S and refused[0] not in self.terminals.sessions:
            # Without its id: a refused terminal has no session, so the sidecar could not hide the id (its broker
            # login) from a caller without a token as it does every listed terminal's. The log names it.
            problems.append(
                f"a new terminal was refused at {iso_from_msc(refused[2])}: all daemon.max_terminals"
                f" ({self.config.daemon.max_terminals}) slots are taken by terminals live or holding positions or orders"
                " (the log names it)"
            )
        return problems

    def _clock_problems(self) -> list[str]:
        """Terminals whose tick times run ahead of this machine's UTC clock by more than ``clock_ahead_warn_s``, or
        behind it by more than ``risk.max_tick_lag_s`` while their ticks arrive now.

        An EA whose UTC offset estimate never took (the VPS clock more than 2 minutes off) stamped its ticks
        with the broker's time, 2-3 hours ahead, and nothing said so: the daemon takes ticks up to a day ahead.
        Read from each terminal's latest quotes (``market.terminal_quotes``), once per health: nothing on the tick
        path. A terminal's old quote understates how far ahead it runs, never overstates it."""
        limit_ms = self.config.daemon.clock_ahead_warn_s * 1000
        behind_ms = self.config.risk.max_tick_lag_s * 1000
        latest: dict[str, int] = {}
        arrived: dict[str, int] = {}  # each terminal's latest arrival (monotonic ns)
        for key, tick in self.market.terminal_quotes.items():
            latest[key[0]] = max(latest.get(key[0], 0), tick["time_msc"])
            arrived[key[0]] = max(arrived.get(key[0], 0), self.market.terminal_received_ns[key])  # the same keys as the quotes
        now = now_msc()
        recent_ns = time.perf_counter_ns() - int(behind_ms * 1e6)
        ahead: list[str] = []
        behind: list[str] = []
        for terminal, stamp in sorted(latest.items()):
            if limit_ms and stamp - now > limit_ms and self._judged(terminal):
                ahead.append(
                    f"terminal {terminal}: tick times {(stamp - now) / 60_000:.0f} min ahead of this machine's UTC clock"
                    " (the EA's UTC offset, UtcOffsetMinutes / UtcOffsetAuto, or a clock is off)"
                )
            # Behind, while its ticks arrive now (not a quiet market): an EA whose fixed UtcOffsetMinutes a DST change
            # made an hour too large. Risk refused every open ("quote is from a backlog"), auto-trading skipped every
            # signal, and health said healthy (a hunt, 2026-12-05).
            elif behind_ms and now - stamp > behind_ms and arrived[terminal] > recent_ns and self._judged(terminal):
                behind.append(
                    f"terminal {terminal}: tick times {(now - stamp) / 60_000:.0f} min behind this machine's UTC clock while they"
                    " arrive now: opens are refused (risk.max_tick_lag_s) (the EA's UTC offset, UtcOffsetMinutes after a DST change,"
                    " or a clock is off; or the daemon is reading a backlog)"
                )
        return ahead + behind

    def _judged(self, terminal: str) -> bool:
        """Whether a terminal's clock is a problem of health: connected (registered, heard lately, no bye). One tick a
        day ahead from an id that never said hello (or went quiet, or said bye) kept health degraded for as long as
        the quote stayed."""
        session = self.terminals.sessions.get(terminal)
        return session is not None and session.connected

    def control_status(self, request: dict[str, Any]) -> dict[str, Any]:
        """Health, rejects and feed counts; ``"reset_latency": true`` starts the histograms afresh after reading."""
        reply = {"health": self.health(), "rejects": dict(self.rejects.counts), "feed_sent": dict(self.feed.sent)}
        if request.get("reset_latency") is True:
            for recorder in self.metrics.histograms.values():
                recorder.reset()
        return reply

    def control_stop(self, request: dict[str, Any]) -> dict[str, Any]:
        """``qt-daemon stop``: the orderly stop (final saves, children asked to stop) for a daemon no signal can
        reach that way: on Windows one started without a console (a scheduled task, a service wrapper) has
        no Ctrl-C to get, and ending it is TerminateProcess, which runs nothing. Answered, then the loop ends."""
        log.warning("stop asked over the control socket")
        self.stop()
        return {"stopping": True}

    def control_snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        """Everything a subscriber needs to start, with the feed seq it is valid at (clone pattern)."""
        market = self.market
        symbols = _symbol_filter(request.get("symbols"), self.config.daemon.max_symbols)
        quotes = [price_update(t) for s, t in market.quotes.items() if symbols is None or s in symbols]
        # and those a terminal listed before the daemon restarted, until it lists its own: with the terminal down across
        # the restart, the app showed none of them for the whole outage, or told them closed (a hunt, 2026-12-05)
        restored = [(t, pos) for t, book in market.restored_positions.items() for pos in book.values()]
        positions = [
            app_position(pos, terminal, market.current_price(terminal, pos["symbol"], pos["side"]))
            for terminal, pos in market.all_positions() + restored
        ]
        terminal_quotes = [price_update(t, market.owner.get(s) == t["terminal"]) for (_, s), t in market.terminal_quotes.items() if symbols is None or s in symbols]
        return {
            "feed_seq": self.feed.seq,
            "quotes": quotes,  # per symbol, from the terminal that owns its series
            "terminal_quotes": terminal_quotes,  # every terminal's latest quote of every symbol it streams
            "positions": positions,
            "accounts": [app_account(acc) for acc in market.accounts.values()],
            "terminals": self.terminals.to_json(),
            "counters": dict(self.counters),
            "rejects": {k: v for k, v in self.rejects.counts.items() if v},
            # the feed's health message of now: a sidecar that starts (or heals) answers /api/health from this
            # reply instead of "unreachable" until the next health message, up to health_interval_s later
            "health": self._health_for_snapshot(),
            # added: whose positions the daemon has had since it started (the sidecar keeps a restart's others until
            # they come); beside health's per-terminal flag, so a health provider's failure does not hide it
            "positions_known": sorted(market.positions),
        }

    def _health_for_snapshot(self) -> dict[str, Any] | None:
        """Health as the feed publishes it, or None if a provider fails: the snapshot's quotes and positions matter more."""
        try:
            return self.health()
        except Exception as exc:
            self.internal_error("health in a snapshot", exc)
            return None

    def control_specs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{"type":"specs","terminal":T}`` -> the symbols' specs T last sent (what sizing uses; not in health: too big)."""
        terminal = request.get("terminal")
        if type(terminal) is not str:
            raise ControlError("terminal must be a string")
        session = self.terminals.sessions.get(terminal)
        if session is None:
            raise ControlError(f"no terminal {terminal!r}", status=404)
        return {"terminal": terminal, "specs": session.specs}
