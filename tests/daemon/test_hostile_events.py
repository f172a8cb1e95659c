"""Events that once ended the daemon's loop, sent to a real daemon process: each is refused or absorbed,
counted, and the daemon goes on publishing the next tick.

Found by a review (2026-12-03): a hello announcing ``tcp://*:5560`` (the EA's
bind address copied into its announced one) made the execution engine's
``connect`` raise inside the loop; a tick with ``volume`` 1e20 passed
validation and made the price update's JSON encoding raise; a tick with a
``sent_ns`` near -2^63 overflowed the latency histogram.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import zmq

from support import Endpoints, FeedSubscriber, control, daemon_process, event_frame, events_push, inproc_daemon, serving, wait_for

TERMINAL = "hostile-1@Test"


def _frame(**fields: object) -> bytes:
    return event_frame(TERMINAL, fields)


def _tick(seq: int, **extra: object) -> bytes:
    return _frame(**{"type": "tick", "seq": seq, "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002, "volume": 1.0, **extra})


def test_hostile_hellos_and_ticks_are_refused_and_the_daemon_publishes_the_next_tick(tmp_path: Path) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path) as daemon:
        sub = FeedSubscriber(eps.feed, topics=(b"price.", b"health"))
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(eps.events)
        try:
            sub.wait_joined()
            for endpoint in ("tcp://*:5560", "tcp://0.0.0.0:5560", "tcp://-:5560", "tcp://127.0.0.1:99999"):
                push.send(_frame(type="hello", seq=0, platform="MT5", command_endpoint=endpoint, symbols=["EURUSD"]))
                push.send(_frame(type="heartbeat", seq=0, dropped=0, platform="MT5", command_endpoint=endpoint, symbols=["EURUSD"]))
            push.send(_frame(type="hello", seq=0, platform="MT5", command_endpoint="tcp://127.0.0.1:1", symbols=["EURUSD"]))
            push.send(_tick(1, volume=1e20))
            push.send(_tick(2, volume=2e15))
            push.send(_tick(3, sent_ns=-(2**63)))
            push.send(_tick(4, sent_ns=2**63 - 1))
            push.send(_tick(5, volume=7.0))  # the one valid tick, after all of them
            deadline = time.monotonic() + 10
            prices = []
            while time.monotonic() < deadline and not prices:
                got = sub.recv(timeout_ms=500)
                if got is not None and got[0] == "price.EURUSD":
                    prices.append(got[1]["data"])
            assert daemon.poll() is None, "the daemon process ended"
            assert [p["volume"] for p in prices] == [7], prices
            status = control(eps.control)
        finally:
            push.close()
            sub.close()
    rejects = status["rejects"]
    assert rejects["bad_value"] == 8 + 2, rejects  # 4 hellos, 4 heartbeats carrying hello fields, 2 sent_ns
    assert rejects["bad_volume"] == 2, rejects
    assert rejects["internal_error"] == 0, rejects  # refused at the door, not caught inside
    assert status["health"]["counters"]["ticks"] == 1


def test_a_subsystem_that_raises_costs_its_event_not_the_loop_and_is_logged_once_per_interval(tmp_path: Path, capfd) -> None:
    """In process over real sockets: an event hook and a tick hook that raise (a full disk under SQLite, a bug)."""
    import sqlite3

    d, eps = inproc_daemon(tmp_path / "data")

    def full_disk(msg: dict) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    def buggy(ticks: list, received_ns: int) -> None:
        raise ZeroDivisionError("a bug")

    d.on_event("account", full_disk)
    d.on_ticks(buggy)
    sub = FeedSubscriber(eps.feed, topics=(b"price.", b"health"))
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(eps.events)
    try:
        with serving(d) as loop:
            sub.wait_joined()
            push.send(_frame(type="hello", seq=0, platform="MT5", command_endpoint="tcp://127.0.0.1:1", symbols=["EURUSD"]))
            account = {"login": 1, "currency": "USD", "balance": 1.0, "equity": 1.0, "margin": 0.0, "free_margin": 1.0, "leverage": 100, "server": "X", "company": "Y", "name": "Z"}
            for seq in range(1, 4):
                push.send(_frame(type="account", seq=seq, **account))
            for seq in range(4, 7):
                push.send(_tick(seq, volume=float(seq)))
            volumes = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(volumes) < 3:
                got = sub.recv(timeout_ms=200)
                if got is not None and got[0] == "price.EURUSD":
                    volumes.append(got[1]["data"]["volume"])
            assert volumes == [4, 5, 6]
            assert loop.is_alive()
            assert d.rejects.counts["internal_error"] == 3
            # three accounts, and the tick hook once per batch (it runs after the batch's prices are out: wait for it)
            wait_for(lambda: d.counters["internal_errors"] >= 4, 5, "the tick hook's failure to be counted")
    finally:
        push.close(linger=0)
        sub.close()
    err = capfd.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if "internal error; the daemon goes on" in line]
    assert len(lines) == 2, lines  # one per place ("account event", "tick hook") within the interval
    assert any("database or disk is full" in line for line in lines) and any("ZeroDivisionError" in line for line in lines)


def test_a_control_handler_that_fails_on_every_request_logs_once_per_interval(tmp_path: Path, capfd) -> None:
    d, eps = inproc_daemon(tmp_path / "data")

    def broken(request: dict) -> dict:
        raise RuntimeError("handler bug")

    d.control.register("broken", broken)
    with serving(d):
        replies = [control(eps.control, "broken") for _ in range(5)]
    assert all(r["ok"] is False and r["status"] == 500 and "RuntimeError" in r["error"] for r in replies), replies
    err = capfd.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if "control handler failed" in line]
    assert len(lines) == 1, lines  # a traceback per request before


def test_a_reply_json_cannot_carry_is_a_500_and_the_requests_behind_it_are_answered(tmp_path: Path) -> None:
    """In process over real sockets. A reply holding an integer past 64 bits used to raise inside the drain:
    that client and every request queued behind it in the same drain got no answer at all."""
    d, eps = inproc_daemon(tmp_path / "data")
    d.control.register("huge", lambda request: {"n": 2**70})
    ctx = zmq.Context.instance()
    dealers = [ctx.socket(zmq.DEALER) for _ in range(3)]
    try:
        for dealer in dealers:
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(eps.control)
        time.sleep(1.0)  # connected before the requests go (ZeroMQ's I/O threads may be late on a loaded host)
        for dealer, kind in zip(dealers, ("huge", "status", "huge"), strict=True):
            dealer.send(orjson.dumps({"v": 1, "type": kind, "id": f"r-{kind}"}))
        time.sleep(1.0)
        assert d.control.drain() == 3
        replies = [orjson.loads(dealer.recv()) if dealer.poll(2000) else None for dealer in dealers]
    finally:
        for dealer in dealers:
            dealer.close()
        d.close()
    huge, status, huge_again = replies
    assert huge is not None and huge["ok"] is False and huge["status"] == 500 and "could not be encoded" in huge["error"] and huge["id"] == "r-huge", huge
    assert status is not None and status["ok"] is True and status["id"] == "r-status"
    assert huge_again is not None and huge_again["status"] == 500


def test_seq_beyond_an_mql_long_is_refused_and_gaps_that_add_up_past_64_bits_keep_health_answering(tmp_path: Path) -> None:
    """A real daemon process. seq 2^64-1 after a hello's 0 (orjson reads it) made lost_events a gap past
    64 bits; then health could not be published or answered, for good (found by test_event_fuzz.py)."""
    eps = Endpoints()
    max_long = 2**63 - 1
    with daemon_process(eps, tmp_path) as daemon:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(eps.events)
        try:
            hello = {"type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}
            push.send(_frame(seq=0, **hello))
            push.send(_tick(2**64 - 1))  # past MQL's long: refused
            for _ in range(3):  # each a gap of 2^63 - 2 after a hello's 0: three add up past 2^64
                push.send(_tick(max_long))
                push.send(_frame(seq=0, **hello))
            push.send(_tick(max_long))
            wait_for(lambda: control(eps.control)["health"]["counters"].get("events", 0) >= 9, 10, "the nine events taken")
            status = control(eps.control)
            snapshot = control(eps.control, "snapshot")
        finally:
            push.close()
        assert daemon.poll() is None
    assert status["rejects"]["bad_seq"] == 1, status["rejects"]
    terminal = next(t for t in status["health"]["terminals"] if t["terminal"] == TERMINAL)
    assert terminal["lost_events"] == max_long, terminal  # "at least this many"
    assert snapshot["ok"] and status["health"]["counters"].get("internal_errors", 0) == 0


def test_a_refused_event_counts_as_refused_not_also_as_lost(tmp_path: Path) -> None:
    """A real daemon process. A refused event with a valid terminal and seq was received: before, its seq was never
    accounted, so the next event's "gap" counted it again as lost on the way (a hunt, 2026-12-06: five crossed
    quotes read "5 lost" on the console, and qt-bench took them for transport loss). A real gap still counts, and
    a refused event out of sequence (a garbage sender's seq 0 under the terminal's id) leaves the count alone."""
    eps = Endpoints()
    with daemon_process(eps, tmp_path) as daemon:
        push = events_push(eps.events)  # closed only after the daemon took every event
        try:
            hello = {"type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}
            push.send(_frame(seq=0, **hello))
            push.send(_tick(1))
            push.send(_tick(2, bid=1.2, ask=1.1))  # crossed: refused
            push.send(_tick(3, time_msc=int(time.time() * 1000) + 3 * 86_400_000))  # three days ahead: refused
            push.send(_frame(type="heartbeat", seq=4, dropped=-1))  # a bad heartbeat: refused
            push.send(_tick(5))
            push.send(_tick(9))  # 6, 7 and 8 never sent: lost
            push.send(_tick(0, bid=1.2, ask=1.1))  # refused, out of sequence: not taken as the terminal's
            push.send(_tick(10))
            wait_for(lambda: control(eps.control)["health"]["counters"].get("events", 0) >= 9, 10, "the nine events taken")
            status = control(eps.control)
        finally:
            push.close()
        assert daemon.poll() is None
    rejects = {reason: n for reason, n in status["rejects"].items() if n}
    assert sum(rejects.values()) == 4 and rejects["crossed_quote"] == 2, rejects
    terminal = next(t for t in status["health"]["terminals"] if t["terminal"] == TERMINAL)
    assert terminal["lost_events"] == 3, terminal
    assert terminal["refused_events"] == 4, terminal
    assert terminal["seq_regressions"] == 0 and terminal["last_seq"] == 10, terminal


def test_a_flood_of_hellos_and_byes_is_logged_once_a_second_and_every_one_counted(tmp_path: Path) -> None:
    """Each hello and bye was a log line: a sender repeating them wrote 7,500 lines in 3 s (a hunt, 2026-12-06).
    Over real sockets into the real daemon: a chart change's bye and hello are both said, then a flood is said
    at most once a second per terminal and kind, and every event is counted in the lines, the held ones later."""
    import structlog

    daemon, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    hello = {"type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}
    rounds = 1000
    try:
        with structlog.testing.capture_logs() as logged:
            started = time.monotonic()
            for i in range(rounds):
                push.send(_frame(seq=0, **hello))
                push.send(_frame(type="bye", seq=1, reason="chart changed"))
            taken = 0
            while taken < 2 * rounds:
                assert time.monotonic() - started < 30, f"{taken} of {2 * rounds} events taken"
                taken += daemon.drain_events()
            seconds = time.monotonic() - started
            # a hello that moves the terminal's command endpoint is said at once, whatever came before it
            push.send(_frame(seq=0, **{**hello, "command_endpoint": "tcp://127.0.0.1:2"}))
            wait_for(lambda: daemon.drain_events() and False or any(e.get("command_endpoint") == "tcp://127.0.0.1:2" for e in logged), 10, "the moved endpoint said")
            time.sleep(1.1)
            daemon._flush_session_log()  # what housekeeping does every second
    finally:
        push.close()
        daemon.close()
    lines = [e for e in logged if e["event"].startswith(("terminal registered", "terminal said bye"))]
    hellos = [e for e in lines if e["event"].startswith("terminal registered")]
    byes = [e for e in lines if e["event"].startswith("terminal said bye")]
    assert hellos[0]["event"] == "terminal registered" and byes[0]["event"] == "terminal said bye"  # the first of each said at once
    assert len(hellos) <= seconds + 3 and len(byes) <= seconds + 3, (len(hellos), len(byes), seconds)
    assert sum(e["count_since_last_log"] for e in hellos) == rounds + 1
    assert sum(e["count_since_last_log"] for e in byes) == rounds


def test_a_daemon_allowed_to_bind_beyond_loopback_says_what_a_stranger_could_do(tmp_path: Path) -> None:
    """A security review (2026-12-06): control bound to every address started with an info line, and anyone on the
    network could trade, lift the kill switch and stop the daemon. Refused when the config loads (test_config.py)
    unless endpoints.allow_remote; then a real daemon warns at start, naming the endpoint and the risk."""
    eps = Endpoints()
    port = eps.control.rsplit(":", 1)[1]
    with daemon_process(eps, tmp_path, QT_ENDPOINTS__CONTROL=f"tcp://0.0.0.0:{port}", QT_ENDPOINTS__ALLOW_REMOTE="true"):
        assert control(eps.control)["ok"]  # loopback reaches a wildcard bind
    lines = [orjson.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines() if line.startswith("{")]
    warned = [line for line in lines if line.get("event") == "an endpoint binds beyond this machine, without authentication"]
    assert [(w["level"], w["setting"], w["endpoint"]) for w in warned] == [("warning", "endpoints.control", f"tcp://0.0.0.0:{port}")], warned
    assert "stop the daemon" in warned[0]["risk"]
