"""Hand-made feature rows for model tests: a row is built from the feature names, never by column number."""

from __future__ import annotations

import numpy as np

from quantumtrader.features.names import FEATURE_INDEX, N_FEATURES


def feature_rows(n: int, **columns: float | np.ndarray) -> np.ndarray:
    """f8[n, N_FEATURES], NaN everywhere except the named columns."""
    rows = np.full((n, N_FEATURES), np.nan)
    for name, value in columns.items():
        rows[:, FEATURE_INDEX[name]] = value
    return rows


def trending_rows(n: int, step: float, price0: float = 1.1, noise: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(mid f8[n], feature rows) of a market moving ``step`` per tick with optional noise.

    Only what the rule components read is filled: returns, volatility_20, a
    momentum-reading RSI and MACD histogram, a wave_function leaning with the
    trend, and a calm chaos_index.
    """
    rng = np.random.default_rng(seed)
    increments = step + noise * rng.standard_normal(n)
    mid = price0 + np.cumsum(increments)
    returns = np.r_[np.nan, mid[1:] / mid[:-1] - 1.0]
    vol = np.full(n, max(abs(step), noise, 1e-9) / price0)
    sign = 1.0 if step > 0 else -1.0 if step < 0 else 0.0
    rows = feature_rows(
        n,
        returns=returns,
        volatility_20=vol,
        rsi=50.0 + 30.0 * sign,
        macd=sign * 2 * abs(step),
        macd_signal=sign * abs(step),
        wave_function=0.5 + 0.2 * sign,
        chaos_index=0.0,
    )
    return mid, rows
