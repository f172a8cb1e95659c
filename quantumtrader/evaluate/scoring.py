"""Scores of probabilities and of acting on signals: numpy, no pipeline.

Definitions (docs/evaluation.md): the label of tick t is whether mid rose
over the next H ticks of the same symbol (``mid[t+H] > mid[t]`` beyond
rounding: ``models.labels.mid_rose``, the learners' own rule, used here
through its plain Python function; a tie is "not up"). A BUY hits when mid
rose, a SELL when it fell; a tie is a miss for both. Acting on a signal
opens at the signal's tick and closes H ticks later, paying the spread both
ways as quoted (buy at ask, sell at bid).

Trades whose horizons overlap share most of their outcome, so they are not
independent draws: the hit rate's interval and its test against chance are
widened by the design effect of those chains of overlapping trades (a
cluster-robust variance), not taken as if every trade were a coin of its own.
"""

from __future__ import annotations

import math

import numpy as np

from quantumtrader.models.labels import mid_rose

_rose = mid_rose.py_func  # the same rule over arrays

#: Probabilities are clipped here for the log loss, so one 0/1 output costs
#: log(1e6) ~ 13.8 nats instead of infinity.
LOG_LOSS_EPS = 1e-6


Z95 = 1.959963984540054


def wilson_interval(hits: float, n: float, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (Wilson 1927); (nan, nan) when n = 0.

    ``n`` may be an effective sample size (not a whole number): :func:`overlap_aware_interval`."""
    if n <= 0:
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


def up_down(later: np.ndarray, earlier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where mid rose and where it fell from ``earlier`` to ``later``, by the learners' own rule
    (``models.labels.mid_rose``: beyond rounding, so two quotes of one mid are a tie, neither)."""
    return _rose(later, earlier), _rose(earlier, later)


def overlap_chains(entry_rows: np.ndarray, horizon: int) -> np.ndarray:
    """The chain number of each trade (entries in time order): a trade opened before the one before it has
    closed (less than ``horizon`` ticks after its entry) is in that one's chain, which it overlaps."""
    if not entry_rows.size:
        return np.zeros(0, dtype=np.int64)
    starts = np.empty(entry_rows.size, dtype=np.bool_)
    starts[0] = True
    starts[1:] = np.diff(entry_rows) >= horizon
    return np.cumsum(starts) - 1


#: Below this many chains the cluster-robust variance is itself too noisy to trust (it can fall far below the
#: binomial one: 9 chains of 317 trades gave 0.08), so every chain is counted as one outcome instead.
MIN_CHAINS_ESTIMATED = 30


def design_effect(hits: np.ndarray, chain: np.ndarray) -> float:
    """How many times the variance of the hit rate exceeds the binomial one, its trades being clustered in
    ``chain``s; at least 1, at most ``sum(n_c^2) / n`` (every chain one outcome: ``n`` for one chain, 1 for
    trades each in a chain of its own); nan without trades.

    Estimated (the cluster-robust variance over the binomial one) from :data:`MIN_CHAINS_ESTIMATED` chains
    up, when the hits vary; without the usual C/(C-1) small-sample factor, so that trades each in a chain of
    their own give the binomial variance exactly (1, not n/(n-1)); with the ~800 chains of a real run the
    factor is 0.1 %. With fewer chains, or a hit rate of 0 or 1 (where there is no spread to estimate it
    from: one chain of 50 hits would have counted as 50 independent ones), the upper bound is taken."""
    n = hits.size
    if n == 0:
        return math.nan
    n_c = np.bincount(chain).astype(np.float64)
    every_chain_one = float(np.sum(n_c * n_c)) / n
    p = float(hits.mean())
    if n_c.size < MIN_CHAINS_ESTIMATED or p in (0.0, 1.0):
        return every_chain_one
    k_c = np.bincount(chain, weights=hits.astype(np.float64))
    clustered = float(np.sum((k_c - p * n_c) ** 2)) / (n * n)
    return min(every_chain_one, max(1.0, clustered / (p * (1.0 - p) / n)))


def overlap_aware_interval(hits: np.ndarray, chain: np.ndarray) -> tuple[tuple[float, float], float]:
    """95 % interval of the hit rate on the effective number of trades (n / design effect), and that effect."""
    n = hits.size
    if n == 0:
        return (math.nan, math.nan), math.nan
    deff = design_effect(hits, chain)
    n_eff = n / deff
    return wilson_interval(float(hits.mean()) * n_eff, n_eff), deff


def p_value_against(rate: float, chance: float, n: int, deff: float) -> float:
    """Two-sided p-value of a hit rate against the chance level at the same moments (normal approximation,
    the binomial variance under chance times the design effect); nan without trades or spread."""
    if n == 0 or not 0.0 < chance < 1.0:
        return math.nan
    z = (rate - chance) / math.sqrt(deff * chance * (1.0 - chance) / n)
    return math.erfc(abs(z) / math.sqrt(2.0))


def trade_scores(direction: np.ndarray, entry_rows: np.ndarray, bid: np.ndarray, ask: np.ndarray, mid: np.ndarray, horizon: int, pip: float) -> dict[str, object]:
    """Hit rate (95 % interval allowing for overlapping trades), its chance level and P&L in pips of acting on signals.

    ``direction`` +1 (BUY) / -1 (SELL) per acted signal, ``entry_rows`` its
    tick index in this symbol's arrays, in time order; signals within
    ``horizon`` of the end (no outcome yet) must be filtered out by the caller.
    What moved up, down or not at all is :func:`up_down`'s.

    The chance level is what a side picked at random would hit at the same
    moments: half the moves up plus half the moves down, below 0.5 as ties
    miss both sides. A seeded coin's hit rate is one draw around it.
    """
    exit_rows = entry_rows + horizon
    up, down = up_down(mid[exit_rows], mid[entry_rows])
    hits = np.where(direction > 0, up, down)
    pnl = np.where(direction > 0, bid[exit_rows] - ask[entry_rows], bid[entry_rows] - ask[exit_rows]) / pip
    n = int(direction.size)
    k = int(hits.sum())
    rate = k / n if n else math.nan
    chain = overlap_chains(entry_rows, horizon)
    (low, high), deff = overlap_aware_interval(hits, chain)
    chance = (int(up.sum()) + int(down.sum())) / (2 * n) if n else math.nan
    buys = int((direction > 0).sum())
    return {
        "trades": n,
        "buys": buys,
        "sells": int((direction < 0).sum()),
        "hits": k,
        "hit_rate": rate,
        "hit_rate_ci95": [low, high],
        "hit_rate_ci95_independent": list(wilson_interval(k, n)),  # as if no two trades overlapped: too narrow
        "overlap_chains": int(chain[-1]) + 1 if n else 0,
        "design_effect": deff,
        "chance_hit_rate": chance,
        # a random side drawn with this strategy's own share of BUYs: no credit for leaning with the sample's drift
        "chance_hit_rate_own_sides": (buys * int(up.sum()) + (n - buys) * int(down.sum())) / (n * n) if n else math.nan,
        "p_value_vs_chance": p_value_against(rate, chance, n, deff),
        "win_rate": float((pnl > 0).mean()) if n else math.nan,
        "pnl_pips": float(pnl.sum()),
        "pnl_pips_per_trade": float(pnl.mean()) if n else math.nan,
        "_per_trade": {"hit": hits, "pnl_pips": pnl},  # each trade's outcome, in the order of entry_rows
    }
