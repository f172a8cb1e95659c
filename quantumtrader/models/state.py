"""Per-symbol model state: tuples of preallocated arrays, mutated in place by the kernel.

pynndescent's shape: a ``NamedTuple`` of arrays built by ``make_*_state``,
passed whole to ``@njit`` code (Numba types a NamedTuple of arrays natively, so
the kernel takes one argument, not twenty). Row ``s`` of every array belongs to
symbol index ``s`` (the feature engine's index). Growing for new symbols copies
into larger arrays of the same dtypes and ranks, so the compiled kernel is
reused, never recompiled.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ModelState(NamedTuple):
    """What the online models remember per symbol. ``S`` symbols, ``F`` features, ``H`` horizon."""

    momentum: np.ndarray  # f8[S]: EMA of tick returns (chaos component's trend); NaN until the first return
    trend_log_scale: np.ndarray  # f8[S]: log of the typical move the momentum's returns are clipped at (components.momentum_step)
    trend_moves: np.ndarray  # f8[S]: non-zero returns seen (the scale's exact mean at first, the momentum's warm-up)
    feat_mean: np.ndarray  # f8[S, F]: online standardization, exponentially forgetting mean
    feat_var: np.ndarray  # f8[S, F]: ... and variance
    feat_count: np.ndarray  # f8[S, F]: finite values seen per feature (forgetting weight = max(1/n, 1/memory))
    ring_x: np.ndarray  # f8[S, H, F]: the last H standardized feature rows, waiting for their label
    ring_mid: np.ndarray  # f8[S, H]: mid at the time of each waiting row
    ring_pos: np.ndarray  # i8[S]: next slot to write (= the oldest row once the ring is full)
    ring_fill: np.ndarray  # i8[S]: rows in the ring (<= H)
    labels: np.ndarray  # f8[S]: labels the learners were trained on
    sgd_w: np.ndarray  # f8[S, F + 1]: logistic regression weights, bias last
    nb_count: np.ndarray  # f8[S, 2]: forgetting count of down/up labels
    nb_mean: np.ndarray  # f8[S, 2, F]: per-class feature means
    nb_var: np.ndarray  # f8[S, 2, F]: per-class feature variances


class PolicyState(NamedTuple):
    """The signal policy's memory per symbol. Not persisted: its clock is this process's monotonic one."""

    last_prediction: np.ndarray  # i8[S]: last emitted prediction code, -1 = none yet
    last_emit_s: np.ndarray  # f8[S]: clock of the last emitted signal


def make_model_state(n_symbols: int, n_features: int, horizon: int) -> ModelState:
    s, f, h = n_symbols, n_features, horizon
    return ModelState(
        momentum=np.full(s, np.nan),
        trend_log_scale=np.zeros(s),
        trend_moves=np.zeros(s),
        feat_mean=np.zeros((s, f)),
        feat_var=np.zeros((s, f)),
        feat_count=np.zeros((s, f)),
        ring_x=np.zeros((s, h, f)),
        ring_mid=np.zeros((s, h)),
        ring_pos=np.zeros(s, dtype=np.int64),
        ring_fill=np.zeros(s, dtype=np.int64),
        labels=np.zeros(s),
        sgd_w=np.zeros((s, f + 1)),
        nb_count=np.zeros((s, 2)),
        nb_mean=np.zeros((s, 2, f)),
        nb_var=np.ones((s, 2, f)),
    )


def make_policy_state(n_symbols: int) -> PolicyState:
    return PolicyState(last_prediction=np.full(n_symbols, -1, dtype=np.int64), last_emit_s=np.zeros(n_symbols))


def grow_rows(state: tuple, fresh: tuple) -> tuple:
    """Copy every array of ``state`` into the leading rows of the larger ``fresh`` state."""
    for old, new in zip(state, fresh):
        new[: old.shape[0]] = old
    return fresh
