"""Issue 5 over real sockets, with the paper terminal as its own process:
lost and late replies, a daemon killed mid-order, a terminal frozen mid-command."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import zmq

from quantumtrader.config import ORDERS_FILE
from quantumtrader.protocol import WRONG_ACCOUNT, control_request, decode_command, encode, new_command_id, now_msc, parse_object, reply_error, reply_ok, snapshot_command, with_event_seq
from support import Endpoints, FeedSubscriber, control, daemon_process, event_frame, events_push, inproc_daemon, serving, start, stop, terminal_status, wait_for

# Generous limits so only the rule under test can refuse; a rich paper account.
RISK_OFF = {
    "QT_RISK__MAX_OPEN_POSITIONS": "0",
    "QT_RISK__MAX_LOTS_PER_SYMBOL": "0",
    "QT_RISK__LOT_MAX": "1000",
    "QT_RISK__MAX_SPREAD_PCT": "1",
    "QT_RISK__MAX_TRADE_RISK_PCT": "0",
    "QT_PAPER__BALANCE": "1000000000",
    "QT_EXECUTION__QUEUE_MAX": "5000",
}


def has_quote(endpoint: str, symbol: str = "EURUSD") -> bool:
    return any(q["symbol"] == symbol for q in control(endpoint, "snapshot")["quotes"])


def terminal_positions(endpoint: str) -> list[dict]:
    """Ask the paper terminal itself (not the daemon) what it holds."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(encode(snapshot_command(new_command_id())))
        assert sock.poll(5000), "paper terminal did not answer a snapshot"
        return parse_object(sock.recv())["positions"]
    finally:
        sock.close()


def settled_order(endpoint: str, order_id: str, timeout: float, what: str) -> dict:
    """Wait until the daemon's order journal shows ``order_id`` settled (no longer unknown); return it."""
    return wait_for(
        lambda: next((o for o in control(endpoint, "orders", limit=50)["orders"] if o["id"] == order_id and o["status"] != "unknown"), None),
        timeout,
        what,
    )


class Dealer:
    """Many control requests in flight at once on one DEALER socket."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, kind: str, **fields: object) -> str:
        msg = control_request(kind, **fields)
        self.sock.send(encode(msg))
        return msg["id"]

    def collect(self, ids: set[str], timeout_s: float) -> dict[str, dict]:
        replies: dict[str, dict] = {}
        deadline = time.monotonic() + timeout_s
        while len(replies) < len(ids):
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(replies)} of {len(ids)} replies within {timeout_s}s"
            if self.sock.poll(int(left * 1000)):
                reply = orjson.loads(self.sock.recv())
                replies[reply["id"]] = reply
        return replies

    def close(self) -> None:
        self.sock.close()


#: Most of the 1,010 orders allowed to end "unknown" (their commands answered too late every try) before they settle.
MAX_UNKNOWN = 20


@pytest.mark.timeout(300)
def test_1000_orders_with_lost_and_late_replies_execute_exactly_once(tmp_path: Path) -> None:
    eps = Endpoints()
    # 150 ms: long enough that a busy 2-core CI box does not time out an answered command
    # three times (at 100 ms it did once, on a VM host with 30 % steal, and in 2 of 8 runs with
    # four tries on 2026-12-04). The faults: the first reply of every third command
    # dropped (~337, each waits out one timeout), others delayed past it (every 13th by 200 ms,
    # ~78; every 7th by 250 ms made the test 74 s on the slow host, the suite over 10 minutes).
    # a paper balance of 100,000: margin for the 1,000 small fills (~11,000), not for 100 lots (~108,000)
    env = {**RISK_OFF, "QT_PAPER__BALANCE": "100000", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "150", "QT_EXECUTION__COMMAND_RETRIES": "2"}
    with daemon_process(eps, tmp_path, **env):
        paper = start(
            ["paper", "--rate", "200", "--heartbeat-s", "0.5", "--drop-reply-every", "3", "--delay-reply-every", "13", "--delay-reply-ms", "200"],
            eps.env(tmp_path / "data", **env),
            tmp_path / "paper.log",
        )
        dealer = Dealer(eps.control)
        try:
            wait_for(lambda: len(control(eps.control, "snapshot")["quotes"]) == 5, 15, "quotes for all symbols")
            ticks_before = control(eps.control)["health"]["counters"]["ticks"]
            started = time.monotonic()
            # 1,000 orders the terminal fills, and after every 100th one it refuses: 100 lots is
            # within our risk limits and the broker's volume_max (its specs), beyond the account's
            # margin, which only the terminal checks (MT5 10019); the faults hit both kinds. (150 lots,
            # used until the paper terminal sent specs, is now refused by the daemon before a round trip.)
            ids = set()
            for i in range(1000):
                ids.add(dealer.send("trade", symbol="EURUSD", side="buy" if i % 2 else "sell", lots=0.01, source="test"))
                if i % 100 == 0:
                    ids.add(dealer.send("trade", symbol="EURUSD", side="buy", lots=100.0, source="test"))
            replies = dealer.collect(ids, timeout_s=240)
            elapsed = time.monotonic() - started

            orders = {rid: r["order"] for rid, r in replies.items()}
            unsettled = [(o["id"], o["status"], o["error"]) for o in orders.values() if o["status"] not in ("filled", "rejected", "unknown")]
            assert not unsettled, f"orders left pending: {unsettled[:5]}"
            # A command answered too late three times over is "unknown" and settles from the terminal's positions,
            # the design's fallback: 5 of 1,010 when the suite ran at half speed beside two other loads (2026-12-05),
            # none on a machine to itself. The retries must carry all but a few; the few must settle, exactly once.
            unknown = [rid for rid, o in orders.items() if o["status"] == "unknown"]
            assert len(unknown) <= MAX_UNKNOWN, f"{len(unknown)} orders unknown after every try (the retries not carrying them?)"
            for rid in unknown:
                orders[rid] = wait_for(
                    lambda rid=rid: next((o for o in control(eps.control, "orders", request_id=rid)["orders"] if o["status"] != "unknown"), None),
                    15,
                    f"order of request {rid} to settle from the terminal's positions",
                )
                assert orders[rid]["reconciled"] is True
            rejected = [o for o in orders.values() if o["status"] == "rejected"]
            # a refusal the terminal answered carries its code; a reconciled one (no reply came) cannot
            assert len(rejected) == 10 and all(o["error_code"] == 10019 or o["reconciled"] for o in rejected)
            filled_ids = {o["id"] for o in orders.values() if o["status"] == "filled"}
            assert len(filled_ids) == 1000

            held = terminal_positions(eps.command)
            comments = [p["comment"] for p in held]
            assert len(comments) == len(set(comments)) == 1000, "an order executed twice or not at all"
            assert {c.removeprefix("QT-") for c in comments} == filled_ids

            status = control(eps.control)["health"]
            assert status["counters"]["orders_filled"] == 1000 and status["counters"].get("orders_unknown", 0) == len(unknown)
            assert status["latency"]["command_round_trip"]["count"] == 1010 - len(unknown)  # a round trip is a reply received
            # ticks kept flowing at the terminal's full rate while ~415 commands waited out a timeout
            # (measured: 1.000 of 200/s; 0.95 leaves room for the run's first and last moments)
            # read until it holds: after a stall the terminal sends what was due at once, so one reading taken in a
            # stall's wake undercounts (two xdist workers share the 2 cores); 2 s: 400 ticks, under the 5 % it allows
            wait_for(lambda: control(eps.control)["health"]["counters"]["ticks"] - ticks_before > 0.95 * 200 * elapsed, 2, f"{0.95 * 200 * elapsed:.0f} ticks in {elapsed:.1f}s at 200/s")
            assert control(eps.control, "orders", limit=10)["orders"][0]["status"] in ("filled", "rejected")
        finally:
            dealer.close()
            stop(paper)


@pytest.mark.timeout(120)
def test_daemon_killed_between_command_and_reply_reconciles_instead_of_resending(tmp_path: Path) -> None:
    eps = Endpoints()
    # The terminal holds every reply 10 s: the kill must land inside that window even
    # on a loaded CI box (3 s was not always enough: the reply won the race).
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "20000"}
    paper = None
    with daemon_process(eps, tmp_path, **env) as daemon:
        paper = start(
            ["paper", "--rate", "100", "--heartbeat-s", "0.3", "--delay-reply-every", "1", "--delay-reply-ms", "10000"],
            eps.env(tmp_path / "data", **env),
            tmp_path / "paper.log",
        )
        wait_for(lambda: has_quote(eps.control), 15, "a EURUSD quote")
        dealer = Dealer(eps.control)
        dealer.send("trade", symbol="EURUSD", side="buy", lots=0.05, source="test")
        pending = wait_for(
            lambda: [o for o in control(eps.control, "orders")["orders"] if o["status"] == "pending"], 5, "the order to be journaled as pending"
        )
        (order,) = pending
        # the terminal executes at once but holds the reply for 10 s: kill the daemon meanwhile
        wait_for(lambda: any(p["comment"] == "QT-" + order["id"] for p in terminal_positions(eps.command)), 5, "the terminal to execute")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        dealer.close()
    try:
        with daemon_process(eps, tmp_path, **env):
            settled = settled_order(eps.control, order["id"], 15, "the order to be reconciled from the terminal's positions")
            assert settled["status"] == "filled" and settled["reconciled"] is True
            assert settled["ticket"] is not None
            held = [p for p in terminal_positions(eps.command) if p["comment"] == "QT-" + order["id"]]
            assert len(held) == 1, "the order was sent again after the restart"
            # and the restarted daemon can trade with the terminal it never got a hello from
            assert control(eps.control, "trade", timeout_ms=30_000, symbol="EURUSD", side="sell", lots=0.01, source="test")["order"]["status"] == "filled"
    finally:
        stop(paper)


@pytest.mark.timeout(120)
def test_frozen_terminal_ends_unknown_then_settles_while_another_keeps_filling(tmp_path: Path) -> None:
    eps = Endpoints(spare=1)
    # 3 s: B's answered commands never time out on a loaded host, and A's stuck one takes 9 s to give
    # up, long enough for B's ten orders (ten round trips through a paper process) to fill meanwhile if they
    # do not wait for A; 1 s (3 s to give up) was within reach of two xdist workers' load
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "3000", "QT_EXECUTION__COMMAND_RETRIES": "2"}
    data = tmp_path / "data"
    cmd_b = f"tcp://127.0.0.1:{eps.spare_ports[0]}"
    with daemon_process(eps, tmp_path, **env):
        a = start(["paper", "--terminal", "A@Test", "--rate", "100", "--heartbeat-s", "0.3"], eps.env(data, **env), tmp_path / "a.log")
        b = start(["paper", "--terminal", "B@Test", "--rate", "100", "--heartbeat-s", "0.3", "--command-endpoint", cmd_b], eps.env(data, **env), tmp_path / "b.log")
        dealer = Dealer(eps.control)
        try:
            wait_for(lambda: len([t for t in control(eps.control)["health"]["terminals"] if t["connected"]]) == 2, 15, "both terminals")
            # each terminal's orders are checked against its own quote: wait for both (on a loaded host
            # A's first EURUSD tick can come after B's, and A's order was then refused 422, not left unknown)
            wait_for(
                lambda: {q["terminal"] for q in control(eps.control, "snapshot")["terminal_quotes"] if q["symbol"] == "EURUSD"} >= {"A@Test", "B@Test"},
                15,
                "a EURUSD quote from A and from B",
            )
            ambiguous = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01)
            assert ambiguous["ok"] is False and "several terminals" in ambiguous["error"]

            a.send_signal(signal.SIGSTOP)  # frozen mid-command: alive, silent
            stuck = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.02, terminal="A@Test", source="test")
            for _ in range(10):
                reply = control(eps.control, "trade", timeout_ms=5000, symbol="EURUSD", side="buy", lots=0.01, terminal="B@Test", source="test")
                assert reply["order"]["status"] == "filled", reply["order"]
            assert not dealer.sock.poll(0), "B's orders waited for A: A's stuck order was settled before they filled"

            (unknown,) = dealer.collect({stuck}, timeout_s=30).values()
            assert unknown["ok"] is False and unknown["status"] == 504 and unknown["order"]["status"] == "unknown", unknown
            order_id = unknown["order"]["id"]

            a.send_signal(signal.SIGCONT)
            settled = settled_order(eps.control, order_id, 20, "the unknown order to settle once A is back")
            held = [p for p in terminal_positions(eps.command) if p["comment"] == "QT-" + order_id]
            assert len(held) <= 1
            assert settled["status"] == ("filled" if held else "rejected")
            assert settled["reconciled"] is True
        finally:
            dealer.close()
            a.send_signal(signal.SIGCONT)
            stop(a)
            stop(b)


@pytest.mark.timeout(120)
def test_trade_timeout_reply_settles_from_positions_not_as_rejected(tmp_path: Path) -> None:
    """MT4's 128 (trade timeout) and MT5's 10008 (placed) may hide an executed order: unknown, then reconciled.

    The paper terminal executes every command and answers 128, as MT4 can;
    settling that as rejected would leave a live position the daemon does not
    know it owns.
    """
    eps = Endpoints()
    with daemon_process(eps, tmp_path, **RISK_OFF):
        paper = start(
            ["paper", "--rate", "100", "--heartbeat-s", "0.3", "--timeout-reply-every", "1"],
            eps.env(tmp_path / "data", **RISK_OFF),
            tmp_path / "paper.log",
        )
        try:
            wait_for(lambda: has_quote(eps.control), 15, "a EURUSD quote")
            reply = control(eps.control, "trade", timeout_ms=10_000, symbol="EURUSD", side="buy", lots=0.03, source="test")
            assert reply["ok"] is False and reply["status"] == 504, reply
            order = reply["order"]
            assert order["status"] == "unknown" and "trade timeout (128)" in reply["error"]
            settled = settled_order(eps.control, order["id"], 15, "the order to be reconciled from the terminal's positions")
            assert settled["status"] == "filled" and settled["reconciled"] is True
            assert [p["comment"] for p in terminal_positions(eps.command)].count("QT-" + order["id"]) == 1

            # A partial close and a modify answered 128 as well: executed, so filled once the positions show it
            # (a partial close keeps its ticket; a modify changes no ticket: both used to settle as rejected).
            ticket = int(settled["ticket"])

            reply = control(eps.control, "close", timeout_ms=10_000, ticket=ticket, lots=0.01)
            assert reply["ok"] is False and reply["order"]["status"] == "unknown", reply
            closed = settled_order(eps.control, reply["order"]["id"], 15, "the partial close to be reconciled")
            assert closed["status"] == "filled" and closed["reconciled"] is True and closed["lots"] == pytest.approx(0.01), closed
            (held,) = [p for p in terminal_positions(eps.command) if p["ticket"] == ticket]
            assert held["lots"] == pytest.approx(0.02)
            bid = next(q["bid"] for q in control(eps.control, "snapshot")["quotes"] if q["symbol"] == "EURUSD")
            sl = round(bid - 0.0050, 5)
            reply = control(eps.control, "modify", timeout_ms=10_000, ticket=ticket, sl=sl, tp=0.0)
            assert reply["ok"] is False and reply["order"]["status"] == "unknown", reply
            modified = settled_order(eps.control, reply["order"]["id"], 15, "the modify to be reconciled")
            assert modified["status"] == "filled" and modified["reconciled"] is True, modified
            (held,) = [p for p in terminal_positions(eps.command) if p["ticket"] == ticket]
            assert held["sl"] == pytest.approx(sl)
        finally:
            stop(paper)


@pytest.mark.timeout(120)
def test_an_order_journal_that_cannot_be_written_refuses_new_orders_and_the_daemon_goes_on(tmp_path: Path) -> None:
    """SQLite refusing the order journal (a full disk) raised out of the daemon's loop; now the order is not
    sent (503, its reason named) and the daemon keeps serving: the next order, once the journal works, fills."""
    d, eps = inproc_daemon(tmp_path / "data", **RISK_OFF)
    engine = d.control.async_handlers["trade"].__self__
    with serving(d) as loop:
        paper = start(["paper", "--rate", "100"], eps.env(tmp_path / "paper-data", **RISK_OFF), tmp_path / "paper.log")
        try:
            wait_for(lambda: has_quote(eps.control), 20, "a EURUSD quote")
            real_save = engine.journal.save

            def full_disk(order: object) -> None:
                raise sqlite3.OperationalError("database or disk is full")

            engine.journal.save = full_disk
            refused = control(eps.control, "trade", timeout_ms=10_000, symbol="EURUSD", side="buy", lots=0.01, source="test")
            assert refused["ok"] is False and refused["status"] == 503 and "order journal" in refused["error"], refused
            assert terminal_positions(eps.command) == []  # nothing was sent
            assert loop.is_alive() and control(eps.control)["health"]["counters"]["order_journal_errors"] == 1
            engine.journal.save = real_save
            filled = control(eps.control, "trade", timeout_ms=10_000, symbol="EURUSD", side="buy", lots=0.01, source="test")
            assert filled["ok"] is True and filled["order"]["status"] == "filled", filled
            # settled, nothing of it is kept in memory (a soak found every request's id held for good), and a
            # client that retries the request still finds its order, in the journal
            assert engine.orders == {} and engine._by_request == {}
            assert [o["id"] for o in control(eps.control, "orders", request_id=filled["id"])["orders"]] == [filled["order"]["id"]]
        finally:
            stop(paper)


@pytest.mark.timeout(60)
def test_a_close_after_another_filled_since_the_last_positions_is_not_settled_by_that_shrink(tmp_path: Path) -> None:
    """Stale lots: the daemon knows a position's lots from the terminal's last positions event. A partial close
    filled since then shrinks them at the next event; a second close sent meanwhile and lost (never executed)
    must not take that shrink for its own and be settled as filled. The terminal is a script on a real ROUTER
    socket (it answers the first close, swallows the second), the daemon the real one in process."""

    # 2 s: the test answers the first close from the daemon's own process (one GIL); 300 ms was within a loaded host's stall
    d, eps = inproc_daemon(tmp_path / "data", **RISK_OFF, QT_EXECUTION__COMMAND_TIMEOUT_MS="2000", QT_EXECUTION__COMMAND_RETRIES="0")
    ctx = zmq.Context.instance()
    terminal = ctx.socket(zmq.ROUTER)
    terminal.setsockopt(zmq.LINGER, 0)
    port = terminal.bind_to_random_port("tcp://127.0.0.1")
    events = events_push(eps.events)
    name, seq = "script@Broker", iter(range(1, 1000))
    opened_msc = now_msc() - 60_000

    def send_event(**fields: object) -> None:
        events.send(event_frame(name, {"seq": next(seq), **fields}))

    def positions(lots: float) -> None:
        held = {"ticket": 500, "symbol": "EURUSD", "side": "buy", "lots": lots, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
                "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "manual", "open_time_msc": opened_msc}  # fmt: skip
        send_event(type="positions", positions=[held])

    def next_command() -> tuple[bytes, dict]:
        assert terminal.poll(10_000), "no command reached the terminal"
        ident, _, raw = terminal.recv_multipart()
        return ident, decode_command(raw)

    dealer = Dealer(eps.control)
    try:
        with serving(d):
            events.send(event_frame(name, {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{port}", "symbols": ["EURUSD"]}))
            positions(0.10)
            wait_for(lambda: control(eps.control, "snapshot")["positions"], 10, "the position from the positions event")

            first = dealer.send("close", ticket=500, lots=0.03, source="test")
            ident, command = next_command()
            terminal.send_multipart([ident, b"", encode(reply_ok(command["id"], ticket=500, price=1.1, lots=0.03, time_msc=now_msc()))])
            (filled,) = dealer.collect({first}, timeout_s=10).values()
            assert filled["order"]["status"] == "filled", filled

            second = dealer.send("close", ticket=500, lots=0.02, source="test")  # before the next positions event
            next_command()  # swallowed: never executed, never answered
            (lost,) = dealer.collect({second}, timeout_s=10).values()
            assert lost["order"]["status"] == "unknown", lost

            for _ in range(3):  # settle_snapshots events, each showing the first close alone: 0.10 -> 0.07
                positions(0.07)
            settled = settled_order(eps.control, lost["order"]["id"], 10, "the lost close to be settled from the positions")
            assert settled["status"] == "rejected", settled  # 'filled' if judged against the lots before the first close
    finally:
        dealer.close()
        events.close()
        terminal.close()
        d.close()


class ScriptedTerminal:
    """A terminal that is a test script on a real ROUTER socket: events on a real PUSH, commands answered by hand."""

    def __init__(self, eps: Endpoints, name: str = "script@Broker") -> None:
        ctx = zmq.Context.instance()
        self.name = name
        self.commands = ctx.socket(zmq.ROUTER)
        self.commands.setsockopt(zmq.LINGER, 0)
        self.port = self.commands.bind_to_random_port("tcp://127.0.0.1")
        self.events = events_push(eps.events)
        self._seq = iter(range(1000))

    def send(self, **fields: object) -> None:
        self.events.send(self.build(**fields))

    def build(self, **fields: object) -> bytes:
        """An event numbered now, to send now or later (built before a command ran, read after its reply)."""
        self.last_seq = next(self._seq)
        return event_frame(self.name, {"seq": self.last_seq, **fields})

    def hello(self, kind: str = "hello", symbols: tuple[str, ...] = ("EURUSD",), send_positions: bool = True, **fields: object) -> None:
        """A hello (or a heartbeat that repeats its fields, ``kind="heartbeat", dropped=0``), then an empty positions
        list, as the EAs send them: the daemon opens nothing for a terminal whose positions it has not had."""
        self.send(type=kind, platform="MT4", command_endpoint=f"tcp://127.0.0.1:{self.port}", symbols=list(symbols), **fields)
        if send_positions:
            self.send(type="positions", positions=[])

    def account(self, equity: float, currency: str = "USD", **fields: object) -> None:
        self.send(type="account", login=5012345, currency=currency, balance=10000.0, equity=equity, margin=0.0, free_margin=equity, leverage=100, **fields)

    def next_command(self, timeout_ms: int = 10_000) -> tuple[bytes, dict] | None:
        if not self.commands.poll(timeout_ms):
            return None
        ident, _, raw = self.commands.recv_multipart()
        return ident, decode_command(raw)

    def answer(self, ident: bytes, reply: dict) -> None:
        self.commands.send_multipart([ident, b"", encode(reply)])

    def close(self) -> None:
        self.events.close()
        self.commands.close()


@contextlib.contextmanager
def scripted_daemon(tmp_path: Path, *, terminal: str = "script@Broker", **env: str) -> Iterator[tuple[Endpoints, ScriptedTerminal, Dealer]]:
    """The real daemon in process with its loop on a thread, a scripted terminal (no hello yet) and a dealer."""
    d, eps = inproc_daemon(tmp_path / "data", **env)
    term = ScriptedTerminal(eps, terminal)
    dealer = Dealer(eps.control)
    try:
        with serving(d):
            yield eps, term, dealer
    finally:
        dealer.close()
        term.close()
        d.close()


def held_position(ticket: int, **fields: object) -> dict:
    """A position as a terminal lists it: an EURUSD buy of 0.10 opened by hand a minute ago, ``fields`` changed."""
    return {"ticket": ticket, "symbol": "EURUSD", "side": "buy", "lots": 0.10, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
            "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "manual", "open_time_msc": now_msc() - 60_000, **fields}  # fmt: skip


def refused_here(term: ScriptedTerminal, reply: dict, why: str) -> None:
    """The daemon refused the order (422, ``why`` in its reason) and nothing reached the terminal."""
    assert reply["ok"] is False and reply["status"] == 422 and why in reply["error"], reply
    assert term.next_command(300) is None, f"an order refused for {why!r} reached the terminal"


@pytest.mark.timeout(60)
def test_what_an_execution_audit_found_over_real_sockets(tmp_path: Path) -> None:
    """Three defects a read-only audit of execution/ found, each run against the real daemon in process:
    - a partial close below the lot step was rounded to 0 lots, which on the wire closes the whole position;
    - an open whose outcome is unknown (every try timed out; the terminal may still run it) did not count
      against the risk limits, so every later order passed max_open_positions;
    - an open the terminal filled but whose stops it refused (MT4 StopsAfterFill, reply field stops_error)
      was reported filled with the stops asked for: the app showed protection the position does not have."""
    # A long command timeout: the test answers each command itself, and the GIL it shares with the daemon's loop
    # must never turn an answer into a timeout. The unknown outcome comes from MT4's 128 (trade timeout) instead.
    env = {**RISK_OFF, "QT_RISK__MAX_OPEN_POSITIONS": "1", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000", "QT_EXECUTION__COMMAND_RETRIES": "0"}
    held = held_position(500)
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello()
        term.send(type="positions", positions=[held])
        wait_for(lambda: control(eps.control, "snapshot")["positions"], 10, "the position from the positions event")

        # a position whose (trailing) stop sits near the price: a new TP alone was refused for that stop
        term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
        term.send(type="positions", positions=[{**held, "sl": 1.09995}])
        wait_for(lambda: control(eps.control, "snapshot")["positions"][0]["sl"] == 1.09995, 10, "the stop near the price")
        modify = dealer.send("modify", ticket=500, tp=1.12, source="test")
        ident, command = term.next_command()
        assert command["type"] == "modify" and command["tp"] == 1.12 and command["sl"] == 1.09995, command
        term.answer(ident, reply_ok(command["id"], ticket=500, time_msc=now_msc()))
        (modified,) = dealer.collect({modify}, timeout_s=10).values()
        assert modified["ok"] is True, modified
        term.send(type="positions", positions=[held])

        below = control(eps.control, "close", ticket=500, lots=0.004, source="test")
        assert below["ok"] is False and below["status"] == 422 and "lot step" in below["error"], below
        assert term.next_command(300) is None, "a close below the lot step reached the terminal"

        term.send(type="positions", positions=[])  # flat: the one position allowed is free
        wait_for(lambda: not control(eps.control, "snapshot")["positions"], 10, "no positions")

        def quote() -> None:
            fresh_quote(term, eps)

        quote()
        stopped = dealer.send("trade", symbol="EURUSD", side="sell", lots=0.01, sl=1.1050, tp=1.0950, source="test")
        ident, command = term.next_command()
        assert command["type"] == "open" and command["sl"] == 1.105, command
        term.answer(ident, reply_ok(command["id"], ticket=777, price=1.1, lots=0.01, time_msc=now_msc(), stops_error={"code": 130, "message": "invalid stops"}))
        (filled,) = dealer.collect({stopped}, timeout_s=10).values()
        order = filled["order"]
        assert filled["ok"] is True and order["status"] == "filled" and order["ticket"] == "777", filled
        assert order["sl"] == 0.0 and order["tp"] == 0.0 and "refused its stops" in order["error"] and order["error_code"] == 130, order
        assert control(eps.control)["health"]["counters"]["orders_stops_refused"] == 1

        # the filled sell above counts until a positions event lists it (the risk review's fill gap); it is then closed
        term.send(type="positions", positions=[{**held, "ticket": 777, "side": "sell", "lots": 0.01, "comment": "QT-" + order["id"]}])
        term.send(type="positions", positions=[])
        wait_for(lambda: not control(eps.control, "snapshot")["positions"], 10, "no positions")
        quote()  # fresh: on a loaded host the last one can be past max_quote_age_ms (5 s) by now, and the open refused unsent
        first = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test")
        ident, command = term.next_command()
        term.answer(ident, reply_error(command["id"], 128, "trade timeout"))  # may have executed: unknown
        (unknown,) = dealer.collect({first}, timeout_s=10).values()
        assert unknown["order"]["status"] == "unknown", unknown
        quote()
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test"), "max_open_positions")


def fresh_quote(term: ScriptedTerminal, eps: Endpoints, symbol: str = "EURUSD") -> None:
    """A tick the daemon has handled before this returns: an order sent next is judged on a fresh quote (the risk
    rules refuse one older than max_quote_age_ms, 5 s, which a loaded host reached between a test's steps)."""
    before = control(eps.control)["health"]["counters"].get("ticks", 0)  # none counted yet: no key
    term.send(type="tick", symbol=symbol, bid=1.1, ask=1.1001, volume=1)
    wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks", 0) > before, 10, f"a {symbol} tick")


@pytest.mark.timeout(90)
def test_what_a_risk_review_found_over_real_sockets(tmp_path: Path) -> None:
    """Four defects a read-only review of the order path found (2026-12-04), each against the real daemon in process:
    - opens queued behind a command the terminal had not answered were sent after the kill switch went on, and
      with the quote they were approved on long stale: the rules ran once, when they were queued;
    - an open the terminal filled counted against no limit until its next positions event (the reply comes first);
    - without a tick value from the terminal, lots were sized as if the account were in USD (a JPY account: 150x);
    - a stop given in pips (20 on EURUSD) was sent as the price 20."""
    env = {**RISK_OFF, "QT_RISK__MAX_LOTS_PER_SYMBOL": "0.05", "QT_RISK__MAX_QUOTE_AGE_MS": "3000", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000", "QT_EXECUTION__COMMAND_RETRIES": "0"}  # 3 s: a quote -> order pair within a loaded host's stall
    stops = {"sl": 1.09, "tp": 1.11}

    def quote(symbol: str = "EURUSD") -> None:
        fresh_quote(term, eps, symbol)

    def fill(ident: bytes, command: dict, ticket: int) -> None:
        term.answer(ident, reply_ok(command["id"], ticket=ticket, price=1.1, lots=command["lots"], time_msc=now_msc()))

    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello(symbols=("EURUSD", "GBPUSD"))
        term.account(10_000.0)
        term.send(type="positions", positions=[])
        quote()

        # the kill switch: the first open waits for its reply, two queue behind it
        first = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        assert command["login"] == 5012345, command  # the account it is meant for (the EA refuses it on another)
        queued = {dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops) for _ in range(2)}
        wait_for(lambda: control(eps.control)["health"]["data_flow"]["pending_trades"] == 3, 10, "three orders pending")
        switched = control(eps.control, "risk", kill_switch=True, source="test")
        assert switched["ok"] is True and switched["kill_switch"] is True, switched
        assert control(eps.control)["health"]["trading"] == {"state": "halted", "kill_switch": True}
        refused = dealer.collect(queued, timeout_s=5)  # at once, not when their turn would have come
        assert all(r["status"] == 422 and "kill switch" in r["error"] and r["order"]["status"] == "rejected" for r in refused.values()), refused
        fill(ident, command, 9001)
        assert dealer.collect({first}, timeout_s=10)[first]["order"]["status"] == "filled"
        assert term.next_command(300) is None, "an open approved before the kill switch reached the terminal after it"
        control(eps.control, "risk", kill_switch=False, source="test")

        # a quote that went stale while an open waited its turn
        quote()
        held = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        late = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        time.sleep(3.3)  # past max_quote_age_ms, no tick meanwhile
        fill(ident, command, 9002)
        replies = dealer.collect({held, late}, timeout_s=10)
        assert replies[held]["order"]["status"] == "filled", replies[held]
        assert replies[late]["status"] == 422 and "quote is stale" in replies[late]["error"] and "not sent" in replies[late]["error"], replies[late]
        assert term.next_command(300) is None, "an open whose quote went stale in the queue reached the terminal"

        # a fill counts against the limits before the terminal's positions list it
        quote("GBPUSD")
        opened = dealer.send("trade", symbol="GBPUSD", side="buy", lots=0.05, source="test", **stops)
        ident, command = term.next_command()
        fill(ident, command, 9003)
        assert dealer.collect({opened}, timeout_s=10)[opened]["order"]["status"] == "filled"
        refused_here(term, control(eps.control, "trade", symbol="GBPUSD", side="buy", lots=0.01, source="test", **stops), "max_lots_per_symbol")
        # closed by its stop before any positions event listed it: after settle_snapshots (3) events without it, free
        for _ in range(3):
            term.send(type="positions", positions=[])
        quote("GBPUSD")  # one PUSH, in order: its tick is handled after the positions events
        again = dealer.send("trade", symbol="GBPUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        assert command["symbol"] == "GBPUSD" and command["lots"] == 0.01, command
        fill(ident, command, 9004)
        dealer.collect({again}, timeout_s=10)

        # a stop in pips, not a price
        quote()
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="sell", lots=0.01, stop_loss=20, source="test"), "risk.max_stop_pct")

        # sizing without a tick value on a JPY account
        term.account(1_000_000.0, currency="JPY")
        wait_for(lambda: control(eps.control, "snapshot")["accounts"][0]["currency"] == "JPY", 10, "the JPY account")
        quote()
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", source="test"), "cannot size EURUSD")


@pytest.mark.timeout(60)
def test_positions_events_built_before_a_command_ran_do_not_settle_it_when_read_after_its_reply(tmp_path: Path) -> None:
    """A hunt (2026-12-05): a daemon behind on a terminal's events reads positions events the terminal built before
    a fill after the fill's reply (replies come back in milliseconds on their own socket). Three of them dropped the
    fill from the limits' count while the positions it had read did not list it yet: with max_open_positions 3,
    nine positions opened one after another. And an open the terminal executed but answered with a trade timeout
    was settled "not executed" by three such events. The reply's event_seq (the last event built before the
    command ran) now tells which events can know of it."""
    env = {**RISK_OFF, "QT_RISK__MAX_OPEN_POSITIONS": "1", "QT_RISK__MAX_QUOTE_AGE_MS": "3000", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000", "QT_EXECUTION__COMMAND_RETRIES": "0"}
    stops = {"sl": 1.09, "tp": 1.11}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello()
        term.account(10_000.0)
        fresh_quote(term, eps)

        # a fill whose reply comes before three positions events built before it ran
        opened = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        built_before = [term.build(type="positions", positions=[]) for _ in range(3)]
        term.answer(ident, with_event_seq(reply_ok(command["id"], ticket=9101, price=1.1, lots=0.01, time_msc=now_msc()), term.last_seq))
        assert dealer.collect({opened}, timeout_s=10)[opened]["order"]["status"] == "filled"
        for frame in built_before:
            term.events.send(frame)
        fresh_quote(term, eps)  # one PUSH, in order: handled after the three
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops), "max_open_positions")
        # three built after it without it (its stop closed it): the slot is free again
        for _ in range(3):
            term.send(type="positions", positions=[])
        fresh_quote(term, eps)

        # executed, answered with a trade timeout: events built before it do not settle it as not executed
        timed_out = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        built_before = [term.build(type="positions", positions=[]) for _ in range(3)]
        term.answer(ident, with_event_seq(reply_error(command["id"], 128, "trade timeout"), term.last_seq))
        assert dealer.collect({timed_out}, timeout_s=10)[timed_out]["order"]["status"] == "unknown"
        for frame in built_before:
            term.events.send(frame)
        fresh_quote(term, eps)
        unknown = [o for o in control(eps.control, "orders", limit=50)["orders"] if o["id"] == command["id"]]
        assert [o["status"] for o in unknown] == ["unknown"], unknown
        term.send(type="positions", positions=[held_position(9102, lots=0.01, comment="QT-" + command["id"])])  # built after it ran
        settled = settled_order(eps.control, command["id"], 10, "the timed-out open settled from the positions")
        assert settled["status"] == "filled" and settled["ticket"] == "9102", settled

        # a partial close: an event built before it ran, read after its reply, still shows the old lots, so the
        # next close of that position must not take them as the position's (a review of the change, 2026-12-05)
        term.send(type="positions", positions=[held_position(9103, lots=0.10)])
        wait_for(lambda: any(p["ticket"] == "9103" for p in control(eps.control, "snapshot")["positions"]), 10, "position 9103")
        partial = dealer.send("close", ticket=9103, lots=0.04, source="test")
        ident, command = term.next_command()
        assert command["position_lots"] == 0.10, command
        built_before = term.build(type="positions", positions=[held_position(9103, lots=0.10)])
        term.answer(ident, with_event_seq(reply_ok(command["id"], ticket=9103, price=1.1, lots=0.04, time_msc=now_msc()), term.last_seq))
        assert dealer.collect({partial}, timeout_s=10)[partial]["order"]["status"] == "filled"
        term.events.send(built_before)
        fresh_quote(term, eps)  # handled after it
        again = dealer.send("close", ticket=9103, lots=0.03, source="test")
        ident, command = term.next_command()
        assert "position_lots" not in command, command  # unknown until an event built after the first close
        term.answer(ident, reply_ok(command["id"], ticket=9103, price=1.1, lots=0.03, time_msc=now_msc()))
        dealer.collect({again}, timeout_s=10)


@pytest.mark.timeout(60)
def test_an_ea_reinitialised_while_the_daemon_is_behind_answers_from_its_new_run(tmp_path: Path) -> None:
    """Left open by the change above (2026-12-05): an EA re-initialised in place (new inputs; it keeps its sockets)
    while the daemon is behind on its events answers a command from its new run, whose seq restarts at 0, before
    the daemon has read the new hello. The old run's queued positions events, numbered above the reply's
    event_seq, then counted as built after the command: they dropped a fill from max_open_positions and settled
    an executed open as "not executed". The reply and the positions events now name their ``run``, and (run, seq)
    orders them."""
    env = {**RISK_OFF, "QT_RISK__MAX_OPEN_POSITIONS": "1", "QT_RISK__MAX_QUOTE_AGE_MS": "3000", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000", "QT_EXECUTION__COMMAND_RETRIES": "0"}
    stops = {"sl": 1.09, "tp": 1.11}
    old_run, new_run = 1_700_000_000_000, 1_700_000_060_000
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello(run=old_run)
        term.account(10_000.0)
        fresh_quote(term, eps)
        endpoint = f"tcp://127.0.0.1:{term.port}"

        def new_run_starts(positions: list[dict]) -> int:
            """The new run's hello and positions (seq 0 and 1), built before the command ran in it: its event_seq."""
            term.events.send(event_frame(term.name, {"seq": 0, "type": "hello", "platform": "MT4", "command_endpoint": endpoint, "symbols": ["EURUSD"], "run": new_run}))
            term.events.send(event_frame(term.name, {"seq": 1, "type": "positions", "positions": positions, "run": new_run}))
            return 1

        # a fill answered by the new run while three of the old run's events are still queued for the daemon
        opened = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        queued = [term.build(type="positions", positions=[], run=old_run) for _ in range(3)]
        term.answer(ident, with_event_seq(reply_ok(command["id"], ticket=9201, price=1.1, lots=0.01, time_msc=now_msc()), 1, new_run))
        assert dealer.collect({opened}, timeout_s=10)[opened]["order"]["status"] == "filled"
        for frame in queued:
            term.events.send(frame)
        fresh_quote(term, eps)  # one PUSH, in order: handled after the three
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops), "max_open_positions")
        new_run_starts([])  # built before the command ran in the new run: not the fill's outcome either
        fresh_quote(term, eps)
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops), "max_open_positions")
        for seq in (2, 3, 4):  # built after it, without it (its stop closed it): the slot is free again
            term.events.send(event_frame(term.name, {"seq": seq, "type": "positions", "positions": [], "run": new_run}))
        fresh_quote(term, eps)

        # an open the new run executed and answered with a trade timeout: the old run's events do not settle it
        old_run, new_run = new_run, new_run + 60_000
        timed_out = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        queued = [event_frame(term.name, {"seq": seq, "type": "positions", "positions": [], "run": old_run}) for seq in (5, 6, 7)]
        term.answer(ident, with_event_seq(reply_error(command["id"], 128, "trade timeout"), 1, new_run))
        assert dealer.collect({timed_out}, timeout_s=10)[timed_out]["order"]["status"] == "unknown"
        for frame in queued:
            term.events.send(frame)
        fresh_quote(term, eps)
        unknown = [o for o in control(eps.control, "orders", limit=50)["orders"] if o["id"] == command["id"]]
        assert [o["status"] for o in unknown] == ["unknown"], unknown
        new_run_starts([])
        term.events.send(event_frame(term.name, {"seq": 2, "type": "positions", "positions": [held_position(9202, lots=0.01, comment="QT-" + command["id"])], "run": new_run}))
        settled = settled_order(eps.control, command["id"], 10, "the timed-out open settled from the new run's positions")
        assert settled["status"] == "filled" and settled["ticket"] == "9202", settled

        # a run whose number is smaller than the one that answered (the EA's clock set back before it restarted):
        # ordered by when the daemon read it, its events come after, and settle an unexecuted open (a review)
        term.events.send(event_frame(term.name, {"seq": 3, "type": "positions", "positions": [], "run": new_run}))  # 9202 closed
        fresh_quote(term, eps)
        timed_out = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **stops)
        ident, command = term.next_command()
        term.answer(ident, with_event_seq(reply_error(command["id"], 128, "trade timeout"), 3, new_run))
        assert dealer.collect({timed_out}, timeout_s=10)[timed_out]["order"]["status"] == "unknown"
        new_run -= 240_000
        new_run_starts([])
        for seq in (2, 3):
            term.events.send(event_frame(term.name, {"seq": seq, "type": "positions", "positions": [], "run": new_run}))
        settled = settled_order(eps.control, command["id"], 10, "the open settled from the set-back run's positions")
        assert settled["status"] == "rejected" and settled["error"].startswith("not executed"), settled


@pytest.mark.timeout(60)
def test_an_open_whose_stop_out_would_lose_too_much_of_the_account_is_refused(tmp_path: Path) -> None:
    """A hunt (2026-12-05): after a 35-pip Monday gap volatility_20 held the gap's return, and an app order of 0.5
    lots without a stop got a default stop 948 pips away: 47% of the account at risk, with nothing to refuse it
    (sizing keeps a stop-out to risk_pct only when lots are missing). risk.max_trade_risk_pct (10) now does."""
    env = {"QT_RISK__MAX_QUOTE_AGE_MS": "3000", "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000"}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello()
        term.account(10_000.0)
        fresh_quote(term, eps)  # bid 1.1, ask 1.1001
        far = {"sl": round(1.1001 - 0.0948, 5), "tp": 1.2}
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.5, source="test", **far), "risk.max_trade_risk_pct 10")
        reply = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.5, source="test", **far)
        assert "would lose 4740.00 USD (47.4% of equity) at 0.5 lots" in reply["error"], reply
        small = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", **far)  # 94.80 USD: within
        ident, command = term.next_command()
        assert command["lots"] == 0.01 and command["sl"] == far["sl"], command
        term.answer(ident, reply_ok(command["id"], ticket=9401, price=1.1001, lots=0.01, time_msc=now_msc()))
        assert dealer.collect({small}, timeout_s=10)[small]["order"]["status"] == "filled"


def one_soon_stale_and_another(eps: Endpoints, term: ScriptedTerminal, other: ScriptedTerminal) -> None:
    """Both streaming EURUSD with an account and a fresh quote; ``term`` beats every 0.3 s (stale 0.9 s after it stops)."""
    term.hello(heartbeat_s=0.3)
    other.hello()
    for t in (term, other):
        t.account(10_000.0)
        fresh_quote(t, eps)


@pytest.mark.timeout(60)
def test_an_unnamed_order_never_goes_to_another_account_while_the_default_terminal_is_silent(tmp_path: Path) -> None:
    """A hunt (2026-12-05): with execution.default_terminal set and two terminals streaming EURUSD, the default one
    going stale for a moment sent the auto-trades (orders naming no terminal) to the other account, the one the
    trader never picked, while the default's own position was still open. They are refused (503) instead."""
    env = {**RISK_OFF, "QT_EXECUTION__DEFAULT_TERMINAL": "script@Broker", "QT_DAEMON__HEALTH_INTERVAL_S": "0.1", "QT_RISK__MAX_QUOTE_AGE_MS": "60000"}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        other = ScriptedTerminal(eps, name="prop@OtherBroker")
        try:
            one_soon_stale_and_another(eps, term, other)
            chosen = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", sl=1.09, tp=1.11)
            ident, command = term.next_command()
            term.answer(ident, reply_ok(command["id"], ticket=9501, price=1.1001, lots=0.01, time_msc=now_msc()))
            assert dealer.collect({chosen}, timeout_s=10)[chosen]["order"]["terminal"] == "script@Broker"
            wait_for(lambda: terminal_status(eps.control, "script@Broker")["stale"], 10, "the default terminal to go stale")
            other.send(type="heartbeat", dropped=0)
            refused = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="auto", sl=1.09, tp=1.11)
            assert refused["ok"] is False and refused["status"] == 503 and "'script@Broker'" in refused["error"] and "not connected" in refused["error"], refused
            assert other.next_command(300) is None, "an unnamed order went to the other account"
            named = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", terminal="prop@OtherBroker", sl=1.09, tp=1.11)
            ident, command = other.next_command()  # named, it goes there
            other.answer(ident, reply_ok(command["id"], ticket=9502, price=1.1001, lots=0.01, time_msc=now_msc()))
            assert dealer.collect({named}, timeout_s=10)[named]["order"]["status"] == "filled"
        finally:
            other.close()


@pytest.mark.timeout(60)
def test_without_a_default_terminal_an_unnamed_order_goes_to_the_one_connected_terminal_that_streams_it(tmp_path: Path) -> None:
    """The review of the change above (2026-12-05): counting silent terminals as candidates without a default made
    every unnamed order (every auto-trade) a 400 "streamed by several terminals" for an hour after one of two
    crashed without a bye. The one still connected trades it, as before."""
    env = {**RISK_OFF, "QT_DAEMON__HEALTH_INTERVAL_S": "0.1", "QT_RISK__MAX_QUOTE_AGE_MS": "60000"}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        other = ScriptedTerminal(eps, name="live@OtherBroker")
        try:
            one_soon_stale_and_another(eps, term, other)
            both = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test", sl=1.09, tp=1.11)
            assert both["status"] == 400 and "several terminals" in both["error"], both
            wait_for(lambda: terminal_status(eps.control, "script@Broker")["stale"], 10, "one terminal to go stale")
            other.send(type="heartbeat", dropped=0)
            unnamed = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="auto", sl=1.09, tp=1.11)
            ident, command = other.next_command()
            other.answer(ident, reply_ok(command["id"], ticket=9601, price=1.1001, lots=0.01, time_msc=now_msc()))
            assert dealer.collect({unnamed}, timeout_s=10)[unnamed]["order"]["terminal"] == "live@OtherBroker"
        finally:
            other.close()


@pytest.mark.timeout(60)
def test_a_close_in_flight_at_one_terminal_does_not_change_a_close_of_the_same_ticket_number_at_another(tmp_path: Path) -> None:
    """A hunt of two terminals (2026-12-05): the check for a close of the ticket already under way ignored the
    terminal, so a close of ticket 800 at B went without its position_lots while one of ticket 800 at A waited
    (tickets are per terminal): B's partial close could then not be told from one that did not happen."""
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000"}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        other = ScriptedTerminal(eps, name="other@Broker")
        try:
            for t in (term, other):
                t.hello(send_positions=False)
                t.send(type="positions", positions=[held_position(800)])
            wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "both positions 800")
            dealer.send("close", ticket=800, lots=0.04, terminal="script@Broker", source="test")
            _, command = term.next_command()  # in flight, unanswered
            assert command["position_lots"] == 0.10, command
            second = dealer.send("close", ticket=800, lots=0.04, terminal="other@Broker", source="test")
            ident, command = other.next_command()
            assert command["position_lots"] == 0.10, command
            other.answer(ident, reply_ok(command["id"], ticket=800, price=1.1, lots=0.04, time_msc=now_msc()))
            assert dealer.collect({second}, timeout_s=10)[second]["order"]["status"] == "filled"
        finally:
            other.close()


@pytest.mark.timeout(90)
def test_after_a_restart_a_terminal_not_heard_yet_counts_its_positions_and_holds_its_symbols_if_default(tmp_path: Path) -> None:
    """A churn soak (2026-12-05): a daemon restarted while a terminal was frozen counted that terminal's positions as
    0, so 8 opened under max_open_positions 6 with health saying healthy; and, restarted while the default terminal
    was down, it sent 115 auto orders to the other account (7 filled). The positions each terminal last listed are
    kept with the risk state and count until it reports; the default keeps its symbols until it is back."""
    env = {**RISK_OFF, "QT_RISK__MAX_OPEN_POSITIONS": "3", "QT_EXECUTION__DEFAULT_TERMINAL": "default@Broker", "QT_RISK__MAX_QUOTE_AGE_MS": "60000"}
    stops = {"sl": 1.09, "tp": 1.11}
    with scripted_daemon(tmp_path, terminal="frozen@Broker", **env) as (eps, frozen, _):
        frozen.hello()
        frozen.send(type="positions", positions=[held_position(1), held_position(2)])
        wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "its two positions")
    # the same data directory: frozen@Broker says nothing to this one; default@Broker has not come back
    with scripted_daemon(tmp_path, terminal="live@Broker", **env) as (eps, live, dealer):
        live.hello()
        live.account(10_000.0)
        fresh_quote(live, eps)
        unnamed = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="auto", **stops)
        assert unnamed["status"] == 503 and "default@Broker" in unnamed["error"], unnamed
        assert live.next_command(300) is None, "an unnamed order went to another account while the default was away"
        health = control(eps.control)["health"]
        assert health["status"] == "degraded" and any("2 open positions before the daemon started" in p for p in health["problems"]), health
        opened = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, terminal="live@Broker", source="test", **stops)
        ident, command = live.next_command()  # 2 unreported + 0: a third is within the limit
        live.answer(ident, reply_ok(command["id"], ticket=10, price=1.1001, lots=0.01, time_msc=now_msc()))
        assert dealer.collect({opened}, timeout_s=10)[opened]["order"]["status"] == "filled"
        refused_here(live, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, terminal="live@Broker", source="test", **stops), "3 positions open")


def position_updates(feed: FeedSubscriber, tickets: int, timeout_s: float = 10.0) -> dict[str, str]:
    """Ticket -> status of the feed's position updates, until ``tickets`` tickets have one (or the time is up)."""
    told: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(told) < tickets and time.monotonic() < deadline:
        got = feed.recv(200)
        if got is not None and got[0] == "position":
            told[got[1]["data"]["ticket"]] = got[1]["data"]["status"]
    return told


@pytest.mark.timeout(60)
def test_after_a_restart_a_terminals_first_positions_say_what_changed_while_the_daemon_was_down(tmp_path: Path) -> None:
    """Left open since 2026-12-04: a restarted daemon published every position a terminal still held as "opened"
    again, and never told apps of one closed while it was down. The book each terminal last listed is saved with
    the order journal, and its first list after a restart is compared with it."""
    env = {**RISK_OFF, "QT_DAEMON__HEALTH_INTERVAL_S": "0.2"}
    with scripted_daemon(tmp_path, **env) as (eps, term, _):
        term.hello()
        term.send(type="positions", positions=[held_position(1), held_position(2)])
        wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "its two positions")
    with scripted_daemon(tmp_path, **env) as (eps, term, _):
        feed = FeedSubscriber(eps.feed, (b"position", b"health"))
        try:
            feed.wait_joined()
            # not reported yet: the snapshot (the sidecar's, the app's) lists what it listed before, its book not known
            # (they were missing for the whole outage of a terminal down across the restart: a hunt, 2026-12-05)
            snap = control(eps.control, "snapshot")
            assert sorted(p["ticket"] for p in snap["positions"]) == ["1", "2"] and snap["positions_known"] == [], snap
            term.hello(send_positions=False)  # its real list follows, as an EA's does
            # ticket 1 still open (its profit moved), 2 closed while the daemon was down, 3 opened meanwhile
            term.send(type="positions", positions=[held_position(1, profit=12.5), held_position(3)])
            told = position_updates(feed, 3)
            assert told == {"1": "updated", "2": "closed", "3": "opened"}, told
            assert sorted(p["ticket"] for p in control(eps.control, "snapshot")["positions"]) == ["1", "3"]
        finally:
            feed.close()
    # and a book that is not a positions list is dropped at the start, never raised: that terminal's list is all new
    with sqlite3.connect(tmp_path / "data" / ORDERS_FILE) as db:
        assert db.execute("UPDATE risk_state SET value = ? WHERE name = 'book:script@Broker'", (orjson.dumps([{"ticket": "x"}]).decode(),)).rowcount == 1
    with scripted_daemon(tmp_path, **env) as (eps, term, _):
        feed = FeedSubscriber(eps.feed, (b"position", b"health"))
        try:
            feed.wait_joined()
            term.hello(send_positions=False)  # its real list follows, as an EA's does
            term.send(type="positions", positions=[held_position(1)])
            assert position_updates(feed, 1) == {"1": "opened"}
        finally:
            feed.close()


@pytest.mark.timeout(60)
def test_a_book_whose_save_failed_is_saved_with_the_next_list_and_a_terminal_with_a_saved_book_keeps_its_slot(tmp_path: Path) -> None:
    """The review of the change: a save that failed (a full disk) was taken as done, so the book was not saved again
    until its tickets changed, and a restart told its changes since again; a terminal that held positions before the
    restart and had not listed them since could be forgotten to make room, its saved book with it."""
    d, eps = inproc_daemon(tmp_path / "data", **RISK_OFF)
    engine = next(hook.__self__ for hook in d._event_hooks["positions"] if hasattr(hook.__self__, "journal"))
    save_book = engine.journal.save_book
    failures = [1]

    def full_disk(terminal: str, positions: list) -> None:
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        save_book(terminal, positions)

    engine.journal.save_book = full_disk

    def saved() -> list:
        with contextlib.closing(sqlite3.connect(tmp_path / "data" / ORDERS_FILE)) as db:
            row = db.execute("SELECT value FROM risk_state WHERE name = 'book:script@Broker'").fetchone()
        return [] if row is None else sorted(pos["ticket"] for pos in orjson.loads(row[0]))

    term = ScriptedTerminal(eps, "script@Broker")
    try:
        with serving(d):
            term.hello(send_positions=False)
            term.send(type="positions", positions=[held_position(1)])  # its save fails
            wait_for(lambda: d.counters["risk_state_errors"] == 1, 10, "the failed save counted")
            assert saved() == []
            term.send(type="positions", positions=[held_position(1, profit=2.0)])  # the same tickets: saved now
            wait_for(lambda: saved() == [1], 10, "the book saved with the next list")
        d.market.positions.clear()  # as after a restart, before the terminal lists its own
        d.market.restore_positions({"script@Broker": [held_position(1)], "other@Broker": []})
        assert d._keeps_positions("script@Broker") == "it holds positions" and d._keeps_positions("other@Broker") is None
    finally:
        term.close()
        d.close()


@pytest.mark.timeout(60)
def test_an_open_settled_not_executed_whose_position_comes_later_is_settled_filled(tmp_path: Path) -> None:
    """A hunt's suggestion (2026-12-05): a terminal that held a command it never answered (frozen, no event_seq to
    judge its snapshots by) ran it after settle_snapshots positions events without it; the order's history said
    "not executed" of a position the trader holds. Its QT-<id> now settles it again, as filled."""
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "800", "QT_EXECUTION__COMMAND_RETRIES": "0"}
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello()
        term.account(10_000.0)
        fresh_quote(term, eps)
        opened = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test", sl=1.09, tp=1.11)
        _, command = term.next_command()  # never answered
        assert dealer.collect({opened}, timeout_s=10)[opened]["order"]["status"] == "unknown"
        for _ in range(3):
            term.send(type="positions", positions=[])
        first = settled_order(eps.control, command["id"], 10, "the unanswered open settled from the positions")
        assert first["status"] == "rejected" and first["error"].startswith("not executed"), first
        term.send(type="positions", positions=[held_position(9301, lots=0.01, comment="QT-" + command["id"])])

        def journal_says() -> dict | None:
            return next((o for o in control(eps.control, "orders", limit=50)["orders"] if o["id"] == command["id"] and o["status"] == "filled"), None)

        later = wait_for(journal_says, 10, "the open settled again as filled")
        assert later["ticket"] == "9301" and later["reconciled"] is True and "executed after it was settled as" in later["error"], later
        assert control(eps.control)["health"]["counters"]["orders_executed_after_all"] == 1


@pytest.mark.timeout(60)
def test_a_retried_close_that_finds_its_work_done_is_settled_from_the_positions(tmp_path: Path) -> None:
    """Found by a review of the EAs (2026-12-04): an EA restarted between a close and its reply lost its reply
    cache; the daemon's retry then found the position gone (MT4 4108: a partial close gives the rest a new
    ticket; MT5 4753 after a whole close) and the close that happened was recorded as rejected, or, MT5
    keeping the ticket of a partial close, closed the rest. A close now carries the position's lots when asked
    (the EA refuses one already smaller, 65601), and both answers to a retry settle from the positions."""
    # 1.5 s: the test answers the retry itself; an answer later than the timeout made a stray third try
    env = {**RISK_OFF, "QT_EXECUTION__COMMAND_TIMEOUT_MS": "1500", "QT_EXECUTION__COMMAND_RETRIES": "2"}
    held = held_position(700)
    with scripted_daemon(tmp_path, **env) as (eps, term, dealer):
        term.hello()
        term.send(type="positions", positions=[held, {**held, "ticket": 701}])
        wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "the two positions")

        kept = {**held, "lots": 0.05}
        for ticket, lots, code, after in ((700, 0.05, 65601, [kept, {**held, "ticket": 701}]), (701, 0.0, 4108, [kept])):
            close = dealer.send("close", ticket=ticket, lots=lots, source="test")
            _, first = term.next_command()  # the first try: executed, its reply lost with the EA's restart
            assert first["type"] == "close" and first["position_lots"] == 0.10, first
            ident, retry = term.next_command()
            assert retry["id"] == first["id"], (first, retry)
            term.answer(ident, reply_error(retry["id"], code, "refused by the restarted EA"))
            (answer,) = dealer.collect({close}, timeout_s=10).values()
            assert answer["status"] == 504 and answer["order"]["status"] == "unknown", answer
            term.send(type="positions", positions=after)
            order = settled_order(eps.control, first["id"], 10, f"the close of {ticket} settled")
            assert order["status"] == "filled" and order["reconciled"] is True, order
            assert ticket == 701 or order["lots"] == 0.05, order  # the partial close: what the position lost

        # a first try refused "position not found" is a refusal, as before: nothing says it ran; so is a
        # refusal because the terminal is logged in to another account (WRONG_ACCOUNT)
        for code, says in ((4753, "position not found"), (WRONG_ACCOUNT, "another account")):
            close = dealer.send("close", ticket=700, source="test")
            ident, first = term.next_command()
            term.answer(ident, reply_error(first["id"], code, "refused"))
            (answer,) = dealer.collect({close}, timeout_s=10).values()
            assert answer["status"] == 422 and answer["order"]["status"] == "rejected" and says in answer["error"], answer


@pytest.mark.timeout(120)
def test_the_kill_switch_and_the_daily_loss_survive_a_kill_9(tmp_path: Path) -> None:
    """An operator halts trading during an incident; the daemon crashes (or the VPS reboots). Trading resumed
    at the restart (the switch lived in memory), and the day's starting equity was taken afresh from the first
    account event after it: a restart was a new daily-loss allowance. Both are in the order journal now."""
    eps = Endpoints()
    env = {**RISK_OFF, "QT_RISK__MAX_DAILY_LOSS": "500"}

    def risk() -> dict:
        return control(eps.control, "risk")

    with daemon_process(eps, tmp_path, **env) as daemon:
        term = ScriptedTerminal(eps)
        try:
            term.hello()
            term.account(10_000.0)
            term.account(9_400.0)
            wait_for(lambda: risk()["daily_loss"] == 600.0, 10, "the day's loss of 600")
            assert risk()["state"] == "reducing"
            # a terminal's clock a day behind (or an old event) does not start a new day: the daemon's clock decides
            term.account(9_400.0, time_msc=now_msc() - 86_400_000)
            term.account(9_400.0)
            wait_for(lambda: control(eps.control)["health"]["terminals"][0]["events"] >= 5, 10, "both account events")
            assert risk()["daily_loss"] == 600.0
            halted = control(eps.control, "risk", kill_switch=True, source="test")
            assert halted["kill_switch"] is True and halted["state"] == "halted", halted
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(10)
        finally:
            term.close()
    with daemon_process(eps, tmp_path, **env):
        term = ScriptedTerminal(eps)
        try:
            after = risk()
            assert after["kill_switch"] is True and after["state"] == "halted", after
            term.hello()
            term.account(9_400.0)  # the first equity after the restart: not the day's start
            wait_for(lambda: control(eps.control)["health"]["terminals"], 10, "the terminal")
            lifted = control(eps.control, "risk", kill_switch=False, source="test")
            assert lifted["kill_switch"] is False, lifted
            wait_for(lambda: risk()["daily_loss"] == 600.0, 10, "the day's loss still 600 after the restart")
            assert risk()["state"] == "reducing"
        finally:
            term.close()


@pytest.mark.timeout(60)
def test_missing_lots_are_sized_by_the_specs_the_terminal_sends(tmp_path: Path) -> None:
    """Sizing assumed 100,000 units a lot for every symbol: on gold (100 oz), an index or crypto the size for
    risk.risk_pct came out ~1,000x too small and rounded to 0 lots, so an order without lots (auto-trading's)
    never traded there. The EA now sends each symbol's specs in its hello and heartbeats; the daemon sizes by
    the broker's tick value and volume step and refuses what the broker's volume limits would."""
    gold = {"contract_size": 100.0, "tick_size": 0.01, "tick_value": 1.0, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 50.0}
    index = {"contract_size": 1.0, "tick_size": 1.0, "tick_value": 1.0, "volume_min": 0.5, "volume_step": 0.1, "volume_max": 5.0}

    def opened(**request: object) -> dict:
        sent = dealer.send("trade", source="test", **request)
        ident, command = term.next_command()
        term.answer(ident, reply_ok(command["id"], ticket=900, price=2000.3, lots=command["lots"], time_msc=now_msc()))
        (reply,) = dealer.collect({sent}, timeout_s=10).values()
        assert reply["ok"] is True, reply
        return command

    with scripted_daemon(tmp_path, **RISK_OFF, QT_RISK__RISK_PCT="1") as (eps, term, dealer):
        term.hello(symbols=("XAUUSD", "US30"), specs={"XAUUSD": gold, "US30": index})
        term.account(10_000.0)
        term.send(type="tick", symbol="XAUUSD", bid=2000.0, ask=2000.3, volume=1)
        term.send(type="tick", symbol="US30", bid=39000.0, ask=39002.0, volume=1)
        wait_for(lambda: len(control(eps.control, "snapshot")["quotes"]) == 2, 10, "both quotes")
        # $10 below the ask: 1,000 ticks of $1 a lot = $1,000; 1% of $10,000 -> 0.1 lot (0.0001 before: refused)
        assert opened(symbol="XAUUSD", side="buy", sl=1990.3, tp=2020.3)["lots"] == pytest.approx(0.1)
        # a heartbeat repeats the hello with the tick value of now (a EUR account's gold: 0.5 EUR a tick, say)
        term.hello("heartbeat", symbols=("XAUUSD", "US30"), dropped=0, specs={"XAUUSD": {**gold, "tick_value": 0.5}, "US30": index})
        wait_for(lambda: control(eps.control, "specs", terminal=term.name)["specs"]["XAUUSD"]["tick_value"] == 0.5, 10, "the refreshed specs")
        assert opened(symbol="XAUUSD", side="buy", sl=1990.3, tp=2020.3)["lots"] == pytest.approx(0.2)
        # the index's own step (0.1): 100 / 52 points = 1.92 lots -> 1.9, not 1.92
        assert opened(symbol="US30", side="sell", sl=39052.0, tp=38900.0)["lots"] == pytest.approx(1.9)
        refused = control(eps.control, "trade", symbol="US30", side="buy", lots=0.3, sl=38900.0, tp=39100.0, source="test")
        refused_here(term, refused, "US30's minimum at the broker (0.5)")


@pytest.mark.timeout(60)
def test_a_halt_from_the_config_is_not_lifted_by_a_control_request(tmp_path: Path) -> None:
    """A hunt (2026-12-05): with risk.trading_enabled = false, `risk {"kill_switch": false}` made trading active and an
    order filled, while the docs say the config's halt is lifted in the config. Now refused (409), saying where."""
    with scripted_daemon(tmp_path, **{**RISK_OFF, "QT_RISK__TRADING_ENABLED": "false"}) as (eps, term, dealer):
        term.hello()
        term.account(10_000.0)
        fresh_quote(term, eps)
        lifted = control(eps.control, "risk", kill_switch=False, source="test")
        assert lifted["ok"] is False and lifted["status"] == 409 and "risk.trading_enabled" in lifted["error"], lifted
        assert control(eps.control, "risk")["state"] == "halted"
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, sl=1.09, tp=1.11, source="test"), "kill switch")


@pytest.mark.timeout(60)
def test_a_quote_read_from_a_backlog_is_refused_however_lately_it_arrived(tmp_path: Path) -> None:
    """A hunt (2026-12-05): a daemon reading the ticks a terminal queued while it was down (or behind a fast feed)
    took quotes 23 s old by their own time as fresh (their age counted from their arrival), and set default stops
    from them. risk.max_tick_lag_s (10 s) refuses them, saying why; a live quote passes."""
    with scripted_daemon(tmp_path, **RISK_OFF) as (eps, term, dealer):
        term.hello()
        term.account(10_000.0)
        before = control(eps.control)["health"]["counters"].get("ticks", 0)
        term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1, time_msc=now_msc() - 23_000)
        wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks", 0) > before, 10, "the queued tick")
        refused_here(term, control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test"), "quote is from a backlog")
        fresh_quote(term, eps)
        live = dealer.send("trade", symbol="EURUSD", side="buy", lots=0.01, source="test")
        ident, command = term.next_command()
        term.answer(ident, reply_ok(command["id"], ticket=9201, price=1.1001, lots=0.01, time_msc=now_msc()))
        assert dealer.collect({live}, timeout_s=10)[live]["order"]["status"] == "filled"


def test_lots_that_round_down_below_the_minimum_say_what_was_asked(tmp_path: Path) -> None:
    """A trader's walk-through (2026-12-06): ``trade buy EURUSD 0.001`` was refused "lots 0 below the minimum 0.01",
    naming an amount nobody asked for. The refusal says what was asked and the step it was rounded down to."""
    with scripted_daemon(tmp_path, **RISK_OFF) as (eps, term, dealer):
        term.hello()
        term.send(type="positions", positions=[])
        fresh_quote(term, eps)
        reply = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.001, source="test")
        refused_here(term, reply, "lots 0 below the minimum 0.01 (0.001 asked, rounded down to the lot step 0.01)")
        # a size the step does not change is named as it is, with nothing added
        reply = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=5000.0, source="test")
        refused_here(term, reply, "lots 5000 above the maximum 1000")
        assert "asked" not in reply["error"], reply
