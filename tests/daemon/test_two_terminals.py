"""Two terminals (two brokers) streaming the same symbols: one owns each symbol's series,
the other's prices still reach the feed, and ownership passes on when the owner goes stale."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from support import Endpoints, FeedSubscriber, control, daemon_process, event_frame, events_push, inproc_daemon, serving, start, stop, wait_for


def _quote_terminals(eps: Endpoints) -> set[str]:
    return {q["terminal"] for q in control(eps.control, "snapshot")["quotes"]}


def test_first_terminal_owns_a_symbol_until_it_goes_stale(tmp_path: Path) -> None:
    eps = Endpoints(spare=1)
    data = tmp_path / "data"
    with daemon_process(eps, tmp_path, QT_DAEMON__HEALTH_INTERVAL_S="0.1"):
        # heartbeats 1 s: stale after 3 s, so a loaded host stalling A while B starts does not hand B the symbols early
        a = start(["paper", "--terminal", "A@BrokerOne", "--rate", "200", "--heartbeat-s", "1.0"], eps.env(data, QT_PAPER__SEED="1"), tmp_path / "a.log")
        b = None
        sub = FeedSubscriber(eps.feed, topics=(b"price.",))
        try:
            wait_for(lambda: len(control(eps.control, "snapshot")["quotes"]) == 5, 15, "A's quotes")
            b = start(
                ["paper", "--terminal", "B@BrokerTwo", "--rate", "200", "--heartbeat-s", "1.0", "--command-endpoint", f"tcp://127.0.0.1:{eps.spare_ports[0]}"],
                eps.env(data, QT_PAPER__SEED="2"),
                tmp_path / "b.log",
            )
            wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks_not_owner", 0) > 100, 15, "B's ticks to arrive")
            assert _quote_terminals(eps) == {"A@BrokerOne"}, "B's prices must not replace A's series"

            seen: set[str] = set()  # both brokers' prices still go out on the feed
            owner_flags: dict[str, set[bool]] = {"A@BrokerOne": set(), "B@BrokerTwo": set()}

            def both_on_feed() -> bool:
                # Everything waiting, not one message a call: the subscriber holds every price since it joined (its
                # queue is unbounded), A's alone for the seconds before B started, and one a call (wait_for sleeps
                # 50 ms between calls) took longer than the 10 s to reach B's (a flake a review saw 3 times in 4)
                got = sub.recv(200)
                while got is not None and seen != {"A@BrokerOne", "B@BrokerTwo"}:
                    seen.add(got[1]["data"]["terminal"])
                    owner_flags[got[1]["data"]["terminal"]].add(got[1]["data"]["owner"])
                    got = sub.recv(0)
                return seen == {"A@BrokerOne", "B@BrokerTwo"}

            wait_for(both_on_feed, 10, "price updates from both terminals")
            assert owner_flags == {"A@BrokerOne": {True}, "B@BrokerTwo": {False}}, owner_flags  # which is the symbol's quote

            a.send_signal(signal.SIGKILL)
            a.wait(10)
            wait_for(lambda: _quote_terminals(eps) == {"B@BrokerTwo"}, 10, "B to take over the symbols once A is stale")
        finally:
            sub.close()
            if a.poll() is None:
                stop(a)
            if b is not None:
                stop(b)


def test_a_symbol_passes_on_when_its_owner_beats_but_sends_no_ticks_while_another_terminal_does(tmp_path: Path) -> None:
    """A hunt (2026-12-05): an EA whose terminal lost its broker keeps sending heartbeats, so it never goes stale: it
    kept EURUSD while another terminal streamed it, and features, signals and auto-trading stopped with health saying
    nothing. After daemon.owner_silent_s without a tick of it from the owner, the other terminal takes it."""
    from quantumtrader import protocol as p

    d, eps = inproc_daemon(tmp_path / "data", QT_DAEMON__OWNER_SILENT_S="1.0", QT_DAEMON__HEALTH_INTERVAL_S="0.1")
    push = events_push(eps.events)
    seqs = {"frozen@A": 0, "live@B": 0}

    def send(name: str, **fields: object) -> None:
        seqs[name] += 1
        push.send(event_frame(name, {"seq": seqs[name], **fields}))

    def tick(name: str, bid: float) -> None:
        send(name, type="tick", symbol="EURUSD", bid=bid, ask=bid + 0.0001, volume=1, time_msc=p.now_msc())

    try:
        with serving(d):
            for name, port in (("frozen@A", 5991), ("live@B", 5992)):
                push.send(event_frame(name, {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": f"tcp://127.0.0.1:{port}", "symbols": ["EURUSD"], "heartbeat_s": 0.5}))
            tick("frozen@A", 1.1)
            wait_for(lambda: _quote_terminals(eps) == {"frozen@A"}, 10, "A to own EURUSD")
            for _ in range(12):  # ~2.4 s: A beats without ticks, B ticks
                send("frozen@A", type="heartbeat", dropped=0, time_msc=p.now_msc())
                send("live@B", type="heartbeat", dropped=0, time_msc=p.now_msc())
                tick("live@B", 1.1003)
                time.sleep(0.2)
            wait_for(lambda: _quote_terminals(eps) == {"live@B"}, 5, "B to take EURUSD over")
            health = control(eps.control)["health"]
            assert health["counters"]["symbols_handed_over"] == 1, health["counters"]
            assert not any(t["stale"] for t in health["terminals"]), health["terminals"]  # A was beating all along
    finally:
        push.close()
        d.close()
