"""/api/health answers anyone (PROTOCOL.md: "no auth, nothing secret"): what it says without a token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from quantumtrader import protocol as p
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
