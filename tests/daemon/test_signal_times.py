"""A signal's time is its tick's, never past this machine's clock: a terminal whose clock runs ahead must not put
its signals above every later one in the history, which apps read newest first by time."""

from __future__ import annotations

import time
from pathlib import Path

from quantumtrader.protocol import now_msc
from quantumtrader.store import SignalReader
from support import Endpoints, FeedSubscriber, control, daemon_process, event_frame, events_push, wait_for

TERMINAL = "ahead-1@Test"
THREE_HOURS_MS = 3 * 3600 * 1000


def test_a_signal_of_a_tick_from_a_clock_ahead_is_stamped_now_and_the_later_one_is_newest(tmp_path: Path) -> None:
    """A hunt (2026-12-06): an EA sending broker time (UTC+3) as UTC, which the protocol accepts up to a day ahead,
    stamped its signals three hours ahead; after the EA was fixed they stayed on top of the newest-first history
    for those three hours. A real daemon process, the EA over a real socket, the signals from the feed and the
    store."""
    eps = Endpoints()
    data = tmp_path / "data"
    with daemon_process(eps, tmp_path, QT_SIGNALS__INTERVAL_S="0.2"):
        feed = FeedSubscriber(eps.feed, topics=(b"signal.", b"health"))
        push = events_push(eps.events)
        try:
            feed.wait_joined()
            push.send(event_frame(TERMINAL, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}))
            ahead_sent = now_msc()
            push.send(event_frame(TERMINAL, {"type": "tick", "seq": 1, "symbol": "EURUSD", "bid": 1.1, "ask": 1.1002, "volume": 1.0, "time_msc": ahead_sent + THREE_HOURS_MS}))
            signals = []

            def signal() -> dict | None:
                got = feed.recv(200)
                if got is not None and got[0].startswith("signal."):
                    signals.append(got[1]["data"])
                return signals[-1] if signals else None

            first = wait_for(signal, 20, "the signal of the tick from a clock ahead")
            time.sleep(0.3)  # past the interval: the next tick's signal is due
            push.send(event_frame(TERMINAL, {"type": "tick", "seq": 2, "symbol": "EURUSD", "bid": 1.1001, "ask": 1.1003, "volume": 1.0}))
            wait_for(lambda: signal() is not first and signals[-1], 20, "the next tick's signal")
            second = signals[-1]
            clamped = control(eps.control, "signals")["counters"].get("signal_times_clamped")
        finally:
            push.close()
            feed.close()
    assert ahead_sent <= first["time_msc"] <= second["time_msc"] < ahead_sent + THREE_HOURS_MS, (first, second)
    assert clamped == 1
    with SignalReader(data / "quantumtrader.db") as reader:
        newest = reader.signals("EURUSD", limit=10)
    assert [s["id"] for s in newest] == [second["id"], first["id"]]
