"""What a pause costs the next piece of work on this machine: sleeping vs spinning, same run.

Why it is here: ``daemon.busy_poll_us`` (docs/architecture.md) rests on the
observation that on a VM the work after a sleep runs on cold caches (and
sometimes on a core that ran another guest meanwhile). This measures one
small step of the tick path's kind (a no-op call, a 1,200-byte copy, a
1,200-byte ``os.write`` to a file) after a pause spent sleeping and after the
same pause spent spinning (alternating, sample by sample), and prints the ratio. Run it on a VPS to decide
whether busy polling is worth a core there.

Usage: python bench/cold_caches.py [--json FILE]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

LINE = b"x" * 1200
PAUSES_S = (0.0001, 0.005)  # 100 µs: between two ticks at 10,000/s; 5 ms: a quiet market
SAMPLES = 400


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {"p50_us": ordered[n // 2] / 1000, "p90_us": ordered[int(n * 0.9)] / 1000, "p99_us": ordered[int(n * 0.99)] / 1000}


def _measure(step: Callable[[int], object], pause_s: float) -> tuple[dict[str, float], dict[str, float]]:
    """(after sleeping, after spinning): the two alternate sample by sample, so drift in the machine hits both alike."""
    clock = time.perf_counter_ns
    slept, spun = [], []
    for i in range(2 * SAMPLES):
        sleeping = i % 2 == 0
        if sleeping:
            time.sleep(pause_s)
        else:
            _spin(pause_s)
        started = clock()
        step(i)
        (slept if sleeping else spun).append(clock() - started)
    return _percentiles(slept), _percentiles(spun)


def main(argv: list[str]) -> None:
    json_out = Path(argv[argv.index("--json") + 1]) if "--json" in argv else None
    buffer = bytearray(len(LINE) * 2 * SAMPLES)
    with tempfile.TemporaryDirectory(prefix="qt-cold-") as tmp:
        fd = os.open(Path(tmp) / "journal.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o600)
        steps: dict[str, Callable[[int], object]] = {
            "no-op call": lambda i: None,
            "1,200-byte copy": lambda i: buffer.__setitem__(slice(i * len(LINE), (i + 1) * len(LINE)), LINE),
            "1,200-byte os.write": lambda i: os.write(fd, LINE),
        }
        results = []
        try:
            for pause_s in PAUSES_S:
                for name, step in steps.items():
                    slept, spun = _measure(step, pause_s)
                    results.append({"step": name, "pause_us": pause_s * 1e6, "after_sleep": slept, "after_spin": spun, "p50_ratio": slept["p50_us"] / max(spun["p50_us"], 1e-3)})
        finally:
            os.close(fd)
    print(f"{'step':22s} {'pause':>7s}  {'after sleep p50/p99 µs':>24s}  {'after spin p50/p99 µs':>23s}  sleep/spin p50")
    for r in results:
        a, b = r["after_sleep"], r["after_spin"]
        print(f"{r['step']:22s} {r['pause_us']:>5.0f}µs  {a['p50_us']:>11.1f} / {a['p99_us']:<10.1f}  {b['p50_us']:>10.1f} / {b['p99_us']:<10.1f}  x{r['p50_ratio']:.1f}")
    if json_out is not None:
        from quantumtrader.bench.common import machine

        json_out.write_bytes(orjson.dumps({"scenario": "cold_caches", "samples": SAMPLES, "results": results, "machine": machine()}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main(sys.argv[1:])
