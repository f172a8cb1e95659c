"""/api/health answers anyone (PROTOCOL.md: "no auth, nothing secret"): what it says without a token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from quantumtrader import protocol as p
from quantumtrader.sidecar.routes import public_problem
from sidecar_stack import running_stack
from support import event_frame, events_push, wait_for


def test_a_problem_naming_a_terminal_reaches_anyone_without_its_account(tmp_path: Path) -> None:
    """Review of 2026-12-05: the public terminal list leaves out ids (``<login>@<server>``), but the daemon's
    problems went out as they were, and a clock problem names the terminal: anyone who could reach the port
    learned the broker login."""
    for stack in running_stack(tmp_path):
        push = events_push(stack.eps.events)
        try:
            fast = "5012345@ICMarkets-Live"
            push.send(event_frame(fast, {"seq": 0, "type": "hello", "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:5996", "symbols": ["EURUSD"]}))
            time.sleep(0.05)
            push.send(event_frame(fast, {"seq": 1, "type": "tick", "symbol": "EURUSD", "bid": 1.1, "ask": 1.1001, "volume": 1, "time_msc": p.now_msc() + 3 * 3_600_000}))

            def problems(headers: dict[str, str]) -> list[str]:
                return httpx.get(f"{stack.url}/api/health", headers=headers, timeout=5).json()["daemon"]["problems"]

            signed_in = wait_for(lambda: [t for t in problems(stack.headers()) if "ahead" in t], 15, "the clock problem in health")
            assert fast in signed_in[0]
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                public = [t for t in problems(headers) if "ahead" in t]
                assert public == [signed_in[0].replace(fast, "<terminal>")], public
                assert "5012345" not in str(problems(headers))
        finally:
            push.close()


def test_paths_in_a_problem_are_replaced_whole_and_endpoints_are_left() -> None:
    """The first version cut a Windows path at its space (C:\\Users\\John <path>...), missed UNC shares, and read
    the // of tcp:// as a path (a review of the change, 2026-12-05)."""
    cases = {
        "store: StateFileError(\"'C:\\\\Users\\\\John Smith\\\\qt\\\\qt.db' cannot be used\")": "store: StateFileError(\"'<path>' cannot be used\")",
        "[Errno 28] No space left on device: '/home/ana/.quantumtrader/q.db'": "[Errno 28] No space left on device: '<path>'",
        "share \\\\server\\share\\q.db is gone": "share <path> is gone",
        "feed tcp://127.0.0.1:5555 silent": "feed tcp://127.0.0.1:5555 silent",
        "terminal 5012345@ICMarkets-Live: tick times 180 min ahead": "terminal <terminal>: tick times 180 min ahead",
    }
    for text, public in cases.items():
        assert public_problem(text, ["5012345@ICMarkets-Live"]) == public, text
