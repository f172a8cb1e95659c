"""Slow signal queries cannot stall the rest of the sidecar: they run on the store's own thread, and beyond
``sidecar.signal_queries_waiting`` waiting ones the rest are answered 503 at once.

Before, each waiting query held a thread of anyio's shared pool (40), which Starlette serves the dashboard's
files from too: one viewer's queries of min_confidence=1 on a big store (each its whole budget) left app.js
unanswered for a minute (a security review, 2026-12-06, /tmp/h6-evidence/signal_dos.out).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx

from sidecar_stack import make_stack
from support import start, wait_for

ROWS = 1_000_000  # ~0.2-0.5 s to walk (2-3 s to make): more than the budget below, so every query takes all of it
BUDGET_MS = 100
QUERIES = 160  # 80 a user (their bursts are 100); serialized, 16 s of store work: the shared pool (40) stays full for most of it without the fix


def _fill(db: Path) -> None:
    """HOLD signals of confidence 0.5, as a long history holds, made by SQLite itself (seconds, not minutes)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO signals (id, symbol, time_msc, prediction, confidence, body, encrypted)"
            f" WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS - 1})"
            " SELECT 'bulk-' || i, 'EURUSD', 1700000000000 + i * 100, 'HOLD', 0.5, '{}', 0 FROM n"
        )
    finally:
        conn.close()


async def _flood(url: str, tokens: list[str]) -> tuple[list[httpx.Response | str], float, float]:
    """QUERIES slow queries at once (spread over the users, within their rate limits), then the dashboard's
    script and /api/health while they are in: their times in seconds (a timeout counts as 10)."""
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=QUERIES + 10), timeout=60) as client:

        async def query(token: str) -> httpx.Response | str:
            try:
                return await client.get("/api/signals", params={"min_confidence": 1, "limit": 1000}, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                return type(exc).__name__

        async def timed(path: str) -> float:
            began = time.monotonic()
            try:
                answer = await client.get(path, timeout=5)
                assert answer.status_code < 500 or path == "/api/health", (path, answer.status_code)
            except httpx.TimeoutException:
                return 10.0
            return time.monotonic() - began

        queries = [asyncio.create_task(query(tokens[i % len(tokens)])) for i in range(QUERIES)]
        await asyncio.sleep(1.0)  # all sent and waiting (or refused)
        static_s = await timed("/static/app.js")
        health_s = await timed("/api/health")
        return list(await asyncio.gather(*queries)), static_s, health_s


def test_slow_signal_queries_are_refused_beyond_the_queue_and_the_dashboard_still_answers(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, QT_SIDECAR__SIGNAL_QUERY_BUDGET_MS=str(BUDGET_MS))
    try:
        _fill(stack.data_dir / "quantumtrader.db")
        log = tmp_path / "sidecar.log"
        stack.procs["sidecar"] = start(["sidecar"], stack.env, log)  # alone: the store is what this is about
        wait_for(lambda: _answers(f"{stack.url}/api/health"), 30, "the sidecar to answer")
        alone = httpx.get(f"{stack.url}/api/signals", params={"min_confidence": 1}, headers=stack.headers(), timeout=10).json()
        assert alone["source"] == "store" and alone["complete"] is False, alone  # the query took its whole budget

        answers, static_s, health_s = asyncio.run(_flood(stack.url, [stack.tokens["alice"], stack.tokens["bob"]]))

        assert static_s < 2.0 and health_s < 2.0, (static_s, health_s)
        busy = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 503]
        served = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 200]
        assert busy and served and len(busy) + len(served) == QUERIES, [a if isinstance(a, str) else a.status_code for a in answers]
        assert busy[0].json() == {"success": False, "error": busy[0].json()["error"]} and "signal history busy, retry" in busy[0].json()["error"]
        assert int(busy[0].headers["retry-after"]) >= 1
        # The one running and the few waiting (4 by default), a few more as the first ones finish while others arrive
        assert len(served) <= 20, len(served)
        assert stack.counter("signal_history_busy") == len(busy)
        lines = [line for line in log.read_text(errors="replace").splitlines() if "signal_history_busy" in line]
        assert len(lines) == 1, lines  # once per interval (daemon.reject_log_interval_s, 10 s), however many
        # and the history answers again once the queue has drained
        again = httpx.get(f"{stack.url}/api/signals", params={"min_confidence": 0, "limit": 5}, headers=stack.headers(), timeout=10)
        assert again.status_code == 200 and again.json()["count"] == 5, again.text
    finally:
        stack.stop_all()


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True
