"""Scores of probabilities and of acting on signals: pure numpy, no pipeline.

Definitions (docs/evaluation.md): the label of tick t is whether mid rose
over the next H ticks of the same symbol (``mid[t+H] > mid[t]``, a tie is
"not up"). A BUY hits when mid rose, a SELL when it fell; a tie is a miss for
both. Acting on a signal opens at the signal's tick and closes H ticks later,
paying the spread both ways as quoted (buy at ask, sell at bid).
"""

from __future__ import annotations

import math

import numpy as np

#: Probabilities are clipped here for the log loss, so one 0/1 output costs
#: log(1e6) ~ 13.8 nats instead of infinity.
LOG_LOSS_EPS = 1e-6


def wilson_interval(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (Wilson 1927); (nan, nan) when n = 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = hits / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def brier_score(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    if not p.size:
        return math.nan
    q = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)))


def probability_scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Brier and log loss of ``p`` against ``y``, and of the base rate (the constant mean of ``y``).

    The base rate is taken from the same sample, so it is a slightly
    optimistic reference (it knows the frequency in advance); a skill score
    > 0 means beating it.
    """
    base = float(y.mean()) if y.size else math.nan
    const = np.full_like(p, base)
    brier, brier_base = brier_score(p, y), brier_score(const, y)
    loss, loss_base = log_loss(p, y), log_loss(const, y)
    return {
        "n": int(y.size),
        "base_rate": base,
        "brier": brier,
        "brier_base_rate": brier_base,
        "brier_skill": 1.0 - brier / brier_base if brier_base > 0 else math.nan,
        "log_loss": loss,
        "log_loss_base_rate": loss_base,
    }


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed frequency per probability bin (non-empty bins only)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append({"p_mean": float(p[mask].mean()), "observed": float(y[mask].mean()), "n": int(mask.sum())})
    return out


def trade_scores(direction: np.ndarray, entry_rows: np.ndarray, bid: np.ndarray, ask: np.ndarray, mid: np.ndarray, horizon: int, pip: float) -> dict[str, object]:
    """Hit rate (Wilson 95 % CI) and P&L in pips of acting on signals.

    ``direction`` +1 (BUY) / -1 (SELL) per acted signal, ``entry_rows`` its
    tick index in this symbol's arrays; signals within ``horizon`` of the end
    (no outcome yet) must be filtered out by the caller.
    """
    exit_rows = entry_rows + horizon
    up = mid[exit_rows] > mid[entry_rows]
    down = mid[exit_rows] < mid[entry_rows]
    hits = np.where(direction > 0, up, down)
    pnl = np.where(direction > 0, bid[exit_rows] - ask[entry_rows], bid[entry_rows] - ask[exit_rows]) / pip
    n = int(direction.size)
    k = int(hits.sum())
    low, high = wilson_interval(k, n)
    return {
        "trades": n,
        "buys": int((direction > 0).sum()),
        "sells": int((direction < 0).sum()),
        "hits": k,
        "hit_rate": k / n if n else math.nan,
        "hit_rate_ci95": [low, high],
        "pnl_pips": float(pnl.sum()),
        "pnl_pips_per_trade": float(pnl.mean()) if n else math.nan,
        "cumulative_pnl": np.cumsum(pnl),
    }
