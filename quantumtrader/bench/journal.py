"""``qt-bench journal``: the signal journal's append against the ``os.write`` it replaced.

Why: the journal's append is the one step between a due signal and its
publication that reaches the OS (store/journal.py). Until 2026-12-03 it was
one ``os.write`` per emitting batch to an ``O_APPEND`` file; now it is a copy
into a memory-mapped file whose next pages the loop touches between batches.
A micro-benchmark in a tight loop had found the copy only ~2x faster at p50
and no better at p99 (a page fault in the copy); what matters is the step in
the loop's conditions, so here each sample is a pause then one batch, the
pause spent as the daemon spends it between ticks (spinning, see
``daemon.busy_poll_us``) and, for the journal, with ``prepare`` (the next
pages touched, the next file made on a helper thread) in it as the loop's
``on_pass`` does. Samples alternate between the two, so drift in
the machine hits both alike. Both append the same rows as the same bytes
(:func:`~quantumtrader.store.journal.journal_line`), made from signal objects
of the daemon's shape; making the rows is outside the timing for both.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quantumtrader.bench.common import APPEND_FLAGS, TABLE_PERCENTILES, latency_summary, machine, spin, table, write_json
from quantumtrader.bench.cpu import CpuPhase, describe
from quantumtrader.features.names import FEATURE_NAMES
from quantumtrader.protocol import SIGNAL_COMPONENTS, signal_object
from quantumtrader.store.journal import SignalJournal, journal_line
from quantumtrader.store.signals import SignalLog

#: Batches each way before the measured ones: the first file is taken, the interpreter and caches warm.
WARMUP_BATCHES = 200


def _signals(rng: np.random.Generator, first_id: int, n: int) -> list[dict[str, Any]]:
    """Signal objects as the daemon makes them (all fields, 13 features), random but plausible values."""
    out = []
    for k in range(n):
        p = float(rng.uniform(0.2, 0.8))
        out.append(
            signal_object(
                signal_id=f"s-bench-{first_id + k}",
                symbol=f"SYM{(first_id + k) % 50:02d}",
                prediction="BUY" if p > 0.6 else "SELL" if p < 0.4 else "HOLD",
                probability=p,
                trend="neutral",
                time_msc=1_764_000_000_000 + first_id + k,
                components={name: float(rng.uniform()) for name in SIGNAL_COMPONENTS},
                features=zip(FEATURE_NAMES, rng.normal(size=len(FEATURE_NAMES)).tolist()),
                ml_probability=p,
                ml_components={"sgd_logistic": p, "gaussian_nb": p},
            )
        )
    return out


def run_journal_bench(
    *,
    batches: int = 10_000,
    signals_per_batch: int = 1,
    pause_us: float = 100.0,
    directory: Path | None = None,
    json_out: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``batches`` appends each way, alternating; returns (and writes) the figures with the machine.

    The files go to a temporary directory inside ``directory`` (default: the
    system's): use the daemon's data directory, the disk its journal is on
    (a RAM disk such as a tmpfs /tmp has no file-system journal to pay).

    No live progress bar: its redraw thread would run inside the measurement
    (a line at the start instead; 10,000 batches take ~3 s and ~11 journal files).
    """
    if not 100 <= batches <= 1_000_000:
        raise ValueError("batches must be between 100 and 1000000")
    if not 1 <= signals_per_batch <= 1000:
        raise ValueError("signals per batch must be between 1 and 1000")
    if not 0 <= pause_us <= 100_000:
        raise ValueError("pause must be between 0 and 100000 µs")
    rng = np.random.default_rng(7)
    rows_of = SignalLog(sqlite3.connect(":memory:")).rows  # the daemon's rows; the connection is not used
    clock = time.perf_counter_ns
    pause_s = pause_us / 1e6
    timings: dict[str, list[int]] = {"os.write (before)": [], "journal (mmap)": [], "prepare (between batches)": []}
    log(f"journal: {batches} batches of {signals_per_batch} signal(s) each way, alternating, {pause_us:g} µs spinning between")
    with CpuPhase() as cpu, tempfile.TemporaryDirectory(prefix="qt-bench-journal-", dir=directory) as tmp:
        journal = SignalJournal(Path(tmp) / "qt.db")
        fd = os.open(Path(tmp) / "baseline.jnl", APPEND_FLAGS, 0o600)
        journal.prepare()  # the daemon's loop has done this long before its first signal
        try:
            for i in range(-2 * WARMUP_BATCHES, 2 * batches):
                rows = rows_of(_signals(rng, (i + 2 * WARMUP_BATCHES) * signals_per_batch, signals_per_batch))
                if i % 2:
                    spin(pause_s)
                    started = clock()
                    os.write(fd, b"".join(journal_line(row) for row in rows))
                    if i >= 0:
                        timings["os.write (before)"].append(clock() - started)
                else:
                    started = clock()
                    journal.prepare()
                    prepared = clock() - started
                    spin(pause_s)
                    started = clock()
                    journal.append(rows)
                    if i >= 0:
                        timings["prepare (between batches)"].append(prepared)
                        timings["journal (mmap)"].append(clock() - started)
        finally:
            os.close(fd)
            files = len(journal.close())
    figures = {name: latency_summary(values) for name, values in timings.items()}
    before, after = figures["os.write (before)"], figures["journal (mmap)"]
    ratios = {q: after[q] / max(before[q], 1e-3) for q in ("p50_us", "p99_us", "p99.9_us")}
    rows_out = [(name, *(f"{f[q]:.1f}" for q in TABLE_PERCENTILES)) for name, f in figures.items()]
    log(table(rows_out, ("step", "p50 µs", "p90", "p99", "p99.9", "max")))
    log(f"journal / os.write: p50 x{ratios['p50_us']:.2f}, p99 x{ratios['p99_us']:.2f}, p99.9 x{ratios['p99.9_us']:.2f} ({files} journal file(s) used)")
    log(describe({"this run": cpu.shares}))
    result = {
        "scenario": "journal",
        "batches": batches,
        "signals_per_batch": signals_per_batch,
        "pause_us": pause_us,
        "directory": str(directory or tempfile.gettempdir()),
        "row_bytes": len(journal_line(rows[0])),  # the last batch's first row
        "figures": figures,
        "journal_over_write": ratios,
        "journal_files": files,
        "cpu": cpu.shares,
        "machine": machine(),
    }
    write_json(json_out, result)
    return result
