"""Each rule component on constructed inputs: direction, bounds, and 0.5 while inputs warm up."""

from __future__ import annotations

import math

import pytest

from quantumtrader.models.components import STILL_VOLATILITY, chaos_probability, quantum_probability, technical_probability, trend_score

ALPHA = 2.0 / 21.0


def test_quantum_is_the_wave_function_mass_clipped_and_half_when_unknown() -> None:
    assert quantum_probability(0.8) == 0.8
    assert quantum_probability(1.0000001) == 1.0
    assert quantum_probability(-1e-12) == 0.0
    assert quantum_probability(math.nan) == 0.5


def test_trend_score_follows_momentum_over_volatility() -> None:
    up = trend_score(1e-4, 1e-4, ALPHA)  # momentum one sigma per tick: a clean trend
    down = trend_score(-1e-4, 1e-4, ALPHA)
    noise = trend_score(1e-6, 1e-4, ALPHA)
    assert up > 0.9 and down < -0.9 and up == pytest.approx(-down)
    assert abs(noise) < 0.05
    assert trend_score(math.nan, 1e-4, ALPHA) == 0.0
    # A price that did not move for the window (volatility 0, or the ~1e-14 the running sums leave) has no
    # trend: its momentum EMA is only the decaying trace of an old move (this read +-1 until 2026-12-03).
    assert trend_score(1e-5, 0.0, ALPHA) == 0.0 and trend_score(-1e-7, 3e-14, ALPHA) == 0.0


def test_chaos_gives_uptrend_above_half_and_trusts_it_less_as_chaos_rises() -> None:
    trend = trend_score(1e-4, 1e-4, ALPHA)
    calm, chaotic, wild = (chaos_probability(trend, lam, 0.5) for lam in (0.0, 0.5, 5.0))
    assert calm > chaotic > wild > 0.5
    assert wild == pytest.approx(0.5, abs=1e-3)
    assert chaos_probability(-trend, 0.0, 0.5) == pytest.approx(1.0 - calm)
    assert chaos_probability(trend, -0.3, 0.5) == calm  # a negative exponent (stable) is full trust
    assert chaos_probability(trend, math.nan, 0.5) == 0.5


def test_technical_reads_rsi_and_macd_histogram_as_momentum() -> None:
    price, vol = 1.1, 1e-4
    bullish = technical_probability(75.0, 2e-4, 1e-4, price, vol)
    bearish = technical_probability(25.0, -2e-4, -1e-4, price, vol)
    flat = technical_probability(50.0, 1e-4, 1e-4, price, vol)
    assert bullish > 0.7 and bearish < 0.3 and flat == 0.5
    assert bullish == pytest.approx(1.0 - bearish)
    assert technical_probability(100.0, 1.0, -1.0, price, vol) <= 1.0
    assert technical_probability(math.nan, 1e-4, 0.0, price, vol) == 0.5
    assert technical_probability(50.0, 2e-4, 1e-4, price, 0.0) == 0.5  # a still market: the MACD term says nothing
    # nor RSI: a market that stopped moving keeps its last move's RSI, then TA-Lib's 0 (read as a SELL lean until 2026-12-03)
    assert technical_probability(0.0, 1e-4, 1e-4, price, 0.0) == 0.5 and technical_probability(80.0, 1e-4, 1e-4, price, 1e-12) == 0.5


def test_a_market_that_stops_moving_gives_no_technical_lean() -> None:
    """Through the real feature kernel: a walk, then the same quote for 400 ticks. RSI reads 0 (TA-Lib's
    output once gain and loss have decayed to nothing) and the technical component must read no momentum."""
    import numpy as np

    from quantumtrader.config import load_config
    from quantumtrader.features.engine import FeatureEngine
    from quantumtrader.features.names import FEATURE_INDEX

    engine = FeatureEngine(load_config(environ={}).features)
    row = engine.add_symbol("EURUSD")
    walk = 1.1 + np.cumsum(np.random.default_rng(3).normal(0, 1e-4, 200))
    mid = np.concatenate([walk, np.full(400, walk[-1])])
    n = mid.shape[0]
    out = engine.update(np.full(n, row, dtype=np.int32), mid - 5e-5, mid + 5e-5, np.ones(n), 1_700_000_000_000 + np.arange(n, dtype=np.int64))
    last = out[-1]
    rsi, volatility = last[FEATURE_INDEX["rsi"]], last[FEATURE_INDEX["volatility_20"]]
    assert rsi == 0.0 and volatility <= STILL_VOLATILITY, (rsi, volatility)
    assert technical_probability(rsi, last[FEATURE_INDEX["macd"]], last[FEATURE_INDEX["macd_signal"]], mid[-1], volatility) == 0.5
