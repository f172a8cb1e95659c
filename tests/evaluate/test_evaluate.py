"""qt-daemon evaluate: scoring definitions, and the same numbers twice on a slice of the real EURUSD ticks."""

from __future__ import annotations

import gzip
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from support import shared_ticks
from quantumtrader.evaluate.scoring import brier_score, log_loss, probability_scores, trade_scores, wilson_interval

SLICE_TICKS = 40_000


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson_interval(81, 263)  # Wilson (1927) / Newcombe (1998) worked example
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_probability_scores_against_the_base_rate() -> None:
    y = np.array([1.0, 0.0, 1.0, 1.0])
    perfect = probability_scores(y.copy(), y)
    assert perfect["brier"] == 0.0 and perfect["brier_skill"] == 1.0
    base = probability_scores(np.full(4, 0.75), y)
    assert base["brier_skill"] == pytest.approx(0.0)
    assert brier_score(np.full(4, 0.5), y) == 0.25
    assert log_loss(np.full(4, 0.5), y) == pytest.approx(math.log(2))


def test_trades_pay_the_spread_both_ways() -> None:
    mid = np.array([1.0, 1.0002, 1.0004])
    bid, ask = mid - 0.00005, mid + 0.00005  # 1 pip spread
    out = trade_scores(np.array([1, -1]), np.array([0, 0]), bid, ask, mid, horizon=2, pip=0.0001)
    # BUY: +4 pips move - 1 pip spread; SELL: -4 - 1
    assert out["pnl_pips"] == pytest.approx(3.0 + -5.0)
    assert out["hits"] == 1 and out["trades"] == 2 and out["buys"] == 1


def _slice(tmp: Path) -> Path:
    path = tmp / "EURUSD.csv.gz"
    with gzip.open(shared_ticks(), "rt") as src, gzip.open(path, "wt") as dst:
        dst.writelines(itertools.islice(src, SLICE_TICKS + 1))
    return path


def _evaluate(path: Path, tmp: Path, name: str) -> tuple[dict, str]:
    out = tmp / f"{name}.json"
    plot = tmp / f"{name}.png"
    proc = subprocess.run(
        [sys.executable, "-m", "quantumtrader", "evaluate", str(path), "--json", str(out), "--plot", str(plot), "--no-progress", "--data-dir", str(tmp / "data")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert plot.stat().st_size > 10_000
    return orjson.loads(out.read_bytes()), proc.stdout


@pytest.mark.timeout(300)
def test_evaluate_gives_the_same_numbers_twice_and_the_promised_reports(tmp_path: Path) -> None:
    path = _slice(tmp_path)
    first, table = _evaluate(path, tmp_path, "a")
    second, _ = _evaluate(path, tmp_path, "b")

    first.pop("runtime"), second.pop("runtime")
    assert first == second
    (eurusd,) = first["symbols"]
    assert eurusd["symbol"] == "EURUSD" and eurusd["ticks"] == SLICE_TICKS
    strategies = {s["strategy"]: s for s in eurusd["strategies"]}
    assert set(strategies) == {"ensemble", "technical", "coin_flip", "always_hold"}
    assert strategies["ensemble"]["signals"] > 0
    assert strategies["coin_flip"]["trades"] == strategies["ensemble"]["trades"]  # same moments, random side
    assert strategies["always_hold"]["trades"] == 0 and strategies["always_hold"]["pnl_pips"] == 0
    for st in strategies.values():
        low, high = st["hit_rate_ci95"]
        assert st["trades"] == 0 or low <= st["hit_rate"] <= high
    assert "ensemble" in table and "coin_flip" in table
