"""The three rule-based components: each maps features of one tick to P(up) in [0, 1].

Scalar ``@njit`` functions, inlined into the batch kernel (``kernel.py``) and
callable from tests on hand-made inputs. Each returns 0.5, "no opinion", while
any input it needs is still NaN (warming up), so a cold component never pulls
the ensemble anywhere (DESIGN.md, "Models and signals").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quantumtrader.models.learners import forgetting_weight


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


#: The chaos component's momentum takes a tick return clipped at this many times the symbol's typical move:
#: one off-market quote (a bid x1000, or x0.001) gave returns of +999 and -0.999, and the EMA of them read a
#: strong up-trend for ~170 ticks, whichever way the quote was off (a helper's check, 2026-12-06).
TREND_CLIP = 10.0
#: The typical move: the geometric mean of |return| over the moves (returns of 0 left out: a still market says
#: nothing about the size of the next move, and an EMA that took them shrank towards 0 in a quiet spell, then
#: clipped the first real moves after it), exact over the first 1 / TREND_SCALE_ALPHA moves, then forgetting
#: with this weight. In logarithms, so one spike moves it by a factor, not by its size: the first move of a
#: symbol being the spike left the scale ~1e6 too large under a plain mean.
TREND_SCALE_ALPHA = 0.02
#: Moves the scale must have seen before the momentum takes any return: until then a spike could not be told
#: from a move (the trend reads 0 until volatility_20 has 20 returns anyway).
TREND_SCALE_WARMUP = 20
_LOG_TREND_CLIP = math.log(TREND_CLIP)


@njit(cache=True, inline="always")
def momentum_step(momentum: np.ndarray, log_scale: np.ndarray, moves: np.ndarray, s: int, r: float, alpha: float) -> None:
    """Symbol ``s``'s momentum (an EMA of weight ``alpha``) after tick return ``r`` (not NaN), clipped at
    :data:`TREND_CLIP` times its typical move, whose log (``log_scale``) and count of moves (``moves``) it updates."""
    if r != 0.0:
        log_r = math.log(abs(r))
        n = moves[s]
        if n > 0.0:
            limit = log_scale[s] + _LOG_TREND_CLIP
            if log_r > limit:  # clipped before it updates the scale: a spike cannot widen its own clip
                log_r = limit
                r = math.copysign(math.exp(limit), r)
        n += 1.0
        moves[s] = n
        # the first move's weight is 1: the scale is that move (0 + (log_r - 0) is log_r exactly)
        log_scale[s] += forgetting_weight(n, TREND_SCALE_ALPHA) * (log_r - log_scale[s])
    if moves[s] >= TREND_SCALE_WARMUP:
        m = momentum[s]
        momentum[s] = r if math.isnan(m) else m + alpha * (r - m)


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
