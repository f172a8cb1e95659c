"""``qt-bench trade``: control request -> daemon -> terminal -> reply -> control reply.

A paper terminal (its own process) streams ticks while orders go through the
daemon one after another. Reported: the client's round trip (what the app's
request costs, through the control socket), the daemon's command round trip
(REQ to the terminal and back), and the tick path's receive -> publish
latency without and with orders in flight, from the daemon's own histograms.
The paper terminal fills in microseconds, so its execution time is a
negligible part of the round trip; a real terminal adds its broker's time.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from quantumtrader.bench.common import latency_cells, latency_summary, machine, paper_source, percentile_plot, progress, table, tick_source, write_json
from quantumtrader.bench.procs import Endpoints, control, start, stop, wait_for, wait_ready
from quantumtrader.control_client import ControlClient


def run_trade_bench(
    *,
    orders: int = 500,
    tick_rate: float = 2000,
    ticks_csv: Path | None = None,
    json_out: Path | None = None,
    log: Callable[[str], None] = print,
    plot_out: Path | None = None,
) -> dict[str, Any]:
    """``ticks_csv``: real ticks the paper terminal replays at ``tick_rate`` (its symbol must be EURUSD, what the
    orders trade), instead of its generator. ``plot_out``: the round trips by percentile (:func:`_draw`)."""
    with tempfile.TemporaryDirectory(prefix="qt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        eps = Endpoints()
        env = eps.env(
            tmp / "data",
            QT_DAEMON__STATUS_INTERVAL_S="0",
            QT_LOG__LEVEL="warning",
            QT_RISK__MAX_OPEN_POSITIONS="0",
            QT_RISK__MAX_LOTS_PER_SYMBOL="0",
            QT_RISK__MAX_SPREAD_PCT="1",
            QT_PAPER__BALANCE="1000000000",
        )
        daemon = start(["run", "--no-sidecar"], env, tmp / "daemon.log")
        paper = None
        try:
            wait_ready(eps.control, daemon, tmp / "daemon.log", timeout=120)
            paper = start(["paper", *paper_source(ticks_csv), "--rate", str(tick_rate), "--heartbeat-s", "1"], env, tmp / "paper.log")
            wait_for(lambda: any(q["symbol"] == "EURUSD" for q in control(eps.control, "snapshot")["quotes"]), 30, "EURUSD quotes")
            control(eps.control, reset_latency=True)
            time.sleep(3.0)  # a quiet window: the tick path without orders
            quiet = control(eps.control, reset_latency=True)["health"]["latency"]["receive_to_publish"]
            log(f"trade: {orders} orders (open, then close it) through the daemon while {tick_rate:g} ticks/s stream")
            client_ns: list[int] = []
            bar = progress(orders, "orders")
            with ControlClient(eps.control, timeout_ms=10_000, retries=0) as client:
                # Open then close: a realistic book. Opening 500 positions and keeping them
                # would measure the cost of re-validating a 500-position snapshot per fill.
                ticket = 0  # the position the previous (even) order opened; each odd order closes it

                def order(i: int) -> int:
                    """Order ``i`` (even: open, odd: close the last one opened); its round trip in ns."""
                    nonlocal ticket
                    began = time.perf_counter_ns()
                    if i % 2 == 0:
                        reply = client.request("trade", symbol="EURUSD", side="buy" if i % 4 else "sell", lots=0.01, source="bench")
                    else:
                        reply = client.request("close", ticket=int(ticket), source="bench")
                    took = time.perf_counter_ns() - began
                    if not reply.get("ok"):
                        raise RuntimeError(f"order {i} failed: {reply.get('error')}")
                    ticket = reply["order"]["ticket"]
                    if i % 2 == 0:  # the close needs the daemon to have seen the position
                        wait_for(lambda: any(p["ticket"] == ticket for p in control(eps.control, "snapshot")["positions"]), 5, "the position")
                    return took

                # Warm-up, not counted: the first order connects the daemon's command socket to the terminal.
                order(0)
                order(1)
                ticks_before = control(eps.control, reset_latency=True)["health"]["counters"].get("ticks", 0)
                orders_began = time.monotonic()
                for i in range(orders):
                    client_ns.append(order(i))
                    bar.advance_to(i + 1)
            bar.stop()
            health = control(eps.control)["health"]
            streamed = _Streamed(health["counters"].get("ticks", 0) - ticks_before, tick_rate * (time.monotonic() - orders_began))
        finally:
            if paper is not None:
                stop(paper)
            stop(daemon)
    busy = health["latency"]["receive_to_publish"]
    result = {
        "scenario": "trade",
        "machine": machine(),
        "orders": orders,
        "warmup_orders": 2,  # an open and its close before the figures (the daemon's histograms reset after them)
        "tick_rate": tick_rate,
        "ticks": tick_source(ticks_csv),
        "client_round_trip": latency_summary(client_ns),
        "daemon_command_round_trip": health["latency"]["command_round_trip"],
        "tick_receive_to_publish_quiet": quiet,
        "tick_receive_to_publish_with_orders": busy,
        "ticks_while_orders": streamed.ticks,  # the daemon's count, against what the rate gave over the orders' time
        "ticks_expected_while_orders": round(streamed.expected),
        "targets": {"client_round_trip_p99_us": 2000},
    }
    rows = [
        ("control -> terminal -> control (client)", *latency_cells(result["client_round_trip"])),
        ("daemon REQ -> terminal REP", *latency_cells(result["daemon_command_round_trip"])),
        ("tick receive -> publish, quiet", *latency_cells(quiet)),
        ("tick receive -> publish, orders in flight", *latency_cells(busy)),
    ]
    log(table(rows, ("", "p50 µs", "p90", "p99", "p99.9", "max")))
    if streamed.ran_out():
        log(
            f"trade: only {streamed.ticks:,} ticks reached the daemon while the orders were in flight, ~{streamed.expected:,.0f} expected at "
            f"{tick_rate:g}/s: " + (f"{ticks_csv} ran out (the paper terminal replays it once); a longer file or a lower --tick-rate" if ticks_csv else "the paper terminal fell behind its rate")
        )
    write_json(json_out, result)
    if plot_out is not None:  # after the JSON: a plot that cannot be written costs only the plot
        _draw(plot_out, np.array(client_ns, dtype=np.int64), result)
    return result


def _draw(plot_out: Path, client_ns: np.ndarray, result: dict[str, Any]) -> None:
    """The client's round trip from its samples; the daemon's REQ -> REP from its histogram's percentiles (its
    samples stay in the daemon, which sends only the summary)."""
    percentile_plot(
        plot_out,
        {"control -> terminal -> control (client)": client_ns},
        f"qt-bench trade: {result['orders']} orders while {result['tick_rate']:g} ticks/s stream",
        summaries={"daemon REQ -> terminal REP": result["daemon_command_round_trip"]},
    )


class _Streamed(NamedTuple):
    """Ticks the daemon counted while the orders were in flight, and what the paper terminal's rate gave over that time."""

    ticks: int
    expected: float

    def ran_out(self) -> bool:
        """Whether the tick stream stopped: a --ticks file replayed once that ended before the orders did. Below half
        the rate: a loaded host slows the terminal by a fraction, not by half. Said, not refused: how long the orders
        take is known only after them; the short file's "orders in flight" row read 0 µs before (a review, 2026-12-06)."""
        return self.ticks < 0.5 * self.expected
