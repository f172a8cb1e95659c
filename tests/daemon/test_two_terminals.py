"""Two terminals (two brokers) streaming the same symbols: one owns each symbol's series,
the other's prices still reach the feed, and ownership passes on when the owner goes stale."""

from __future__ import annotations

import signal
from pathlib import Path

from support import Endpoints, FeedSubscriber, control, daemon_process, start, stop, wait_for


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

            def both_on_feed() -> bool:
                # Everything waiting, not one message a call: the subscriber holds every price since it joined (its
                # queue is unbounded), A's alone for the seconds before B started, and one a call (wait_for sleeps
                # 50 ms between calls) took longer than the 10 s to reach B's (a flake a review saw 3 times in 4)
                got = sub.recv(200)
                while got is not None and seen != {"A@BrokerOne", "B@BrokerTwo"}:
                    seen.add(got[1]["data"]["terminal"])
                    got = sub.recv(0)
                return seen == {"A@BrokerOne", "B@BrokerTwo"}

            wait_for(both_on_feed, 10, "price updates from both terminals")

            a.send_signal(signal.SIGKILL)
            a.wait(10)
            wait_for(lambda: _quote_terminals(eps) == {"B@BrokerTwo"}, 10, "B to take over the symbols once A is stale")
        finally:
            sub.close()
            if a.poll() is None:
                stop(a)
            if b is not None:
                stop(b)
