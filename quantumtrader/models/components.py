"""The three rule-based components: each maps features of one tick to P(up) in [0, 1].

Scalar ``@njit`` functions, inlined into the batch kernel (``kernel.py``) and
callable from tests on hand-made inputs. Each returns 0.5, "no opinion", while
any input it needs is still NaN (warming up), so a cold component never pulls
the ensemble anywhere (DESIGN.md, "Models and signals").
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, inline="always")
def quantum_probability(wave_function: float) -> float:
    """``wave_function`` is already a probability: the mass the kernel density of the
    last W standardized returns puts on the next return being positive
    (DESIGN.md, "Features"). Clipped to [0, 1] against rounding."""
    if math.isnan(wave_function):
        return 0.5
    return min(1.0, max(0.0, wave_function))


#: A rolling standard deviation of tick returns at or below this is a price that did not move: 0, or
#: the rounding the running sums keep until their next recompute (up to ~1e-11 after a large tick left
#: the window). One 0.1-pip move in 20 EURUSD ticks is ~2e-6: real ones are far above.
STILL_VOLATILITY = 1e-9


#: The chaos component's momentum takes a tick return clipped at this many times the symbol's typical one
#: (:data:`TREND_SCALE_ALPHA`'s EMA of the returns it took, clipped): one off-market quote (a bid x1000, or
#: x0.001) gave returns of +999 and -0.999, and the EMA of them read a strong up-trend for ~170 ticks, whichever
#: way the quote was off (a helper's check, 2026-12-06). The clipped return updates the scale, so a spike cannot
#: widen its own clip. On clean EURUSD ticks no prediction changed.
TREND_CLIP = 8.0
TREND_SCALE_ALPHA = 0.02


@njit(cache=True, inline="always")
def clipped_return(r: float, scale: float) -> float:
    """``r`` within +-:data:`TREND_CLIP` x ``scale``; as it is while the scale is unknown (NaN) or 0 (no move yet)."""
    if scale > 0.0:
        limit = TREND_CLIP * scale
        return min(limit, max(-limit, r))
    return r


@njit(cache=True, inline="always")
def trend_score(momentum: float, volatility: float, alpha: float) -> float:
    """Momentum over volatility, squashed to [-1, 1].

    ``momentum`` is an EMA (weight ``alpha``) of tick returns, ``volatility`` the
    rolling standard deviation of those returns. For independent returns the
    EMA's standard deviation is ``volatility * sqrt(alpha / (2 - alpha))``, so
    ``z`` below is a t-like statistic: |z| ~ 1 is what noise alone produces,
    and ``tanh(z / 2)`` keeps noise near 0 and a clean trend near +-1.
    """
    if math.isnan(momentum) or math.isnan(volatility):
        return 0.0
    if volatility <= STILL_VOLATILITY:
        # A price that has not moved for the whole window has no trend to read: the momentum EMA
        # only decays, so an old small move would otherwise read as a clean trend (+-1).
        return 0.0
    z = momentum / (volatility * math.sqrt(alpha / (2.0 - alpha)))
    return math.tanh(0.5 * z)


@njit(cache=True, inline="always")
def chaos_probability(trend: float, chaos_index: float, chaos_scale: float) -> float:
    """Trend, trusted less as the largest Lyapunov exponent rises.

    trust = exp(-max(chaos_index, 0) / chaos_scale): 1 for a stable
    (non-positive exponent) regime, falling towards 0 as nearby trajectories
    diverge faster, where extrapolating a trend is worth less.
    """
    if math.isnan(chaos_index):
        return 0.5
    trust = math.exp(-max(chaos_index, 0.0) / chaos_scale)
    return 0.5 + 0.5 * trend * trust


@njit(cache=True, inline="always")
def technical_probability(rsi: float, macd: float, macd_signal: float, price: float, volatility: float) -> float:
    """RSI and the MACD histogram read as momentum, averaged, mapped to [0, 1].

    RSI (0..100) contributes ``(rsi - 50) / 50``; the histogram
    ``macd - macd_signal`` is in price units, so it is scaled by the price
    move of one tick's standard deviation (``price * volatility``) and
    squashed with tanh. Both are read as trend-following (RSI 70 = up
    momentum), not as the overbought/oversold mean-reversion reading; the
    evaluation (docs/evaluation.md) says which reading the data supports.
    A still market (``volatility`` at or below ``STILL_VOLATILITY``) or one
    whose scale is not known yet (NaN) reads 0.5: no momentum to read.
    """
    if math.isnan(rsi) or math.isnan(macd) or math.isnan(macd_signal):
        return 0.5
    scale = price * volatility
    if math.isnan(scale) or volatility <= STILL_VOLATILITY:
        # A still market: no momentum to read (see trend_score). Wilder's averages of gain and loss
        # decay together while nothing moves, so RSI keeps the old move's reading, then reads 0 once
        # both are below TA-Lib's zero: a SELL lean in a market that does not move (until 2026-12-03).
        return 0.5
    rsi_term = (rsi - 50.0) / 50.0
    macd_term = math.tanh((macd - macd_signal) / scale)
    p = 0.5 + 0.25 * (rsi_term + macd_term)
    return min(1.0, max(0.0, p))
