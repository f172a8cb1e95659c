"""Issue 2, shown over real sockets between processes: zero loss under a flood, and
malformed input of every kind counted by reason without disturbing valid ticks."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from support import Endpoints, FeedSubscriber, control, daemon_process

SENDER = Path(__file__).with_name("sender.py")
N_TICKS = 200_000
N_SYMBOLS = 20


def _flood(tmp_path: Path, garbage_every: int) -> tuple[dict[str, list[int]], dict, dict]:
    eps = Endpoints()
    with daemon_process(eps, tmp_path, QT_DAEMON__HEALTH_INTERVAL_S="0.2"):
        sub = FeedSubscriber(eps.feed, topics=(b"price.", b"health"))
        try:
            sub.wait_joined()
            args = [sys.executable, str(SENDER), eps.events, str(N_TICKS), str(N_SYMBOLS)]
            if garbage_every:
                args += ["--garbage-every", str(garbage_every)]
            sender = subprocess.Popen(args, stdout=subprocess.PIPE)
            volumes: dict[str, list[int]] = defaultdict(list)
            received = 0
            while received < N_TICKS:
                got = sub.recv(timeout_ms=20_000)
                assert got is not None, f"feed went silent after {received} of {N_TICKS} price updates"
                topic, envelope = got
                if topic.startswith("price."):
                    data = envelope["data"]
                    assert topic == f"price.{data['symbol']}"
                    volumes[data["symbol"]].append(data["volume"])
                    received += 1
            out, _ = sender.communicate(timeout=60)
            assert sender.returncode == 0
            sent = orjson.loads(out)
            status = control(eps.control)
        finally:
            sub.close()
    return volumes, sent, status


def _assert_every_tick_in_order(volumes: dict[str, list[int]]) -> None:
    assert len(volumes) == N_SYMBOLS
    per_symbol = N_TICKS // N_SYMBOLS
    for symbol, seen in volumes.items():
        assert seen == list(range(per_symbol)), f"{symbol}: lost or reordered price updates"


@pytest.mark.timeout(240)
def test_200k_ticks_over_20_symbols_arrive_complete_and_in_order(tmp_path: Path) -> None:
    volumes, sent, status = _flood(tmp_path, garbage_every=0)

    _assert_every_tick_in_order(volumes)
    health = status["health"]
    assert health["counters"]["ticks"] == N_TICKS
    assert status["feed_sent"]["price"] == N_TICKS
    assert sum(status["rejects"].values()) == 0
    (terminal,) = health["terminals"]
    assert terminal["lost_events"] == 0
    assert terminal["last_seq"] == N_TICKS


@pytest.mark.timeout(240)
def test_malformed_messages_are_counted_by_reason_and_valid_ticks_still_arrive(tmp_path: Path) -> None:
    volumes, sent, status = _flood(tmp_path, garbage_every=97)

    _assert_every_tick_in_order(volumes)
    assert status["health"]["counters"]["ticks"] == N_TICKS
    counted = {reason: n for reason, n in status["rejects"].items() if n}
    assert counted == sent["rejects"]
    assert len(counted) >= 15  # every category of the contract was exercised
    (terminal,) = status["health"]["terminals"]
    assert terminal["lost_events"] == 0  # rejects carry no valid seq, so no false gaps
