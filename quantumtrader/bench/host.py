"""``qt-bench host``: what a pause costs the next small step on this machine, sleeping vs spinning.

Why: ``daemon.busy_poll_us`` (docs/architecture.md) rests on the observation
that on a VM the work after a sleep runs on cold caches (and sometimes on a
core that ran another guest meanwhile). This times one small step of the
tick path's kind (a no-op call, a 1,200-byte copy, a 1,200-byte ``os.write``
to a file) after a pause spent sleeping and after the same pause spent
spinning, alternating sample by sample so drift in the machine hits both
alike, and reports the ratio and how long the pauses really were (a sleep
overshoots: timer slack on Linux, a coarse timer on Windows before Python
3.11). A hint for a VPS, not a verdict: the daemon spins in ``zmq_poll`` and
is woken by a socket, not a timer; the pipeline benchmark with
``--set daemon.busy_poll_us=0`` and ``=200`` is the real comparison.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantumtrader.bench.common import APPEND_FLAGS, machine, spin, table, write_json
from quantumtrader.bench.cpu import CpuPhase, describe

LINE = b"x" * 1200
PAUSES_S = (0.0001, 0.005)  # 100 µs: between two ticks at 10,000/s; 5 ms: a quiet market


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {"p50_us": ordered[n // 2] / 1000, "p90_us": ordered[int(n * 0.9)] / 1000, "p99_us": ordered[int(n * 0.99)] / 1000}


def _measure(step: Callable[[int], object], pause_s: float, samples: int) -> dict[str, dict[str, float]]:
    """The step after sleeping and after spinning (``samples`` each, alternating), and how long each pause really was."""
    clock = time.perf_counter_ns
    figures: dict[str, list[int]] = {"after_sleep": [], "after_spin": [], "sleep_pause": [], "spin_pause": []}
    for i in range(2 * samples):
        sleeping = i % 2 == 0
        paused = clock()
        if sleeping:
            time.sleep(pause_s)
        else:
            spin(pause_s)
        started = clock()
        step(i)
        ended = clock()
        figures["after_sleep" if sleeping else "after_spin"].append(ended - started)
        figures["sleep_pause" if sleeping else "spin_pause"].append(started - paused)
    return {name: _percentiles(values) for name, values in figures.items()}


def run_host_bench(*, samples: int = 400, json_out: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every step after every pause, sleeping vs spinning; returns (and writes) the figures with the machine.

    No live progress bar: its redraw thread would run inside the measurement.
    A line per step instead (the whole run takes ~25 s at 400 samples).
    """
    if not 10 <= samples <= 10_000:
        raise ValueError("samples must be between 10 and 10000")
    buffer = bytearray(len(LINE) * 2 * samples)
    results = []
    with CpuPhase() as cpu, tempfile.TemporaryDirectory(prefix="qt-bench-host-") as tmp:
        fd = os.open(Path(tmp) / "journal.bin", APPEND_FLAGS, 0o600)
        try:
            steps: dict[str, Callable[[int], object]] = {
                "no-op call": lambda i: None,
                "1,200-byte copy": lambda i: buffer.__setitem__(slice(i * len(LINE), (i + 1) * len(LINE)), LINE),
                "1,200-byte os.write": lambda i: os.write(fd, LINE),
            }
            for pause_s in PAUSES_S:
                for name, step in steps.items():
                    log(f"host: {name} after {pause_s * 1e6:.0f} µs, {samples} samples sleeping and {samples} spinning")
                    figures = _measure(step, pause_s, samples)
                    ratio = figures["after_sleep"]["p50_us"] / max(figures["after_spin"]["p50_us"], 1e-3)
                    results.append({"step": name, "pause_us": pause_s * 1e6, **figures, "p50_ratio": ratio})
        finally:
            os.close(fd)
    rows = [
        (
            r["step"],
            f"{r['pause_us']:.0f} µs",
            f"{r['sleep_pause']['p50_us']:.0f}",
            f"{r['after_sleep']['p50_us']:.1f} / {r['after_sleep']['p99_us']:.1f}",
            f"{r['after_spin']['p50_us']:.1f} / {r['after_spin']['p99_us']:.1f}",
            f"x{r['p50_ratio']:.1f}",
        )
        for r in results
    ]
    log(table(rows, ("step", "pause", "slept p50 µs", "after sleep p50 / p99 µs", "after spin p50 / p99 µs", "sleep/spin p50")))
    log(describe({"this run": cpu.shares}))
    result = {"scenario": "host", "samples": samples, "results": results, "cpu": cpu.shares, "machine": machine()}
    write_json(json_out, result)
    return result
