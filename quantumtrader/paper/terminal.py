"""The paper terminal: a process that is an EA as far as the daemon can tell.

It speaks PROTOCOL.md over real sockets: PUSHes hello/tick/account/positions/
heartbeat/bye with ``seq`` to the daemon's events endpoint, and answers
commands on its own command endpoint. It binds a ROUTER there rather than a
REP: a ROUTER is wire-compatible with the daemon's REQ, and lets the terminal
hold a reply back (fault injection for the Lazy Pirate tests) without wedging
a REP state machine.

Sending mirrors the EA rule: never block the terminal's thread. A send that
would block goes to the :class:`Outbox` (latest tick per symbol, latest
account and positions) and is retried on the next pass; what it had to
replace is counted in ``dropped``. In as-fast-as-possible replay the source
pauses instead, so a benchmark replay loses nothing.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import zmq

from quantumtrader.config import Config
from quantumtrader.log import get_logger, safe_file_stem
from quantumtrader.metrics import LogLimiter
from quantumtrader.outputs import UnwrittenOutput, remove_leftover_temporaries, set_aside, write_json
from quantumtrader.paper.book import PaperBook, TradeError
from quantumtrader.paper.ticks import CsvStats, generate_ticks, merge_csv_ticks, symbol_from_path
from quantumtrader.protocol import (
    connect_address,
    ProtocolError,
    decode_command,
    encode,
    event,
    is_number,
    WRONG_ACCOUNT,
    now_msc,
    reply_error,
    reply_ok,
    with_event_seq,
)
from quantumtrader.store.db import StateFileError
from quantumtrader.store.lock import DataDirBusy, DataDirLock

log = get_logger("quantumtrader.paper")

#: How often, at most, an account event follows equity while positions are open (the EAs' AccountMinIntervalMs default).
ACCOUNT_INTERVAL_S = 1.0
#: A paced source this far behind its schedule (the process was stopped, the VM paused) resumes at its rate from
#: now on instead of sending every tick it missed at once: 13 minutes stopped came back as ~40,000 ticks in 4 s,
#: each restamped now, and 15-79 signals per symbol in 6 s that auto-trading would act on (an operations review).
MAX_BEHIND_S = 1.0
_REPLY_CACHE_SIZE = 4096  # ids remembered for "answer a repeated id with the stored reply"
_SNDHWM = 10_000
_OUTBOX_MAX = 10_000


@dataclass(frozen=True, kw_only=True)
class PaperOptions:
    """What ``qt-daemon paper`` was asked to do on top of the [paper] config section."""

    events_endpoint: str
    tick_files: tuple[Path, ...] = ()
    exit_at_end: bool = False
    keep_times: bool = False
    max_gap_s: float = 5.0
    max_ticks: int = 0  # 0 = no limit
    replay_rate: float = 0.0  # > 0: the files' ticks at this many a second, their own times ignored (benchmarks)
    # Fault injection, for the Lazy Pirate tests: counted over distinct trading command ids.
    drop_reply_every: int = 0  # execute every Nth command but swallow its first reply
    delay_reply_every: int = 0  # hold the reply of every Nth command ...
    delay_reply_ms: int = 0  # ... this long
    timeout_reply_every: int = 0  # execute every Nth command but answer MT4's 128 "trade timeout"


class Outbox:
    """The EA's bounded local queue: latest tick per symbol, latest account/positions."""

    def __init__(self, limit: int = _OUTBOX_MAX) -> None:
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._limit = limit
        self._serial = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, kind: str, key: str, frame: bytes) -> None:
        if kind in ("tick", "account", "positions"):
            slot = (kind, key)
            if slot in self._items:
                self.dropped += 1  # the newer one replaces the older: the older is lost
                del self._items[slot]
        else:
            self._serial += 1
            slot = (kind, str(self._serial))
        if len(self._items) >= self._limit:
            self._items.popitem(last=False)
            self.dropped += 1
        self._items[slot] = frame

    def flush(self, socket: zmq.Socket[bytes]) -> None:
        while self._items:
            slot, frame = next(iter(self._items.items()))
            try:
                socket.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                return
            del self._items[slot]


class PaperBookError(Exception):
    """The saved book exists but cannot be read (a sharing violation, no permission): the terminal does not start
    rather than open a fresh account that its next save would write over the saved one (a review, 2026-12-05)."""


class CommandBindError(Exception):
    """The command socket's endpoint is taken: said in one line (it was a traceback at every restart)."""


#: Where each paper terminal keeps its book, in the data directory: ``<dir>/paper-<terminal id made safe>-<hash>.json``.
PAPER_BOOKS_DIR = "paper-books"


def paper_book_name(terminal: str) -> str:
    """A file name of its own per terminal id: the id made safe, then a hash of the exact id (ids that differ only
    in characters made safe, in case or past the cut, and Windows' device names, stay apart; a review)."""
    digest = hashlib.sha256(terminal.encode("utf-8")).hexdigest()[:10]
    return f"paper-{safe_file_stem(terminal)[:80]}-{digest}.json"


class PaperTerminal:
    def __init__(self, config: Config, options: PaperOptions, context: zmq.Context[Any] | None = None) -> None:
        self.cfg = config.paper
        self.options = options
        self._context = context or zmq.Context.instance()
        self.book = PaperBook(self.cfg.balance, self.cfg.leverage, stop_out_pct=self.cfg.stop_out_pct, currency=self.cfg.currency)
        self.book_path = config.data_path / PAPER_BOOKS_DIR / paper_book_name(self.cfg.terminal)
        self._book_lock = self._lock_book()
        remove_leftover_temporaries(self.book_path)  # ours alone now (the lock): what killed saves left
        self._start_balance = self.cfg.balance  # the account's, as first opened: kept in its file (a restored one's below)
        try:
            self._book_saved = self._load_book()
        except BaseException:
            self.release_book()
            raise
        self._save_log = LogLimiter(60.0)
        self.outbox = Outbox()
        self.seq = -1
        # This process's run (protocol.check_run): its seq starts at 0, so (run, seq) orders its events after
        # an earlier process's under the same id, whose queued events a restarted daemon may still read.
        self.run_number = now_msc()
        self.ticks_sent = 0
        self.csv_stats = CsvStats()
        self._replies: OrderedDict[str, bytes] = OrderedDict()
        self._held: list[tuple[float, list[bytes]]] = []  # delayed replies: (due, frames)
        self.commands_seen = 0
        self.replies_dropped = 0
        self._stop = False
        self._positions_dirty = True
        self._account_dirty = True
        self._account_sent: dict[str, Any] = {}
        self._next_account_check = 0.0
        self.symbols: tuple[str, ...] = ()

    def stop(self) -> None:
        self._stop = True

    # -- sockets ---------------------------------------------------------------

    def _open(self) -> None:
        self.push = self._context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.SNDHWM, _SNDHWM)
        self.push.setsockopt(zmq.LINGER, 2000)  # give bye and the last ticks a moment on exit
        self.push.connect(self.options.events_endpoint)
        self.router = self._context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        try:
            self.router.bind(self.cfg.command_endpoint)
        except zmq.ZMQError as exc:
            self.push.close(linger=0)
            self.router.close(linger=0)
            raise CommandBindError(
                f"cannot bind the command socket at {self.cfg.command_endpoint}: {exc.strerror}; another paper terminal, "
                "or an EA on this machine (its CommandBindEndpoint, default tcp://127.0.0.1:5560), has it? give this one "
                "another: paper.command_endpoint (QT_PAPER__COMMAND_ENDPOINT, --command-endpoint)"
            ) from None
        self.poller = zmq.Poller()
        self.poller.register(self.router, zmq.POLLIN)

    def _send(self, kind: str, key: str = "", **fields: Any) -> None:
        self.seq += 1
        frame = encode(event(kind, self.cfg.terminal, self.seq, now_msc(), **fields))
        if len(self.outbox):
            self.outbox.put(kind, key, frame)  # keep order: older queued events go first
            return
        try:
            self.push.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            self.outbox.put(kind, key, frame)

    # -- events ----------------------------------------------------------------

    def _hello_fields(self) -> dict[str, Any]:
        endpoint = connect_address(self.cfg.command_endpoint)  # bound on every interface: the daemon reaches it on loopback
        specs = {symbol: self.book.symbol_spec(symbol) for symbol in self.symbols}  # heartbeats repeat them, as the EAs' do
        return {"platform": "PAPER", "command_endpoint": endpoint, "symbols": list(self.symbols), "heartbeat_s": self.cfg.heartbeat_s, "specs": specs, "run": self.run_number}

    def send_hello(self) -> None:
        self._send("hello", **self._hello_fields())

    def send_account(self) -> None:
        self._save_book()  # first: see send_positions
        self._account_sent = self.book.account_fields()
        self._send(
            "account",
            "account",
            login=self.cfg.login,
            currency=self.cfg.currency,
            name="Paper account",
            server="QuantumTrader-Paper",
            **self._account_sent,
        )
        self._account_dirty = False

    def send_positions(self) -> None:
        # The book on disk before the daemon hears of it, as a trade's is before its reply: saved after, a kill -9
        # in between brought a position its stop had closed back at the restart, and the daemon, told it closed,
        # saw it open again and closed twice (a crash hunt, 2026-12-06: 7 of 60 kills).
        self._save_book()
        self._send("positions", "positions", positions=self.book.positions_event(), run=self.run_number)
        self._positions_dirty = False

    # -- the book across restarts ----------------------------------------------------

    def _lock_book(self) -> DataDirLock:
        """The book is this process's until it ends: a second terminal of the same id on the same data directory
        (``run --paper`` beside a ``paper`` started by hand) restored the same book and each rewrote it whole, so
        one's positions were gone from it (a hunt, 2026-12-06). Refused now, naming the holder (exit 1)."""
        lock = DataDirLock(
            self.book_path.parent,
            name=self.book_path.name + ".lock",
            kind="paper book",
            what=f"paper book of terminal {self.cfg.terminal!r} ({self.book_path})",
            hint="(another paper terminal of that id on this data directory?); stop it, or give this one another paper.terminal",
        )
        try:
            self.book_path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except (DataDirBusy, StateFileError, OSError) as exc:
            raise PaperBookError(str(exc)) from None
        return lock

    def release_book(self) -> None:
        """Give the book's lock back (at the stop; the OS does it anyway when the process ends)."""
        self._book_lock.release()

    def _load_book(self) -> dict[str, Any] | None:
        """The book the last run saved, as a broker keeps it across a terminal's restarts. Before, every restart of
        the paper terminal (a crash, Ctrl-C and run again) opened a fresh account: the positions the daemon's orders
        had opened were gone and the balance reset (a hunt, 2026-12-05). One that cannot be used is set aside
        (``.unusable``, ``.unusable.2``...), said once, and the account starts fresh."""
        try:
            raw = self.book_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # held by another program, no permission: the account is there, never overwritten
            raise PaperBookError(f"cannot read the paper book {self.book_path}: {exc.strerror or exc}; it is left as it is") from None
        try:
            saved = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._set_aside(repr(exc)[:200])
        try:
            if not isinstance(saved, dict) or saved.get("terminal") != self.cfg.terminal:
                raise ValueError(f"the book of terminal {saved.get('terminal') if isinstance(saved, dict) else None!r}, not {self.cfg.terminal!r}")
            self.book.restore(saved)
        except ValueError as exc:
            return self._set_aside(str(exc))
        log.info("paper book restored", file=str(self.book_path), positions=len(self.book.positions), balance=round(self.book.balance, 2))
        start = saved.get("start_balance")
        self._start_balance = start if is_number(start) else self.cfg.balance  # JSON holds no inf or NaN: the same values
        if self._start_balance != self.cfg.balance:
            log.warning(
                "paper.balance differs from the saved account's starting balance: the saved account goes on; delete its file for a fresh one",
                file=str(self.book_path),
                saved_start=saved.get("start_balance"),
                paper_balance=self.cfg.balance,
            )
        return self._book_state()

    def _book_state(self) -> dict[str, Any]:
        return {**self.book.saved(), "terminal": self.cfg.terminal, "start_balance": self._start_balance}

    def _set_aside(self, why: str) -> None:
        try:
            aside = set_aside(self.book_path, ".unusable")  # never over an earlier one (each may be mended by hand)
        except OSError:
            aside = self.book_path  # left where it is; the next save replaces it
        log.warning("paper book not usable: this run starts a fresh account", file=str(aside), reason=why)
        return None

    def _save_book(self) -> None:
        """Write the book when it changed since the last write (whole or not at all); a failure is logged once a minute."""
        state = self._book_state()
        if state == self._book_saved:
            return
        try:
            write_json(self.book_path, state)
        except UnwrittenOutput as exc:
            self._save_log.log("save", log.warning, "paper book not saved: a restart would start a fresh account", error=str(exc)[:300])
            return
        self._book_saved = state

    def send_heartbeat(self) -> None:
        self._send("heartbeat", dropped=self.outbox.dropped, **self._hello_fields())
        self.send_account()
        self.send_positions()

    def _emit_tick(self, symbol: str, bid: float, ask: float, volume: float, time_msc: int | None) -> None:
        stamp = now_msc() if time_msc is None else time_msc
        if self.book.on_quote(symbol, bid, ask, stamp):
            self._positions_dirty = self._account_dirty = True
        self.seq += 1
        frame = encode(
            {
                "v": 1,
                "type": "tick",
                "terminal": self.cfg.terminal,
                "seq": self.seq,
                "symbol": symbol,
                "bid": bid,
                "ask": ask,
                "time_msc": stamp,
                "volume": volume,
                "sent_ns": time.perf_counter_ns(),
            }
        )
        self.ticks_sent += 1
        if len(self.outbox):
            self.outbox.put("tick", symbol, frame)
            return
        try:
            self.push.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            self.outbox.put("tick", symbol, frame)

    # -- commands --------------------------------------------------------------

    def handle_command(self, raw: bytes) -> tuple[bytes, str | None]:
        """Execute one command, or answer a repeated id from the cache.

        Returns (reply frame, the id if it counts for faults): only the first
        sight of a trading command's id (open, close, modify) counts for fault
        injection; snapshot and ping always answer at once.
        """
        try:
            cmd = decode_command(raw)
        except ProtocolError as exc:
            return encode(reply_error("0", 10013, f"invalid request: {exc.detail}")), None
        cached = self._replies.get(cmd["id"])
        if cached is not None:
            return cached, None
        before = self.seq  # the command runs after this event and before the next: what its reply tells (event_seq)
        reply = encode(with_event_seq(self._execute(cmd), before, self.run_number))
        trade = cmd["type"] in ("open", "close", "modify")
        if trade:
            self._save_book()  # before the reply: a kill right after it must not lose the trade (or reuse its ticket)
        self._replies[cmd["id"]] = reply
        if len(self._replies) > _REPLY_CACHE_SIZE:
            self._replies.popitem(last=False)
        return reply, cmd["id"] if trade else None

    def _execute(self, cmd: dict[str, Any]) -> dict[str, Any]:
        kind = cmd["type"]
        cid = cmd["id"]
        stamp = now_msc()
        if "login" in cmd and cmd["login"] != self.cfg.login:
            return reply_error(cid, WRONG_ACCOUNT, f"account {cmd['login']} asked, logged in to {self.cfg.login}: not executed")
        try:
            if kind == "open":
                held = next((p for p in self.book.positions.values() if p.comment == "QT-" + cid), None)
                if held is not None:  # opened by an earlier run whose reply cache went with it (the EAs do the same)
                    return reply_ok(cid, ticket=held.ticket, price=held.open_price, lots=held.lots, time_msc=stamp)
                pos = self.book.open(cmd["symbol"], cmd["side"], cmd["lots"], cmd["sl"], cmd["tp"], cmd["magic"], "QT-" + cid, stamp)
                self._positions_dirty = self._account_dirty = True
                return reply_ok(cid, ticket=pos.ticket, price=pos.open_price, lots=pos.lots, time_msc=stamp)
            if kind == "close":
                pos, price, lots = self.book.close(cmd["ticket"], cmd["lots"], cmd.get("position_lots", 0.0))
                self._positions_dirty = self._account_dirty = True
                return reply_ok(cid, ticket=pos.ticket, price=price, lots=lots, time_msc=stamp)
            if kind == "modify":
                pos = self.book.modify(cmd["ticket"], cmd["sl"], cmd["tp"])
                self._positions_dirty = True
                return reply_ok(cid, ticket=pos.ticket, time_msc=stamp)
            if kind == "snapshot":
                account = {"login": self.cfg.login, "currency": self.cfg.currency, **self.book.account_fields()}
                return reply_ok(cid, account=account, positions=self.book.positions_event(), time_msc=stamp)
            return reply_ok(cid, time_msc=stamp)  # ping
        except TradeError as exc:
            return reply_error(cid, exc.code, str(exc))

    def _serve_commands(self, timeout_ms: int) -> None:
        if not self.poller.poll(timeout_ms):
            return
        while True:
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            reply, faultable_id = self.handle_command(frames[-1])
            opts = self.options
            if faultable_id is not None:
                self.commands_seen += 1
                if opts.timeout_reply_every and self.commands_seen % opts.timeout_reply_every == 0:
                    # as MT4 may: the order went through, the terminal says it timed out
                    # self.seq: no event was built since the command ran (handle_command, just above)
                    reply = encode(with_event_seq(reply_error(faultable_id, 128, "trade timeout (paper fault injection: executed)"), self.seq, self.run_number))
                if opts.drop_reply_every and self.commands_seen % opts.drop_reply_every == 0:
                    self.replies_dropped += 1  # executed, but the daemon never hears: its retry must not execute again
                    continue
                if opts.delay_reply_every and self.commands_seen % opts.delay_reply_every == 0:
                    self._held.append((time.perf_counter() + opts.delay_reply_ms / 1000.0, frames[:-1] + [reply]))
                    continue
            self.router.send_multipart(frames[:-1] + [reply])

    def _release_held(self, now: float) -> None:
        due = [h for h in self._held if h[0] <= now]
        if due:
            self._held = [h for h in self._held if h[0] > now]
            for _, frames in due:
                self.router.send_multipart(frames)  # to a REQ that gave up, ROUTER drops it: a lost reply

    # -- the loop --------------------------------------------------------------

    def _source(self) -> Iterator[tuple[float, str, float, float, float, int | None]]:
        """(due offset in seconds, symbol, bid, ask, volume, time_msc or None) in send order."""
        opts = self.options
        if opts.tick_files:
            speed = self.cfg.speed
            step = 1.0 / opts.replay_rate if opts.replay_rate > 0 else 0.0
            due = 0.0
            prev: int | None = None
            for tick in merge_csv_ticks(list(opts.tick_files), self.csv_stats):
                if step:
                    due += step
                elif prev is not None and speed > 0:
                    due += min(max(tick.time_msc - prev, 0) / 1000.0, opts.max_gap_s) / speed
                prev = tick.time_msc
                yield due, tick.symbol, tick.bid, tick.ask, tick.volume, (tick.time_msc if opts.keep_times else None)
            return
        rate = self.cfg.ticks_per_s
        step = 1.0 / rate if rate > 0 else 0.0
        due = 0.0
        for symbol, bid, ask, volume in generate_ticks(self.symbols, self.cfg.seed, {pos.symbol: pos.open_price for pos in self.book.positions.values()}):
            yield due, symbol, bid, ask, volume, None
            due += step

    def _symbols(self) -> tuple[str, ...]:
        """What this run streams: the tick files' symbols, or paper.symbols and those the book holds positions in.

        A book restored with a position in a symbol dropped from paper.symbols could neither price nor close it
        (no quote: "no quotes to process the request"); the generator streams it as well, said once. Tick files
        cannot: said once too, naming the symbols."""
        if self.options.tick_files:
            streamed = tuple(dict.fromkeys(symbol_from_path(p) for p in self.options.tick_files))
        else:
            streamed = self.cfg.symbols
        held = sorted({p.symbol for p in self.book.positions.values()} - set(streamed))
        if held and self.options.tick_files:
            log.warning("the paper book holds positions in symbols no tick file has: they cannot be priced or closed in this run", symbols=held, file=str(self.book_path))
        elif held:
            log.warning("the paper book holds positions in symbols paper.symbols does not name: streamed as well, so they can be priced and closed", symbols=held, file=str(self.book_path))
            return streamed + tuple(held)
        return streamed

    def run(self) -> None:
        """Stream and serve until stopped; the book's lock is given back however it ends (a command port taken
        kept it for the rest of the process: the review of the change, 2026-12-06)."""
        try:
            self._run()
        finally:
            self.release_book()

    def _run(self) -> None:
        self.symbols = self._symbols()
        self._open()
        if self.options.tick_files:
            fast = self.options.replay_rate <= 0 and self.cfg.speed == 0
        else:
            fast = self.cfg.ticks_per_s == 0
        log.info(
            "paper terminal started",
            terminal=self.cfg.terminal,
            events=self.options.events_endpoint,
            commands=self.cfg.command_endpoint,
            symbols=list(self.symbols),
            source="csv" if self.options.tick_files else "generator",
        )
        self.send_hello()
        self.send_account()
        self.send_positions()
        source = self._source()
        pending = next(source, None)
        # perf_counter, not monotonic: on Windows monotonic moves in ~15.6 ms steps, and paced ticks left in bursts.
        start = time.perf_counter()
        next_heartbeat = start + self.cfg.heartbeat_s
        behind_log = LogLimiter(10.0)  # an overloaded paced source falls behind again and again
        finished = False
        try:
            while not self._stop:
                now = time.perf_counter()
                self.outbox.flush(self.push)
                behind = now - (start + pending[0]) if not fast and pending is not None else 0.0
                if behind > MAX_BEHIND_S:
                    start += behind  # the missed due times are skipped, not made up: the ticks themselves come later
                    behind_log.log("behind", log.warning, "paper terminal fell behind its tick schedule (paused?); resuming at its rate", behind_s=round(behind, 3))
                produced = 0
                while pending is not None and (not fast or not len(self.outbox)) and produced < 2000:
                    if not fast and start + pending[0] > now:
                        break
                    _, symbol, bid, ask, volume, stamp = pending
                    self._emit_tick(symbol, bid, ask, volume, stamp)
                    produced += 1
                    if self.options.max_ticks and self.ticks_sent >= self.options.max_ticks:
                        pending = None
                        break
                    pending = next(source, None)
                    if self._positions_dirty:  # a stop closed a position: say so now, not up to 2,000 ticks later
                        break
                if pending is None and not finished:
                    finished = True
                    log.info("tick source finished", ticks=self.ticks_sent, skipped_rows=self.csv_stats.skipped)
                    if self.csv_stats.first_error:
                        log.warning("bad CSV rows skipped", count=self.csv_stats.skipped, first=self.csv_stats.first_error)
                    if self.csv_stats.out_of_order:
                        log.warning("CSV rows out of time order, sent in the file's order", count=self.csv_stats.out_of_order, first=self.csv_stats.first_out_of_order)
                if self._positions_dirty:
                    self.send_positions()
                if self._account_dirty:
                    self.send_account()
                elif self.book.positions and now >= self._next_account_check:
                    # Equity moves with every tick while positions are open: sent when it changed, at most once
                    # per ACCOUNT_INTERVAL_S, as the EAs do (AccountMinIntervalMs). The daily loss and sizing read it.
                    self._next_account_check = now + ACCOUNT_INTERVAL_S
                    if self.book.account_fields() != self._account_sent:
                        self.send_account()
                if now >= next_heartbeat:
                    next_heartbeat = now + self.cfg.heartbeat_s
                    self.send_heartbeat()
                self._release_held(now)
                if finished and self.options.exit_at_end and not len(self.outbox):
                    break
                if fast and pending is not None:
                    wait_ms = 0
                else:
                    wake = next_heartbeat if pending is None else min(next_heartbeat, start + pending[0])
                    # Rounded up: poll() counts whole milliseconds, and rounding a 0.5 ms wait down
                    # to 0 made the terminal spin a whole core at 2,000 ticks/s. Ticks due meanwhile
                    # go out together on the next pass (at most 1 ms late on Linux; on Windows, where
                    # libzmq's poll is select() on the ~15.6 ms system timer, in ~16 ms bunches), as a
                    # real feed bunches them.
                    wait_ms = max(0, min(100, math.ceil((wake - time.perf_counter()) * 1000)))
                    if len(self.outbox) or self._held:
                        wait_ms = min(wait_ms, 5)
                self._serve_commands(wait_ms)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._save_book()  # a trade just before the stop, not yet in a positions event
        try:
            self.outbox.flush(self.push)
            self._send("bye", reason="paper terminal stopped")
        finally:
            self.router.close(linger=0)
            self.push.close(linger=2000)
            log.info("paper terminal stopped", ticks=self.ticks_sent, dropped=self.outbox.dropped, seq=self.seq)
