"""Simulation of the sidecar's per-symbol price throttle (``quantumtrader/sidecar/hub.py``) on real tick timing.

Why it is here: it is how the throttle's rule was chosen (2026-12-04). Two
rules, both at most one quote per ``interval = 1/max_updates_per_s`` a symbol:

- ``plain``: a tick that finds the window open goes out at once; ticks that
  come while it is shut are held (latest wins) and the held quote goes out
  the moment the window opens. The hub's rule since 2026-12-04.
- ``busy``: the same, except that a symbol with ``BUSY_HELD`` (4) or more
  ticks held keeps its window open up to half an interval for its next tick,
  which then goes out instead of the held one. The hub's rule before; this
  simulation of it matched the real ``Hub`` of b106dbd send for send (driven
  by a virtual clock) on 12 cases, 100,000 real ticks among them (that
  check is not kept: the class it drove is gone).

Ticks: the EURUSD files of ../shared/data/ticks (OANDA and FXCM, May 2014)
at their own pace and 10x and 75x faster (``qt-bench ws --ticks`` plays its
stretches tens of times faster than their own pace), and Poisson ticks at 10,
40 and 100 a second.
Times in ms; the way to the client is taken as 0. Columns: the age of each
quote as it is sent (p50/p90/p99/max) and the share held; ``stB``:
staleness, the time a client shows a quote after a newer tick exists (what
``qt-bench ws`` reports, there with the way to the client included); ``stA``:
the time since the newest tick not yet shown arrived; ``shownC``: the age of
the quote shown (the measure the hub's docstring used before; meaningless
in absolute terms on the files, whose weekends last hours); the rate.

Run: ``python bench/throttle_sim.py`` (about 10 s); its output as committed:
``bench/results/throttle-sim.txt``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from quantumtrader.bench.staleness import ramp_summary
from quantumtrader.paper.ticks import read_csv_ticks

BUSY_HELD = 4
INF = math.inf


def simulate(arr: np.ndarray, interval: float, busy_rule: bool, timers_first: bool = False, busy_held: int = BUSY_HELD, stats: dict | None = None):
    """Return (send_times, sent_idx) for arrivals `arr` (sorted, ms). `stats` (if given) gets wait counts."""
    n_wait = n_timeout = 0
    half = interval / 2.0
    next_at = -INF          # Hub._next_at.get(symbol, 0.0): the first tick finds the window open
    pend_idx = -1           # Hub._pending[symbol]: (text, recv_ns, count) -> index of held tick
    pend_cnt = 0
    timer_t = None          # Hub._timers[symbol]: fire time
    timer_kind = 0          # 1 = _window_opens, 2 = _send_held (after the half-interval wait)
    s_t: list[float] = []
    s_i: list[int] = []
    st_append = s_t.append
    si_append = s_i.append
    n = arr.shape[0]
    for i, t in enumerate([*arr.tolist(), INF]):  # the last "tick", at infinity, fires every timer left
        # fire due timers (strictly before this tick, or also at the same instant with --timers-first)
        while timer_t is not None and (timer_t < t or (timers_first and timer_t == t)):
            now = timer_t
            if timer_kind == 1:  # _window_opens
                if busy_rule and pend_idx >= 0 and pend_cnt >= busy_held:
                    timer_t = now + half  # call_later(interval_s / 2, _send_held)
                    timer_kind = 2
                    n_wait += 1
                    continue
            else:
                n_timeout += 1  # the half-interval wait ran out: held quote goes
            # _send_held: del timer; pop pending; _send(now)
            timer_t = None
            if pend_idx >= 0:
                st_append(now)
                si_append(pend_idx)
                next_at = now + interval
                pend_idx = -1
                pend_cnt = 0
        if i == n:
            break
        # Hub.price
        if t >= next_at:  # window open: cancel timer, drop held, send this tick now
            timer_t = None
            pend_idx = -1
            pend_cnt = 0
            st_append(t)
            si_append(i)
            next_at = t + interval
            continue
        pend_cnt = 1 if pend_idx < 0 else pend_cnt + 1
        pend_idx = i
        if timer_t is None:
            timer_t = next_at  # call_later(next_at - now, _window_opens)
            timer_kind = 1
    if stats is not None:
        stats["waits"] = n_wait
        stats["timeouts"] = n_timeout
    return np.asarray(s_t, dtype=np.float64), np.asarray(s_i, dtype=np.int64)


def seg_stats(v0: np.ndarray, v1: np.ndarray, total: float) -> tuple[float, float]:
    """Time-weighted mean and p99 of a quantity rising at slope 1 from v0 to v1 over each segment, 0 elsewhere (ms)."""
    summary = ramp_summary(v0, v1, total, scale=1.0)
    return summary["mean_ms"], summary["p99_ms"]


def metrics(arr: np.ndarray, s_t: np.ndarray, s_i: np.ndarray, interval: float):
    n = len(arr)
    assert np.all(np.diff(s_i) > 0), "sent indices must increase"
    assert s_i[-1] == n - 1
    t0 = arr[0]
    t_end = max(s_t[-1], arr[-1])
    total = t_end - t0
    age = s_t - arr[s_i]
    assert age.min() >= 0
    out = {}
    out["sends"] = len(s_t)
    out["age_p50"], out["age_p90"], out["age_p99"] = np.percentile(age, [50, 90, 99])
    out["age_max"] = age.max()
    out["held_share"] = float((age > 0).mean())
    # (B) staleness, as qt-bench ws measures it: time since the shown quote stopped being the newest. Not through
    # staleness.stale_segments, which finds the next tick by its send time: the files' times are whole ms, and a
    # tick in the same ms as the one shown is newer all the same (here: the next by index).
    # between send j (tick k_j) and send j+1: 0 until tick k_j+1 arrives, then t - a[k_j+1] up to s_{j+1}
    nxt = s_i[:-1] + 1
    lenB = s_t[1:] - arr[nxt]
    assert lenB.min() >= -1e-9
    out["stale_mean"], out["stale_p99"] = seg_stats(np.zeros_like(lenB), np.maximum(lenB, 0), total)
    # (A) literal reading: t - arrival of the NEWEST unsent tick (resets at every arrival)
    cover = s_t[np.searchsorted(s_i, np.arange(n), side="left")]  # first send with idx >= m
    nxt_arr = np.append(arr[1:], INF)
    lenA = np.minimum(nxt_arr, cover) - arr
    out["newest_mean"], out["newest_p99"] = seg_stats(np.zeros_like(lenA), lenA, total)
    # (C) hub docstring's "time-averaged age of the quote a client shows": t - arrival of the shown tick
    v0 = age
    v1 = age + np.diff(np.append(s_t, t_end))
    # time before the first send (t0..s_t[0]) is 0 (first tick goes out at once)
    out["shown_mean"], out["shown_p99"] = seg_stats(v0, v1, total)
    # rate
    out["rate_mean"] = len(s_t) / (total / 1000.0)
    j = np.searchsorted(s_t, s_t + 1000.0, side="left")
    out["rate_max_1s"] = int((j - np.arange(len(s_t))).max())
    out["min_gap"] = float(np.diff(s_t).min())
    out["ticks"] = n
    out["span_s"] = total / 1000.0
    out["ticks_per_s"] = n / (total / 1000.0)
    return out


def load_ticks(path: Path) -> np.ndarray:
    """The file's tick times, ms since 1970, read as the paper terminal reads them."""
    ts = np.fromiter((t.time_msc for t in read_csv_ticks(path)), dtype=np.int64)
    assert np.all(np.diff(ts) >= 0)
    return ts.astype(np.float64)


COLS = [
    ("age_p50", "age50", "{:7.1f}"), ("age_p90", "age90", "{:7.1f}"), ("age_p99", "age99", "{:7.1f}"),
    ("age_max", "agemax", "{:8.0f}"), ("held_share", "held%", "{:6.1%}"),
    ("stale_mean", "stB_mean", "{:8.2f}"), ("stale_p99", "stB_p99", "{:7.1f}"),
    ("newest_mean", "stA_mean", "{:8.2f}"), ("newest_p99", "stA_p99", "{:7.1f}"),
    ("shown_mean", "shownC", "{:9.1f}"), ("shown_p99", "shC_p99", "{:8.0f}"),
    ("rate_mean", "upd/s", "{:6.3f}"), ("rate_max_1s", "max1s", "{:5d}"), ("min_gap", "mingap", "{:6.1f}"),
]


def header():
    return f"{'case':34s} {'pol':5s} " + " ".join(f"{h:>{len(fmt.format(0 if 'd' in fmt else 0.0))}s}" for _, h, fmt in COLS)


def row(case, pol, m):
    return f"{case:34s} {pol:5s} " + " ".join(fmt.format(m[k]) for k, _, fmt in COLS)


def run_pair(case, arr, interval, a):
    ms, waits = {}, {}
    for pol, br in (("busy", True), ("plain", False)):
        st: dict = {}
        s_t, s_i = simulate(arr, interval, br, a.timers_first, a.busy_held, st)
        ms[pol] = metrics(arr, s_t, s_i, interval)
        waits[pol] = st
        print(row(case, pol, ms[pol]), flush=True)
    b, p, w = ms["busy"], ms["plain"], waits["busy"]
    print(f"{'':34s} delta busy-plain: stB_mean {b['stale_mean']-p['stale_mean']:+.2f} ({(b['stale_mean']/p['stale_mean']-1)*100:+.0f}%)"
          f"  stA_mean {b['newest_mean']-p['newest_mean']:+.2f} ({(b['newest_mean']/p['newest_mean']-1)*100:+.0f}%)"
          f"  shownC_mean {b['shown_mean']-p['shown_mean']:+.2f}"
          f"  | busy: half-interval waits {w['waits']}, timed out {w['timeouts']} ({w['timeouts']/max(w['waits'],1):.0%})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=0, help="first N ticks of each file (0 = whole file)")
    ap.add_argument("--start", type=str, default="", help="ISO date to start from (e.g. 2014-05-08)")
    ap.add_argument("--timers-first", action="store_true")
    ap.add_argument("--rate", type=float, default=5.0, help="max_updates_per_s")
    ap.add_argument("--poisson-n", type=int, default=400_000)
    ap.add_argument("--skip-files", action="store_true")
    ap.add_argument("--busy-held", type=int, default=BUSY_HELD, help="BUSY_HELD (1 = always wait half an interval)")
    a = ap.parse_args()
    interval = 1000.0 / a.rate
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ticks"
    print(f"interval={interval} ms BUSY_HELD={BUSY_HELD} timers_first={a.timers_first}")
    print("ages/staleness in ms; stB = staleness as briefed (t - arrival of first tick newer than shown);")
    print("stA = literal 'newest unsent' reading; shownC = hub docstring metric (t - arrival of shown tick)")
    print(header())
    sys.stdout.flush()
    if not a.skip_files:
        for name, path in [("OANDA", root / "EURUSD.csv.gz"), ("FXCM", root / "fxcm" / "EURUSD.csv.gz")]:
            t = time.time()
            arr_full = load_ticks(path)
            if a.start:
                arr_full = arr_full[np.searchsorted(arr_full, np.datetime64(a.start, "ms").astype(np.int64)):]
            if a.ticks:
                arr_full = arr_full[: a.ticks]
            arr_full = arr_full - arr_full[0]
            print(f"# {name}: {len(arr_full)} ticks, span {arr_full[-1]/3.6e6:.1f} h, loaded in {time.time()-t:.1f}s", flush=True)
            for scale in (1, 10, 75):
                arr = arr_full / scale
                run_pair(f"{name} {scale}x ({len(arr)/(arr[-1]/1000):.2f} t/s avg)", arr, interval, a)
    rng = np.random.default_rng(12345)
    for lam in (10, 40, 100):
        gaps = rng.exponential(1000.0 / lam, a.poisson_n)
        arr = np.cumsum(gaps)
        arr -= arr[0]
        run_pair(f"Poisson {lam}/s", arr, interval, a)


if __name__ == "__main__":
    main()
