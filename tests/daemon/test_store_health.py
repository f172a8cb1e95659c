"""A signal store the daemon cannot write to makes health degraded, naming it, until writes succeed again.
Before, every write logged its failure while health said healthy (found by a review, 2026-12-04)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support import Endpoints, control, daemon_process, start, stop, wait_for


def test_health_is_degraded_while_the_stores_writes_fail_and_recovers_after(tmp_path: Path) -> None:
    eps = Endpoints()
    data = tmp_path / "data"
    with daemon_process(eps, tmp_path, QT_DAEMON__HEALTH_INTERVAL_S="0.2", QT_SIGNALS__INTERVAL_S="0.5"):
        paper = start(["paper", "--rate", "100", "--heartbeat-s", "0.5"], eps.env(data), tmp_path / "paper.log")
        try:
            wait_for(lambda: control(eps.control)["health"]["status"] == "healthy", 20, "healthy with a terminal")
            wait_for(lambda: control(eps.control, "signals")["counters"].get("signals", 0) > 3, 30, "signals flowing")
            # another process holds the write lock past the writer's busy timeout (5 s): a backup tool, a person
            locker = sqlite3.connect(data / "quantumtrader.db", isolation_level=None, timeout=10)
            locker.execute("BEGIN IMMEDIATE")
            try:
                health = wait_for(  # the store's own lines: the paper terminal's 0.5 s heartbeats may make a terminal one first
                    lambda: (h := control(eps.control)["health"]) and sum(p.startswith("signal store") for p in h["problems"]) == 2 and h, 30, "a failing write to show in health"
                )
                assert health["status"] == "degraded"
                assert any(p.startswith("signal store: signals writes failing") and "locked" in p for p in health["problems"]), health["problems"]
                # the failed insert's rows are held and retried, and health says how many (2026-12-05)
                assert any(p.endswith("signals held in memory after failed inserts, retried every second") for p in health["problems"]), health["problems"]
            finally:
                locker.execute("COMMIT")
                locker.close()
            wait_for(lambda: control(eps.control)["health"]["status"] == "healthy", 30, "healthy once a write succeeds")
            assert control(eps.control)["health"]["problems"] == []
        finally:
            stop(paper)
