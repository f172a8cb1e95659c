"""evaluate's report: the baselines are run as the ensemble is, symbol by symbol; pips by the one convention."""

from __future__ import annotations

import csv
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from quantumtrader.config import load_config
from quantumtrader.evaluate.replay import load_ticks, replay
from quantumtrader.evaluate.report import MAX_HOLD_GAP_MS, evaluate, spans_gap, technical_policy, text_table, write_signals
from quantumtrader.models.policy import HOLD, apply_policy
from quantumtrader.models.state import make_policy_state

SYMBOLS = ("EURUSD", "GBPUSD", "AUDUSD")
TICKS_PER_SYMBOL = 3000


def _write_quiet_ticks(tmp: Path) -> list[Path]:
    """A quiet market: a quote a second per symbol (interleaved), bid 1.10000 and 1.10001 in turn, so the
    technical reading stays HOLD and every signal after the first is a periodic one, due every 10 s."""
    paths = []
    for k, symbol in enumerate(SYMBOLS):
        stamp = 1_400_000_000_000 + np.arange(TICKS_PER_SYMBOL) * 1000 + 7 * k
        path = tmp / f"{symbol}.csv"
        path.write_text("time,bid,ask\n" + "".join(f"{t},{1.1 + 1e-5 * (i % 2):.5f},{1.1001 + 1e-5 * (i % 2):.5f}\n" for i, t in enumerate(stamp)))
        paths.append(path)
    return paths


def test_technical_baseline_signals_as_the_ensemble_when_the_ensemble_is_technical_alone(tmp_path: Path) -> None:
    # Arrange: all weight on the technical component, so the ensemble's probability is the technical one;
    # the baseline then goes through the same thresholds and policy and must signal at the same ticks.
    overrides = {"signals.weight_quantum": 0.0, "signals.weight_chaos": 0.0, "signals.weight_ml_ensemble": 0.0, "signals.weight_technical": 1.0}
    config = load_config(environ={}, overrides=overrides)
    ticks = load_ticks(_write_quiet_ticks(tmp_path))

    # Act
    result = replay(config, ticks)
    report = evaluate(result, config.signals)

    # Assert: for every symbol, not only the first (row 0): the policy times a symbol's periodic signals by its row
    # until its prediction first changes, and here it never does
    assert np.array_equal(result.probability, result.technical)
    assert [sym["symbol"] for sym in report] == list(SYMBOLS)
    for sym in report:
        ensemble, technical = sym["strategies"][0], sym["strategies"][1]
        assert (ensemble["strategy"], technical["strategy"]) == ("ensemble", "technical")
        for key in ("signals", "signals_by_prediction", "trades", "hits", "pnl_pips"):
            assert technical[key] == ensemble[key], (sym["symbol"], key)


def test_technical_baseline_trades_as_the_ensemble_when_the_ensemble_is_technical_alone(tmp_path: Path) -> None:
    # Arrange: the same, on markets that move (a seeded random walk with slow waves of trend per symbol), so BUY and SELL
    # signals are given and traded: in the quiet market above every signal is HOLD and the trades compared are 0 == 0
    overrides = {"signals.weight_quantum": 0.0, "signals.weight_chaos": 0.0, "signals.weight_ml_ensemble": 0.0, "signals.weight_technical": 1.0}
    config = load_config(environ={}, overrides=overrides)
    rng = np.random.default_rng(7)
    paths = []
    for k, symbol in enumerate(SYMBOLS):
        i = np.arange(TICKS_PER_SYMBOL)
        bid = 1.1 + np.cumsum(rng.normal(0, 2e-5, TICKS_PER_SYMBOL) + 3e-5 * np.sin(2 * np.pi * i / (400 + 100 * k)))
        path = tmp_path / f"{symbol}.csv"
        path.write_text("time,bid,ask\n" + "".join(f"{1_400_000_000_000 + 1000 * j + 7 * k},{b:.5f},{b + 1e-4:.5f}\n" for j, b in enumerate(bid)))
        paths.append(path)

    # Act
    report = evaluate(replay(config, load_ticks(paths)), config.signals)

    # Assert
    for sym in report:
        ensemble, technical = sym["strategies"][0], sym["strategies"][1]
        assert ensemble["trades"] > 0 and ensemble["signals_by_prediction"]["BUY"] > 0 and ensemble["signals_by_prediction"]["SELL"] > 0, (sym["symbol"], ensemble)
        for key in ("signals", "signals_by_prediction", "trades", "hits", "pnl_pips"):
            assert technical[key] == ensemble[key], (sym["symbol"], key)


def test_pips_are_the_symbols_own(tmp_path: Path) -> None:
    # Arrange: gold 25 pips wide at 0.01, bitcoin 20 pips wide at 1 (quantumtrader.pips), EURUSD 1 pip
    quotes = {"XAUUSD": (2350.00, 0.25), "BTCUSD": (60_000.0, 20.0), "EURUSD": (1.085, 0.0001)}
    paths = []
    for k, (symbol, (bid, spread)) in enumerate(quotes.items()):
        path = tmp_path / f"{symbol}.csv"
        path.write_text("time,bid,ask\n" + "".join(f"{1_400_000_000_000 + 1000 * i + k},{bid},{bid + spread}\n" for i in range(100)))
        paths.append(path)
    config = load_config(environ={})

    # Act
    report = evaluate(replay(config, load_ticks(paths)), config.signals)

    # Assert
    assert {sym["symbol"]: round(sym["median_spread_pips"], 6) for sym in report} == {"XAUUSD": 25.0, "BTCUSD": 20.0, "EURUSD": 1.0}
    assert {sym["symbol"]: sym["pip_size"] for sym in report} == {"XAUUSD": 0.01, "BTCUSD": 1.0, "EURUSD": 0.0001}


def test_each_symbol_is_scored_on_its_own_ticks_in_time_order(tmp_path: Path) -> None:
    # Arrange: three symbols whose ticks interleave unevenly (the ticks are grouped by symbol once, by a sort:
    # a symbol's series must come out whole and in time order), each its own random walk
    rng = np.random.default_rng(3)
    series = {}
    for k, symbol in enumerate(SYMBOLS):
        n = 400 + 300 * k
        stamp = 1_400_000_000_000 + np.cumsum(rng.integers(1, 2000, n))
        # steps of up to 2 points and spreads of 1-3: mids come back to where they were 20 ticks before, quoted
        # another way, and some such ties differ as floats (2 of 2,040 labels here): the base rate must not count them
        bid = np.round(1.39 + np.cumsum(rng.integers(-2, 3, n)) * 1e-5, 5)
        spread = rng.integers(1, 4, n) * 1e-5
        rows = [(f"{b:.5f}", f"{b + w:.5f}") for b, w in zip(bid, spread)]
        (tmp_path / f"{symbol}.csv").write_text("time,bid,ask\n" + "".join(f"{t},{b},{a}\n" for t, (b, a) in zip(stamp, rows)))
        series[symbol] = [Decimal(b) + Decimal(a) for b, a in rows]  # twice the mid, exactly, from the text written
    config = load_config(environ={})

    # Act
    report = evaluate(replay(config, load_ticks(sorted(tmp_path.glob("*.csv")))), config.signals)

    # Assert: the base rate is the share of ticks whose mid is higher h ticks later, computed here from the files
    h = config.signals.horizon_ticks
    for sym in report:
        mid = series[sym["symbol"]]
        assert (sym["ticks"], sym["labelled_ticks"]) == (len(mid), len(mid) - h)
        ups = sum(later > earlier for later, earlier in zip(mid[h:], mid[:-h]))
        assert sym["strategies"][0]["probability"]["base_rate"] == ups / (len(mid) - h)


def test_the_technical_policy_over_every_tick_is_each_symbols_own_run(tmp_path: Path) -> None:
    # One call over all ticks (each symbol as its pipeline row, a state per row) against the policy run per
    # symbol on that symbol's ticks alone, as the report did until 2026-12-04
    paths = _write_quiet_ticks(tmp_path)
    rng = np.random.default_rng(5)
    for path in paths:  # random walks, so the technical reading moves and predictions change
        lines = path.read_text().splitlines()
        bids = 1.1 + np.cumsum(rng.normal(0, 2e-4, len(lines) - 1))
        path.write_text(lines[0] + "\n" + "".join(f"{line.split(',')[0]},{b:.5f},{b + 0.0001:.5f}\n" for line, b in zip(lines[1:], bids)))
    config = load_config(environ={})
    result = replay(config, load_ticks(paths))
    cfg = config.signals

    prediction, emit = technical_policy(result, cfg)

    params3 = np.array([cfg.buy_threshold, cfg.sell_threshold, cfg.interval_s])
    for s in range(len(result.ticks.symbols)):
        mine = np.flatnonzero(result.ticks.sym == s)
        row = int(result.rows[s])
        want_pred = np.empty(mine.size, dtype=np.int64)
        want_emit = np.empty(mine.size, dtype=np.bool_)
        apply_policy(make_policy_state(row + 1), np.full(mine.size, row, dtype=np.int32), result.technical[mine], result.ticks.time_msc[mine] / 1000.0, params3, want_pred, want_emit)
        assert np.array_equal(prediction[mine], want_pred) and np.array_equal(emit[mine], want_emit)
        assert 1 < want_emit.sum() < mine.size  # the check compares something: some signals, not every tick


def test_a_symbol_with_no_tick_accepted_is_named_not_left_out_and_names_keep_their_case(tmp_path: Path) -> None:
    """Found by a review (2026-12-04): a file whose every quote was refused (crossed) gave its symbol no line at
    all, only a run-wide count; and ``EURUSDm.csv`` was reported as EURUSDM, a name no terminal sends."""
    from quantumtrader.evaluate.run import run, run_evaluation

    good, crossed, lower = tmp_path / "EURUSDm.csv", tmp_path / "GBPUSD.csv", tmp_path / "audusd.csv"
    good.write_text("time,bid,ask\n" + "".join(f"{1_400_000_000_000 + 1000 * i},1.1000{i % 3},1.1001{i % 3}\n" for i in range(200)))
    crossed.write_text("time,bid,ask\n" + "".join(f"{1_400_000_000_000 + 1000 * i + 1},1.2001,1.2000\n" for i in range(50)))
    lower.write_text("time,bid,ask\n" + "".join(f"{1_400_000_000_000 + 1000 * i + 2},0.6600{i % 3},0.6601{i % 3}\n" for i in range(30)))  # > the horizon: scored
    config = load_config(environ={"QT_DATA_DIR": str(tmp_path / "data")})

    report = run_evaluation(config, [good, crossed, lower], show_progress=False)

    assert [sym["symbol"] for sym in report["symbols"]] == ["EURUSDm", "AUDUSD"]
    assert report["symbols_not_scored"] == ["GBPUSD"]
    assert report["rejected_by_symbol"] == {"GBPUSD": {"crossed_quote": 50}} and report["rejected"] == {"crossed_quote": 50}
    shown: list[str] = []
    assert run(config, [good, crossed, lower], show_progress=False, echo=shown.append) == []  # nothing unwritten
    assert "GBPUSD: no tick accepted (crossed_quote 50), not scored" in shown[0]


def _trending_with_a_pause(tmp: Path, symbols: tuple[str, ...], pause_after: int) -> list[Path]:
    """The same market for each symbol: a quote a second, falling 0.1 pip a tick, then rising 1 pip a tick for the
    200 ticks before a two-hour pause (a market closed) after tick ``pause_after``, flat after it."""
    i = np.arange(TICKS_PER_SYMBOL)
    bid = 1.1 - 1e-5 * np.minimum(i, pause_after - 200) + 1e-4 * np.clip(i - (pause_after - 200), 0, 200)
    stamp = 1_400_000_000_000 + 1000 * i + 7_200_000 * (i > pause_after)
    paths = []
    for k, symbol in enumerate(symbols):
        path = tmp / f"{symbol}.csv"
        path.write_text("time,bid,ask\n" + "".join(f"{t + 7 * k},{b:.5f},{b + 1e-4:.5f}\n" for t, b in zip(stamp, bid)))
        paths.append(path)
    return paths


def test_no_trade_is_held_across_a_market_pause_and_each_one_left_out_is_counted(tmp_path: Path) -> None:
    # Arrange: the technical component alone (no learner), rising into a two-hour pause
    overrides = {"signals.weight_quantum": 0.0, "signals.weight_chaos": 0.0, "signals.weight_ml_ensemble": 0.0, "signals.weight_technical": 1.0}
    config = load_config(environ={}, overrides=overrides)
    pause_after, h = 1500, config.signals.horizon_ticks

    # Act
    result = replay(config, load_ticks(_trending_with_a_pause(tmp_path, ("EURUSD",), pause_after)))
    report = evaluate(result, config.signals)

    # Assert: the acted signals of the last h ticks before the pause (whose horizon holds it) are counted, not traded
    acted = result.emit & (result.prediction != HOLD)
    before_pause = int(acted[pause_after + 1 - h : pause_after + 1].sum())
    assert before_pause > 0, "the market rising into the pause gave no BUY there: the test shows nothing"
    ensemble = report[0]["strategies"][0]
    assert ensemble["trades_over_gap"] == before_pause
    assert ensemble["trades"] == int(acted[: result.emit.size - h].sum()) - before_pause
    assert ensemble["signals"] == int(result.emit.sum())


def test_each_symbol_has_a_coin_of_its_own(tmp_path: Path) -> None:
    # Arrange: two symbols with the very same market
    config = load_config(environ={})
    paths = _trending_with_a_pause(tmp_path, ("EURUSD", "GBPUSD"), 1500)

    # Act
    report = evaluate(replay(config, load_ticks(paths)), config.signals)

    # Assert: the ensemble acts at the same moments on both; the coins do not fall the same way
    ensembles = [sym["strategies"][0] for sym in report]
    coins = [sym["strategies"][2] for sym in report]
    assert coins[0]["strategy"] == "coin_flip" and ensembles[0]["trades"] == ensembles[1]["trades"] > 10
    assert not np.array_equal(coins[0]["_cumulative_pnl"], coins[1]["_cumulative_pnl"])


def test_spans_gap_marks_exactly_the_horizons_that_hold_a_pause_over_an_hour() -> None:
    # Arrange: steps of 1 s, exactly the limit (no pause), one ms over it (a pause), ties, at every place of a short series
    steps = [1000, MAX_HOLD_GAP_MS, 1000, MAX_HOLD_GAP_MS + 1, 0, 0, 1000, 1000, MAX_HOLD_GAP_MS + 1, 1000, 1000, 0]
    times = np.concatenate(([1_400_000_000_000], 1_400_000_000_000 + np.cumsum(steps)))
    for horizon in (1, 3, 5, times.size, times.size + 2):
        # Act
        marked = spans_gap(times, horizon)

        # Assert: against the definition, step by step
        expected = [any(times[i + 1] - times[i] > MAX_HOLD_GAP_MS for i in range(r, r + horizon)) for r in range(times.size - horizon)]
        assert marked.tolist() == expected, horizon


def test_signals_file_gives_each_signal_its_outcome_and_the_quotes_of_the_tick_a_horizon_later(tmp_path: Path) -> None:
    # Arrange: two symbols, each falling 1 pip a tick into a two-hour pause after tick 479, then rising 1 pip a
    # tick to its last tick, a quote a second: the technical component alone says SELL before the pause and BUY at
    # the end, so there are signals scored, left out for the pause and without an outcome yet
    # (mostly technical, some quantum: the two columns must differ for the file to show it took each from its own)
    overrides = {"signals.weight_quantum": 0.1, "signals.weight_chaos": 0.0, "signals.weight_ml_ensemble": 0.0, "signals.weight_technical": 0.9}
    config = load_config(environ={}, overrides=overrides)
    h, n, pause_after = config.signals.horizon_ticks, 1000, 479
    i = np.arange(n)
    bid = np.round(1.2 - 1e-4 * np.minimum(i, pause_after) + 1e-4 * np.maximum(0, i - pause_after), 5)
    stamp = 1_400_000_000_000 + 1000 * i + 7_200_000 * (i > pause_after)
    quotes = {}
    for k, symbol in enumerate(("EURUSD", "GBPUSD")):
        (tmp_path / f"{symbol}.csv").write_text("time,bid,ask\n" + "".join(f"{t + 3 * k},{b:.5f},{b + 1e-4:.5f}\n" for t, b in zip(stamp, bid)))
        quotes[symbol] = (stamp + 3 * k, bid, bid + 1e-4)
    result = replay(config, load_ticks(sorted(tmp_path.glob("*.csv"))))
    report = evaluate(result, config.signals)
    assert not np.array_equal(result.probability, result.technical)

    # Act
    write_signals(tmp_path / "signals.csv", report)

    # Assert
    rows = list(csv.DictReader((tmp_path / "signals.csv").open()))
    for sym in report:
        times, bids, asks = quotes[sym["symbol"]]
        of_symbol = np.flatnonzero(result.ticks.sym == result.ticks.symbols.index(sym["symbol"]))  # its ticks in time order
        mine = [r for r in rows if r["symbol"] == sym["symbol"]]
        ensemble = sym["strategies"][0]
        assert len(mine) == ensemble["signals"]
        outcomes = [r["outcome"] for r in mine]
        assert {"scored", "market_pause", "no_outcome_yet"} <= set(outcomes), outcomes
        assert outcomes.count("scored") == ensemble["trades"] and outcomes.count("market_pause") == ensemble["trades_over_gap"]
        coin = sym["strategies"][2]  # at every BUY/SELL of the ensemble: its signals, trades and pauses are the ensemble's
        acted = sum(o != "hold" for o in outcomes)
        assert coin["strategy"] == "coin_flip" and coin["signals"] == acted == sum(ensemble["signals_by_prediction"][k] for k in ("BUY", "SELL"))
        assert (coin["trades"], coin["trades_over_gap"]) == (ensemble["trades"], ensemble["trades_over_gap"])
        for r in mine:
            tick = int(r["tick"])
            assert int(r["time_msc"]) == times[tick] and float(r["entry_bid"]) == pytest.approx(bids[tick])
            assert float(r["probability"]) == result.probability[of_symbol[tick]] and float(r["technical"]) == result.technical[of_symbol[tick]]
            acted = r["prediction"] != "HOLD"
            expected = "hold" if not acted else "no_outcome_yet" if tick + h >= n else "market_pause" if tick <= pause_after < tick + h else "scored"
            assert r["outcome"] == expected, r
            if r["outcome"] in ("scored", "market_pause"):
                assert int(r["exit_time_msc"]) == times[tick + h]
                assert (float(r["exit_bid"]), float(r["exit_ask"])) == pytest.approx((bids[tick + h], asks[tick + h]))
            else:
                assert r["exit_time_msc"] == r["exit_bid"] == r["exit_ask"] == ""
            if r["outcome"] != "scored":  # hit and P&L are the scored ones' only
                assert r["hit"] == r["pnl_pips"] == "", r


def _row(name: str, **fields: object) -> dict:
    probability = {"brier": 0.25, "brier_skill": -0.001, "log_loss": 0.6931, "base_rate": 0.48, "brier_base_rate": 0.2496, "log_loss_base_rate": 0.6923}
    return {"strategy": name, "probability": probability, "trades_over_gap": 0, **fields}


def test_the_table_shows_each_figure_in_its_column_and_says_what_a_pause_left_out() -> None:
    # Arrange: a report of known figures (the table's own input), one p below 0.0005, one undefined
    ensemble = _row("ensemble", signals=120, trades=80, hit_rate=0.55, hit_rate_ci95=[0.48, 0.61], chance_hit_rate=0.4912,
                    p_value_vs_chance=0.0004, win_rate=0.075, pnl_pips=-12.5, pnl_pips_per_trade=-0.156, trades_over_gap=2)
    hold = _row("always_hold", signals=0, trades=0, hit_rate=math.nan, hit_rate_ci95=[math.nan, math.nan], chance_hit_rate=math.nan,
                p_value_vs_chance=math.nan, win_rate=math.nan, pnl_pips=0.0, pnl_pips_per_trade=math.nan)
    symbol = {"symbol": "EURUSD", "ticks": 1000, "horizon_ticks": 20, "pip_size": 0.0001, "median_spread_pips": 1.1, "strategies": [ensemble, hold]}

    # Act
    lines = text_table([symbol]).splitlines()

    # Assert: column by column (the interval is two words)
    row = next(line for line in lines if line.split()[0] == "ensemble").split()
    assert row == ["ensemble", "120", "80", "0.5500", "[0.480,", "0.610]", "0.4912", "<0.001", "0.075", "-12.5", "-0.156", "0.25000", "-0.00100", "0.69310"]
    header = next(line for line in lines if line.split()[0] == "strategy").split()
    assert header[:8] == ["strategy", "signals", "trades", "hit", "rate", "95%", "CI", "chance"] and header[8:10] == ["p", "won"]
    empty = next(line for line in lines if line.split()[0] == "always_hold").split()
    assert empty[3:9] == ["-", "[-,", "-]", "-", "-", "-"]
    assert any("not scored" in line and "pause" in line and "ensemble 2" in line for line in lines), lines
