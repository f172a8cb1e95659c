"""Online learners of the ml_ensemble: standardization, SGD logistic regression, Gaussian naive Bayes.

Scalar-per-symbol ``@njit`` functions over one row of :class:`ModelState`,
inlined into the batch kernel. Everything forgets exponentially with weight
``max(1/n, alpha_min)``: an exact running mean/variance for the first
``1/alpha_min`` observations, then an EWMA (West 1979's weighted update), so
the learners follow a market whose scale drifts over days.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Standardized values are clipped here: FX returns have fat tails, and one
#: 30-sigma tick must not swing a learner's weights.
Z_CLIP = 5.0
#: The running moments take a deviation of at most this many standard deviations. Far above Z_CLIP: a clip
#: on the moments shrinks the variance of a feature whose jumps come rarer than 1 in MOMENT_CLIP² ticks (a
#: fixed spread that widens now and then), so it must bite only on values no market gives; at 5 sd (the first
#: version, 2026-12-04) a spread jumping 1 % of the time had its sd driven from 2e-5 to 4e-17.
MOMENT_CLIP = 30.0
#: Naive Bayes variance floor in standardized units (a near-constant feature
#: would otherwise make the likelihood explode).
NB_VAR_FLOOR = 1e-2


@njit(cache=True, inline="always")
def forgetting_weight(n: float, floor: float) -> float:
    """The weight of the ``n``-th observation: ``1/n`` (an exact running mean) until it falls to ``floor``, then
    ``floor`` (an EWMA). The learners' moments and the trend clip's scale (``components.momentum_step``) use it."""
    return max(1.0 / n, floor)


@njit(cache=True, inline="always")
def standardize(mean: np.ndarray, var: np.ndarray, count: np.ndarray, s: int, x: np.ndarray, alpha_min: float, z: np.ndarray) -> None:
    """Update symbol ``s``'s running moments with the raw row ``x`` and write its z-scores to ``z``.

    NaN (a feature still warming up) is not counted and becomes z = 0, the
    mean: an absent feature pushes neither learner either way. So is an
    infinity, which would make the mean NaN for good (and be saved so).

    The moments take a deviation of at most ``MOMENT_CLIP`` (30) standard
    deviations: one bad tick (a bid x1000, valid by the protocol's ranges)
    otherwise inflated a feature's variance ~1e6-fold, and forgetting at
    1/5000 a tick left that feature reading 0 for ~100,000 ticks; now it adds
    at most 18 % once warmed up. A real change of scale still gets through
    (the variance can grow ~18 % a tick), and a feature's rare real jumps
    keep their weight unless they are rarer than 1 in 900 ticks and beyond
    30 sd.
    """
    for f in range(x.shape[0]):
        v = x[f]
        if not math.isfinite(v):
            z[f] = 0.0
            continue
        count[s, f] += 1.0
        alpha = forgetting_weight(count[s, f], alpha_min)
        d = v - mean[s, f]
        if var[s, f] > 0.0:  # from the third value on
            limit = MOMENT_CLIP * math.sqrt(var[s, f])
            d = min(limit, max(-limit, d))
        mean[s, f] += alpha * d
        var[s, f] = (1.0 - alpha) * (var[s, f] + alpha * d * d)
        sd = math.sqrt(var[s, f])
        if count[s, f] < 2.0 or sd <= 0.0:
            z[f] = 0.0
        else:
            z[f] = min(Z_CLIP, max(-Z_CLIP, (v - mean[s, f]) / sd))


@njit(cache=True, inline="always")
def sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(30.0, max(-30.0, u))))


@njit(cache=True, inline="always")
def sgd_predict(w: np.ndarray, s: int, z: np.ndarray) -> float:
    n = z.shape[0]
    u = w[s, n]
    for f in range(n):
        u += w[s, f] * z[f]
    return sigmoid(u)


@njit(cache=True, inline="always")
def sgd_update(w: np.ndarray, s: int, z: np.ndarray, y: float, lr: float, l2: float) -> None:
    """One step of logistic-loss SGD with L2 (the bias is not penalized)."""
    n = z.shape[0]
    g = sgd_predict(w, s, z) - y
    for f in range(n):
        w[s, f] -= lr * (g * z[f] + l2 * w[s, f])
    w[s, n] -= lr * g


@njit(cache=True, inline="always")
def nb_update(count: np.ndarray, mean: np.ndarray, var: np.ndarray, s: int, z: np.ndarray, y: int, alpha_min: float) -> None:
    """Add one labelled row to class ``y``'s forgetting moments; both class counts decay."""
    decay = 1.0 - alpha_min
    count[s, 0] *= decay
    count[s, 1] *= decay
    count[s, y] += 1.0
    alpha = forgetting_weight(count[s, y], alpha_min)
    for f in range(z.shape[0]):
        d = z[f] - mean[s, y, f]
        mean[s, y, f] += alpha * d
        var[s, y, f] = (1.0 - alpha) * (var[s, y, f] + alpha * d * d)


@njit(cache=True, inline="always")
def nb_predict(count: np.ndarray, mean: np.ndarray, var: np.ndarray, s: int, z: np.ndarray, temperature: float) -> float:
    """P(up | z) under independent Gaussians per class, log-odds tempered by ``temperature``.

    Returns 0.5 until each class has been seen at least twice.
    """
    if count[s, 0] < 2.0 or count[s, 1] < 2.0:
        return 0.5
    log_odds = math.log(count[s, 1]) - math.log(count[s, 0])
    for f in range(z.shape[0]):
        v1 = max(var[s, 1, f], NB_VAR_FLOOR)
        v0 = max(var[s, 0, f], NB_VAR_FLOOR)
        d1 = z[f] - mean[s, 1, f]
        d0 = z[f] - mean[s, 0, f]
        log_odds += 0.5 * math.log(v0 / v1) - 0.5 * (d1 * d1 / v1 - d0 * d0 / v0)  # one log, not two
    return sigmoid(log_odds / temperature)
