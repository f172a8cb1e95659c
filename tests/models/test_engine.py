"""The batch kernel through ModelEngine: ensemble direction, learners, thresholds, weights, policy, state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model_rows import feature_rows, trending_rows
from quantumtrader.config import SignalsConfig
from quantumtrader.features.names import N_FEATURES
from quantumtrader.models.engine import ModelEngine
from quantumtrader.models.kernel import OUT_CHAOS, OUT_ML, OUT_PROBABILITY, OUT_QUANTUM, OUT_TECHNICAL
from quantumtrader.models.policy import BUY, HOLD, SELL, classify

DEFAULT = SignalsConfig()


def _run(engine: ModelEngine, mid: np.ndarray, rows: np.ndarray, sym: int = 0, clock: np.ndarray | None = None):
    n = mid.shape[0]
    clock = np.zeros(n) if clock is None else clock
    res = engine.step(np.full(n, sym, dtype=np.int32), mid, rows, clock)
    return res.out.copy(), res.prediction.copy(), res.emit.copy()


def test_clean_uptrend_gives_p_above_half_and_downtrend_below() -> None:
    mid_up, rows_up = trending_rows(300, 1e-5)
    mid_dn, rows_dn = trending_rows(300, -1e-5)
    out_up, _, _ = _run(ModelEngine(DEFAULT), mid_up, rows_up)
    out_dn, _, _ = _run(ModelEngine(DEFAULT), mid_dn, rows_dn)

    for col in (OUT_PROBABILITY, OUT_QUANTUM, OUT_CHAOS, OUT_TECHNICAL):
        assert out_up[-1, col] > 0.5 > out_dn[-1, col]
    assert out_up[-1, OUT_PROBABILITY] == pytest.approx(1.0 - out_dn[-1, OUT_PROBABILITY], abs=1e-3)  # returns differ slightly in size


def test_all_components_are_half_while_features_warm_up() -> None:
    rows = feature_rows(10)
    out, prediction, _ = _run(ModelEngine(DEFAULT), np.linspace(1.1, 1.2, 10), rows)
    assert np.all(out[:, :5] == 0.5)
    assert np.all(prediction == HOLD)


def test_ml_ensemble_stays_half_until_warmed_up_then_learns_a_predictive_feature() -> None:
    # "spread" (any column works) carries the future: high before a rise, low before a fall.
    cfg = dataclasses.replace(DEFAULT, horizon_ticks=5, ml_warmup_labels=300, weight_ml_ensemble=1.0, weight_quantum=0.0, weight_chaos=0.0, weight_technical=0.0)
    rng = np.random.default_rng(3)
    n = 3000
    direction = rng.choice([-1.0, 1.0], size=n // 5).repeat(5)
    mid = 1.1 + np.cumsum(direction * 1e-5)
    # the feature at t says where mid goes over t..t+5
    ahead = np.r_[mid[5:] - mid[:-5], np.zeros(5)]
    rows = feature_rows(n, spread=np.sign(ahead) + 0.3 * rng.standard_normal(n))
    engine = ModelEngine(cfg)
    out, _, _ = _run(engine, mid, rows)

    warm = 300 + 5  # labels start after H ticks
    assert np.all(out[:warm - 1, OUT_ML] == 0.5)
    late = slice(2000, n - 5)
    ml = out[late, OUT_ML]
    up = ahead[late] > 0
    assert ml[up].mean() > 0.7 and ml[~up].mean() < 0.3
    assert engine.labels_seen(0) == n - 5


def test_symbols_never_share_state() -> None:
    mid, rows = trending_rows(200, 1e-5)
    engine = ModelEngine(DEFAULT, capacity=2)
    interleaved = np.empty(400, dtype=np.int32)
    interleaved[0::2], interleaved[1::2] = 0, 3  # 3 forces a grow from capacity 2
    engine.ensure_capacity(4)
    mids = np.repeat(mid, 2)
    mids[1::2] = mid[::-1]
    both = np.repeat(rows, 2, axis=0)
    alone = ModelEngine(DEFAULT)
    res = engine.step(interleaved, mids, both, np.zeros(400))
    ref = alone.step(np.zeros(200, dtype=np.int32), mid, rows, np.zeros(200))
    np.testing.assert_array_equal(res.out[0::2], ref.out)


@pytest.mark.parametrize(
    ("p", "code"),
    [(0.71, BUY), (0.7, HOLD), (0.5, HOLD), (0.3, HOLD), (0.29, SELL), (1.0, BUY), (0.0, SELL)],
)
def test_thresholds_are_strict(p: float, code: int) -> None:
    assert classify(p, 0.7, 0.3) == code


def test_weights_change_the_outcome_as_documented() -> None:
    # Quantum says up strongly, technical says down strongly; the weights decide.
    rows = feature_rows(5, wave_function=0.95, rsi=10.0, macd=-3e-4, macd_signal=0.0, volatility_20=1e-4)
    mid = np.full(5, 1.1)
    quantum_heavy = dataclasses.replace(DEFAULT, weight_quantum=0.7, weight_chaos=0.1, weight_ml_ensemble=0.1, weight_technical=0.1)
    technical_heavy = dataclasses.replace(DEFAULT, weight_quantum=0.1, weight_chaos=0.1, weight_ml_ensemble=0.1, weight_technical=0.7)
    q_out, q_pred, _ = _run(ModelEngine(quantum_heavy), mid, rows)
    t_out, t_pred, _ = _run(ModelEngine(technical_heavy), mid, rows)

    # p is exactly the weighted sum of the components
    comps = q_out[-1, [OUT_QUANTUM, OUT_CHAOS, OUT_ML, OUT_TECHNICAL]]
    assert q_out[-1, OUT_PROBABILITY] == pytest.approx(float(np.dot([0.7, 0.1, 0.1, 0.1], comps)))
    assert q_out[-1, OUT_PROBABILITY] > 0.7 and q_pred[-1] == BUY
    assert t_out[-1, OUT_PROBABILITY] < 0.3 and t_pred[-1] == SELL


def test_policy_emits_on_first_tick_on_change_and_at_least_every_interval() -> None:
    cfg = dataclasses.replace(DEFAULT, interval_s=10.0, weight_quantum=1.0, weight_chaos=0.0, weight_ml_ensemble=0.0, weight_technical=0.0)
    wave = np.array([0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    clock = np.array([0.0, 1.0, 2.0, 5.0, 11.9, 12.0, 12.5, 13.0, 30.0])
    out, prediction, emit = _run(ModelEngine(cfg), np.full(9, 1.1), feature_rows(9, wave_function=wave), clock=clock)

    assert prediction.tolist() == [HOLD, HOLD, BUY, BUY, BUY, BUY, BUY, SELL, SELL]
    #   first   same   change  same  9.9s   10s since the BUY  same  change  17s
    assert emit.tolist() == [True, False, True, False, False, True, False, True, True]


def test_policy_clock_is_per_symbol_and_staggered() -> None:
    """Row 1's first signal starts its clock 0.618 of an interval early: due 3.82 s later, not 10."""
    cfg = dataclasses.replace(DEFAULT, interval_s=10.0)
    engine = ModelEngine(cfg)
    sym = np.array([0, 1, 0, 1, 1, 1], dtype=np.int32)
    res = engine.step(sym, np.full(6, 1.1), feature_rows(6), np.array([0.0, 5.0, 10.0, 8.7, 8.9, 18.8]))
    #   row 0 first, row 1 first, row 0 after 10 s, row 1 at 3.7 s (not yet), 3.9 s (due), 9.9 s after that (not yet)
    assert res.emit.tolist() == [True, True, True, False, True, False]


def test_staggered_periodic_signals_of_many_symbols_never_bunch() -> None:
    """50 symbols that start together: their periodic signals spread over the interval instead of one burst."""
    cfg = dataclasses.replace(DEFAULT, interval_s=10.0)
    engine = ModelEngine(cfg)
    due_at: list[float] = []
    for t in np.arange(0.0, 12.0, 0.01):
        sym = np.arange(50, dtype=np.int32)
        res = engine.step(sym, np.full(50, 1.1), feature_rows(50), np.full(50, t))
        if t > 0:
            due_at.extend([t] * int(res.emit.sum()))
    per_tenth = np.bincount((np.array(due_at) * 10).astype(int))
    assert len(due_at) >= 50 and per_tenth.max() <= 2, per_tenth.max()


def test_snapshot_restore_resumes_exactly() -> None:
    mid, rows = trending_rows(1200, 2e-6, noise=1e-5)
    cfg = dataclasses.replace(DEFAULT, ml_warmup_labels=100)
    whole = ModelEngine(cfg)
    first = ModelEngine(cfg)
    ref, _, _ = _run(whole, mid, rows)
    _run(first, mid[:700], rows[:700])

    resumed = ModelEngine(cfg, capacity=1)
    assert resumed.restore(first.snapshot())
    out, _, _ = _run(resumed, mid[700:], rows[700:])

    np.testing.assert_array_equal(out[:, OUT_ML], ref[700:, OUT_ML])
    assert np.all(out[:, OUT_ML] != 0.5)


def test_restore_refuses_a_state_of_another_shape() -> None:
    snap = ModelEngine(DEFAULT).snapshot()
    other = ModelEngine(dataclasses.replace(DEFAULT, horizon_ticks=DEFAULT.horizon_ticks + 1))
    assert not other.restore(snap)
    snap["n_features"] = N_FEATURES + 1
    assert not ModelEngine(DEFAULT).restore(snap)


def test_a_state_saved_before_the_trend_clip_resumes_its_learners() -> None:
    """Version 1 (before the trend clip's scale, 2026-12-06) is brought up to date, not dropped: an upgrade must not cost a
    trader the learners' history. Its scale starts unknown, as at a symbol's first tick; other versions are refused."""
    mid, rows = trending_rows(1200, 2e-6, noise=1e-5)
    cfg = dataclasses.replace(DEFAULT, ml_warmup_labels=100)
    first = ModelEngine(cfg)
    _run(first, mid[:700], rows[:700])
    snap = first.snapshot()
    assert snap["version"] == 2
    old = {**snap, "version": 1, "arrays": {k: v for k, v in snap["arrays"].items() if k not in ("trend_log_scale", "trend_moves")}}
    resumed = ModelEngine(cfg, capacity=1)
    assert resumed.unfit(old) is None
    assert resumed.restore(old)
    np.testing.assert_array_equal(resumed.state.sgd_w[: first.capacity], first.state.sgd_w)
    assert not resumed.state.trend_moves.any()  # the scale starts again, as at a first tick
    out, _, _ = _run(resumed, mid[700:], rows[700:])
    assert np.all(out[:, OUT_ML] != 0.5)  # the learners resumed warm
    assert not ModelEngine(cfg).restore({**old, "version": 0})
    assert not ModelEngine(cfg).restore({**snap, "version": 1})  # a version 1 that holds arrays it never had is not ours


def test_the_learners_take_two_quotes_of_one_mid_as_a_tie_not_a_rise() -> None:
    # Arrange: mid 1.393165 quoted two ways in turn; as floats the halves differ in the last bit, so a plain
    # comparison labelled every other tick "up" (a review, 2026-12-06: ~48.5 up labels of 99)
    cfg = dataclasses.replace(DEFAULT, horizon_ticks=1, ml_warmup_labels=1)
    quotes = np.array([[1.39308, 1.39325], [1.3931, 1.39323]] * 50)
    mid = 0.5 * (quotes[:, 0] + quotes[:, 1])
    assert mid[0] != mid[1]  # the premise
    engine = ModelEngine(cfg)

    # Act
    _run(engine, mid, feature_rows(mid.size))

    # Assert: every label learned, none of them "up" (models.labels.mid_rose, the rule evaluate scores by)
    assert engine.labels_seen(0) == mid.size - 1
    assert engine.state.nb_count[0, 1] == 0.0 and engine.state.nb_count[0, 0] > 0
