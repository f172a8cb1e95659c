"""The WebSocket hub and the clone in-process: throttling, conflation, slow clients, subscriptions, seq gaps.

Fake clients (an async send that records, or one that never returns) make
the policies checkable exactly, without sockets.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

import zmq
import zmq.asyncio

from quantumtrader.sidecar.hub import Hub
from quantumtrader.sidecar.ratelimit import Buckets
from quantumtrader.sidecar.state import CARRY_S, Clone, seq_of


def price(symbol: str, bid: float, seq: int = 0) -> str:
    return json.dumps({"type": "price_update", "data": {"symbol": symbol, "bid": bid}, "seq": seq})


class Recorder:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def send(self, texts: list[str]) -> None:
        self.got.extend(json.loads(text) for text in texts)


class Stalled:
    """A client whose socket never drains: every send waits forever."""

    def __init__(self) -> None:
        self.started = 0

    async def send(self, texts: list[str]) -> None:
        self.started += 1
        await asyncio.Event().wait()


def test_prices_are_throttled_per_symbol_and_the_latest_always_arrives() -> None:
    async def scenario() -> tuple[Recorder, float]:
        hub = Hub(max_updates_per_s=20, queue_size=100, max_clients=10)
        rec = Recorder()
        hub.add(rec.send)
        started = time.monotonic()
        for i in range(100):  # 100 ticks of one symbol over ~0.5 s: 200/s into a 20/s limit
            hub.price("EURUSD", price("EURUSD", 1.0 + i), 1)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)  # the trailing flush
        hub.close()
        return rec, time.monotonic() - started

    rec, elapsed = asyncio.run(scenario())
    bids = [m["data"]["bid"] for m in rec.got]
    # at most max_updates_per_s over the run as it really lasted (~0.75 s; a loaded host's sleeps run long), + the leading one
    assert 5 <= len(bids) <= elapsed * 20 + 2, (elapsed, bids)
    assert bids[-1] == 100.0  # the latest quote is never lost
    assert bids == sorted(bids)


class Timed:
    """A client whose socket always takes writes: what it got, and when."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str, float]] = []

    def ready(self) -> bool:
        return True

    def write(self, texts: list[str]) -> None:
        for text in texts:
            data = json.loads(text)["data"]
            self.got.append((time.monotonic(), data["symbol"], data["bid"]))

    async def send(self, texts: list[str]) -> None:
        self.write(texts)


def test_a_held_quote_goes_out_as_its_window_opens_however_busy_its_symbol() -> None:
    # The trailing edge: what a phone shows stays superseded for as short a time as the rate allows. (Until
    # 2026-12-04 a symbol with 4 or more ticks held waited up to half an interval for its next tick instead;
    # on real tick timing that left phones showing a superseded quote longer: bench/throttle_sim.py.)
    # 1 / max_updates_per_s; wide, so a loaded machine's timer jitter (two xdist workers) cannot reorder the steps: at
    # 1 s, eight fixed sleeps of 0.1 s whose lateness added up left the window before the last tick (a helper's hunt
    # held the test up 0.25 s at random moments: 5 of 9 failed). The ticks now go out at their own times.
    window_s = 2.0

    async def scenario() -> tuple[float, list[tuple[float, str, float]]]:
        hub = Hub(max_updates_per_s=1 / window_s, queue_size=100, max_clients=10)
        client = Timed()
        hub.add(client.send, client)
        t0 = time.monotonic()
        hub.price("EURUSD", price("EURUSD", 0.0), 1)  # both windows open: sent at once
        hub.price("GBPUSD", price("GBPUSD", 0.0), 1)
        for i in range(1, 9):  # EURUSD busy: 8 ticks held while its window is shut, then silent
            await asyncio.sleep(max(0.0, t0 + i * window_s / 10 - time.monotonic()))
            hub.price("EURUSD", price("EURUSD", float(i)), 1)
        hub.price("GBPUSD", price("GBPUSD", 1.0), 1)  # GBPUSD quiet: one tick held
        await asyncio.sleep(t0 + 2.6 * window_s - time.monotonic())
        hub.close()
        return t0, client.got

    _, got = asyncio.run(scenario())
    # The first two in the order sent; the held two in either order: both windows open within microseconds of each
    # other, and which timer the loop runs first depends on where the host held the test up (a CI run, 2026-12-06,
    # had GBPUSD first). What matters is each symbol's own sequence and when its held quote went out.
    assert [(s, b) for _, s, b in got[:2]] == [("EURUSD", 0.0), ("GBPUSD", 0.0)]
    assert sorted((s, b) for _, s, b in got[2:]) == [("EURUSD", 8.0), ("GBPUSD", 1.0)]
    opened = got[0][0]  # the windows opened with the first sends, not when the scenario began
    for when, symbol, bid in got[2:]:  # each held quote, the latest of its window, as the window opened
        assert 0.95 * window_s <= when - opened < 1.25 * window_s, (symbol, bid, when - opened)


def test_the_feed_to_websocket_time_of_a_held_quote_leaves_out_the_throttles_wait() -> None:
    # The histogram is the sidecar's own work (what an operator reads for a slow sidecar); the wait is the
    # throttle's rule. Counted from the feed, the held quote below would show ~1 s.
    window_s = 1.0  # wide: the bound below is a third of it, and a loaded host's event loop can be late

    async def scenario() -> float:
        hub = Hub(max_updates_per_s=1 / window_s, queue_size=100, max_clients=10)
        client = Timed()
        hub.add(client.send, client)
        for bid in (1.0, 2.0):  # the first goes out, the second is held for the rest of the window
            hub.price("EURUSD", price("EURUSD", bid), time.perf_counter_ns())
        await asyncio.sleep(1.5 * window_s)
        hub.close()
        assert [b for _, _, b in client.got] == [1.0, 2.0]
        assert hub.latency.get_total_count() == 2  # both sends timed
        return hub.latency.get_max_value() / 1e9

    assert asyncio.run(scenario()) < window_s / 3


def test_a_stalled_client_costs_bounded_memory_is_dropped_and_never_slows_the_others() -> None:
    async def scenario() -> tuple[Hub, Recorder, Any, Any]:
        hub = Hub(max_updates_per_s=1000, queue_size=50, max_clients=10)
        good = Recorder()
        stalled = Stalled()
        hub.add(good.send)
        slow = hub.add(stalled.send)
        for i in range(2000):
            hub.price(f"S{i % 20}", price(f"S{i % 20}", float(i)), 1)
            if i % 20 == 0:
                hub.reliable(None, json.dumps({"type": "signal", "data": {"i": i}}), 1)
            if i % 100 == 0:
                await asyncio.sleep(0)
            assert len(slow.prices) <= 20 and len(slow.fifo) <= 50  # bounded at every step
        await asyncio.sleep(0.05)
        return hub, good, slow, stalled

    hub, good, slow, stalled = asyncio.run(scenario())
    assert slow.too_slow and slow.closed.is_set() and hub.counters["ws_disconnected_slow"] == 1
    assert stalled.started == 1
    signals = [m for m in good.got if m["type"] == "signal"]
    assert len(signals) == 100  # every reliable message reached the client that keeps up
    assert {m["data"]["symbol"] for m in good.got if m["type"] == "price_update"} == {f"S{i}" for i in range(20)}


class FastLane(Recorder):
    """A client whose socket takes writes at once (the shared-frame path), until told it is paused."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.direct = 0
        self.writes = 0
        self.release = asyncio.Event()
        self.release.set()

    def ready(self) -> bool:
        return not self.paused

    def write(self, texts: list[str]) -> None:
        self.writes += 1
        self.direct += len(texts)
        self.got.extend(json.loads(text) for text in texts)

    async def send(self, texts: list[str]) -> None:
        await self.release.wait()  # a batch in flight until released
        await super().send(texts)


def test_the_fast_lane_writes_idle_clients_at_once_and_never_overtakes_what_is_queued() -> None:
    async def scenario() -> tuple[Hub, FastLane]:
        hub = Hub(max_updates_per_s=1000, queue_size=100, max_clients=10)
        lane = FastLane()
        hub.add(lane.send, lane)
        hub.price("EURUSD", price("EURUSD", 1.0), 1)  # idle: the fast lane, written when the pass ends
        hub.reliable(None, json.dumps({"type": "signal", "data": {"n": 1}}), 1)  # a reliable one too, same write
        assert lane.got == []
        await asyncio.sleep(0)
        assert lane.direct == 2 and lane.writes == 1 and [m["type"] for m in lane.got] == ["price_update", "signal"]
        # the socket pauses: the next signal is queued, and its batch is still in flight when the
        # socket takes writes again: a quote and health must wait behind it, not jump ahead
        lane.paused = True
        lane.release.clear()
        hub.reliable(None, json.dumps({"type": "signal", "data": {"n": 2}}), 1)
        await asyncio.sleep(0.002)
        lane.paused = False
        hub.price("GBPUSD", price("GBPUSD", 2.0), 1)
        hub.health(json.dumps({"type": "health", "data": {}}))
        assert lane.direct == 2
        lane.release.set()
        await asyncio.sleep(0.01)
        # paused socket: queued, and the pump delivers it when it drains
        lane.paused = True
        hub.price("USDJPY", price("USDJPY", 3.0), 1)
        await asyncio.sleep(0.01)
        lane.paused = False
        hub.price("AUDUSD", price("AUDUSD", 4.0), 1)  # idle again: the fast lane
        await asyncio.sleep(0.01)
        assert lane.writes == 2
        return hub, lane

    hub, lane = asyncio.run(scenario())
    kinds = [(m["type"], m["data"].get("bid", m["data"].get("n"))) for m in lane.got]
    assert kinds == [
        ("price_update", 1.0),
        ("signal", 1),
        ("signal", 2),
        ("price_update", 2.0),
        ("health", None),
        ("price_update", 3.0),
        ("price_update", 4.0),
    ], kinds
    assert lane.direct == 3 and hub.counters["ws_prices_direct"] == 2 and hub.counters["ws_reliable_direct"] == 1
    assert hub.latency.get_total_count() == 6  # every feed message sent, fast lane or queue (health is not timed)


def test_before_subscribing_a_client_gets_every_symbol_after_only_its_own() -> None:
    async def scenario() -> tuple[Recorder, Recorder]:
        hub = Hub(max_updates_per_s=1000, queue_size=100, max_clients=10)
        everything, picky = Recorder(), Recorder()
        hub.add(everything.send)
        client = hub.add(picky.send)
        hub.subscribe(client, "EURUSD")
        for i, symbol in enumerate(["EURUSD", "GBPUSD", "USDJPY"] * 3):
            hub.price(symbol, price(symbol, float(i)), 1)
            hub.reliable(symbol, json.dumps({"type": "signal", "data": {"symbol": symbol}}), 1)
            await asyncio.sleep(0.01)
        hub.reliable(None, json.dumps({"type": "position_update", "data": {}}), 1)
        hub.unsubscribe(client, "EURUSD")
        hub.price("EURUSD", price("EURUSD", 99.0), 1)
        await asyncio.sleep(0.01)
        return everything, picky

    everything, picky = asyncio.run(scenario())
    assert {m["data"]["symbol"] for m in everything.got if "symbol" in m["data"]} == {"EURUSD", "GBPUSD", "USDJPY"}
    assert {m["data"]["symbol"] for m in picky.got if "symbol" in m["data"]} == {"EURUSD"}
    assert any(m["type"] == "position_update" for m in picky.got)  # not symbol-scoped: everyone gets it
    assert 99.0 not in [m["data"].get("bid") for m in picky.got]


class _NoControl:
    endpoint = "tcp://127.0.0.1:1"


class _Sink:
    def __init__(self) -> None:
        self.reliable_texts: list[str] = []
        self.prices = 0

    def price(self, symbol: str, text: str, recv_ns: int) -> None:
        self.prices += 1

    def reliable(self, symbol: str | None, text: str, recv_ns: int) -> None:
        self.reliable_texts.append(text)

    def health(self, text: str) -> None: ...


def _frames(kind: str, seq: int, data: dict[str, Any], symbol: str = "") -> list[bytes]:
    topic = f"{kind}.{symbol}" if symbol else kind
    body = {"type": {"price": "price_update", "position": "position_update"}.get(kind, kind), "data": data, "timestamp": "x", "seq": seq}
    return [topic.encode(), json.dumps(body, separators=(",", ":")).encode()]


def test_clone_sees_gaps_and_restarts_and_heals_clients_from_the_snapshot() -> None:
    async def scenario() -> tuple[Clone, _Sink]:
        sink = _Sink()
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), sink, hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        pos = {"ticket": "7", "terminal": "t1", "symbol": "EURUSD", "type": "BUY"}
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [pos], "accounts": []})
        clone._snapshot_wanted.clear()
        clone.handle(_frames("price", 11, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)
        clone.handle(_frames("price", 12, {"symbol": "EURUSD", "bid": 1.2}, "EURUSD"), 1)
        assert not clone._snapshot_wanted.is_set()
        clone.handle(_frames("price", 15, {"symbol": "EURUSD", "bid": 1.5}, "EURUSD"), 1)  # 13 and 14 lost
        assert clone._snapshot_wanted.is_set() and clone.counters["feed_lost"] == 2
        clone._snapshot_wanted.clear()
        clone.handle(_frames("price", 1, {"symbol": "EURUSD", "bid": 1.0}, "EURUSD"), 1)  # a new daemon
        assert clone._snapshot_wanted.is_set() and clone.counters["feed_resets"] == 1
        clone.handle([b"price.EURUSD", b"{not json"], 1)  # a bad message costs a counter at most
        clone.apply_snapshot({"feed_seq": 3, "quotes": [{"symbol": "EURUSD", "bid": 1.3}], "positions": [], "accounts": []})
        return clone, sink

    clone, sink = asyncio.run(scenario())
    assert clone.positions == {} and clone.quotes["EURUSD"]["bid"] == 1.3
    healed = [json.loads(t) for t in sink.reliable_texts]
    assert healed[-1]["type"] == "position_update" and healed[-1]["data"]["status"] == "closed"  # the client learns it closed
    assert seq_of(b'{"type":"x","data":{},"timestamp":"t","seq":123}') == 123 and seq_of(b"{}") is None


def test_a_snapshot_with_the_daemons_health_makes_the_clone_see_it_alive_at_once() -> None:
    """A sidecar that had just started (or healed) said the daemon unreachable and degraded until the next health
    message, 0.1-0.57 s after the snapshot was applied (an operations review, 2026-12-05): the reply now carries it."""
    now = [100.0]

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), _Sink(), hwm=10, recent_signals=10, silence_s=3.0, clock=lambda: now[0])  # type: ignore[arg-type]
        assert not clone.daemon_alive()
        health = {"status": "healthy", "uptime": 5.0, "terminals": [{"terminal": "t1", "connected": True}]}
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [], "accounts": [], "health": health})
        return clone

    clone = asyncio.run(scenario())
    assert clone.daemon_alive() and clone.daemon_health["status"] == "healthy"
    assert clone.terminals == [{"terminal": "t1", "connected": True}]
    now[0] += 3.5  # and like any message from the daemon, it ages: silence after it is still noticed
    assert not clone.daemon_alive()


def test_a_snapshots_health_does_not_replace_a_newer_one_from_the_feed() -> None:
    """The review of the change: a health message that came on the feed while the snapshot was on its way (a higher
    seq) was replaced by the snapshot's older copy (a stale terminal shown connected until the next one)."""

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), _Sink(), hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [], "accounts": [], "health": {"status": "healthy"}})
        clone.handle(_frames("health", 11, {"status": "degraded", "terminals": [{"terminal": "t1", "stale": True}]}), 1)
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [], "accounts": [], "health": {"status": "healthy", "terminals": []}})
        assert clone.daemon_health["status"] == "degraded" and clone.terminals == [{"terminal": "t1", "stale": True}]
        clone.apply_snapshot({"feed_seq": 12, "quotes": [], "positions": [], "accounts": [], "health": {"status": "healthy", "terminals": []}})
        assert clone.daemon_health["status"] == "healthy"  # a newer snapshot's is taken
        clone.handle(_frames("health", 13, {"status": "healthy"}), 1)
        clone.handle(_frames("price", 1, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)  # a new daemon: seqs from 1
        clone.apply_snapshot({"feed_seq": 2, "quotes": [], "positions": [], "accounts": [], "health": {"status": "degraded"}})
        assert clone.daemon_health["status"] == "degraded"  # the old process's seq 13 does not outrank it
        return clone

    asyncio.run(scenario())


def test_a_terminal_the_daemons_health_no_longer_lists_leaves_the_clone() -> None:
    """The daemon forgets a terminal that left holding nothing when a new one needs its slot (daemon.max_terminals):
    the clone let go of nothing, so ids that came and went grew its accounts and quotes for good."""

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), _Sink(), hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [], "accounts": []})
        for seq, terminal in enumerate(("stays", "goes"), start=11):
            clone.handle(_frames("account", seq, {"terminal": terminal, "balance": 1000.0}), 1)
        clone.handle(_frames("price", 13, {"symbol": "EURUSD", "terminal": "stays", "bid": 1.1}, "EURUSD"), 1)
        clone.handle(_frames("price", 14, {"symbol": "EURUSD", "terminal": "goes", "bid": 1.2}, "EURUSD"), 1)
        assert set(clone.accounts) == {"stays", "goes"} and len(clone.terminal_quotes) == 2
        clone.handle(_frames("health", 15, {"status": "healthy", "terminals": [{"terminal": "stays"}]}), 1)
        return clone

    clone = asyncio.run(scenario())
    assert set(clone.accounts) == {"stays"}
    assert set(clone.terminal_quotes) == {("stays", "EURUSD")}
    assert clone.quotes["EURUSD"]["bid"] == 1.2  # the symbol's latest quote is the market's, whoever sent it

    async def late_snapshot(clone: Clone) -> None:
        # a snapshot taken before the daemon forgot "goes" and applied after the health that says so: its health is
        # not taken (an older one), and later healths list the same terminals, yet its account must go
        clone.apply_snapshot({"feed_seq": 14, "quotes": [], "positions": [], "accounts": [{"terminal": "stays"}, {"terminal": "goes"}], "health": {"status": "healthy"}})
        clone.handle(_frames("health", 16, {"status": "healthy", "terminals": [{"terminal": "stays"}]}), 1)

    asyncio.run(late_snapshot(clone))
    assert set(clone.accounts) == {"stays"}


def test_the_default_account_is_a_connected_terminals() -> None:
    """/api/account without ?terminal= gave the first id in order: a terminal stopped hours ago (listed while retired,
    its last account kept) over the one trading now."""

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), _Sink(), hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [], "accounts": []})
        assert clone.default_account() is None
        for seq, terminal in enumerate(("A@Old", "B@Now", "C@Now"), start=11):
            clone.handle(_frames("account", seq, {"terminal": terminal, "balance": float(seq)}), 1)
        terminals = [{"terminal": "A@Old", "connected": False, "retired": True}, {"terminal": "B@Now", "connected": True}, {"terminal": "C@Now", "connected": True}]
        clone.handle(_frames("health", 14, {"status": "healthy", "terminals": terminals}), 1)
        assert clone.default_account()["terminal"] == "B@Now"  # connected, then by id
        clone.handle(_frames("health", 15, {"status": "degraded", "terminals": [{**t, "connected": False} for t in terminals]}), 1)
        assert clone.default_account()["terminal"] == "A@Old"  # none connected: by id, as before
        return clone

    asyncio.run(scenario())


def test_a_restarted_daemons_snapshot_does_not_close_positions_whose_terminal_has_not_reported_yet() -> None:
    """A restarted daemon knows a terminal's positions from its first positions event, up to a heartbeat after it
    starts: clients were told every position closed, then opened again (positions that vanished, to a trader)."""
    now = [100.0]
    sink = _Sink()

    def pos(terminal: str, ticket: str) -> dict[str, Any]:
        return {"ticket": ticket, "terminal": terminal, "symbol": "EURUSD", "type": "BUY"}

    def health(seq: int, known: dict[str, bool]) -> list[bytes]:
        return _frames("health", seq, {"status": "healthy", "terminals": [{"terminal": t, "positions_known": k} for t, k in known.items()]})

    def closed() -> list[str]:
        return [m["data"]["ticket"] for m in map(json.loads, sink.reliable_texts) if m["type"] == "position_update" and m["data"]["status"] == "closed"]

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), sink, hwm=10, recent_signals=10, silence_s=3.0, clock=lambda: now[0])  # type: ignore[arg-type]
        known = {"T1": True, "T2": True, "T3": True}
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [pos("T1", "1"), pos("T2", "2"), pos("T3", "3")], "accounts": [],
                              "health": {"status": "healthy", "terminals": [{"terminal": t, "positions_known": k} for t, k in known.items()]}})  # fmt: skip
        clone.handle(_frames("price", 1, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)  # a new daemon: seq 1
        clone.apply_snapshot({"feed_seq": 1, "quotes": [], "positions": [], "accounts": [], "positions_known": [], "health": {"status": "degraded", "terminals": []}})
        assert sorted(k[1] for k in clone.positions) == ["1", "2", "3"] and closed() == []  # kept: no book of theirs yet
        clone.handle(_frames("position", 2, {**pos("T1", "1"), "status": "opened"}), 1)  # T1 reports: 1 is still open
        clone.handle(health(3, {"T1": True, "T2": False}), 1)
        assert closed() == []
        clone.handle(health(4, {"T1": True, "T2": True}), 1)  # T2 reports an empty book: 2 was closed meanwhile
        assert closed() == ["2"] and sorted(k[1] for k in clone.positions) == ["1", "3"]
        now[0] += CARRY_S + 1  # T3 never comes back
        clone.handle(health(5, {"T1": True, "T2": True}), 1)
        assert closed() == ["2", "3"] and sorted(k[1] for k in clone.positions) == ["1"]
        return clone

    asyncio.run(scenario())


def test_a_terminal_that_reports_after_its_carried_positions_were_let_go_is_not_told_closed_twice() -> None:
    """The review of the change (2026-12-05): a restarted daemon now tells, from the book it saved, each position a
    terminal closed while it was down, and "updated" for one still open. When that terminal reports after CARRY_S,
    the clone has already told the clients every carried position closed: they heard "closed" twice, and then an
    "updated" of a position they were told is gone. Now a close of one the clone does not hold is not passed on,
    and an update of one it does not hold reaches them as "opened"."""
    now = [100.0]
    sink = _Sink()

    def pos(ticket: str) -> dict[str, Any]:
        return {"ticket": ticket, "terminal": "T1", "symbol": "EURUSD", "type": "BUY"}

    def told() -> list[tuple[str, str]]:
        return [(m["data"]["ticket"], m["data"]["status"]) for m in map(json.loads, sink.reliable_texts) if m["type"] == "position_update"]

    async def scenario() -> Clone:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), sink, hwm=10, recent_signals=10, silence_s=3.0, clock=lambda: now[0])  # type: ignore[arg-type]
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [pos("1"), pos("2")], "accounts": [],
                              "health": {"status": "healthy", "terminals": [{"terminal": "T1", "positions_known": True}]}})  # fmt: skip
        clone.handle(_frames("price", 1, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)  # a new daemon: seq 1
        clone.apply_snapshot({"feed_seq": 1, "quotes": [], "positions": [], "accounts": [], "positions_known": [], "health": {"status": "degraded", "terminals": []}})
        now[0] += CARRY_S + 1  # T1 has not reported: its carried positions are let go, the clients told
        clone.handle(_frames("health", 2, {"status": "degraded", "terminals": [{"terminal": "T1", "positions_known": False}]}), 1)
        assert sorted(told()) == [("1", "closed"), ("2", "closed")] and not clone.positions
        clone.handle(_frames("position", 3, {**pos("1"), "status": "updated"}), 1)  # T1 reports: 1 still open, 2 closed
        clone.handle(_frames("position", 4, {**pos("2"), "status": "closed"}), 1)
        assert sorted(told()) == [("1", "closed"), ("1", "opened"), ("2", "closed")], told()
        assert [k[1] for k in clone.positions] == ["1"] and clone.counters["positions_closed_again"] == 1
        return clone

    asyncio.run(scenario())


def test_carried_positions_survive_a_lost_update_and_expire_from_their_first_carry() -> None:
    """The review of the change: a carried position whose 'opened' was lost in a gap was closed by the gap's heal
    though the daemon had it again; and every later heal restarted the 60 s, so one never reported stayed for good."""
    now = [100.0]
    sink = _Sink()

    def snapshot(clone: Clone, seq: int, positions: list[dict[str, Any]], known: list[str]) -> None:
        clone.apply_snapshot({"feed_seq": seq, "quotes": [], "positions": positions, "accounts": [], "positions_known": known,
                              "health": {"status": "healthy", "terminals": [{"terminal": t, "positions_known": t in known} for t in ("T1", "T3")]}})  # fmt: skip
        clone._snapshot_wanted.clear()  # as the clone's snapshot loop does when it takes one

    async def scenario() -> list[tuple[str, str]]:
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), sink, hwm=10, recent_signals=10, silence_s=3.0, clock=lambda: now[0])  # type: ignore[arg-type]
        one, three = {"ticket": "1", "terminal": "T1"}, {"ticket": "3", "terminal": "T3"}
        snapshot(clone, 10, [one, three], ["T1", "T3"])
        clone.handle(_frames("price", 1, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)  # a new daemon
        snapshot(clone, 1, [], [])  # both carried
        now[0] += 50
        clone.handle(_frames("price", 5, {"symbol": "EURUSD", "bid": 1.1}, "EURUSD"), 1)  # T1's 'opened' was in 2-4: lost
        snapshot(clone, 5, [one], ["T1"])  # the gap's heal: the daemon has T1's book, with 1 in it
        assert sorted(k[1] for k in clone.positions) == ["1", "3"]
        now[0] += 15  # 65 s after T3 was first carried, 15 s after the last heal
        clone.handle(_frames("health", 6, {"status": "healthy", "terminals": [{"terminal": "T1", "positions_known": True}]}), 1)
        return [(m["data"]["ticket"], m["data"]["status"]) for m in map(json.loads, sink.reliable_texts) if m["type"] == "position_update"]

    updates = asyncio.run(scenario())
    assert updates == [("3", "closed")], updates  # 1 never closed; 3 closed once, 60 s after its first carry


def test_a_snapshot_from_a_daemon_that_does_not_say_whose_book_it_has_is_taken_at_its_word() -> None:
    async def scenario() -> Clone:
        sink = _Sink()
        clone = Clone("tcp://127.0.0.1:1", None, _NoControl(), sink, hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        clone.apply_snapshot({"feed_seq": 10, "quotes": [], "positions": [{"ticket": "7", "terminal": "T1"}], "accounts": []})
        clone.apply_snapshot({"feed_seq": 11, "quotes": [], "positions": [], "accounts": [], "health": {"status": "healthy", "terminals": [{"terminal": "T1"}]}})
        assert clone.positions == {} and json.loads(sink.reliable_texts[-1])["data"]["status"] == "closed"
        return clone

    asyncio.run(scenario())


def test_reading_the_feed_leaves_no_garbage_cycles() -> None:
    """A reference cycle per feed wake-up piled up ~50,000 objects every few seconds at 2,000 ticks/s,
    and their collection stopped the sidecar's loop for 25-40 ms (zmq.asyncio's non-blocking recv
    ended each drain in a Future holding zmq.Again and its traceback)."""

    async def scenario() -> tuple[_Sink, int]:
        ctx = zmq.asyncio.Context()
        pub = ctx.socket(zmq.PUB)
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sink = _Sink()
        clone = Clone("tcp://127.0.0.1:1", ctx, _NoControl(), sink, hwm=1000, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        reader = asyncio.create_task(clone._read_feed(sub))
        seq = 0
        while sink.prices == 0:  # until the subscription has reached the publisher
            seq += 1
            await pub.send_multipart(_frames("price", seq, {"symbol": "EURUSD", "bid": 1.0}, "EURUSD"))
            await asyncio.sleep(0.01)
        gc.collect()
        gc.disable()
        try:
            target = sink.prices + 400
            for _ in range(80):  # 80 wake-ups of 5 messages
                for _ in range(5):
                    seq += 1
                    await pub.send_multipart(_frames("price", seq, {"symbol": "EURUSD", "bid": 1.0}, "EURUSD"))
                await asyncio.sleep(0.002)
            while sink.prices < target:
                await asyncio.sleep(0.005)
            garbage = gc.collect()
        finally:
            gc.enable()
            reader.cancel()
            pub.close(0)
            sub.close(0)
            ctx.term()
        return sink, garbage

    sink, garbage = asyncio.run(scenario())
    assert garbage < 100, garbage  # was ~27 objects per wake-up: ~2,000 here


def test_default_rate_limits_never_touch_the_apps_five_second_polling() -> None:
    now = [0.0]
    per_token = Buckets(20.0, 100, clock=lambda: now[0])
    per_ip = Buckets(50.0, 300, clock=lambda: now[0])
    for _ in range(720):  # an hour of fetchSignals + fetchOpenTrades every 5 s, plus a refresh burst of 3 each time
        for _ in range(5):
            assert per_token.take("app") == 0.0 and per_ip.take("10.0.0.2") == 0.0
        now[0] += 5.0
    assert per_token.denied == 0 and per_ip.denied == 0


def test_buckets_refill_say_when_to_retry_and_stay_bounded() -> None:
    now = [0.0]
    buckets = Buckets(2.0, 3, max_keys=100, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == 0.5  # one token comes in 1/rate seconds
    now[0] += 0.5
    assert buckets.take("k") == 0.0
    for i in range(1000):
        buckets.take(f"ip{i}")
    assert len(buckets) <= 100


def test_failures_paid_after_the_fact_are_all_paid_even_when_checked_together() -> None:
    """Login failures: wait() before the scrypt, charge() after it. Ten attempts that all passed wait() with one
    token left are all charged (take() would have charged one and counted nine as refused)."""
    now = [0.0]
    names = Buckets(1.0, 2, clock=lambda: now[0])
    names.charge("carol")
    assert [names.wait("carol") for _ in range(10)] == [0.0] * 10 and names.denied == 0  # wait takes nothing
    for _ in range(10):
        names.charge("carol")
    assert names.wait("carol") == 10.0 and names.denied == 1  # 1 - 10 tokens: ten seconds until one is back
    now[0] += 10.0
    assert names.wait("carol") == 0.0


def test_a_snapshot_that_outlived_its_replay_buffer_is_discarded_and_asked_again(monkeypatch) -> None:
    """Updates beyond the replay buffer while a snapshot is in flight are not kept: applying that snapshot
    would lose them and tell clients that positions opened meanwhile are closed."""
    from quantumtrader.sidecar import state

    monkeypatch.setattr(state, "_REPLAY_MAX", 5)

    class SlowControl:
        endpoint = "tcp://127.0.0.1:1"

        def __init__(self) -> None:
            self.calls = 0
            self.release = asyncio.Event()

        async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                await self.release.wait()  # the first snapshot is in flight while the feed runs on
                return {"ok": True, "feed_seq": 1, "quotes": [{"symbol": "EURUSD", "bid": 1.0, "terminal": "t1"}], "positions": [], "accounts": []}
            if self.calls == 2:
                return {"ok": True, "feed_seq": 20, "quotes": [{"symbol": "EURUSD", "bid": 2.0, "terminal": "t1"}], "positions": [], "accounts": []}
            await asyncio.Event().wait()  # no third
            raise AssertionError

    async def scenario() -> tuple[Clone, SlowControl]:
        control = SlowControl()
        clone = Clone("tcp://127.0.0.1:1", None, control, _Sink(), hwm=10, recent_signals=10, silence_s=3.0)  # type: ignore[arg-type]
        clone._snapshot_wanted.set()
        task = asyncio.get_running_loop().create_task(clone._snapshots())
        await asyncio.sleep(0.01)
        for seq in range(2, 12):  # ten updates: beyond the buffer of five
            clone.handle(_frames("price", seq, {"symbol": "EURUSD", "bid": 1.0 + seq / 100, "terminal": "t1"}, "EURUSD"), 1)
        control.release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if control.calls >= 3:
                break
        task.cancel()
        return clone, control

    clone, control = asyncio.run(scenario())
    assert clone.counters["snapshots_discarded"] == 1
    assert control.calls >= 2 and clone.quotes["EURUSD"]["bid"] == 2.0  # the second snapshot, not the stale first
