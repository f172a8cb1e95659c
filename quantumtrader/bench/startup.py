"""``qt-bench startup``: time from process start to a daemon that answers, cold and warm; RSS.

Cold: an empty Numba cache (a fresh ``NUMBA_CACHE_DIR``), so every kernel
compiles. Warm: the same cache again, so kernels load from disk. "Healthy"
means the control socket answers ``status``, which the daemon only does once
its kernels are warmed up and its loop runs. RSS is read after 100 symbols
have streamed through features and models, for the warm start and for the
cold one: a daemon that compiled its kernels in its own process kept the
compiler's memory for life (~90 MiB more; since then a child process
compiles them, :mod:`quantumtrader.precompile`), and the cold start is the
first one every trader meets, so the target is judged on the larger of the two.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from quantumtrader.bench.common import machine, progress, table, write_json
from quantumtrader.bench.procs import Endpoints, control, interpreter, start, stop, stop_quietly, wait_ready


def _time_to_ready(eps: Endpoints, env: dict[str, str], log_path: Path) -> tuple[float, subprocess.Popen[bytes]]:
    """A daemon started and its seconds to ready; stopped if the wait fails or is interrupted (Ctrl-C, or SIGTERM
    through the CLI): it was left running with its ports, its data directory removed under it (a review, 2026-12-06)."""
    began = time.monotonic()
    proc = start(["run", "--no-sidecar"], env, log_path)
    try:
        wait_ready(eps.control, proc, log_path, timeout=300)
    except BaseException:
        stop_quietly(proc)
        raise
    return time.monotonic() - began, proc


def _start_and_feed(
    eps: Endpoints, env: dict[str, str], log_path: Path, symbols: int, ticks: int, log: Callable[[str], None], ready: Callable[[], None]
) -> tuple[float, _Memory]:
    """One daemon: its seconds to ready, then its memory after the symbols are fed (:func:`_rss_after_ticks`);
    stopped either way. ``ready``: called between the two (the progress bar's step), off the timed start."""
    ready_s, proc = _time_to_ready(eps, env, log_path)
    try:
        ready()
        return ready_s, _rss_after_ticks(proc.pid, eps, symbols, ticks, log_path.parent, log)
    finally:
        stop(proc)


def run_startup_bench(*, symbols: int = 100, ticks: int = 50_000, json_out: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        eps = Endpoints()
        env = eps.env(tmp / "data", QT_DAEMON__STATUS_INTERVAL_S="0", QT_LOG__LEVEL="warning", NUMBA_CACHE_DIR=str(tmp / "numba-cache"))
        # the steps: each start, then its symbols fed; one redraw a second while this process times a start
        bar = progress(4, "startup: cold start", refresh_per_second=1.0)
        try:
            log("startup: cold (empty Numba cache)")
            cold_s, cold = _start_and_feed(eps, env, tmp / "cold.log", symbols, ticks, log, lambda: bar.advance_to(1, "startup: cold start, symbols fed"))
            bar.advance_to(2, "startup: warm start")
            log("startup: warm (cached kernels)")
            # A data directory of its own, as the cold start had: the kernels cached, no state the cold daemon saved
            # (100 symbols restored weighed on the warm figures, which were no longer those of the runs before; a review).
            warm_env = {**env, "QT_DATA_DIR": str(tmp / "data-warm")}
            warm_s, warm = _start_and_feed(eps, warm_env, tmp / "warm.log", symbols, ticks, log, lambda: bar.advance_to(3, "startup: warm start, symbols fed"))
        finally:
            bar.stop()
    result = {
        "scenario": "startup",
        "machine": machine(),
        "cold_start_to_ready_s": cold_s,
        "warm_start_to_ready_s": warm_s,
        "rss_idle_mb": warm.idle_rss / 1e6,
        "rss_after_symbols_mb": max(warm.rss, cold.rss) / 1e6,  # the larger: the target holds for both starts or not at all
        "warm_rss_after_symbols_mb": warm.rss / 1e6,
        "cold_rss_idle_mb": cold.idle_rss / 1e6,
        "cold_rss_after_symbols_mb": cold.rss / 1e6,
        "symbols": symbols,
        "ticks": warm.ticks,
        "cold_ticks": cold.ticks,
        "targets": {"warm_start_to_ready_s": 3.0, "rss_after_symbols_mb": 250},
    }
    log(
        table(
            [
                ("cold start -> ready", f"{cold_s:.2f} s"),
                ("warm start -> ready", f"{warm_s:.2f} s"),
                ("RSS idle (cold / warm start)", f"{cold.idle_rss / 1e6:.0f} / {warm.idle_rss / 1e6:.0f} MB"),
                (f"RSS after {symbols} symbols (cold / warm start)", f"{cold.rss / 1e6:.0f} / {warm.rss / 1e6:.0f} MB"),
            ],
            ("startup", "measured"),
        )
    )
    write_json(json_out, result)
    return result


class _Memory(NamedTuple):
    idle_rss: int  # bytes, when it first answered
    rss: int  # bytes, after the ticks
    ticks: int  # ticks it counted


def _rss_after_ticks(pid: int, eps: Endpoints, symbols: int, ticks: int, tmp: Path, log: Callable[[str], None]) -> _Memory:
    """The daemon's RSS as it answered, then after ``ticks`` ticks over ``symbols`` symbols (sent flat out)."""
    idle_rss = interpreter(pid).memory_info().rss
    log(f"startup: {ticks} ticks over {symbols} symbols, then RSS")
    subprocess.run(
        [sys.executable, "-m", "quantumtrader.bench.sender", eps.events, str(ticks), str(symbols), "0", str(tmp / "sent.npy")],
        capture_output=True,
        timeout=300,
        check=True,
    )
    deadline = time.monotonic() + 60
    counted = 0
    while time.monotonic() < deadline:
        counted = control(eps.control)["health"]["counters"].get("ticks", 0)
        if counted >= ticks:
            break
        time.sleep(0.2)
    return _Memory(idle_rss, interpreter(pid).memory_info().rss, counted)
