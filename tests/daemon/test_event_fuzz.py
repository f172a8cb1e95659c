"""Random well-formed events at the edges of what validation lets through, into a daemon process over its sockets.

Validation is fuzzed on its own (tests/test_protocol.py: any bytes end as a
``ProtocolError``). This is what comes after it: events the contract
accepts but no broker sends (a price of 1e-9 or 1e12, a profit of 1e15, a
heartbeat period at either bound, specs of 1e12, tickets and magic numbers
at the 64-bit edges, seq jumping about, terminals that leave and come
back) reach the market state, the execution engine's books and risk
checks, the feature and model kernels, the store, and the health,
snapshot and order replies; control requests with fields at the edges of
*their* validation try to trade on that state; and one terminal's command
socket (a REP, as the EA's) answers the daemon's commands with replies at
the edges of the reply contract, or garbage. A subsystem that raises
on any of it is counted in ``internal_errors`` (the loop survives it, the
event or request is lost: a bug); a kernel that writes out of bounds ends
the process. After every example the daemon must have taken every event,
counted no internal error, answered every query, refused every trade it
refused with a 4xx reason, and still publish the next tick.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import Endpoints, FeedSubscriber, control, daemon_process, event_frame, wait_for

from quantumtrader.bench.procs import free_port
from quantumtrader.protocol import (
    MAX_MONEY,
    MAX_INT32,
    MAX_HEARTBEAT_S,
    MAX_PRICE,
    MAX_SPEC_VALUE,
    MAX_TICKET,
    MAX_VOLUME,
    MIN_HEARTBEAT_S,
    MIN_INT32,
    MIN_PRICE,
    MIN_SPEC_VALUE,
    MIN_TIME_MSC,
    SYMBOL_SPEC_FIELDS,
    now_msc,
)

TERMINALS = ("fuzz-a@Broker", "fuzz-b@Broker", "fuzz-c@Other")
#: Its command socket is the FakeTerminal below, answering with fuzzed replies; the others' is a dead port.
ANSWERING = TERMINALS[0]
SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD", "BTCUSD", "US30.cash", "EURUSDm", "A", "X#9+-_.")
INT64 = (-(2**63), -1, 0, 1, 2**31, 2**53 + 1, 2**63 - 1)
#: Finite doubles from the smallest to the largest, signs both ways: what "a finite number" lets in.
EDGE_FLOATS = (0.0, 5e-324, 1e-300, 1e-9, 1e-8, 0.5, 1.0, 1.1, 99.99, 1e6, 1e12, 1e15, 1e300, 1.7976931348623157e308)
SIGNED_FLOATS = EDGE_FLOATS + tuple(-x for x in EDGE_FLOATS if x)
#: What a terminal's prices, lots and amounts may be (protocol.MAX_PRICE, MAX_MONEY): the edges inside them.
PRICE_EDGES = tuple(x for x in EDGE_FLOATS if x <= MAX_PRICE)
MONEY_EDGES = tuple(x for x in SIGNED_FLOATS if abs(x) <= MAX_MONEY)

prices = st.sampled_from((MIN_PRICE, MIN_PRICE * 1.5, 1e-5, 0.6543, 1.1, 1.10002, 150.25, 2345.6, 65000.0, MAX_PRICE / 2, MAX_PRICE)) | st.floats(MIN_PRICE, MAX_PRICE)
texts = st.sampled_from(("", "x", "QT-abc123", "ümlaut", "a" * 64, "\x00\n\t"))


@st.composite
def ticks(draw: st.DrawFn) -> dict[str, Any]:
    bid = draw(prices)
    ask = draw(st.sampled_from((bid, min(bid * 1.0001, MAX_PRICE), min(bid * 2, MAX_PRICE), MAX_PRICE)))
    tick: dict[str, Any] = {"type": "tick", "symbol": draw(st.sampled_from(SYMBOLS)), "bid": bid, "ask": ask, "volume": draw(st.sampled_from((0.0, 1.0, 3, MAX_VOLUME)))}
    for name in draw(st.sets(st.sampled_from(("open", "high", "low")))):
        tick[name] = draw(st.sampled_from((5e-324, 1.1, 1e300)))
    if draw(st.booleans()):
        tick["sent_ns"] = draw(st.sampled_from((0, 1, 2**62 - 1)))
    return tick


@st.composite
def specs(draw: st.DrawFn) -> dict[str, dict[str, float]]:
    values = st.sampled_from((0, 0.0, MIN_SPEC_VALUE, 0.01, 1, 100_000, MAX_SPEC_VALUE))
    symbols = draw(st.sets(st.sampled_from(SYMBOLS), max_size=3))
    return {s: {name: draw(values) for name in SYMBOL_SPEC_FIELDS} for s in symbols}


def hello_fields(command_endpoint: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"platform": st.sampled_from(("MT4", "MT5", "PAPER", "")), "command_endpoint": st.just(command_endpoint), "symbols": st.lists(st.sampled_from(SYMBOLS), max_size=4)},
        optional={"heartbeat_s": st.sampled_from((MIN_HEARTBEAT_S, 1, 5.0, MAX_HEARTBEAT_S)), "specs": specs()},
    )


@st.composite
def positions(draw: st.DrawFn) -> dict[str, Any]:
    tickets = draw(st.lists(st.sampled_from((1, 2, 7, 2**53 + 1, 2**63 - 1, MAX_TICKET)), max_size=3, unique=True))
    out = []
    for ticket in tickets:
        out.append(
            {
                "ticket": ticket,
                "symbol": draw(st.sampled_from(SYMBOLS)),
                "side": draw(st.sampled_from(("buy", "sell"))),
                "lots": draw(st.sampled_from(PRICE_EDGES)),
                "open_price": draw(st.sampled_from(PRICE_EDGES)),
                "sl": draw(st.sampled_from(PRICE_EDGES)),
                "tp": draw(st.sampled_from(PRICE_EDGES)),
                "profit": draw(st.sampled_from(MONEY_EDGES)),
                "swap": draw(st.sampled_from(MONEY_EDGES)),
                "commission": draw(st.sampled_from(MONEY_EDGES)),
                "magic": draw(st.sampled_from(INT64)),
                "comment": draw(texts),
                "open_time_msc": draw(st.sampled_from((MIN_TIME_MSC, now_msc() - 86_400_000, now_msc()))),
            }
        )
    return {"type": "positions", "positions": out}


accounts = st.fixed_dictionaries(
    {
        "type": st.just("account"),
        "login": st.sampled_from((0, 1, 2**63 - 1)),
        "currency": st.sampled_from(("USD", "JPY", "", "€")),
        "balance": st.sampled_from(MONEY_EDGES),
        "equity": st.sampled_from(MONEY_EDGES),
        "margin": st.sampled_from(MONEY_EDGES),
        "free_margin": st.sampled_from(MONEY_EDGES),
        "leverage": st.sampled_from((0, 1, 500, 2**63 - 1)),
    },
    optional={"name": texts, "server": texts, "company": texts},
)


def events(dead_endpoint: str, answering_endpoint: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(terminal, fields without the envelope) for every event type the EAs send."""

    def of(terminal: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
        endpoint = answering_endpoint if terminal == ANSWERING else dead_endpoint
        hello = hello_fields(endpoint).map(lambda f: {"type": "hello", **f})
        heartbeat = st.builds(
            lambda dropped, extra, spec: {"type": "heartbeat", "dropped": dropped, **extra, **({"specs": spec} if spec is not None and not extra else {})},
            st.sampled_from((0, 1, 2**63 - 1)),
            st.one_of(st.just({}), hello_fields(endpoint)),
            st.none() | specs(),
        )
        bye = st.builds(lambda reason: {"type": "bye", "reason": reason}, texts)
        return st.tuples(st.just(terminal), st.one_of(ticks(), ticks(), ticks(), hello, heartbeat, positions(), accounts, bye))

    return st.sampled_from(TERMINALS).flatmap(of)


def replies() -> st.SearchStrategy[dict[str, Any] | bytes]:
    """What a terminal may answer a command with: a success or failure at the edges of the contract, or garbage."""
    code = st.sampled_from((MIN_INT32, -1, 0, 130, 10019, MAX_INT32))
    ok = st.fixed_dictionaries(
        {"ok": st.just(True)},
        optional={
            "ticket": st.sampled_from((0, 1, 2**63 - 1, 2**63, MAX_TICKET)),
            "price": st.sampled_from(PRICE_EDGES),
            "lots": st.sampled_from(PRICE_EDGES),
            "time_msc": st.sampled_from((0, 1, now_msc(), 2**63 - 1)),
            "stops_error": st.fixed_dictionaries({"code": code, "message": texts}),
            "account": accounts.map(lambda a: {k: v for k, v in a.items() if k != "type"}),
            "positions": positions().map(lambda p: p["positions"]),
        },
    )
    failed = st.fixed_dictionaries({"ok": st.just(False), "error": st.fixed_dictionaries({"code": code, "message": texts})})
    garbage = st.sampled_from((b"", b"{", b"[]", b'{"v":1,"type":"reply"}', b'{"v":1,"type":"reply","id":"WRONGID1","ok":true}'))
    return st.one_of(ok, ok, failed, garbage)


class FakeTerminal:
    """A REP command socket, as the EA's, answering each command with the next queued reply (a plain success when none is queued)."""

    def __init__(self) -> None:
        self.replies: queue.SimpleQueue[dict[str, Any] | bytes] = queue.SimpleQueue()
        self.commands = 0
        self._sock = zmq.Context.instance().socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-terminal", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(50):
                continue
            command = orjson.loads(self._sock.recv())
            self.commands += 1
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                reply = {"ok": True}
            self._sock.send(reply if isinstance(reply, bytes) else orjson.dumps({"v": 1, "type": "reply", "id": command.get("id"), **reply}))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def trade_requests() -> st.SearchStrategy[dict[str, Any]]:
    """Control requests that act on the state the events built, fields at the edges of what they accept."""
    number = st.sampled_from((0, 1e-9, 0.01, 1, 1.1, 1e6, MAX_PRICE))
    ticket = st.sampled_from((1, 2, 7, 2**53 + 1, 2**63 - 1, MAX_TICKET, str(MAX_TICKET), "7"))
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("trade"), "symbol": st.sampled_from(SYMBOLS), "side": st.sampled_from(("buy", "sell", "BUY"))},
            optional={"lots": number, "sl": number, "tp": number, "terminal": st.sampled_from(TERMINALS)},
        ),
        st.fixed_dictionaries({"type": st.just("close"), "ticket": ticket}, optional={"lots": number, "terminal": st.sampled_from(TERMINALS)}),
        st.fixed_dictionaries({"type": st.just("modify"), "ticket": ticket}, optional={"sl": number, "tp": number}),
    )


QUERIES = (
    {"type": "status"},
    {"type": "snapshot"},
    {"type": "features"},
    {"type": "signals"},
    {"type": "orders"},
    {"type": "risk"},
    *({"type": "specs", "terminal": t} for t in TERMINALS),
)


class Fuzzed:
    """The daemon under test and what has been sent to it so far."""

    def __init__(self, eps: Endpoints, command_endpoint: str, terminal: FakeTerminal) -> None:
        self.eps = eps
        self.command_endpoint = command_endpoint
        self.terminal = terminal
        self.push = zmq.Context.instance().socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(eps.events)
        self.sent = 0
        self.seq = dict.fromkeys(TERMINALS, 0)

    def send(self, terminal: str, fields: dict[str, Any], seq: int | None = None) -> None:
        if seq is None:
            self.seq[terminal] += 1
            seq = self.seq[terminal]
        self.push.send(event_frame(terminal, {"seq": seq, **fields}))
        self.sent += 1

    def status(self) -> dict[str, Any]:
        reply = control(self.eps.control, "status")
        assert reply["ok"], reply
        return reply

    def wait_taken(self) -> dict[str, Any]:
        """The status once the daemon has taken every event sent (counted, accepted or refused)."""

        def taken() -> dict[str, Any] | None:
            status = self.status()
            return status if status["health"]["counters"].get("events", 0) >= self.sent else None

        return wait_for(taken, 30, f"the daemon to take {self.sent} events")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("event-fuzz")
    eps = Endpoints()
    # Nothing listens on the terminals' command port: dispatched orders time out fast and fail, as at a dead terminal.
    env = {"QT_EXECUTION__COMMAND_TIMEOUT_MS": "100", "QT_EXECUTION__COMMAND_RETRIES": "0", "QT_SIGNALS__INTERVAL_S": "1"}
    terminal = FakeTerminal()
    try:
        with daemon_process(eps, tmp, **env) as proc:
            yield Fuzzed(eps, f"tcp://127.0.0.1:{free_port()}", terminal)
            assert proc.poll() is None, "the daemon died under the fuzzed events"
    finally:
        terminal.close()


def _no_internal_errors(status: dict[str, Any]) -> None:
    health = status["health"]
    assert health["counters"].get("internal_errors", 0) == 0, health["counters"]
    assert "internal_error" not in health["rejects"], health["rejects"]


def test_edge_events_and_requests_never_cost_an_internal_error(fuzzed: Fuzzed) -> None:
    """A hundred examples, then: the events reached the subsystems, not a fuzz that validation turned away at the door.

    The examples run inside this test (not as a test of their own) so that the check after them always runs on the
    daemon they fuzzed: under pytest-xdist a second test of this file may run on another worker, with its own daemon.
    """

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        _one_example(fuzzed, data)

    example()
    # and a plain positions event still reaches the market state (whether the fuzz drew a valid one is chance)
    opened_before = fuzzed.status()["health"]["counters"].get("positions_opened", 0)
    position = {"ticket": 987654321, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
                "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "after the fuzz", "open_time_msc": now_msc()}  # fmt: skip
    fuzzed.send(ANSWERING, {"type": "positions", "positions": [position]})
    status = fuzzed.wait_taken()
    counters = status["health"]["counters"]
    assert counters["hellos"] > 0 and counters["ticks"] > 3 and counters.get("positions_opened", 0) == opened_before + 1, counters
    assert sum(status["rejects"].values()) < counters["events"] / 10, status["rejects"]
    assert fuzzed.terminal.commands > 0, "no command reached the answering terminal: its fuzzed replies were never read"


def _one_example(fuzzed: Fuzzed, data: st.DataObject) -> None:
    batch = data.draw(st.lists(events(fuzzed.command_endpoint, fuzzed.terminal.endpoint), min_size=1, max_size=12), label="events")
    for terminal, fields in batch:
        seq = data.draw(st.sampled_from((None, None, None, 0, 2**63 - 1)), label="seq (None: the next)")
        fuzzed.send(terminal, fields, seq)
    status = fuzzed.wait_taken()
    _no_internal_errors(status)
    for query in QUERIES:
        fields = dict(query)
        reply = control(fuzzed.eps.control, fields.pop("type"), **fields)
        assert reply["ok"] or (query["type"] == "specs" and reply.get("status") == 404), (query, reply)
    for reply in data.draw(st.lists(replies(), max_size=4), label="the answering terminal's replies"):
        fuzzed.terminal.replies.put(reply)
    # The answering terminal back, connected and quoting every symbol, before the requests: the fuzzed events leave it
    # stale or gone most of the time (heartbeats of 0.1 s, byes), and then no command reached it and its fuzzed
    # replies went unread in about a third of the runs (the check at the end of this file).
    fuzzed.send(ANSWERING, {"type": "hello", "platform": "MT5", "command_endpoint": fuzzed.terminal.endpoint, "symbols": list(SYMBOLS)})
    fuzzed.send(ANSWERING, {"type": "positions", "positions": []})  # as the EAs do after a hello: opens wait for them
    for symbol in SYMBOLS:
        fuzzed.send(ANSWERING, {"type": "tick", "symbol": symbol, "bid": 1.1, "ask": 1.1001, "volume": 1.0})
    fuzzed.wait_taken()
    # and one order it takes, so that every example's queued replies meet a command
    plain = {"type": "trade", "symbol": "EURUSD", "side": "buy", "lots": 0.01, "terminal": ANSWERING}
    for request in [*data.draw(st.lists(trade_requests(), max_size=3), label="trade requests"), plain]:
        kind = request.pop("type")
        reply = control(fuzzed.eps.control, kind, timeout_ms=10_000, **request)
        # done, refused with a reason (422, 404), or failed at the dead terminal (503 no session yet, 504 no reply):
        # never the 500 of a handler that raised
        assert reply["ok"] or (reply.get("status") != 500 and reply.get("error")), (kind, request, reply)
    _no_internal_errors(fuzzed.status())


def test_after_the_fuzz_a_plain_terminal_still_gets_its_ticks_published(fuzzed: Fuzzed) -> None:
    """The loop is alive and publishing, not only answering control requests."""
    sub = FeedSubscriber(fuzzed.eps.feed, topics=(b"price.ZZFUZZ", b"health"))
    try:
        sub.wait_joined()
        terminal = "fuzz-plain@Broker"
        fuzzed.send(terminal, {"type": "hello", "platform": "MT5", "command_endpoint": fuzzed.command_endpoint, "symbols": ["ZZFUZZ"]}, 0)
        for seq, bid in zip(itertools.count(1), (1.2, 1.2001, 1.2002)):
            fuzzed.send(terminal, {"type": "tick", "symbol": "ZZFUZZ", "bid": bid, "ask": bid + 0.0001, "volume": 1.0}, seq)
        deadline = time.monotonic() + 10
        bids = []
        while len(bids) < 3 and time.monotonic() < deadline:
            got = sub.recv(200)
            if got and got[0] == "price.ZZFUZZ":
                bids.append(got[1]["data"]["bid"])
        assert bids == [1.2, 1.2001, 1.2002]
    finally:
        sub.close()
    _no_internal_errors(fuzzed.wait_taken())
