"""The feature kernel: one jitted call updates every symbol's state for a batch of ticks.

Pure ``@njit(cache=True)`` functions over the arrays of
:class:`~quantumtrader.features.state.FeatureState`; no Python objects, no
allocation per tick (the chaos recompute allocates its small work arrays once
per recompute, every ``chaos_every`` ticks). Definitions are in
docs/features.md; the reference implementations the tests hold this code to
are in tests/features/naive.py.

Sources: TA-Lib's RSI and MACD seeding (ta_RSI.c, ta_MACD.c / TA_INT_EMA);
Rosenstein, Collins & De Luca (1993), "A practical method for calculating
largest Lyapunov exponents from small data sets", as implemented by
nolds.lyap_r 0.6.2; Bandt & Pompe (2002) for permutation entropy.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quantumtrader.features.names import FEATURE_INDEX
from quantumtrader.features.state import (
    CNT_CHAOS_DUE,
    CNT_CHAOS_POS,
    CNT_PAT_POS,
    CNT_PATTERNS,
    CNT_RETURNS,
    CNT_TICKS,
    CNT_Z,
    CNT_Z_POS,
    NUM_CHAOS,
    NUM_EMA_FAST,
    NUM_EMA_SLOW,
    NUM_LAST_MACD,
    NUM_MACD_SIG,
    NUM_PERM_CLOGC,
    NUM_PREV_X,
    NUM_R5_S1,
    NUM_R5_S2,
    NUM_R20_S1,
    NUM_R20_S2,
    NUM_RSI_G,
    NUM_RSI_L,
    NUM_VOL5_S,
    NUM_WAVE_MASS,
    P_CHAOS_EMB_DIM,
    P_CHAOS_EVERY,
    P_CHAOS_MIN_TSEP,
    P_CHAOS_TRAJ_LEN,
    P_CHAOS_WINDOW,
    P_PERM_ORDER,
    P_WAVE_BINS,
    P_WAVE_WINDOW,
    Z_MAX,
    FeatureState,
)

F_RETURNS = FEATURE_INDEX["returns"]
F_LOG_RETURNS = FEATURE_INDEX["log_returns"]
F_VOL5 = FEATURE_INDEX["volatility_5"]
F_VOL20 = FEATURE_INDEX["volatility_20"]
F_RSI = FEATURE_INDEX["rsi"]
F_MACD = FEATURE_INDEX["macd"]
F_MACD_SIGNAL = FEATURE_INDEX["macd_signal"]
F_SPREAD = FEATURE_INDEX["spread"]
F_SPREAD_PCT = FEATURE_INDEX["spread_pct"]
F_VOLUME_RATE = FEATURE_INDEX["volume_rate"]
F_WAVE = FEATURE_INDEX["wave_function"]
F_CHAOS = FEATURE_INDEX["chaos_index"]
F_PERM = FEATURE_INDEX["perm_entropy"]

RSI_PERIOD = 14
MACD_FAST = 12
MACD_SLOW = 26
MACD_SIGNAL = 9
K_FAST = 2.0 / (MACD_FAST + 1)
K_SLOW = 2.0 / (MACD_SLOW + 1)
K_SIGNAL = 2.0 / (MACD_SIGNAL + 1)
# TA-Lib treats |gain + loss| below this as zero and outputs RSI 0.
RSI_ZERO = 1e-14


@njit(cache=True, inline="always", error_model="numpy")
def _rolling_std(s1: float, s2: float, n: int) -> float:
    """Sample standard deviation (ddof=1) from running sums; tiny negative variances are rounding."""
    var = (s2 - s1 * s1 / n) / (n - 1)
    return math.sqrt(var) if var > 0.0 else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _push_rolling(ring: np.ndarray, num: np.ndarray, s: int, c1: int, c2: int, value: float, k: int, size: int) -> None:
    """Put the k-th sample of symbol ``s`` into its ring of ``size``; keep sum and sum of squares in num[s, c1/c2].

    Whenever the ring completes a lap both sums are recomputed from the ring,
    so rounding never accumulates; and at once when the sample leaving held
    nearly all of the sum of squares, whose subtraction leaves mostly rounding:
    one off-market tick (a return of x1e6) left volatility_5 138 times too
    large for the rest of the lap after it had left the window, and a window
    of equal quotes read 4e-13, not 0 (a helper's check, 2026-12-06).
    ``size`` is a literal at each call site, so after inlining the modulo is a
    multiply, not a division.
    """
    slot = k % size
    anchor = slot == size - 1
    if k >= size:
        old = ring[s, slot]
        num[s, c1] -= old
        num[s, c2] -= old * old
        anchor |= old * old > 1e6 * abs(num[s, c2])
    ring[s, slot] = value
    num[s, c1] += value
    num[s, c2] += value * value
    if anchor:
        a1 = 0.0
        a2 = 0.0
        for i in range(size):
            v = ring[s, i]
            a1 += v
            a2 += v * v
        num[s, c1] = a1
        num[s, c2] = a2


@njit(cache=True, inline="always", error_model="numpy")
def _pattern_code(last_x: np.ndarray, row: int, order: int) -> int:
    """Lehmer code of the ordinal pattern of the last ``order`` prices (oldest first).

    Digit i counts later prices strictly below price i, so ties keep time order
    (the same pattern as a stable argsort).
    """
    code = 0
    for i in range(order):
        xi = last_x[row, i]
        smaller = 0
        for j in range(i + 1, order):
            if last_x[row, j] < xi:
                smaller += 1
        code = code * (order - i) + smaller
    return code


@njit(cache=True, error_model="numpy")
def _nearer(d2: float, j: int, best_d2: float, best_j: int) -> bool:
    """Is candidate j (squared distance d2) a nearer neighbour than the best so far?

    Decided on squared distances, except within a relative 1e-12 of a tie:
    there, as nolds does, on the distances themselves (two squared values one
    ulp apart can have the same square root) and then on the lower index
    (numpy's argmin takes the first).
    """
    if d2 < best_d2 * (1.0 - 1e-12):
        return True
    if d2 > best_d2 * (1.0 + 1e-12):
        return False
    d = math.sqrt(d2)
    b = math.sqrt(best_d2)
    return d < b or (d == b and j < best_j)


@njit(cache=True, error_model="numpy")
def lyapunov_rosenstein(data: np.ndarray, emb_dim: int, min_tsep: int, traj_len: int) -> float:
    """Largest Lyapunov exponent of ``data`` (lag 1), as nolds.lyap_r(..., fit="poly") computes it.

    Orbit vectors of ``emb_dim`` consecutive values; each vector's nearest
    neighbour at least ``min_tsep + 1`` steps away (the first one on ties, as
    numpy's argmin); the mean log distance of the pairs followed for
    ``traj_len`` steps; the slope of a least-squares line through it. Returns
    NaN where nolds would return -inf (every distance zero): a feature is never
    infinite.

    Cost O(ntraj^2) with ~3 flops a pair: pairs are visited by lag, each
    squared distance summed from per-lag squared differences, compared without
    sqrt (same argmin), and log(sqrt(d2)) taken as 0.5 * log(d2).
    """
    n = data.shape[0]
    m = n - emb_dim + 1
    ntraj = m - traj_len + 1
    if ntraj < 2 * min_tsep + 2:
        return np.nan
    best = np.full(ntraj, np.inf)
    nb = np.full(ntraj, -1, dtype=np.int64)
    q = np.empty(ntraj + emb_dim)
    for lag in range(min_tsep + 1, ntraj):
        last = ntraj - lag  # pairs (i, i + lag) with both inside the first ntraj vectors
        for t in range(last + emb_dim - 1):
            diff = data[t] - data[t + lag]
            q[t] = diff * diff
        for i in range(last):
            d = q[i]
            for e in range(1, emb_dim):
                d += q[i + e]
            j = i + lag
            if _nearer(d, j, best[i], nb[i]):
                best[i] = d
                nb[i] = j
            if _nearer(d, i, best[j], nb[j]):
                best[j] = d
                nb[j] = i
    ks = np.empty(traj_len)
    ys = np.empty(traj_len)
    count = 0
    for k in range(traj_len):
        total = 0.0
        used = 0
        product = 1.0  # sum of logs taken as log of products: one log per up to 8 distances
        factors = 0
        for i in range(ntraj):
            a = i + k
            b = nb[i] + k
            d = 0.0
            for e in range(emb_dim):
                diff = data[a + e] - data[b + e]
                d += diff * diff
            if d != 0.0:
                product *= d
                factors += 1
                used += 1
                if factors == 8 or product < 1e-250 or product > 1e250:
                    total += math.log(product)
                    product = 1.0
                    factors = 0
        if used > 0:
            total += math.log(product)
            ks[count] = k
            ys[count] = 0.5 * total / used  # log(sqrt(d2)) = 0.5 * log(d2)
            count += 1
    if count < 2:
        return np.nan
    kbar = 0.0
    ybar = 0.0
    for c in range(count):
        kbar += ks[c]
        ybar += ys[c]
    kbar /= count
    ybar /= count
    num = 0.0
    den = 0.0
    for c in range(count):
        num += (ks[c] - kbar) * (ys[c] - ybar)
        den += (ks[c] - kbar) * (ks[c] - kbar)
    return num / den


def _make_update_rows(full: bool):  # noqa: ANN202  (returns a jitted function)
    """``_update_rows`` for ``full`` True (every feature) or False (rsi, macd, macd_signal, volatility_20).

    ``full`` is a constant of the closure, so Numba prunes the untaken
    branches when it compiles each variant: one copy of each indicator's
    code serves the daemon's kernel and the benchmark's like-for-like one.
    """

    @njit(inline="always", error_model="numpy")
    def update_rows(st: FeatureState, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray, out: np.ndarray) -> None:
        """Every tick of a batch in arrival order; row r of ``out`` gets tick r's features.

        The per-tick code is this loop's body, not a function the loop calls:
        Numba reference-counts every array a function receives (an atomic
        add on entry and subtract on exit, also when it inlines the call), so
        a per-tick function took ~30 atomic operations per tick, ~130 of the
        kernel's 202 ns/tick; here they happen once per batch. Inlined into
        each entry point so update_tick does not pay a second set per call.
        """
        num, cnt, ret5, ret20, vol5, zbin, zcount, logret_ring, last_x, pattern, pcount, params, wave_table, clogc = st
        for r in range(sym_idx.shape[0]):
            s = sym_idx[r]
            x = bid[r]
            t = cnt[s, CNT_TICKS]  # index of this price in the symbol's series
            cnt[s, CNT_TICKS] = t + 1
            if full:
                for f in range(out.shape[1]):
                    out[r, f] = np.nan
            else:
                out[r, F_RSI] = np.nan
                out[r, F_MACD] = np.nan
                out[r, F_MACD_SIGNAL] = np.nan
                out[r, F_VOL20] = np.nan

            if full:
                # spread (independent of history)
                spread = ask[r] - x
                out[r, F_SPREAD] = spread
                out[r, F_SPREAD_PCT] = spread / ((ask[r] + x) * 0.5) * 100.0

                # volume_rate: mean of the last 5 volumes, including this one
                volume_t = volume[r]
                slot5 = t % 5
                if t >= 5:
                    num[s, NUM_VOL5_S] -= vol5[s, slot5]
                vol5[s, slot5] = volume_t
                num[s, NUM_VOL5_S] += volume_t
                if slot5 == 4:  # re-anchor once per lap so float drift never accumulates
                    acc = 0.0
                    for i in range(5):
                        acc += vol5[s, i]
                    num[s, NUM_VOL5_S] = acc
                if t >= 4:
                    out[r, F_VOLUME_RATE] = num[s, NUM_VOL5_S] / 5.0

            # MACD (12, 26, 9) with TA-Lib's seeding
            if t <= 25:
                num[s, NUM_EMA_SLOW] += x
                if t >= 14:
                    num[s, NUM_EMA_FAST] += x
                if t == 25:
                    num[s, NUM_EMA_SLOW] /= 26.0
                    num[s, NUM_EMA_FAST] /= 12.0
            else:
                num[s, NUM_EMA_FAST] = (x - num[s, NUM_EMA_FAST]) * K_FAST + num[s, NUM_EMA_FAST]
                num[s, NUM_EMA_SLOW] = (x - num[s, NUM_EMA_SLOW]) * K_SLOW + num[s, NUM_EMA_SLOW]
            if t >= 25:
                macd = num[s, NUM_EMA_FAST] - num[s, NUM_EMA_SLOW]
                num[s, NUM_LAST_MACD] = macd
                if t <= 33:
                    num[s, NUM_MACD_SIG] += macd
                    if t == 33:
                        num[s, NUM_MACD_SIG] /= 9.0
                else:
                    num[s, NUM_MACD_SIG] = (macd - num[s, NUM_MACD_SIG]) * K_SIGNAL + num[s, NUM_MACD_SIG]
                if t >= 33:
                    out[r, F_MACD] = macd
                    out[r, F_MACD_SIGNAL] = num[s, NUM_MACD_SIG]

            if full:
                # permutation entropy over the last perm_window prices
                order = params[P_PERM_ORDER]
                for i in range(order - 1):
                    last_x[s, i] = last_x[s, i + 1]
                last_x[s, order - 1] = x
                if t >= order - 1:
                    code = _pattern_code(last_x, s, order)
                    p = cnt[s, CNT_PATTERNS]
                    plen = pattern.shape[1]
                    slot = cnt[s, CNT_PAT_POS]
                    # H = ln(L) - (1/L) sum c ln c over the pattern counts c (L patterns in the
                    # window). The sum is kept running: two table lookups per changed count.
                    if p >= plen:
                        old_code = pattern[s, slot]
                        c = pcount[s, old_code]
                        num[s, NUM_PERM_CLOGC] += clogc[c - 1] - clogc[c]
                        pcount[s, old_code] = c - 1
                    pattern[s, slot] = code
                    c = pcount[s, code]
                    num[s, NUM_PERM_CLOGC] += clogc[c + 1] - clogc[c]
                    pcount[s, code] = c + 1
                    cnt[s, CNT_PATTERNS] = p + 1
                    slot += 1
                    if slot == plen:  # a lap: re-anchor the running sum so rounding never accumulates
                        slot = 0
                        total = 0.0
                        for k in range(pcount.shape[1]):
                            total += clogc[pcount[s, k]]
                        num[s, NUM_PERM_CLOGC] = total
                    cnt[s, CNT_PAT_POS] = slot
                    if p + 1 >= plen:
                        out[r, F_PERM] = (clogc[plen] - num[s, NUM_PERM_CLOGC]) / plen / math.log(pcount.shape[1])

            if t == 0:
                num[s, NUM_PREV_X] = x
            else:
                # returns
                prev = num[s, NUM_PREV_X]
                num[s, NUM_PREV_X] = x
                ret = x / prev - 1.0
                logret = 0.0
                if full:
                    logret = math.log(x / prev)
                    out[r, F_RETURNS] = ret
                    out[r, F_LOG_RETURNS] = logret
                nr = cnt[s, CNT_RETURNS]  # index of this return
                cnt[s, CNT_RETURNS] = nr + 1

                # RSI (14, Wilder) with TA-Lib's seeding: simple mean of the first 14 changes
                change = x - prev
                gain = change if change > 0.0 else 0.0
                loss = -change if change < 0.0 else 0.0
                if nr < RSI_PERIOD:
                    num[s, NUM_RSI_G] += gain
                    num[s, NUM_RSI_L] += loss
                    if nr == RSI_PERIOD - 1:
                        num[s, NUM_RSI_G] /= RSI_PERIOD
                        num[s, NUM_RSI_L] /= RSI_PERIOD
                else:
                    num[s, NUM_RSI_G] = (num[s, NUM_RSI_G] * (RSI_PERIOD - 1) + gain) / RSI_PERIOD
                    num[s, NUM_RSI_L] = (num[s, NUM_RSI_L] * (RSI_PERIOD - 1) + loss) / RSI_PERIOD
                if nr >= RSI_PERIOD - 1:
                    g = num[s, NUM_RSI_G]
                    total = g + num[s, NUM_RSI_L]
                    out[r, F_RSI] = 100.0 * g / total if not (-RSI_ZERO < total < RSI_ZERO) else 0.0

                # volatility_5 / volatility_20: running sums over rings, re-anchored every lap
                if full:
                    _push_rolling(ret5, num, s, NUM_R5_S1, NUM_R5_S2, ret, nr, 5)
                    if nr >= 4:
                        out[r, F_VOL5] = _rolling_std(num[s, NUM_R5_S1], num[s, NUM_R5_S2], 5)
                _push_rolling(ret20, num, s, NUM_R20_S1, NUM_R20_S2, ret, nr, 20)

                if nr >= 19:
                    sigma = _rolling_std(num[s, NUM_R20_S1], num[s, NUM_R20_S2], 20)
                    out[r, F_VOL20] = sigma
                    if full:
                        # wave_function: binned Gaussian KDE of the last W standardized returns
                        z = ret / sigma if sigma > 0.0 else 0.0
                        bins = params[P_WAVE_BINS]
                        b = int(math.floor((z + Z_MAX) / (2.0 * Z_MAX) * bins))
                        if b < 0:
                            b = 0
                        elif b >= bins:
                            b = bins - 1
                        w = params[P_WAVE_WINDOW]
                        nz = cnt[s, CNT_Z]
                        zslot = cnt[s, CNT_Z_POS]
                        if nz >= w:
                            old_bin = zbin[s, zslot]
                            zcount[s, old_bin] -= 1
                            num[s, NUM_WAVE_MASS] -= wave_table[old_bin]
                        zbin[s, zslot] = b
                        zcount[s, b] += 1
                        num[s, NUM_WAVE_MASS] += wave_table[b]
                        cnt[s, CNT_Z] = nz + 1
                        zslot += 1
                        if zslot == w:  # a lap: re-anchor the running mass from the bin counts
                            zslot = 0
                            mass = 0.0
                            for i in range(bins):
                                mass += zcount[s, i] * wave_table[i]
                            num[s, NUM_WAVE_MASS] = mass
                        cnt[s, CNT_Z_POS] = zslot
                        if nz + 1 >= w:
                            out[r, F_WAVE] = num[s, NUM_WAVE_MASS] / w

                if full:
                    # chaos_index: recomputed every chaos_every returns once the window is full, held in between
                    cw = params[P_CHAOS_WINDOW]
                    cpos = cnt[s, CNT_CHAOS_POS]
                    logret_ring[s, cpos] = logret
                    cpos = cpos + 1 if cpos + 1 < cw else 0
                    cnt[s, CNT_CHAOS_POS] = cpos
                    due = cnt[s, CNT_CHAOS_DUE] - 1
                    if due == 0:
                        due = params[P_CHAOS_EVERY]
                        window = np.empty(cw)
                        for i in range(cw):  # oldest first: the ring starts at the next write position
                            j = cpos + i
                            window[i] = logret_ring[s, j if j < cw else j - cw]
                        num[s, NUM_CHAOS] = lyapunov_rosenstein(window, params[P_CHAOS_EMB_DIM], params[P_CHAOS_MIN_TSEP], params[P_CHAOS_TRAJ_LEN])
                    cnt[s, CNT_CHAOS_DUE] = due
                    out[r, F_CHAOS] = num[s, NUM_CHAOS]

    return update_rows


_update_rows = _make_update_rows(True)
_update_rows_ta = _make_update_rows(False)


@njit(cache=True, error_model="numpy")
def update_batch(st: FeatureState, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray, out: np.ndarray, latest: np.ndarray, n_symbols: int) -> int:
    """Update state with ``n`` ticks in arrival order; one feature row per tick into ``out``.

    ``sym_idx`` i4[n] rows of the state (< ``n_symbols``); ``bid``, ``ask``,
    ``volume`` f8[n]; ``out`` f8[n, N_FEATURES]; ``latest`` f8[cap, N_FEATURES]
    receives each symbol's last row. Price x = bid.

    The whole batch is checked first (finite prices > 0, volume >= 0, known
    rows); if any tick fails, nothing is touched and ``1 + its index`` is
    returned, else 0. One call does both so a small batch pays one
    Python-to-Numba transition, not one per check.
    """
    n = sym_idx.shape[0]
    for r in range(n):
        b = bid[r]
        a = ask[r]
        v = volume[r]
        s = sym_idx[r]
        # written so NaN fails every comparison
        if not (b > 0.0 and a > 0.0 and v >= 0.0 and b < np.inf and a < np.inf and v < np.inf and 0 <= s < n_symbols):
            return r + 1
    _update_rows(st, sym_idx, bid, ask, volume, out)
    for r in range(n):  # a second pass: each symbol's last row ends up in latest
        s = sym_idx[r]
        for f in range(out.shape[1]):
            latest[s, f] = out[r, f]
    return 0


@njit(cache=True, error_model="numpy")
def update_tick(st: FeatureState, s: int, bid: float, ask: float, volume: float, out: np.ndarray) -> None:
    """One tick, one call (the per-tick entry point the benchmark compares with the batch call); ``out`` f8[1, N_FEATURES].

    The tick becomes a batch of one (two small arrays; the call from Python costs ~2 µs either way).
    """
    sym_idx = np.full(1, s, dtype=np.int32)
    tick = np.empty(3)
    tick[0] = bid
    tick[1] = ask
    tick[2] = volume
    _update_rows(st, sym_idx, tick[0:1], tick[1:2], tick[2:3], out)


@njit(cache=True, error_model="numpy")
def update_batch_ta(st: FeatureState, sym_idx: np.ndarray, bid: np.ndarray, out: np.ndarray) -> None:
    """Only rsi, macd, macd_signal and volatility_20: the batch loop built with ``full`` False.

    The three indicators TA-Lib and talipp also have (RSI, MACD, a rolling
    standard deviation): ``qt-bench features`` times this against their
    streaming APIs so that ratio compares the same work, next to the full
    13-feature figure. It advances the same state rows as ``update_batch``
    (feed a state through one or the other, never both). Inputs are trusted
    (the benchmark's real ticks); the daemon never calls it.
    """
    _update_rows_ta(st, sym_idx, bid, bid, bid, out)
