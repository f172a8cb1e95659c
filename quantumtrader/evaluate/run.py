"""``qt-daemon evaluate``: replay files, score, print, write the JSON, the plot and the signals."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantumtrader.config import Config
from quantumtrader.features.cache import ensure_numba_cache_dir
from quantumtrader.outputs import UnwrittenOutput, write_json


def run_evaluation(config: Config, files: list[Path], *, show_progress: bool = True) -> dict[str, Any]:
    """The whole evaluation as a JSON-ready dict plus private arrays for the plot and ``--signals`` (``_*`` keys)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    ensure_numba_cache_dir(config.data_path)  # before the kernels' modules are imported (they fix it then)
    from quantumtrader.evaluate.replay import load_ticks, replay
    from quantumtrader.evaluate.report import evaluate, too_few_ticks

    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not show_progress, transient=True
    ) as progress:
        reading = progress.add_task("reading + validating", total=None)
        ticks = load_ticks(files, lambda k: progress.advance(reading, k))
        progress.update(reading, total=ticks.rows_read, completed=ticks.rows_read)
        if not ticks.sym.shape[0]:  # nothing to score: an error, not a table of zeros
            rejected = _rejected_text(ticks.rejected)
            first = f"; first: {ticks.first_error}" if ticks.first_error else ""
            raise ValueError(f"no tick accepted from {ticks.rows_read:,} rows ({ticks.bad_rows:,} unreadable{first}; rejected as the daemon would: {rejected})")
        if ticks.overlapping:  # before the replay: a score of two feeds mixed would describe their disagreement
            mixed = "; ".join(f"{symbol}: {', '.join(files)}" for symbol, files in ticks.overlapping.items())
            raise ValueError(f"files of one symbol overlap in time ({mixed}): two feeds, not consecutive periods of one; evaluate each on its own")
        horizon = config.signals.horizon_ticks
        too_few = too_few_ticks(ticks, horizon)
        if len(too_few) == len(ticks.symbols):  # before the replay: nothing it gives could be scored
            counts = ", ".join(f"{symbol} {n:,}" for symbol, n in too_few.items())
            raise ValueError(f"too few ticks to score: {counts} accepted; a symbol needs more than the horizon of {horizon} ticks (signals.horizon_ticks), at least {horizon + 1}")
        replaying = progress.add_task("replaying", total=int(ticks.sym.shape[0]))
        result = replay(config, ticks, lambda k: progress.advance(replaying, k))
    symbols = evaluate(result, config.signals)
    return {
        "files": [str(f) for f in files],
        "rows_read": ticks.rows_read,
        "bad_rows": ticks.bad_rows,
        "first_bad_row": ticks.first_error,
        "rows_out_of_order": ticks.out_of_order,
        "first_out_of_order": ticks.first_out_of_order,
        "rejected": dict(ticks.rejected),
        "rejected_by_symbol": {s: dict(c) for s, c in sorted(ticks.rejected_by_symbol.items())},
        # a symbol none of whose ticks was accepted, or with no more than the horizon, has no report below:
        # said here, not left out without a word
        "symbols_not_scored": sorted({s for s in ticks.rejected_by_symbol if s not in ticks.symbols} | set(too_few)),
        "too_few_ticks": too_few,
        "ticks_accepted": int(ticks.sym.shape[0]),
        "signals_config": asdict(config.signals),
        "symbols": symbols,
        "runtime": {"seconds": round(time.perf_counter() - started, 2), "python": platform.python_version(), "machine": platform.machine()},
    }


def run(
    config: Config,
    files: list[Path],
    *,
    json_out: Path | None = None,
    plot_out: Path | None = None,
    signals_out: Path | None = None,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Evaluate, show the text table (``echo``), then write the files; returns why each file that could not be
    written was not (``--json: cannot write X: No space left on device``).

    The table is shown first and each file written on its own: a disk that
    fills during a replay of minutes costs the file, not the result, and not
    the other files."""
    # Before report's import, which imports the kernels: they take the cache directory there is then. Imported
    # first (until 2026-12-06), they went to Numba's default cache beside the sources, which checks only each
    # kernel file's own time stamp, so an edit to a module it inlines (models/labels.py) ran the old code.
    ensure_numba_cache_dir(config.data_path)
    from quantumtrader.evaluate.report import plot, public, write_signals

    report = run_evaluation(config, files, show_progress=show_progress)
    echo(summary(report))
    unwritten = []
    writes: tuple[tuple[str, Path | None, Callable[[Path], None]], ...] = (
        ("--json", json_out, lambda path: write_json(path, public(report))),
        ("--plot", plot_out, lambda path: plot(report["symbols"], path)),
        ("--signals", signals_out, lambda path: write_signals(path, report["symbols"])),
    )
    for option, path, write in writes:
        if path is None:
            continue
        try:
            write(path)
        except UnwrittenOutput as exc:
            unwritten.append(f"{option}: {exc}")
    return unwritten


def summary(report: dict[str, Any]) -> str:
    """The header (what was read, rejected, skipped, not scored) and the table, as the CLI prints them."""
    from quantumtrader.evaluate.report import text_table

    rejected = _rejected_text(report["rejected"])
    header = f"{report['ticks_accepted']:,} of {report['rows_read']:,} ticks accepted (rejected as the daemon would: {rejected}); {report['runtime']['seconds']} s"
    if report["bad_rows"]:
        header += f"\n{report['bad_rows']:,} unreadable rows skipped (first: {report['first_bad_row']})"
    horizon = report["signals_config"]["horizon_ticks"]
    for symbol in report["symbols_not_scored"]:
        if symbol in report["too_few_ticks"]:
            header += f"\n{symbol}: {report['too_few_ticks'][symbol]:,} ticks accepted, too few to score (at least {horizon + 1}: the horizon is {horizon} ticks), not scored"
        else:
            header += f"\n{symbol}: no tick accepted ({_rejected_text(report['rejected_by_symbol'][symbol])}), not scored"
    if report["rows_out_of_order"]:
        header += (
            f"\n{report['rows_out_of_order']:,} rows earlier than the row before them (first: {report['first_out_of_order']}):"
            " replayed in the files' order, so horizons and P&L follow it; sort the file by time"
        )
    return header + "\n" + text_table(report["symbols"])


def _rejected_text(rejected: dict[str, int]) -> str:
    """``{"crossed_quote": 116871}`` -> ``"crossed_quote 116,871"``; "none" when nothing was."""
    return ", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items())) or "none"
