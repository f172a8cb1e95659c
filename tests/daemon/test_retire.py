"""A terminal silent for ``daemon.retire_after_s`` is retired: health stops saying degraded for it, and its next
event of any kind brings it back (an EA removed without bye used to keep health degraded until a restart)."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from quantumtrader.daemon.terminals import TerminalRegistry
from support import Endpoints, FakeClock, control, daemon_process, event_frame, events_push, start, stop, terminal_status, wait_for

SILENT = "A@Silent"
STREAMING = "B@Streaming"


def _hello(registry: TerminalRegistry, terminal: str, now: float) -> None:
    registry.hello({"terminal": terminal, "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"], "heartbeat_s": 1.0}, now, 0)


def test_only_a_terminal_stale_for_the_whole_period_is_retired_and_any_event_or_hello_brings_it_back() -> None:
    clock = FakeClock()
    registry = TerminalRegistry(default_heartbeat_s=5.0, stale_heartbeats=3)
    _hello(registry, "a", clock.now)
    _hello(registry, "b", clock.now)
    clock.now += 3.5  # both silent past 3 x 1 s: stale
    assert {s.terminal for s in registry.update_stale(clock.now)} == {"a", "b"}
    registry.seen("b", 1, clock.now, 0)  # b speaks again: fresh
    assert registry.retire_silent(clock.now, 0) == []  # 0: never
    clock.now += 5.0  # a silent 8.5 s
    assert registry.retire_silent(clock.now, 10.0) == []
    assert [s.terminal for s in registry.degraded_by()] == ["a"]
    clock.now += 2.0  # 10.5 s
    assert [s.terminal for s in registry.retire_silent(clock.now, 10.0)] == ["a"]
    assert registry.retire_silent(clock.now, 10.0) == []  # once
    assert registry.degraded_by() == []
    entry = {t["terminal"]: t for t in registry.to_json()}["a"]
    assert entry["retired"] and entry["stale"] and not entry["connected"]

    with structlog.testing.capture_logs() as logged:
        session, known = registry.seen("a", 1, clock.now, 0)  # any event: back, not stale, not retired
    assert known and not session.retired and not session.stale
    # said, as its going stale and retired are (a review found it silent, 2026-12-05)
    assert [(e["event"], e["terminal"], e["was"], e["silent_s"]) for e in logged] == [("terminal back", "a", "retired", 10.5)]
    clock.now += 20.0
    registry.update_stale(clock.now)
    registry.retire_silent(clock.now, 10.0)
    _hello(registry, "a", clock.now)  # a hello too
    assert not registry.sessions["a"].retired and not registry.sessions["a"].stale


def test_a_silent_terminal_degrades_health_until_retired_and_its_next_tick_brings_it_back(tmp_path: Path) -> None:
    eps = Endpoints()
    data = tmp_path / "data"
    with daemon_process(eps, tmp_path, QT_DAEMON__HEALTH_INTERVAL_S="0.1", QT_DAEMON__RETIRE_AFTER_S="2"):
        paper = start(["paper", "--terminal", STREAMING, "--heartbeat-s", "0.3", "--rate", "50"], eps.env(data), tmp_path / "paper.log")
        push = events_push(eps.events)
        try:
            wait_for(lambda: terminal_status(eps.control, STREAMING), 15, "the streaming terminal's hello")
            # the silent one: its own heartbeat period 0.2 s, so stale after 0.6 s of silence
            hello = {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["XAGUSD"], "heartbeat_s": 0.2}
            push.send(event_frame(SILENT, hello))
            push.send(event_frame(SILENT, {"type": "tick", "seq": 1, "symbol": "XAGUSD", "bid": 30.01, "ask": 30.03, "volume": 1.0}))
            last_heard = time.monotonic()  # its silence starts here (the noticing below may come late on a loaded host)
            wait_for(lambda: terminal_status(eps.control, SILENT), 10, "the silent terminal's hello")

            wait_for(lambda: terminal_status(eps.control, SILENT)["stale"], 10, "the silent terminal to go stale")
            health = control(eps.control)["health"]  # one reading: the terminal's state and health's together
            (silent,) = [t for t in health["terminals"] if t["terminal"] == SILENT]
            assert silent["retired"] or health["status"] == "degraded"  # stale and not yet retired: degraded

            retired = wait_for(lambda: terminal_status(eps.control, SILENT)["retired"], 10, "the silent terminal to be retired")
            assert retired and time.monotonic() - last_heard >= 2.0  # not before its 2 s of silence
            health = control(eps.control)["health"]
            assert health["status"] == "healthy", health["terminals"]
            assert health["counters"]["terminals_retired"] == 1
            entry = terminal_status(eps.control, SILENT)
            assert entry["stale"] and not entry["connected"] and not entry["gone"]

            # back with a tick, no hello: taken at once (not dropped as after a bye), fresh and not retired
            ticks_before = health["counters"]["ticks"]
            push.send(event_frame(SILENT, {"type": "tick", "seq": 2, "symbol": "XAGUSD", "bid": 30.05, "ask": 30.07, "volume": 1.0}))
            wait_for(lambda: terminal_status(eps.control, SILENT)["last_seq"] == 2, 10, "the returning terminal's tick")
            entry = terminal_status(eps.control, SILENT)
            assert entry["connected"] and not entry["retired"] and not entry["stale"]
            snapshot = control(eps.control, "snapshot", symbols=["XAGUSD"])
            assert [q["bid"] for q in snapshot["terminal_quotes"] if q["terminal"] == SILENT] == [30.05]
            counters = control(eps.control)["health"]["counters"]
            assert counters["ticks"] > ticks_before and counters.get("ticks_after_bye", 0) == 0
        finally:
            push.close(linger=0)
            stop(paper)


def test_a_daemon_that_was_frozen_does_not_blame_its_terminals_for_the_silence(tmp_path: Path) -> None:
    """A soak (2026-12-05): SIGSTOP for 20 s, and 0.5 ms after SIGCONT "terminal stale" was logged, its symbols
    released and health degraded, before the terminal's queued events were read: it had never been silent. A gap
    between two health passes longer than the loop ever takes means the daemon, not the terminals, stopped."""
    from quantumtrader.config import load_config
    from quantumtrader.daemon.server import Daemon

    clock = FakeClock()
    eps = Endpoints()
    d = Daemon(load_config(environ=eps.env(tmp_path / "data")), monotonic=clock)
    d.bind()
    try:
        _hello(d.terminals, "a", clock.now)  # heartbeat 1 s, 3 heartbeats: stale after 3 s of silence
        d._housekeeping(clock.now)
        clock.now += 20.0  # frozen: no pass ran, no event was read
        d._housekeeping(clock.now)
        assert not d.terminals.sessions["a"].stale and d.health()["status"] == "healthy"
        clock.now += 1.0  # running again: a pass a second, and still nothing from "a"
        d._housekeeping(clock.now)
        clock.now += 1.0
        d._housekeeping(clock.now)
        assert not d.terminals.sessions["a"].stale  # 2 s of its own silence
        clock.now += 1.5
        d._housekeeping(clock.now)
        assert d.terminals.sessions["a"].stale  # 3.5 s of silence since the daemon ran again: really silent
    finally:
        d.close()
