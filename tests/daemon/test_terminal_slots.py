"""Terminal slots (``daemon.max_terminals``) are given back by terminals that left and hold nothing.

Every id the daemon met kept its slot until a restart: events of a few made-up
or past ids (a test script, an EA renamed, a copy started under another
name) locked every new terminal out with ``too_many_terminals`` for good.
Over real sockets, an in-process daemon with three slots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import control, event_frame, events_push, inproc_daemon, serving, terminal_status, wait_for

from quantumtrader.protocol import now_msc

#: Silent terminals go stale within ~0.5 s: hellos announce 0.1 s heartbeats (but those of terminals a test needs
#: live: ``_hello``), the daemon assumes 0.1 s for the rest.
SETTINGS = {
    "QT_DAEMON__MAX_TERMINALS": "3",
    "QT_DAEMON__HEARTBEAT_S": "0.1",
    "QT_DAEMON__HEALTH_INTERVAL_S": "0.1",
    "QT_EXECUTION__COMMAND_TIMEOUT_MS": "200",
    "QT_EXECUTION__COMMAND_RETRIES": "0",
}


def _hello(terminal: str, port: int, heartbeat_s: float = 0.1) -> bytes:
    """A terminal that goes stale 0.3-0.4 s after it falls silent, unless it says a longer ``heartbeat_s``: one the
    test needs live must, or a test process held up that long lets it go stale and give up its slot (a hunt)."""
    return event_frame(terminal, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{port}", "symbols": ["EURUSD"], "heartbeat_s": heartbeat_s})


def _tick(terminal: str, seq: int) -> bytes:
    return event_frame(terminal, {"type": "tick", "seq": seq, "symbol": "EURUSD", "bid": 1.1, "ask": 1.1001, "volume": 1})


def _positions(terminal: str, seq: int, positions: list[dict[str, Any]]) -> bytes:
    return event_frame(terminal, {"type": "positions", "seq": seq, "positions": positions})


def _position(ticket: int) -> dict[str, Any]:
    return {"ticket": ticket, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0, "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "", "open_time_msc": now_msc()}


def _health(endpoint: str) -> dict[str, Any]:
    return control(endpoint)["health"]


def _names(endpoint: str) -> list[str]:
    return sorted(t["terminal"] for t in _health(endpoint)["terminals"])


def test_a_new_terminal_takes_the_slot_of_one_that_left_holding_nothing(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data", **SETTINGS)
    push = events_push(eps.events)
    try:
        with serving(d):
            # A holds a position; B has an order whose outcome is unknown (its command endpoint never answers);
            # C never said hello (a stray sender, or an EA from before a restart): its tick of a symbol the daemon
            # knows is used, its positions and account are not (a review found a made-up id keeping its slot by
            # claiming a position, 2026-12-05).
            push.send(_hello("A@One", 1))
            push.send(_positions("A@One", 1, [_position(7)]))
            push.send(_hello("B@Two", 2))
            push.send(_tick("B@Two", 1))
            push.send(_positions("B@Two", 2, []))
            wait_for(lambda: _names(eps.control) == ["A@One", "B@Two"], 10, "A and B")
            push.send(_tick("C@Three", 1))
            push.send(_positions("C@Three", 2, [_position(8)]))
            push.send(event_frame("C@Three", {"type": "account", "seq": 3, "login": 3, "currency": "USD", "balance": 1e4, "equity": 9e3, "margin": 0.0, "free_margin": 9e3, "leverage": 100}))
            wait_for(lambda: _health(eps.control)["rejects"].get("not_registered") == 2, 10, "C's positions and account refused")
            assert _names(eps.control) == ["A@One", "B@Two", "C@Three"]
            snapshot = control(eps.control, "snapshot")
            assert [p["ticket"] for p in snapshot["positions"]] == ["7"] and snapshot["accounts"] == []
            assert {q["terminal"] for q in snapshot["terminal_quotes"]} == {"B@Two", "C@Three"}
            push.send(_tick("B@Two", 3))  # a fresh quote for the order's risk check
            reply = control(eps.control, "trade", timeout_ms=10_000, symbol="EURUSD", side="buy", lots=0.01, terminal="B@Two", source="test")
            assert reply["order"]["status"] == "unknown", reply
            wait_for(lambda: all(terminal_status(eps.control, t)["stale"] for t in ("A@One", "B@Two", "C@Three")), 10, "all three stale")

            push.send(_hello("D@Four", 4, heartbeat_s=60))  # C gives up its slot: it holds nothing
            wait_for(lambda: _names(eps.control) == ["A@One", "B@Two", "D@Four"], 10, "D in C's slot")
            health = _health(eps.control)
            assert health["counters"]["terminals_forgotten"] == 1
            assert "too_many_terminals" not in health["rejects"]
            assert all(q["terminal"] != "C@Three" for q in control(eps.control, "snapshot")["terminal_quotes"])

            push.send(_hello("E@Five", 5))  # A (a position) and B (an unsettled order) keep theirs; D is live
            wait_for(lambda: _health(eps.control)["rejects"].get("too_many_terminals") == 1, 10, "E refused")
            assert _names(eps.control) == ["A@One", "B@Two", "D@Four"]
            problems = _health(eps.control)["problems"]
            assert any(p.startswith("a new terminal was refused at") and "(3) slots" in p for p in problems), problems  # not only in the log
            assert not any("E@Five" in p for p in problems)  # it has no session: the sidecar could not hide its id (a login)

            push.send(_tick("C@Three", 2))  # C again: a new terminal now, and no slot is free for it
            wait_for(lambda: _health(eps.control)["rejects"].get("too_many_terminals") == 2, 10, "C refused")
    finally:
        push.close()
        d.close()


def test_a_terminal_that_said_bye_gives_up_its_slot_before_it_goes_stale(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data", **{**SETTINGS, "QT_DAEMON__MAX_TERMINALS": "1", "QT_DAEMON__HEARTBEAT_S": "60"})
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame("A@One", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"], "heartbeat_s": 60}))
            push.send(_tick("A@One", 1))
            push.send(event_frame("A@One", {"type": "bye", "seq": 2, "reason": "expert removed from chart"}))
            wait_for(lambda: (t := terminal_status(eps.control, "A@One")) is not None and t["gone"], 10, "A's bye")
            push.send(_hello("B@Two", 2, heartbeat_s=60))
            wait_for(lambda: _names(eps.control) == ["B@Two"], 10, "B in A's slot")
            assert all(q["terminal"] == "B@Two" for q in control(eps.control, "snapshot")["terminal_quotes"])
            push.send(_hello("C@Three", 3))  # B is live: C is refused, and health says a terminal was
            wait_for(lambda: any(p.startswith("a new terminal was refused") for p in _health(eps.control)["problems"]), 10, "C refused")
            push.send(event_frame("B@Two", {"type": "bye", "seq": 1, "reason": "expert removed from chart"}))
            push.send(_hello("C@Three", 3))  # in now: the refusal is no problem any more
            wait_for(lambda: _names(eps.control) == ["C@Three"], 10, "C in B's slot")
            assert not any(p.startswith("a new terminal was refused") for p in _health(eps.control)["problems"])
    finally:
        push.close()
        d.close()


def test_only_an_event_that_registers_a_new_id_frees_a_slot(tmp_path: Path) -> None:
    """The review of the change: a made-up id's refused positions event took the slot of a terminal stale after a
    network blip, whose heartbeat was then refused. Only a hello (or a heartbeat with its fields) may free one."""
    d, eps = inproc_daemon(tmp_path / "data", **{**SETTINGS, "QT_DAEMON__MAX_TERMINALS": "1"})
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(_hello("A@One", 1))
            wait_for(lambda: (t := terminal_status(eps.control, "A@One")) is not None and t["stale"], 10, "A stale")
            push.send(_positions("X@MadeUp", 1, []))
            push.send(_tick("X@MadeUp", 2))
            wait_for(lambda: _health(eps.control)["rejects"].get("too_many_terminals") == 2, 10, "X refused")
            health = _health(eps.control)
            assert _names(eps.control) == ["A@One"] and "terminals_forgotten" not in health["counters"]
            assert not any("X@MadeUp" in p for p in health["problems"]), health["problems"]  # a stray sender is not named
            heartbeat = {"type": "heartbeat", "seq": 1, "dropped": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"], "heartbeat_s": 0.1}
            push.send(event_frame("A@One", heartbeat))  # A is back after its blip, in its own slot
            wait_for(lambda: terminal_status(eps.control, "A@One")["events"] == 2, 10, "A's heartbeat")
            assert _names(eps.control) == ["A@One"]
            wait_for(lambda: terminal_status(eps.control, "A@One")["stale"], 10, "A stale again")
            push.send(event_frame("Y@Restarted", {**heartbeat, "seq": 5}))  # a heartbeat with the hello fields registers
            wait_for(lambda: _names(eps.control) == ["Y@Restarted"], 10, "Y in A's slot")
            assert terminal_status(eps.control, "Y@Restarted")["registered"]
    finally:
        push.close()
        d.close()


def test_a_failing_forget_hook_costs_the_search_not_the_loop(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data", **{**SETTINGS, "QT_DAEMON__MAX_TERMINALS": "1"})

    def broken(terminal: str) -> None:
        raise RuntimeError(f"cannot forget {terminal}")

    d.on_terminal_forgotten(broken)
    push = events_push(eps.events)
    try:
        with serving(d) as loop:
            push.send(_hello("A@One", 1))
            wait_for(lambda: (t := terminal_status(eps.control, "A@One")) is not None and t["stale"], 10, "A stale")
            push.send(_hello("B@Two", 2))
            wait_for(lambda: _health(eps.control)["counters"].get("internal_errors") == 1, 10, "the hook's failure counted")
            assert loop.is_alive()
            health = _health(eps.control)  # the slot was freed all the same: B is in, A forgotten and counted
            assert _names(eps.control) == ["B@Two"] and health["counters"]["terminals_forgotten"] == 1
            push.send(_tick("A@One", 1))  # the loop goes on serving
            wait_for(lambda: _health(eps.control)["counters"].get("events", 0) >= 3, 10, "the next event")
    finally:
        push.close()
        d.close()
