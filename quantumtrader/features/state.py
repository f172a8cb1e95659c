"""Per-symbol feature state: preallocated arrays, one row per symbol, mutated in place by the kernel.

Layout (``FeatureState``, a NamedTuple of arrays so Numba compiles one
signature and caches it):

- ``num``  f8[cap, N_NUM]: running values (previous price, running sums, EMA
  and Wilder averages, the held chaos value), indexed by the ``NUM_*`` constants;
- ``cnt``  i8[cap, N_CNT]: counters (ticks, returns, z-values, patterns);
- rings, one row per symbol: ``ret5``, ``ret20`` (returns), ``vol5`` (volumes),
  ``zbin`` (wave_function bin of each standardized return), ``logret``
  (chaos window), ``last_x`` (the last ``perm_order`` prices, oldest first: a
  shift register, no ring arithmetic), ``pattern``
  (ordinal pattern codes in the entropy window);
- histograms: ``zcount`` i8[cap, bins], ``pcount`` i8[cap, order!];
- ``params`` i8[...] and ``wave_table`` f8[bins]: configuration the kernel reads.

Symbols are added by index; growing copies every array once into arrays of
twice the capacity (never per tick), and needs no recompilation because the
types do not change.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from quantumtrader.config import FeaturesConfig
from quantumtrader.features.limits import CHAOS_EMB_DIM, CHAOS_MIN_TSEP, CHAOS_TRAJ_LEN, check_params

# -- num columns
NUM_PREV_X = 0
NUM_R5_S1 = 1
NUM_R5_S2 = 2
NUM_R20_S1 = 3
NUM_R20_S2 = 4
NUM_VOL5_S = 5
NUM_RSI_G = 6  # seeding: sum of gains; then Wilder's average gain
NUM_RSI_L = 7
NUM_EMA_FAST = 8  # seeding: sum of x[14..25]; then the fast EMA
NUM_EMA_SLOW = 9  # seeding: sum of x[0..25]; then the slow EMA
NUM_MACD_SIG = 10  # seeding: sum of macd[25..33]; then the signal EMA
NUM_CHAOS = 11  # the held Lyapunov estimate (NaN until the first recompute)
NUM_LAST_MACD = 12
NUM_WAVE_MASS = 13  # running sum of wave_table over the zbin ring (re-anchored each lap)
NUM_PERM_CLOGC = 14  # running sum of c ln c over pattern counts (re-anchored each lap)
N_NUM = 15

# -- cnt columns
CNT_TICKS = 0  # prices seen (x index of the current tick after increment - 1)
CNT_RETURNS = 1  # returns seen
CNT_Z = 2  # standardized returns seen
CNT_PATTERNS = 3  # ordinal patterns seen
CNT_Z_POS = 4  # next slot of the zbin ring (kept instead of a modulo per tick)
CNT_PAT_POS = 5  # next slot of the pattern ring
CNT_CHAOS_POS = 6  # next slot of the logret ring
CNT_CHAOS_DUE = 7  # returns until the next chaos recompute
N_CNT = 8

# -- params
P_WAVE_WINDOW = 0
P_WAVE_BINS = 1
P_CHAOS_WINDOW = 2
P_CHAOS_EVERY = 3
P_PERM_ORDER = 4
P_PERM_WINDOW = 5  # prices in the entropy window
P_CHAOS_MIN_TSEP = 6
P_CHAOS_TRAJ_LEN = 7
P_CHAOS_EMB_DIM = 8
N_PARAMS = 9
#: The params slots a ``features`` setting fills, by the setting's name (the others are the program's constants).
#: A saved state's params say which settings it was taken with: a restore refused names those that differ.
PARAM_SETTINGS = {
    P_WAVE_WINDOW: "wave_window",
    P_WAVE_BINS: "wave_bins",
    P_CHAOS_WINDOW: "chaos_window",
    P_CHAOS_EVERY: "chaos_every",
    P_PERM_ORDER: "perm_order",
    P_PERM_WINDOW: "perm_window",
}

#: Standardized returns are binned on [-Z_MAX, Z_MAX]; beyond it they count in the edge bins.
Z_MAX = 4.0


#: Arrays that hold configuration, not per-symbol rows.
SHARED = ("params", "wave_table", "clogc")


class FeatureState(NamedTuple):
    num: np.ndarray
    cnt: np.ndarray
    ret5: np.ndarray
    ret20: np.ndarray
    vol5: np.ndarray
    zbin: np.ndarray
    zcount: np.ndarray
    logret: np.ndarray
    last_x: np.ndarray
    pattern: np.ndarray
    pcount: np.ndarray
    params: np.ndarray
    wave_table: np.ndarray
    clogc: np.ndarray  # c * ln(c) for c = 0..patterns in the window (0 ln 0 = 0)


def wave_table(bins: int, bandwidth: float) -> np.ndarray:
    """P(next standardized return > 0) under a Gaussian kernel centred on each bin's centre."""
    width = 2 * Z_MAX / bins
    centres = -Z_MAX + (np.arange(bins) + 0.5) * width
    return np.array([0.5 * (1.0 + math.erf(c / (bandwidth * math.sqrt(2.0)))) for c in centres])


def clogc_table(patterns: int) -> np.ndarray:
    c = np.arange(patterns + 1, dtype=np.float64)
    return np.where(c > 0, c * np.log(np.maximum(c, 1.0)), 0.0)


def make_feature_state(capacity: int, cfg: FeaturesConfig) -> FeatureState:
    """Empty state for ``capacity`` symbols."""
    check_params(cfg)
    cap = max(1, capacity)
    n_patterns = math.factorial(cfg.perm_order)
    params = np.zeros(N_PARAMS, dtype=np.int64)
    for slot, setting in PARAM_SETTINGS.items():
        params[slot] = getattr(cfg, setting)
    params[P_CHAOS_MIN_TSEP] = CHAOS_MIN_TSEP
    params[P_CHAOS_TRAJ_LEN] = CHAOS_TRAJ_LEN
    params[P_CHAOS_EMB_DIM] = CHAOS_EMB_DIM
    num = np.zeros((cap, N_NUM))
    num[:, NUM_CHAOS] = np.nan
    cnt = np.zeros((cap, N_CNT), dtype=np.int64)
    cnt[:, CNT_CHAOS_DUE] = cfg.chaos_window
    return FeatureState(
        num=num,
        cnt=cnt,
        ret5=np.zeros((cap, 5)),
        ret20=np.zeros((cap, 20)),
        vol5=np.zeros((cap, 5)),
        zbin=np.zeros((cap, cfg.wave_window), dtype=np.int64),
        zcount=np.zeros((cap, cfg.wave_bins), dtype=np.int64),
        logret=np.zeros((cap, cfg.chaos_window)),
        last_x=np.zeros((cap, cfg.perm_order)),
        pattern=np.zeros((cap, cfg.perm_window - cfg.perm_order + 1), dtype=np.int64),
        pcount=np.zeros((cap, n_patterns), dtype=np.int64),
        params=params,
        wave_table=wave_table(cfg.wave_bins, cfg.wave_bandwidth),
        clogc=clogc_table(cfg.perm_window - cfg.perm_order + 1),
    )


def param_changes(saved: np.ndarray, current: np.ndarray) -> list[str]:
    """The settings whose value in ``saved`` params differs from ``current`` ("features.wave_window 64, now 32");
    a constant of the program's that differs (another version of it) as such."""
    if saved.shape != current.shape:
        return [f"{saved.shape[0]} feature parameters, this program's {current.shape[0]} (another version of it)"]
    changes = []
    for slot in np.flatnonzero(saved != current).tolist():
        setting = PARAM_SETTINGS.get(slot)
        what = f"features.{setting}" if setting else f"the program's feature constant #{slot} (another version of it)"
        changes.append(f"{what} {int(saved[slot])}, now {int(current[slot])}")
    return changes


def grow(state: FeatureState, capacity: int) -> FeatureState:
    """The same state with room for ``capacity`` symbols (per-symbol arrays copied once)."""
    old = state.num.shape[0]
    if capacity <= old:
        return state
    out = []
    for name, arr in zip(FeatureState._fields, state, strict=True):
        if name in SHARED:
            out.append(arr)
            continue
        bigger = np.zeros((capacity, *arr.shape[1:]), dtype=arr.dtype)
        if name == "num":
            bigger[:, NUM_CHAOS] = np.nan
        if name == "cnt":
            bigger[:, CNT_CHAOS_DUE] = state.params[P_CHAOS_WINDOW]
        bigger[:old] = arr
        out.append(bigger)
    return FeatureState(*out)
