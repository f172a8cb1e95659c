"""``qt-bench features``: ns per tick of our kernel against the baselines, on the same real ticks, in one run.

Compared, each fed the same bid prices one tick at a time where it is a
streaming implementation:

- ours, batch: ``FeatureEngine.update`` over batches of 4096 ticks (a
  replay's batch; the daemon drains at most ``daemon.batch_max`` = 512 per
  wake-up, where the per-call overhead adds ~5 ns/tick: 78 vs 73 ns measured
  side by side on 200,000 real ticks): all 13 features, amortized chaos_index included;
- ours, the three TA indicators: ``update_batch_ta``, the same step functions
  computing only RSI, MACD/signal and the 20-tick standard deviation, the
  work TA-Lib and talipp do below (their ratios are taken against this);
- ours, per tick: one Python -> Numba call per tick (what a naive integration pays), all 13
  features and the three TA indicators alone (like for like with the streaming baselines);
- TA-Lib batch: its array functions over the whole series (like for like with ours in batches);
- TA-Lib stream (ta-lib >= 0.8 stream objects): RSI(14) + MACD(12,26,9) + STDDEV(20);
- talipp: RSI(14) + MACD(12,26,9) + StdDev(20), incremental ``add`` per tick;
- the system we replace: pandas recompute of RSI, MACD and rolling std over
  the last 1000 ticks on every tick (run on a small subset; it is that slow).

Also measured: one chaos_index recompute, and the kernels' first-compile
(empty cache) and cached load times in fresh processes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quantumtrader.bench.common import bar_chart, machine, progress, table, write_json
from quantumtrader.config import load_config

_BATCH = 4096
#: What the baselines import (TA-Lib, talipp, the pandas recompute): the CLI checks for them before any timing.
BASELINE_MODULES = ("talib", "talipp", "pandas")
_PANDAS_TICKS = 300
_PANDAS_WINDOW = 1000
#: The chaos recompute's windows: this many, starting this many ticks apart.
_CHAOS_WINDOWS, _CHAOS_STRIDE = 200, 97

_COMPILE_PROBE = (
    "import time; t=time.perf_counter();"
    "from quantumtrader.config import load_config;"
    "from quantumtrader.features.engine import FeatureEngine;"
    "FeatureEngine(load_config(environ={}).features).warmup();"
    "print(time.perf_counter()-t)"
)


class TooFewTicks(ValueError):
    """The tick file is shorter than the baselines need (a bad ``--ticks``, not a failure of the benchmark)."""


def min_ticks() -> int:
    """Ticks a features run needs: the pandas baseline's window and ticks, and the chaos recompute's 200 windows."""
    return max(_PANDAS_WINDOW + _PANDAS_TICKS, _CHAOS_WINDOWS * _CHAOS_STRIDE + load_config(environ={}).features.chaos_window + 1)


def _load(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from quantumtrader.paper.ticks import read_csv_ticks

    bids, asks = [], []
    for tick in read_csv_ticks(path):
        bids.append(tick.bid)
        asks.append(tick.ask)
        if len(bids) >= n:
            break
    return np.array(bids), np.array(asks)


def _best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def _fresh_engine() -> tuple[Any, int]:
    """A feature engine with the default config and EURUSD's row: each timing starts from cold state."""
    from quantumtrader.features.engine import FeatureEngine

    engine = FeatureEngine(load_config(environ={}).features)
    return engine, int(engine.add_symbol("EURUSD"))


def _ours_batch(bid: np.ndarray, ask: np.ndarray) -> float:
    engine, idx = _fresh_engine()
    n = len(bid)
    sym = np.full(n, idx, dtype=np.int32)
    volume = np.zeros(n)
    started = time.perf_counter_ns()
    for lo in range(0, n, _BATCH):
        hi = lo + _BATCH
        engine.update(sym[lo:hi], bid[lo:hi], ask[lo:hi], volume[lo:hi])
    return (time.perf_counter_ns() - started) / n


def _ours_batch_ta(bid: np.ndarray) -> float:
    from quantumtrader.features.kernel import update_batch_ta
    from quantumtrader.features.names import N_FEATURES

    engine, idx = _fresh_engine()
    n = len(bid)
    sym = np.full(n, idx, dtype=np.int32)
    out = np.empty((_BATCH, N_FEATURES))
    started = time.perf_counter_ns()
    for lo in range(0, n, _BATCH):
        hi = min(lo + _BATCH, n)
        update_batch_ta(engine.state, sym[lo:hi], bid[lo:hi], out)
    return (time.perf_counter_ns() - started) / n


def _ours_per_tick(bid: np.ndarray, ask: np.ndarray) -> float:
    engine, idx = _fresh_engine()
    update = engine.update_one
    started = time.perf_counter_ns()
    for b, a in zip(bid.tolist(), ask.tolist(), strict=True):
        update(idx, b, a, 0.0)
    return (time.perf_counter_ns() - started) / len(bid)


def _ours_per_tick_ta3(bid: np.ndarray) -> float:
    """The three TA indicators one tick a call from Python, as TA-Lib's stream objects are called (like for like),
    through the compiled entry point the daemon uses (kernel_entry: no dispatcher typing per call)."""
    from quantumtrader.features.kernel import update_batch_ta
    from quantumtrader.features.names import N_FEATURES
    from quantumtrader.kernel_entry import CompiledKernel, array_types

    engine, idx = _fresh_engine()
    sym = np.full(1, idx, dtype=np.int32)
    price = np.empty(1)
    out = np.empty((1, N_FEATURES))
    state = engine.state
    kernel = CompiledKernel(update_batch_ta)
    key = array_types(sym, price)
    prices = bid.tolist()
    started = time.perf_counter_ns()
    for value in prices:
        price[0] = value
        kernel(key, state, sym, price, out)
    return (time.perf_counter_ns() - started) / len(prices)


def _ours_daemon_call(bid: np.ndarray, ask: np.ndarray) -> float:
    """All 13 features through ``FeatureEngine.update`` with one-tick arrays: what the daemon pays for a batch of
    one tick (at 10,000 ticks/s it drains ~1.2 ticks a batch)."""
    engine, idx = _fresh_engine()
    sym = np.full(1, idx, dtype=np.int32)
    b, a, v = np.empty(1), np.empty(1), np.zeros(1)
    update = engine.update
    pairs = list(zip(bid.tolist(), ask.tolist(), strict=True))
    started = time.perf_counter_ns()
    for bid_value, ask_value in pairs:
        b[0] = bid_value
        a[0] = ask_value
        update(sym, b, a, v)
    return (time.perf_counter_ns() - started) / len(pairs)


def _talib_batch(bid: np.ndarray) -> float:
    """TA-Lib's array functions over the whole series: the batch to set against ours in batches (like for like)."""
    import talib

    started = time.perf_counter_ns()
    talib.RSI(bid, timeperiod=14)
    talib.MACD(bid, 12, 26, 9)
    talib.STDDEV(bid, 20, 1.0)
    return (time.perf_counter_ns() - started) / len(bid)


def _talib_stream(bid: np.ndarray) -> float:
    from talib import stream

    head = 40
    rsi = stream.RSI(bid[:head], timeperiod=14)
    macd = stream.MACD(bid[:head], 12, 26, 9)
    std = stream.STDDEV(bid[:head], 20, 1.0)
    prices = bid[head:].tolist()
    started = time.perf_counter_ns()
    for price in prices:
        rsi.update(price)
        macd.update(price)
        std.update(price)
    return (time.perf_counter_ns() - started) / len(prices)


def _talipp(bid: np.ndarray) -> float:
    from talipp.indicators import MACD, RSI, StdDev

    rsi, macd, std = RSI(14), MACD(12, 26, 9), StdDev(20)
    prices = bid.tolist()
    started = time.perf_counter_ns()
    for price in prices:
        rsi.add(price)
        macd.add(price)
        std.add(price)
    return (time.perf_counter_ns() - started) / len(prices)


def _pandas_recompute(bid: np.ndarray) -> float:
    """The original system: on every tick, rebuild RSI, MACD and rolling std over the last 1000 ticks."""
    import pandas as pd

    series = bid[: _PANDAS_WINDOW + _PANDAS_TICKS]
    started = time.perf_counter_ns()
    for end in range(_PANDAS_WINDOW, _PANDAS_WINDOW + _PANDAS_TICKS):
        window = pd.Series(series[end - _PANDAS_WINDOW : end])
        delta = window.diff()
        gain = delta.clip(lower=0).rolling(14).mean()
        loss = (-delta.clip(upper=0)).rolling(14).mean()
        _rsi = 100 - 100 / (1 + gain / loss)
        ema_fast = window.ewm(span=12, adjust=False).mean()
        ema_slow = window.ewm(span=26, adjust=False).mean()
        macd = ema_fast - ema_slow
        _signal = macd.ewm(span=9, adjust=False).mean()
        _vol = window.pct_change().rolling(20).std()
        _ = (_rsi.iloc[-1], _signal.iloc[-1], _vol.iloc[-1])
    return (time.perf_counter_ns() - started) / _PANDAS_TICKS


def _chaos_recompute_us(bid: np.ndarray) -> float:
    from quantumtrader.features.kernel import lyapunov_rosenstein
    from quantumtrader.features.state import CHAOS_EMB_DIM, CHAOS_MIN_TSEP, CHAOS_TRAJ_LEN

    cfg = load_config(environ={}).features
    logret = np.log(bid[1:] / bid[:-1])
    windows = [logret[i : i + cfg.chaos_window].copy() for i in range(0, _CHAOS_WINDOWS * _CHAOS_STRIDE, _CHAOS_STRIDE)]
    lyapunov_rosenstein(windows[0], CHAOS_EMB_DIM, CHAOS_MIN_TSEP, CHAOS_TRAJ_LEN)
    started = time.perf_counter_ns()
    for window in windows:
        lyapunov_rosenstein(window, CHAOS_EMB_DIM, CHAOS_MIN_TSEP, CHAOS_TRAJ_LEN)
    return (time.perf_counter_ns() - started) / len(windows) / 1000.0


def _compile_times() -> dict[str, float]:
    """First compile into an empty cache, then a cached load, each in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="qt-numba-") as cache:
        env_cmd = [sys.executable, "-c", _COMPILE_PROBE]
        import os

        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = float(subprocess.run(env_cmd, env=env, capture_output=True, text=True, check=True).stdout.strip())
        warm = float(subprocess.run(env_cmd, env=env, capture_output=True, text=True, check=True).stdout.strip())
    return {"first_compile_s": cold, "cached_load_s": warm}


def _timings(bid: np.ndarray, ask: np.ndarray) -> list[tuple[str, int, Callable[[], float]]]:
    """Each implementation's name, how many runs of it the best is taken from, and one run (ns/tick): the console's
    and the JSON's order."""
    return [
        ("ours_batch", 3, lambda: _ours_batch(bid, ask)),
        ("ours_batch_ta3", 3, lambda: _ours_batch_ta(bid)),
        ("ours_per_tick_call", 2, lambda: _ours_per_tick(bid, ask)),
        ("ours_per_tick_ta3", 2, lambda: _ours_per_tick_ta3(bid)),
        ("ours_daemon_call_1_tick", 2, lambda: _ours_daemon_call(bid, ask)),
        ("talib_batch", 3, lambda: _talib_batch(bid)),
        ("talib_stream", 2, lambda: _talib_stream(bid)),
        ("talipp", 1, lambda: _talipp(bid[: min(len(bid), 50_000)])),
        ("pandas_recompute_1000", 1, lambda: _pandas_recompute(bid)),
    ]


def _warm_up(bid: np.ndarray, ask: np.ndarray) -> None:
    """Each of our kernels compiled or loaded before any timing."""
    _ours_batch(bid[:5000], ask[:5000])
    _ours_batch_ta(bid[:5000])
    _ours_per_tick(bid[:100], ask[:100])
    _ours_per_tick_ta3(bid[:100])
    _ours_daemon_call(bid[:100], ask[:100])


def run_features_bench(
    ticks_path: Path, n_ticks: int = 200_000, json_out: Path | None = None, log: Callable[[str], None] = print, plot_out: Path | None = None
) -> dict[str, Any]:
    """``plot_out``: ns/tick per implementation as bars, log scale, drawn after the JSON is written."""
    bid, ask = _load(ticks_path, n_ticks)
    needed = min_ticks()
    if len(bid) < needed:
        raise TooFewTicks(f"{ticks_path} has {len(bid):,} ticks; the baselines need at least {needed:,}")
    log(f"features: {len(bid):,} real ticks from {ticks_path.name}")
    timings = _timings(bid, ask)
    # the steps: the warm-up, each implementation, the chaos recompute, the compile probes. The kernels are timed in
    # this thread: the bar redraws only when advanced, between two timings, never during one (no refresh thread)
    bar = progress(len(timings) + 3, "features: warm-up", refresh_per_second=None)
    try:
        _warm_up(bid, ask)
        ns: dict[str, float] = {}
        for done, (name, runs, run) in enumerate(timings, start=1):
            bar.advance_to(done, f"features: {name}")
            ns[name] = _best_of(runs, run)
        bar.advance_to(len(timings) + 1, "features: chaos_index recompute")
        chaos_us = _chaos_recompute_us(bid)
        bar.advance_to(len(timings) + 2, "features: first compile and cached load")
        compile_times = _compile_times()
    finally:
        bar.stop()
    cfg = load_config(environ={}).features
    base = ns["ours_batch"]
    ratios = {name: value / base for name, value in ns.items()}
    # the baselines that compute RSI+MACD+std against ours computing the same three in batches of 4096: what
    # the per-tick baselines cost over our batch, which is not like for like (a review of the method, 2026-12-04)
    ta3 = ns["ours_batch_ta3"]
    ratios_ta3 = {name: ns[name] / ta3 for name in ("talib_batch", "talib_stream", "talipp", "pandas_recompute_1000")}
    # like for like: batch against TA-Lib's batch, one call a tick against the streaming baselines
    like_for_like = {
        "talib_batch_over_ours_batch": ns["talib_batch"] / ta3,
        "talib_stream_over_ours_per_tick": ns["talib_stream"] / ns["ours_per_tick_ta3"],
        "talipp_over_ours_per_tick": ns["talipp"] / ns["ours_per_tick_ta3"],
        "pandas_over_ours_per_tick": ns["pandas_recompute_1000"] / ns["ours_per_tick_ta3"],
    }
    result = {
        "scenario": "features",
        "machine": machine(),
        "ticks": len(bid),
        "source": ticks_path.name,
        "ns_per_tick": ns,
        "ratio_to_ours_batch": ratios,
        "ratio_to_ours_ta3": ratios_ta3,
        "like_for_like": like_for_like,
        "chaos_recompute_us": chaos_us,
        "chaos_amortized_ns_per_tick": chaos_us * 1000.0 / cfg.chaos_every,
        "chaos_window": cfg.chaos_window,
        "chaos_every": cfg.chaos_every,
        **compile_times,
        "what": {
            "ours_batch": "all 13 features incl. amortized chaos_index, batches of 4096",
            "ours_batch_ta3": "rsi, macd, macd_signal, volatility_20 only (update_batch_ta: same step functions), batches of 4096",
            "ours_per_tick_call": "all 13 features, one Python->Numba call per tick through the dispatcher (update_one)",
            "ours_per_tick_ta3": "rsi, macd, macd_signal, volatility_20 only, one call per tick through the compiled entry point (as the stream baselines are called)",
            "ours_daemon_call_1_tick": "all 13 features, FeatureEngine.update on one-tick arrays: the daemon's call for a batch of one",
            "talib_batch": "talib.RSI + MACD + STDDEV array functions over the whole series",
            "talib_stream": "RSI+MACD+STDDEV stream objects, update per tick",
            "talipp": "RSI+MACD+StdDev, add per tick",
            "pandas_recompute_1000": f"RSI+MACD+rolling std recomputed over 1000 ticks per tick ({_PANDAS_TICKS} ticks)",
        },
        "targets": {"ours_batch_ns": 150, "talib_stream_ratio": 5, "talipp_ratio": 100, "pandas_ratio": 5000},
    }
    rows = [(name, f"{value:,.1f}", f"x{ratios[name]:,.1f}", f"x{ratios_ta3[name]:,.1f}" if name in ratios_ta3 else "") for name, value in ns.items()]
    log(table(rows, ("implementation", "ns/tick", "vs ours (13 features)", "vs ours (same 3, batch)")))
    log(
        "like for like, the same 3 indicators: TA-Lib's batch functions / ours in batches "
        f"x{like_for_like['talib_batch_over_ours_batch']:.2f}; one call a tick, TA-Lib stream / ours "
        f"x{like_for_like['talib_stream_over_ours_per_tick']:.2f}, talipp / ours x{like_for_like['talipp_over_ours_per_tick']:.1f}, "
        f"pandas recompute / ours x{like_for_like['pandas_over_ours_per_tick']:,.0f} (x < 1: ours is slower)"
    )
    log(f"one chaos_index recompute: {chaos_us:.1f} µs (every {cfg.chaos_every} ticks: {result['chaos_amortized_ns_per_tick']:.1f} ns/tick amortized)")
    log(f"kernels: first compile {compile_times['first_compile_s']:.1f} s, cached load {compile_times['cached_load_s']:.2f} s")
    write_json(json_out, result)
    if plot_out is not None:  # after the JSON: a plot that cannot be written costs only the plot
        bar_chart(plot_out, ns, f"qt-bench features: ns per tick on {ticks_path.name} (log scale)", "ns per tick")
    return result
