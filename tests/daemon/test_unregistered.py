"""What a terminal that never said hello (nor sent a heartbeat with the hello fields) may change: little.

Anyone who can reach the events port can make up an id. A review (2026-12-05) showed, over real processes, a
made-up id's positions counting against risk.max_open_positions, its account replacing the app's, ticks of 4,096
made-up symbols filling daemon.max_symbols, and one tick a day ahead keeping health degraded for a day. A real
EA that outlived a daemon restart is unregistered only until its next heartbeat, which repeats the hello fields
and is followed by its account and positions; its ticks of the symbols the daemon resumed are used meanwhile.
Over real sockets, an in-process daemon.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support import FeedSubscriber, control, event_frame, events_push, inproc_daemon, serving, terminal_status, wait_for

from quantumtrader.protocol import now_msc


def _tick(terminal: str, seq: int, symbol: str, **over: Any) -> bytes:
    return event_frame(terminal, {"type": "tick", "seq": seq, "symbol": symbol, "bid": 1.1, "ask": 1.1001, "volume": 1, **over})


def _hello(terminal: str) -> bytes:
    return event_frame(terminal, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"], "heartbeat_s": 60})


def _saved_with_eurusd(data: Path) -> None:
    """A daemon that met A@One and its EURUSD, stopped: the stop saves the models' state, which the next resumes."""
    first, eps = inproc_daemon(data)
    push = events_push(eps.events)
    try:
        with serving(first):
            push.send(_hello("A@One"))
            push.send(_tick("A@One", 1, "EURUSD"))
            wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks") == 1, 10, "A's tick")
    finally:
        push.close()
        first.close()


def test_after_a_restart_an_unregistered_terminal_ticks_the_resumed_symbols_only(tmp_path: Path) -> None:
    _saved_with_eurusd(tmp_path / "data")
    # heartbeats of 0.2 s assumed: the first 0.4 s of the run, when any symbol is taken, are over by the first tick
    second, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__HEARTBEAT_S="0.2")
    push = events_push(eps.events)
    feed = FeedSubscriber(eps.feed, (b"price.", b"health"))
    try:
        with serving(second):
            feed.wait_joined()
            time.sleep(1.0)
            push.send(_tick("A@One", 2, "EURUSD", bid=1.2, ask=1.2001))  # A outlived the restart: no hello yet
            push.send(_tick("A@One", 3, "GBPUSD"))
            wait_for(lambda: control(eps.control)["health"]["rejects"].get("not_registered") == 1, 10, "the new symbol refused")
            health = control(eps.control)["health"]
            assert health["counters"]["ticks"] == 1 and health["rejects"]["unknown_terminal"] == 1
            prices = [m[1]["data"] for m in iter(lambda: feed.recv(500), None) if m[0].startswith("price.")]
            assert [(p["symbol"], p["bid"]) for p in prices] == [("EURUSD", 1.2)]
            push.send(event_frame("A@One", {"type": "heartbeat", "seq": 4, "dropped": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD", "GBPUSD"], "heartbeat_s": 60}))
            push.send(_tick("A@One", 5, "GBPUSD"))  # registered by its heartbeat: a new symbol is its to add
            wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks") == 2, 10, "GBPUSD after the heartbeat")
    finally:
        feed.close()
        push.close()
        second.close()


def test_in_the_first_two_heartbeats_of_a_run_an_unregistered_terminal_may_add_a_symbol(tmp_path: Path) -> None:
    """A terminal that outlived a restart with no saved state (a first start, a new data directory) ticks before its
    next heartbeat: an ops check saw every price dark for ~5 s and 245 ticks refused. The first two default heartbeat
    periods of a run (10 s here) take them."""
    d, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    try:
        with serving(d):
            wait_for(lambda: control(eps.control)["ok"], 10, "the daemon serving")
            push.send(_tick("A@One", 7, "GBPUSD"))
            health = wait_for(lambda: (h := control(eps.control)["health"])["counters"].get("ticks") == 1 and h, 10, "GBPUSD taken")
            assert health["rejects"].get("not_registered", 0) == 0 and health["rejects"]["unknown_terminal"] == 1
            push.send(event_frame("A@One", {"type": "account", "seq": 8, "login": 3, "currency": "USD", "balance": 1e4, "equity": 1e4, "margin": 0.0, "free_margin": 1e4, "leverage": 100}))
            wait_for(lambda: control(eps.control)["health"]["rejects"].get("not_registered") == 1, 10, "its account refused all the same")
    finally:
        push.close()
        d.close()


def test_an_unregistered_id_neither_degrades_health_nor_names_a_clock_problem(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__HEARTBEAT_S="2", QT_DAEMON__HEALTH_INTERVAL_S="0.1")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(_hello("A@One"))  # announces 60 s heartbeats: stays connected for the test
            push.send(_tick("A@One", 1, "EURUSD"))
            wait_for(lambda: control(eps.control)["health"]["status"] == "healthy", 10, "healthy with A")
            push.send(_tick("X@Made-up", 1, "EURUSD", time_msc=now_msc() + 20 * 3_600_000))  # 20 h ahead
            x = wait_for(lambda: terminal_status(eps.control, "X@Made-up"), 10, "X's tick")
            health = control(eps.control)["health"]  # X heard within the last 2 s (stale after 6): not judged
            assert not x["stale"] and health["status"] == "healthy" and health["problems"] == [], health
            wait_for(lambda: terminal_status(eps.control, "X@Made-up")["stale"], 15, "X stale")
            health = control(eps.control)["health"]  # gone quiet: no reason for degraded either
            assert health["status"] == "healthy" and health["problems"] == [], health
    finally:
        push.close()
        d.close()


def test_health_says_in_its_problems_why_the_terminals_make_it_degraded(tmp_path: Path) -> None:
    """An ops check: 'degraded' with problems [] after a restart, the reason left to be read from the terminal list."""
    d, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__HEALTH_INTERVAL_S="0.1")
    push = events_push(eps.events)
    try:
        with serving(d):
            health = control(eps.control)["health"]
            assert health["status"] == "degraded" and health["problems"][0].startswith("no terminal connected"), health["problems"]
            push.send(event_frame("A@One", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"], "heartbeat_s": 0.2}))
            wait_for(lambda: control(eps.control)["health"]["status"] == "healthy", 10, "healthy with A")
            assert control(eps.control)["health"]["problems"] == []
            health = wait_for(lambda: (h := control(eps.control)["health"])["status"] == "degraded" and h, 10, "A stale")
            assert health["problems"][0].startswith("no terminal connected") and health["problems"][1].startswith("terminal A@One: silent since"), health["problems"]
    finally:
        push.close()
        d.close()
