"""Slow, obviously correct references of every feature, written from docs/features.md.

Used only by tests: one symbol's whole series in, one list per feature out,
with plain Python loops and full recomputation (no running sums, no rings).
"""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np

NAN = float("nan")
Z_MAX = 4.0


def returns(x: list[float]) -> list[float]:
    return [NAN] + [x[t] / x[t - 1] - 1.0 for t in range(1, len(x))]


def log_returns(x: list[float]) -> list[float]:
    return [NAN] + [math.log(x[t] / x[t - 1]) for t in range(1, len(x))]


def sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def volatility(x: list[float], n: int) -> list[float]:
    r = returns(x)
    return [sample_std(r[t - n + 1 : t + 1]) if t >= n else NAN for t in range(len(x))]


def volume_rate(volume: list[float]) -> list[float]:
    return [sum(volume[t - 4 : t + 1]) / 5 if t >= 4 else NAN for t in range(len(volume))]


def rsi(x: list[float], period: int = 14) -> list[float]:
    out = [NAN] * len(x)
    gains = [max(x[t] - x[t - 1], 0.0) for t in range(1, len(x))]
    losses = [max(x[t - 1] - x[t], 0.0) for t in range(1, len(x))]
    if len(gains) < period:
        return out
    g = sum(gains[:period]) / period
    l = sum(losses[:period]) / period
    for i in range(period - 1, len(gains)):
        if i >= period:
            g = (g * (period - 1) + gains[i]) / period
            l = (l * (period - 1) + losses[i]) / period
        out[i + 1] = 100 * g / (g + l) if abs(g + l) >= 1e-14 else 0.0
    return out


def wave_function(x: list[float], window: int, bins: int, bandwidth: float) -> list[float]:
    """Mean over the last W standardized returns of P(N(centre of its bin, h) > 0)."""
    r = returns(x)
    sig = volatility(x, 20)
    width = 2 * Z_MAX / bins
    zbins: list[int] = []
    out = [NAN] * len(x)
    for t in range(len(x)):
        if t < 20:
            continue
        z = r[t] / sig[t] if sig[t] > 0 else 0.0
        b = min(max(int(math.floor((z + Z_MAX) / (2 * Z_MAX) * bins)), 0), bins - 1)
        zbins.append(b)
        if len(zbins) >= window:
            last = zbins[-window:]
            centres = [-Z_MAX + (bb + 0.5) * width for bb in last]
            out[t] = sum(0.5 * (1 + math.erf(c / (bandwidth * math.sqrt(2)))) for c in centres) / window
    return out


def perm_entropy(x: list[float], order: int, window: int) -> list[float]:
    """Normalized Shannon entropy of ordinal patterns (stable argsort) of the last ``window`` prices."""
    index = {p: i for i, p in enumerate(permutations(range(order)))}
    out = [NAN] * len(x)
    for t in range(window - 1, len(x)):
        prices = x[t - window + 1 : t + 1]
        counts: dict[int, int] = {}
        for i in range(window - order + 1):
            pattern = tuple(int(k) for k in np.argsort(prices[i : i + order], kind="stable"))
            counts[index[pattern]] = counts.get(index[pattern], 0) + 1
        total = window - order + 1
        out[t] = -sum(c / total * math.log(c / total) for c in counts.values()) / math.log(math.factorial(order))
    return out
