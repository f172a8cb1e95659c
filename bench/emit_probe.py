"""Where an emitting one-tick batch's time goes in the daemon: each step of the tick path timed, in process.

Why it is here: issue 4's target (tick received -> signal published under
100 µs in the daemon) is missed on every host so far, and this says by how
much each step takes part. The real daemon (``build_daemon``, as
``tests/support.inproc_daemon`` makes it) on free ports, one terminal with 50
symbols, ticks pushed one at a time over TCP ``--pause-us`` apart (200: about
the 10,000 ticks/s of the issue's target once each drain's own time is
added), signals due every 0.05 s (half the batches emit; the daemon's default
is 10 s), each drain called by hand. The steps are timed by wrapping the
daemon's own methods (``perf_counter_ns``; a wrapper costs well under a µs).
``feed.publish`` counts the signal and feature publications; the price's is
inside ``quote_tick``.

Run: ``PYTHONPATH=. python bench/emit_probe.py [TICKS]`` (about a minute; needs
the tests' support module); its output as committed:
``bench/results/emit-probe-2026-12-04.txt``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import quantumtrader.daemon.server as server  # noqa: E402
from support import event_frame, inproc_daemon  # noqa: E402

PAUSE_US = 200
TERMINAL = "probe@QuantumTrader"
SYMBOLS = [f"S{i:02d}USD" for i in range(50)]


def timed(times: dict[str, list[int]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with each call's time appended to ``times[name]``."""
    record = times.setdefault(name, []).append
    clock = time.perf_counter_ns

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        result = fn(*args, **kwargs)
        record(clock() - started)
        return result

    return wrapper


def main(n_ticks: int) -> None:
    daemon, eps = inproc_daemon(Path(tempfile.mkdtemp()) / "data", QT_SIGNALS__INTERVAL_S="0.05")
    stage = daemon._tick_hooks[0].__self__
    ctx = zmq.Context.instance()
    push, sub = ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(eps.feed)
    push.connect(eps.events)
    push.send(event_frame(TERMINAL, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": SYMBOLS}))
    time.sleep(0.5)
    daemon.drain_events()
    time.sleep(0.5)  # the subscriber has joined: publications go somewhere, as in the daemon

    times: dict[str, list[int]] = {}
    server.decode_event = timed(times, "decode", server.decode_event)
    daemon.quote_tick = timed(times, "quote_tick", daemon.quote_tick)
    pipeline = stage.pipeline
    pipeline.compute_features = timed(times, "feature kernel", pipeline.compute_features)
    pipeline.decide = timed(times, "model kernel", pipeline.decide)
    pipeline.signal = timed(times, "signal object", pipeline.signal)
    stage.store.signals.rows = timed(times, "store rows", stage.store.signals.rows)
    stage.store.journal.append = timed(times, "journal append", stage.store.journal.append)
    daemon.feed.publish = timed(times, "feed.publish", daemon.feed.publish)
    stage._emit = timed(times, "emit (all)", stage._emit)
    daemon._tick_hooks[0] = stage.on_ticks = timed(times, "on_ticks (all)", stage.on_ticks)

    rng = random.Random(1)
    mids = dict.fromkeys(SYMBOLS, 1.1)
    drains: list[int] = []
    emitting: list[int] = []
    seq = 0

    def run(n: int, keep: bool) -> None:
        nonlocal seq
        for i in range(n):
            symbol = SYMBOLS[i % len(SYMBOLS)]
            mids[symbol] += rng.gauss(0, 0.0001)
            seq += 1
            push.send(event_frame(TERMINAL, {"type": "tick", "seq": seq, "symbol": symbol, "bid": round(mids[symbol], 5), "ask": round(mids[symbol] + 0.0002, 5), "volume": 0.0}))
            while not daemon.events.poll(10):
                pass
            before = stage.counters["signals"]
            started = time.perf_counter_ns()
            daemon.drain_events()
            took = time.perf_counter_ns() - started
            while sub.poll(0):
                sub.recv_multipart()
            if keep:
                drains.append(took)
                if stage.counters["signals"] > before:
                    emitting.append(took)
            time.sleep(PAUSE_US / 1e6)

    run(3000, keep=False)  # warm-up: kernels, caches, the models past their first labels
    for values in times.values():
        values.clear()
    run(n_ticks, keep=True)

    def pct(values: list[int], p: float) -> float:
        return float(np.percentile(np.asarray(values) / 1000, p))

    print(f"{n_ticks} one-tick drains {PAUSE_US} µs apart, 50 symbols, signals due every 0.05 s")
    print(f"drains: p50 {pct(drains, 50):.1f} µs, p99 {pct(drains, 99):.1f}; those that emitted ({len(emitting)}): p50 {pct(emitting, 50):.1f}, p99 {pct(emitting, 99):.1f}")
    for name, values in times.items():
        print(f"  {name:16s} calls {len(values):6d}  p50 {pct(values, 50):7.1f}  p90 {pct(values, 90):7.1f}  p99 {pct(values, 99):7.1f} µs")
    daemon.close()
    push.close(linger=0)
    sub.close(linger=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
