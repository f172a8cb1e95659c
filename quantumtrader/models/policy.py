"""Prediction classes and the signal policy: when a symbol's signal is emitted.

DESIGN.md: a signal is emitted when a symbol's prediction changes, and at
least every ``interval_s`` while ticks arrive. The clock is an argument
(seconds, any origin): the daemon passes its monotonic clock, ``evaluate``
the ticks' own times, tests whatever they like.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantumtrader.models.state import PolicyState

HOLD = 0
BUY = 1
SELL = 2
PREDICTIONS: tuple[str, ...] = ("HOLD", "BUY", "SELL")  # by code
_GOLDEN = 0.6180339887498949  # (sqrt(5) - 1) / 2


@njit(cache=True, inline="always")
def classify(p: float, buy_threshold: float, sell_threshold: float) -> int:
    """BUY strictly above the buy threshold, SELL strictly below the sell threshold, else HOLD."""
    if p > buy_threshold:
        return BUY
    if p < sell_threshold:
        return SELL
    return HOLD


@njit(cache=True, inline="always")
def policy_step(last_prediction: np.ndarray, last_emit_s: np.ndarray, s: int, prediction: int, clock_s: float, interval_s: float) -> bool:
    """True when symbol ``s``'s signal is due now; records the emission.

    A symbol's first signal starts its interval clock a fraction of an
    interval early (row ``s`` times the golden ratio, mod 1: spread evenly
    over any number of symbols), so symbols that started together do not all
    fall due for their periodic signal in the same moment (50 symbols in one
    millisecond was a burst of commits that delayed the signals behind it);
    the first periodic signal comes sooner, never later than the interval.
    """
    prev = last_prediction[s]
    if prev < 0 or prediction != prev or clock_s - last_emit_s[s] >= interval_s:
        last_prediction[s] = prediction
        last_emit_s[s] = clock_s - ((s * _GOLDEN) % 1.0) * interval_s if prev < 0 else clock_s
        return True
    return False


@njit(cache=True, inline="always")
def apply_policy(
    policy: PolicyState,
    sym_idx: np.ndarray,
    probability: np.ndarray,
    clock_s: np.ndarray,
    params3: np.ndarray,
    prediction: np.ndarray,
    emit: np.ndarray,
) -> None:
    """The policy alone over a batch of probabilities (evaluate's single-component baselines).

    ``params3`` = (buy_threshold, sell_threshold, interval_s); writes
    ``prediction`` (codes) and ``emit`` (bool) per row.
    """
    for i in range(sym_idx.shape[0]):
        s = sym_idx[i]
        code = classify(probability[i], params3[0], params3[1])
        prediction[i] = code
        emit[i] = policy_step(policy.last_prediction, policy.last_emit_s, s, code, clock_s[i], params3[2])
