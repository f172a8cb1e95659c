"""Defects an audit of the daemon found (2026-12-03), each over the real daemon in process and real sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import orjson
import pytest
import zmq

from quantumtrader import protocol as p
from quantumtrader.control_client import ControlTimeout
from support import control, event_frame, events_push, inproc_daemon, serving, terminal_status, wait_for

NOW = 1_705_314_645_000


def hello(**over: object) -> bytes:
    msg = {"v": 1, "type": "hello", "terminal": "t@B", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5560", "symbols": ["EURUSD"], "time_msc": NOW}
    return orjson.dumps({**msg, **over})


@pytest.mark.parametrize("heartbeat_s", [1e300, 3601.0, 0.01])
def test_a_hello_heartbeat_outside_its_bounds_is_refused(heartbeat_s: float) -> None:
    """3 x 1e300 overflowed to inf: the terminal was never stale and held its symbols for good; a few ms flapped."""
    with pytest.raises(p.ProtocolError) as info:
        p.decode_event(hello(heartbeat_s=heartbeat_s), NOW)
    assert info.value.reason == "bad_value" and "heartbeat_s" in info.value.detail


@pytest.mark.parametrize("heartbeat_s", [p.MIN_HEARTBEAT_S, 5, p.MAX_HEARTBEAT_S])
def test_a_hello_heartbeat_within_its_bounds_is_taken(heartbeat_s: float) -> None:
    assert p.decode_event(hello(heartbeat_s=heartbeat_s), NOW)["heartbeat_s"] == heartbeat_s


def test_the_status_log_names_no_prediction_when_the_store_is_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Encryption at rest keeps predictions out of SQLite and the journal; the periodic status line logged
    each symbol's latest BUY/SELL/HOLD in clear every few seconds."""
    from cryptography.fernet import Fernet

    monkeypatch.setenv("QT_TEST_STORE_KEY", Fernet.generate_key().decode())
    for encrypted in (False, True):
        env = {"QT_STORE__ENCRYPT_ENV": "QT_TEST_STORE_KEY"} if encrypted else {}
        d, _ = inproc_daemon(tmp_path / f"data-{encrypted}", **env)
        try:
            stage = d._tick_hooks[0].__self__
            stage.latest_signals["EURUSD"] = {"symbol": "EURUSD", "prediction": "BUY", "time_msc": 1}
            line = stage.status_line()
            assert line["signal_symbols"] == 1
            assert ("latest_signals" in line) is not encrypted, line
        finally:
            d.close()


def test_the_status_log_lists_the_most_recently_signalled_symbols_only(tmp_path: Path) -> None:
    """A terminal that streamed 4,096 symbols made the status line 74 KB every 5 s: it lists 20, the count all."""
    from quantumtrader.daemon.pipeline import STATUS_SIGNALS

    d, _ = inproc_daemon(tmp_path / "data")
    try:
        stage = d._tick_hooks[0].__self__
        for i in range(200):  # the newest signals are those of the symbols added last
            stage.latest_signals[f"S{i:03d}"] = {"symbol": f"S{i:03d}", "prediction": "BUY", "time_msc": 1_000 + i}
        line = stage.status_line()
        assert line["signal_symbols"] == 200
        assert sorted(line["latest_signals"]) == [f"S{i:03d}" for i in range(200 - STATUS_SIGNALS, 200)]
    finally:
        d.close()


def test_a_ticket_two_terminals_hold_is_not_closed_at_the_first_one_found(tmp_path: Path) -> None:
    """Tickets are numbered per broker: two terminals can hold the same one, and the app's close cannot name
    a terminal. The first terminal found was closed; now the request is refused until it names one."""
    d, eps = inproc_daemon(tmp_path / "data")
    ctx = zmq.Context.instance()
    push = events_push(eps.events)
    routers = []
    held: dict[str, dict] = {}
    try:
        with serving(d):
            for name in ("A@BrokerOne", "B@BrokerTwo"):
                router = ctx.socket(zmq.ROUTER)
                router.setsockopt(zmq.LINGER, 0)
                port = router.bind_to_random_port("tcp://127.0.0.1")
                routers.append(router)
                push.send(event_frame(name, {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{port}", "symbols": ["EURUSD"]}))
                held[name] = {"ticket": 500, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
                              "swap": 0.0, "commission": 0.0, "magic": 0, "comment": f"manual at {name}", "open_time_msc": p.now_msc() - 60_000}  # fmt: skip
                push.send(event_frame(name, {"seq": 1, "type": "positions", "positions": [held[name]]}))
            wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "both terminals' position 500")
            refused = control(eps.control, "close", ticket=500, source="test")
            assert refused["ok"] is False and refused["status"] == 400 and "several terminals" in refused["error"], refused
            assert not any(r.poll(300) for r in routers), "a close reached a terminal"
            # B says bye; its position stays listed (a review, 2026-12-04: the dashboard's close of B's row, which named
            # no terminal, closed A's position). Still ambiguous; named, A's goes to A, and B's is refused: it is gone.
            push.send(event_frame("B@BrokerTwo", {"seq": 2, "type": "bye", "reason": "removed"}))
            wait_for(lambda: terminal_status(eps.control, "B@BrokerTwo")["gone"], 10, "B gone")
            refused = control(eps.control, "close", ticket=500, source="test")
            assert refused["status"] == 400 and "several terminals" in refused["error"], refused
            gone = control(eps.control, "close", ticket=500, terminal="B@BrokerTwo", source="test")
            assert gone["status"] == 409 and "said bye" in gone["error"], gone
            assert not any(r.poll(300) for r in routers), "a close reached a terminal"
            # but a renamed TerminalId (C@BrokerOne is A under a new name: the same position, A gone) is no ambiguity
            push.send(event_frame("B@BrokerTwo", {"seq": 3, "type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5998", "symbols": ["EURUSD"]}))
            push.send(event_frame("B@BrokerTwo", {"seq": 4, "type": "positions", "positions": []}))  # B is back, flat
            push.send(event_frame("A@BrokerOne", {"seq": 2, "type": "bye", "reason": "renamed"}))
            renamed = ctx.socket(zmq.ROUTER)
            renamed.setsockopt(zmq.LINGER, 0)
            routers.append(renamed)
            port = renamed.bind_to_random_port("tcp://127.0.0.1")
            push.send(event_frame("C@BrokerOne", {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{port}", "symbols": ["EURUSD"]}))
            push.send(event_frame("C@BrokerOne", {"seq": 1, "type": "positions", "positions": [held["A@BrokerOne"]]}))
            wait_for(lambda: terminal_status(eps.control, "A@BrokerOne")["gone"] and terminal_status(eps.control, "C@BrokerOne"), 10, "A renamed C")
            wait_for(lambda: len(control(eps.control, "snapshot")["positions"]) == 2, 10, "A's and C's copies of 500")
            with contextlib.suppress(ControlTimeout):  # C does not answer here: the request waits for it
                refused = control(eps.control, "close", ticket=500, source="test", timeout_ms=1500)
                raise AssertionError(f"answered at once: {refused}")
            assert renamed.poll(5000), "the close of a renamed terminal's position did not reach it"
    finally:
        push.close()
        for r in routers:
            r.close()
        d.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_terminal_that_announces_an_ipv6_endpoint_gets_its_commands(tmp_path: Path) -> None:
    """The hello's endpoint check admits tcp://[::1]:port, but the command socket had IPv6 off: every command
    to such a terminal timed out and ended unknown."""
    d, eps = inproc_daemon(tmp_path / "data", QT_EXECUTION__COMMAND_TIMEOUT_MS="5000", QT_RISK__MAX_SPREAD_PCT="1")
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.IPV6, 1)
    port = router.bind_to_random_port("tcp://[::1]")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame("v6@Broker", {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": f"tcp://[::1]:{port}", "symbols": ["EURUSD"]}))
            push.send(event_frame("v6@Broker", {"seq": 1, "type": "positions", "positions": []}))  # as the EAs do after a hello
            push.send(event_frame("v6@Broker", {"seq": 2, "type": "tick", "symbol": "EURUSD", "bid": 1.1, "ask": 1.1001, "volume": 1}))
            wait_for(lambda: control(eps.control, "snapshot")["quotes"], 10, "the terminal's quote")
            dealer = ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(eps.control)
            try:
                dealer.send(p.encode(p.control_request("trade", symbol="EURUSD", side="buy", lots=0.01, source="test")))
                assert router.poll(5000), "no command reached the IPv6 endpoint"
                _, _, raw = router.recv_multipart()
                assert p.decode_command(raw)["type"] == "open"
            finally:
                dealer.close()
    finally:
        push.close()
        router.close()
        d.close()


def test_a_terminal_that_ticks_after_its_bye_takes_no_symbol_back(tmp_path: Path) -> None:
    """A bye releases a terminal's symbols; a tick from it afterwards took a symbol back, and a terminal that
    said bye is never checked for silence: it owned the symbol for good, and another terminal's ticks of it
    never drove features or signals again."""
    d, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    seq = {"A@One": 0, "B@Two": 0}

    def send(name: str, kind: str, **fields: object) -> None:
        push.send(event_frame(name, {"type": kind, "seq": seq[name], **fields}))
        seq[name] += 1

    def owner() -> str | None:
        return next((q["terminal"] for q in control(eps.control, "snapshot")["quotes"] if q["symbol"] == "EURUSD"), None)

    try:
        with serving(d):
            for name in seq:
                send(name, "hello", platform="MT5", command_endpoint="tcp://127.0.0.1:1", symbols=["EURUSD"], heartbeat_s=p.MIN_HEARTBEAT_S)
            send("A@One", "tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
            wait_for(lambda: owner() == "A@One", 10, "A to own EURUSD")
            send("A@One", "bye", reason="expert removed from chart")
            send("A@One", "tick", symbol="EURUSD", bid=1.1002, ask=1.1003, volume=1)  # took it back
            wait_for(lambda: terminal_status(eps.control, "A@One")["events"] == 4, 10, "A's tick after its bye")
            assert control(eps.control)["health"]["counters"]["ticks_after_bye"] == 1  # not the market's: no price, no owner
            send("B@Two", "tick", symbol="EURUSD", bid=1.2, ask=1.2001, volume=1)
            wait_for(lambda: owner() == "B@Two", 10, "B to own EURUSD")
    finally:
        push.close()
        d.close()


def test_new_terminal_ids_past_the_cap_are_refused_and_counted(tmp_path: Path) -> None:
    """Every terminal id took a session and, after a hello, a command socket (1,023 per process), never dropped:
    a sender inventing ids used up the sockets, after which a real terminal's retries failed. Past
    daemon.max_terminals a new id is refused; the known ones go on."""
    d, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__MAX_TERMINALS="3")
    push = events_push(eps.events)
    try:
        with serving(d):
            for i in range(6):
                push.send(event_frame(f"t{i}@B", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{5560 + i}", "symbols": ["EURUSD"]}))
            health = wait_for(lambda: (h := control(eps.control)["health"])["rejects"].get("too_many_terminals") == 3 and h, 10, "three refusals")
            assert sorted(t["terminal"] for t in health["terminals"]) == ["t0@B", "t1@B", "t2@B"]
            push.send(event_frame("t1@B", {"type": "heartbeat", "seq": 1, "dropped": 0}))  # a known one goes on
            wait_for(lambda: terminal_status(eps.control, "t1@B")["events"] == 2, 10, "t1's heartbeat")
    finally:
        push.close()
        d.close()


def test_ticks_of_new_symbols_past_the_cap_are_refused_and_counted(tmp_path: Path) -> None:
    """Every symbol a tick names is state kept for good (quotes, a feature and model row, saved every 30 s):
    a terminal inventing names grew the daemon without bound. Past daemon.max_symbols a new one is refused."""
    d, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__MAX_SYMBOLS="3")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame("t@B", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5560", "symbols": ["EURUSD"]}))
            for i, symbol in enumerate(["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "NZDUSD", "EURUSD"], start=1):
                push.send(event_frame("t@B", {"type": "tick", "seq": i, "symbol": symbol, "bid": 1.1, "ask": 1.1001, "volume": 1}))
            health = wait_for(  # the last tick (a known symbol) may come in a later batch than the refusals
                lambda: (h := control(eps.control)["health"])["rejects"].get("too_many_symbols") == 2 and h["counters"].get("ticks") == 4 and h, 10, "two refusals, four ticks"
            )
            assert sorted(q["symbol"] for q in control(eps.control, "snapshot")["quotes"]) == ["EURUSD", "GBPUSD", "USDJPY"]
            assert health["counters"]["ticks"] == 4  # the known ones go on
    finally:
        push.close()
        d.close()


def test_symbols_resumed_from_the_saved_state_count_against_the_cap(tmp_path: Path) -> None:
    """Only this run's quotes counted: each run could add daemon.max_symbols more to the saved state, resumed at
    every start (a review, 2026-12-05: 12,288 symbols after three runs, a 106 ms state copy on the tick loop)."""
    data = tmp_path / "data"
    hello = event_frame("t@B", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5560", "symbols": ["EURUSD"]})
    d, eps = inproc_daemon(data, QT_DAEMON__MAX_SYMBOLS="3")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(hello)
            for i, symbol in enumerate(["EURUSD", "GBPUSD", "USDJPY"], start=1):
                push.send(event_frame("t@B", {"type": "tick", "seq": i, "symbol": symbol, "bid": 1.1, "ask": 1.1001, "volume": 1}))
            wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks") == 3, 10, "three symbols")
    finally:  # the stop saves the state of the three
        push.close()
        d.close()
    d, eps = inproc_daemon(data, QT_DAEMON__MAX_SYMBOLS="3")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(hello)
            for i, symbol in enumerate(["AUDUSD", "GBPUSD"], start=1):
                push.send(event_frame("t@B", {"type": "tick", "seq": i, "symbol": symbol, "bid": 1.1, "ask": 1.1001, "volume": 1}))
            wait_for(lambda: (h := control(eps.control)["health"])["rejects"].get("too_many_symbols") == 1 and h["counters"].get("ticks") == 1 and h, 10, "AUDUSD refused, GBPUSD taken")
            assert [q["symbol"] for q in control(eps.control, "snapshot")["quotes"]] == ["GBPUSD"]
    finally:
        push.close()
        d.close()


def test_a_trade_request_read_after_it_expired_does_nothing(tmp_path: Path) -> None:
    """A review (2026-12-04): the sidecar answered 503 "not reachable" to a trade a stalled daemon read seconds later
    and executed. A request may say when its requester stops waiting (expires_msc); read after that, nothing is done."""
    d, eps = inproc_daemon(tmp_path / "data", QT_RISK__MAX_SPREAD_PCT="1")
    try:
        with serving(d):
            for kind, fields in (("trade", {"symbol": "EURUSD", "side": "buy", "lots": 0.01}), ("close", {"ticket": 5}), ("modify", {"ticket": 5, "sl": 1.0})):
                late = control(eps.control, kind, expires_msc=p.now_msc() - 1000, source="test", **fields)
                assert late["ok"] is False and "expired" in late["error"] and "nothing was done" in late["error"], late
                assert control(eps.control, kind, expires_msc="soon", source="test", **fields)["status"] == 422
                in_time = control(eps.control, kind, expires_msc=p.now_msc() + 60_000, source="test", **fields)
                assert "expired" not in in_time["error"], in_time  # refused for what it is (no terminal, no ticket), not as expired
            assert control(eps.control, "orders")["orders"] == []
    finally:
        d.close()


def test_a_broker_suffix_is_a_suffix_not_the_rest_of_another_symbol(tmp_path: Path) -> None:
    """A review (2026-12-04): "EUR" + "USD" read as a broker's suffix, so a trade for "EUR" opened EURUSD (and "GBPU"
    GBPUSDm). A suffix is a separator and up to 4 more, or up to 4 lowercase letters or digits."""
    d, eps = inproc_daemon(tmp_path / "data", QT_RISK__MAX_SPREAD_PCT="1")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame("s@Broker", {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5999",
                                               "symbols": ["EURUSD", "GBPUSDm", "USDJPY.pro", "XAUUSD#"]}))  # fmt: skip
            wait_for(lambda: terminal_status(eps.control, "s@Broker"), 10, "the terminal")
            for asked in ("EUR", "GBPU", "EURUS", "USD"):
                reply = control(eps.control, "trade", symbol=asked, side="buy", lots=0.01, source="test")
                assert reply["status"] == 422 and f"no connected terminal streams {asked}" in reply["error"], reply
            for asked in ("GBPUSD", "USDJPY", "XAUUSD"):  # found at the broker's name; refused further on (no quote yet)
                reply = control(eps.control, "trade", symbol=asked, side="buy", lots=0.01, source="test")
                assert reply["ok"] is False and "streams" not in reply["error"], reply
    finally:
        push.close()
        d.close()


def test_a_terminal_whose_tick_times_run_hours_ahead_is_named_in_health(tmp_path: Path) -> None:
    """A review of the EAs (2026-12-04): an EA whose UTC offset estimate never took (the VPS clock more than 2 minutes
    off) stamps its ticks with the broker's time, 2-3 hours ahead; the daemon takes ticks up to a day ahead, and
    nothing said so. Health now names such a terminal (degraded) until its ticks are back on time."""
    d, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    try:
        with serving(d):
            for name in ("fast@Broker", "fine@Broker"):
                push.send(event_frame(name, {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5996", "symbols": ["EURUSD"]}))

            def tick(name: str, seq: int, ahead_ms: int) -> None:
                push.send(event_frame(name, {"seq": seq, "type": "tick", "symbol": "EURUSD", "bid": 1.1, "ask": 1.1001, "volume": 1, "time_msc": p.now_msc() + ahead_ms}))
                time.sleep(0.05)  # its own batch: the check reads each batch's last tick

            tick("fine@Broker", 1, 0)
            tick("fast@Broker", 1, 2 * 3_600_000 + 5 * 60_000)  # UTC+2 broker time taken for UTC
            health = wait_for(lambda: (h := control(eps.control)["health"])["problems"] and h, 10, "a clock problem")
            assert health["status"] == "degraded" and len(health["problems"]) == 1, health["problems"]
            assert "fast@Broker" in health["problems"][0] and "125 min ahead" in health["problems"][0], health["problems"]
            tick("fast@Broker", 2, 0)  # back on time
            wait_for(lambda: not control(eps.control)["health"]["problems"], 10, "the problem gone")
            # an hour behind while its ticks arrive now (a fixed UtcOffsetMinutes after a DST change): every open is
            # refused as "from a backlog", and health said healthy (a hunt, 2026-12-05)
            tick("fast@Broker", 3, -(3_600_000 + 60_000))
            health = wait_for(lambda: (h := control(eps.control)["health"])["problems"] and h, 10, "a clock problem behind")
            assert health["status"] == "degraded" and len(health["problems"]) == 1, health["problems"]
            assert "fast@Broker" in health["problems"][0] and "61 min behind" in health["problems"][0] and "max_tick_lag_s" in health["problems"][0], health["problems"]
            tick("fast@Broker", 4, 0)
            wait_for(lambda: not control(eps.control)["health"]["problems"], 10, "the problem gone again")
    finally:
        push.close()
        d.close()


def test_rejects_say_whether_the_ea_link_or_an_operator_sent_them(tmp_path: Path) -> None:
    """A newcomer's review (2026-12-04): `trade hold EURUSD` or a trade for a symbol no terminal streams counted as
    rejects beside the EAs' bad ticks, and docs/mql.md reads the reject counters to diagnose the EA link."""
    d, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame("t@B", {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5996", "symbols": ["EURUSD"]}))
            push.send(event_frame("t@B", {"seq": 1, "type": "tick", "symbol": "EURUSD", "bid": -1.0, "ask": 1.1, "volume": 1, "time_msc": p.now_msc()}))
            refused = control(eps.control, "trade", symbol="EURUSD", side="hold", lots=0.01, source="test")
            assert refused["ok"] is False
            health = wait_for(lambda: (h := control(eps.control)["health"])["rejects_by_source"].get("events") and h, 10, "the bad tick counted")
            assert health["rejects_by_source"] == {"events": 1, "control": 1}, health["rejects_by_source"]
            assert sum(health["rejects"].values()) == 2
    finally:
        push.close()
        d.close()
