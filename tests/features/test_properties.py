"""State never leaks between symbols; edge cases; input checks before the kernel; snapshot/restore."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import synthetic_volume
from quantumtrader.features.engine import FeatureEngine
from quantumtrader.features.names import FEATURE_INDEX as F
from quantumtrader.features.names import N_FEATURES


def run(engine: FeatureEngine, names: list[str], bid: np.ndarray, ask: np.ndarray | None = None, volume: np.ndarray | None = None) -> np.ndarray:
    idx = np.array([engine.add_symbol(n) for n in names], dtype=np.int32)
    ask = bid + 1e-4 if ask is None else ask
    volume = np.zeros(len(bid)) if volume is None else volume
    return engine.update(idx, bid, ask, volume).copy()


def test_seven_interleaved_symbols_equal_each_symbol_alone(ticks, features_cfg) -> None:
    frame = ticks["oanda"].iloc[:70_000]
    bid, ask = frame["bid"].to_numpy(), frame["ask"].to_numpy()
    volume = synthetic_volume(len(bid))
    names = [f"S{i % 7}" for i in range(len(bid))]
    together = run(FeatureEngine(features_cfg), names, bid, ask, volume)
    for k in range(7):
        rows = np.arange(k, len(bid), 7)
        alone = run(FeatureEngine(features_cfg), [f"S{k}"] * len(rows), bid[rows], ask[rows], volume[rows])
        assert np.array_equal(together[rows], alone, equal_nan=True), f"symbol S{k} differs when interleaved"


def test_symbols_added_later_grow_the_state_without_disturbing_others(features_cfg) -> None:
    small = dataclasses.replace(features_cfg, max_symbols=2)
    rng = np.random.default_rng(5)
    bid = 1.1 + np.cumsum(rng.normal(0, 1e-5, 3000))
    names = [f"S{i % 9}" for i in range(3000)]  # 9 symbols into room for 2: grows twice
    grown = run(FeatureEngine(small), names, bid)
    roomy = run(FeatureEngine(dataclasses.replace(features_cfg, max_symbols=64)), names, bid)
    assert np.array_equal(grown, roomy, equal_nan=True)


def test_constant_prices_give_zero_volatility_and_rsi_and_no_inf(features_cfg) -> None:
    out = run(FeatureEngine(features_cfg), ["C"] * 2000, np.full(2000, 1.2345))
    assert np.all(out[25:, F["volatility_20"]] == 0.0)
    assert np.all(out[20:, F["rsi"]] == 0.0)  # TA-Lib: no gains and no losses -> 0
    assert np.all(np.abs(out[40:, F["macd"]]) < 1e-12)  # seed means round: -2.2e-16, as TA-Lib
    assert out[-1, F["perm_entropy"]] == 0.0  # one pattern only
    assert np.isnan(out[-1, F["chaos_index"]])  # every distance zero: nolds says -inf, we say NaN
    assert not np.isinf(out).any()
    # no move is no lean: every z is 0, and the bin centred on 0 weighs exactly half (an even bin count
    # put 0 in the bin above it: 0.60, a lean towards BUY wherever the bid stands still)
    assert np.all(out[200:, F["wave_function"]] == pytest.approx(0.5, abs=1e-12))


def test_one_tick_is_all_warm_up_except_spread(features_cfg) -> None:
    out = run(FeatureEngine(features_cfg), ["A"], np.array([1.1]), np.array([1.1002]))
    assert out[0, F["spread"]] == pytest.approx(0.0002)
    others = [i for i in range(N_FEATURES) if i not in (F["spread"], F["spread_pct"])]
    assert np.all(np.isnan(out[0, others]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0, 0.0])
def test_bad_prices_are_rejected_before_the_kernel_touches_state(features_cfg, bad: float) -> None:
    engine = FeatureEngine(features_cfg)
    run(engine, ["A"] * 50, np.linspace(1.1, 1.2, 50))
    before = engine.snapshot()
    with pytest.raises(ValueError):
        run(engine, ["A", "A"], np.array([1.2, bad]))
    after = engine.snapshot()
    for name, arr in before["arrays"].items():
        assert np.array_equal(arr, after["arrays"][name], equal_nan=True), f"{name} changed by a rejected batch"


@settings(max_examples=40, deadline=None)
@given(
    scale=st.sampled_from([1e-6, 1e-3, 1.0, 150.0, 1e5, 1e9]),
    steps=st.lists(st.floats(-0.01, 0.01, allow_nan=False), min_size=1, max_size=400),
    gap_every=st.integers(2, 50),
)
def test_any_positive_price_path_gives_finite_or_nan_features(features_cfg, scale: float, steps: list[float], gap_every: int) -> None:
    path = scale * np.exp(np.cumsum(steps))
    path[::gap_every] *= 1.05  # gaps: jumps of 5 %
    out = run(FeatureEngine(features_cfg), ["P"] * len(path), path, path * 1.0001)
    assert not np.isinf(out).any()
    rsi = out[:, F["rsi"]]
    assert np.all((rsi[~np.isnan(rsi)] >= 0) & (rsi[~np.isnan(rsi)] <= 100))
    for name in ("wave_function", "perm_entropy"):
        v = out[:, F[name]]
        assert np.all((v[~np.isnan(v)] >= 0) & (v[~np.isnan(v)] <= 1 + 1e-12))


@settings(max_examples=15, deadline=None)
@given(split=st.integers(1, 2999))
def test_snapshot_and_restore_continue_exactly(features_cfg, split: int) -> None:
    rng = np.random.default_rng(11)
    bid = 1.3 + np.cumsum(rng.normal(0, 2e-5, 3000))
    names = [f"S{i % 3}" for i in range(3000)]
    straight = run(FeatureEngine(features_cfg), names, bid)
    first = FeatureEngine(features_cfg)
    run(first, names[:split], bid[:split])
    resumed = FeatureEngine.restore(first.snapshot(), features_cfg)
    rest = run(resumed, names[split:], bid[split:])
    assert np.array_equal(rest, straight[split:], equal_nan=True)


def test_restore_refuses_a_snapshot_of_other_parameters(features_cfg) -> None:
    engine = FeatureEngine(features_cfg)
    run(engine, ["A"] * 10, np.linspace(1, 2, 10))
    # Parameters that leave every array's shape as it was: the refusal must come from the parameters' own check,
    # not from a shape that no longer fits (a window's length would give that, and hide a missing check).
    for other in (dataclasses.replace(features_cfg, chaos_every=features_cfg.chaos_every * 2), dataclasses.replace(features_cfg, wave_bandwidth=features_cfg.wave_bandwidth * 1.5)):
        with pytest.raises(ValueError, match="different feature parameters"):
            FeatureEngine.restore(engine.snapshot(), other)


def test_latest_gives_json_ready_values(features_cfg) -> None:
    engine = FeatureEngine(features_cfg)
    run(engine, ["A"] * 3, np.array([1.1, 1.2, 1.3]))
    latest = engine.latest("A")
    assert latest["returns"] == pytest.approx(1.3 / 1.2 - 1) and latest["rsi"] is None


@pytest.mark.parametrize("at", [300, 303, 311, 319])  # where in the rings' laps the quote falls
def test_volatility_is_exact_again_once_an_off_market_quote_has_left_its_window(features_cfg, at: int) -> None:
    """The running sums lost the window's digits to one huge return (a quote x1e6): after it left the window,
    volatility_5 read up to 138 times, volatility_20 39 times, the true value until the ring's next lap (a helper's
    check, 2026-12-06). Now they are recomputed when the sample leaving held nearly all of the sum of squares."""
    rng = np.random.default_rng(3)
    mid = 1.1 + np.cumsum(rng.normal(0, 5e-5, 400))
    mid[at] *= 1e6
    out = run(FeatureEngine(features_cfg), ["EURUSD"] * mid.size, mid - 5e-5, mid + 5e-5)
    returns = out[:, F["returns"]]  # the kernel's own, from which both volatilities are taken
    for name, window in (("volatility_5", 5), ("volatility_20", 20)):
        for t in range(at + window + 1, mid.size):  # the spike's two returns (at, at + 1) are out of the window
            exact = np.std(returns[t - window + 1 : t + 1], ddof=1)
            assert out[t, F[name]] == pytest.approx(exact, rel=1e-9), (name, t)
