"""What the daemon says in its log: the signal that stopped it (a soak, 2026-12-05, saw one stop 3 s after it
started, its log silent on why: another process had sent it SIGTERM), and positions opened and closed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from support import Endpoints, daemon_process, stop


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends a Windows process without running its handler")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_stop_line_names_the_signal(tmp_path: Path, sig: signal.Signals) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path, "--log-format", "json") as daemon:
        assert stop(daemon, sig) == 0
    lines = [line for line in (tmp_path / "daemon.log").read_text(encoding="utf-8").splitlines() if '"daemon stopping"' in line]
    assert len(lines) == 1 and f'"signal": "{sig.name}"' in lines[0], lines


def test_positions_opened_and_closed_are_logged(tmp_path: Path) -> None:
    """A soak (2026-12-05) saw a position closed by its stop loss with nothing but a counter to show for it."""
    from support import control, event_frame, events_push, wait_for

    from quantumtrader.protocol import now_msc

    eps = Endpoints()
    position = {"ticket": 922, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 1.09, "tp": 0.0, "profit": -37.5,
                "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "QT-ABC", "open_time_msc": now_msc()}  # fmt: skip
    with daemon_process(eps, tmp_path, "--log-format", "json"):
        push = events_push(eps.events)
        try:
            push.send(event_frame("t@B", {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}))
            push.send(event_frame("t@B", {"type": "positions", "seq": 1, "positions": [position]}))
            push.send(event_frame("t@B", {"type": "positions", "seq": 2, "positions": []}))  # gone: its stop, say
            wait_for(lambda: control(eps.control)["health"]["counters"].get("positions_closed") == 1, 10, "the close")
        finally:
            push.close()
    lines = [line for line in (tmp_path / "daemon.log").read_text(encoding="utf-8").splitlines() if '"event": "position ' in line]
    assert len(lines) == 2 and '"position opened"' in lines[0] and '"position closed"' in lines[1], lines
    assert all('"ticket": 922' in line and '"profit": -37.5' in line for line in lines), lines
