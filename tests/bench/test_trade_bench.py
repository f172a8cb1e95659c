"""qt-bench trade over real processes (daemon, paper terminal): the figures count the measured orders only."""

from __future__ import annotations

from pathlib import Path

import orjson

from quantumtrader.bench.trade import run_trade_bench
from support import shared_ticks


def test_the_round_trips_are_the_measured_orders_after_a_warm_up(tmp_path: Path) -> None:
    out = tmp_path / "trade.json"
    lines: list[str] = []
    result = run_trade_bench(orders=6, tick_rate=200, json_out=out, log=lines.append)
    assert orjson.loads(out.read_bytes())["client_round_trip"] == result["client_round_trip"]
    assert result["client_round_trip"]["count"] == 6 and result["warmup_orders"] == 2
    # the daemon's REQ -> REP histogram starts after the warm-up's open and close: the 6 measured orders exactly
    assert result["daemon_command_round_trip"]["count"] == 6, result["daemon_command_round_trip"]
    assert any("control -> terminal -> control" in line for line in lines)


def test_the_paper_terminal_can_replay_real_ticks_at_the_rate(tmp_path: Path) -> None:
    """The issue: each scenario on real ticks from ../shared/data/ticks or generated ones (--ticks)."""
    result = run_trade_bench(orders=2, tick_rate=500, ticks_csv=shared_ticks(), log=lambda _: None)
    assert result["ticks"].endswith("EURUSD.csv.gz") and result["client_round_trip"]["count"] == 2
    # ~3 s of the file at 500/s: neither its own pace (~1 a second) nor as fast as the paper terminal goes
    assert 500 < result["tick_receive_to_publish_quiet"]["count"] < 3000, result["tick_receive_to_publish_quiet"]


def test_a_tick_file_that_ends_before_the_orders_is_said_and_its_empty_figures_read_dash(tmp_path: Path) -> None:
    """A short --ticks file ran out during the quiet window: the "orders in flight" row read 0 µs, as if the
    fastest, with nothing to say the ticks had stopped (a review, 2026-12-06)."""
    short = tmp_path / "EURUSD.csv"
    short.write_text("time,bid,ask\n" + "".join(f"{1_705_314_600_000 + i},1.1,1.1002\n" for i in range(200)))
    lines: list[str] = []
    result = run_trade_bench(orders=2, tick_rate=200, ticks_csv=short, log=lines.append)
    assert result["tick_receive_to_publish_with_orders"]["count"] == 0 and result["ticks_while_orders"] == 0
    in_flight = next(line for line in "\n".join(lines).splitlines() if line.startswith("tick receive -> publish, orders in flight"))
    assert in_flight.split()[-5:] == ["-"] * 5, in_flight
    assert any("ran out (the paper terminal replays it once)" in line for line in lines), lines
