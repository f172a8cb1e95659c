"""What every benchmark scenario shares: machine facts, percentiles, results files, tables, plots."""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from quantumtrader import outputs
from quantumtrader.metrics import new_histogram, summarize

_LIBRARIES = ("quantumtrader", "pyzmq", "numpy", "numba", "orjson", "starlette", "uvicorn", "ta-lib", "talipp", "pandas")


def machine() -> dict[str, Any]:
    """CPU, cores, OS, Python and library versions: the context every figure needs."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": versions,
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


#: An append-only file as the signal journal was written before 2026-12-03 (O_BINARY: Windows only, no newline translation).
APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


def spin(seconds: float) -> None:
    """Wait without sleeping, as the daemon's loop waits for the next tick (``daemon.busy_poll_us``)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def latency_summary(values_ns: Iterable[int]) -> dict[str, float]:
    """HDR percentiles (p50..p99.9, max, mean) in microseconds."""
    hist = new_histogram()
    for value in values_ns:
        hist.record_value(min(max(int(value), 1), 60_000_000_000))
    return summarize(hist)


#: What the trade and ws scenarios stream without --ticks.
GENERATOR = "the paper terminal's generator"
#: What the pipeline's senders send without a tick file (:func:`quantumtrader.bench.sender.prices`).
RANDOM_WALK = "a seeded random walk per symbol (the bench sender's)"


def tick_source(ticks_csv: Path | None, generated: str = GENERATOR) -> str:
    """What the results say was streamed: the file, or what made the ticks without one (``generated``)."""
    return str(ticks_csv) if ticks_csv is not None else generated


#: The percentile columns of the console's latency tables, as :func:`latency_summary` names them.
TABLE_PERCENTILES = ("p50_us", "p90_us", "p99_us", "p99.9_us", "max_us")


def latency_cells(summary: dict[str, float]) -> tuple[str, ...]:
    """A latency summary's :data:`TABLE_PERCENTILES` as table cells (:func:`us_cell`)."""
    return tuple(us_cell(summary, key) for key in TABLE_PERCENTILES)


def us_cell(summary: dict[str, float], key: str) -> str:
    """One percentile of a latency summary for a console table: "-" for a histogram with no sample, which
    printed as 0 µs (a stage that never ran read as the fastest; a review, 2026-12-06)."""
    if not summary.get("count") or key not in summary:
        return "-"
    return f"{summary[key]:.0f}"


#: Pauses in a tick file longer than this (nights, weekends) are cut to it when a file is spread over symbols (ms).
MAX_PAUSE_MS = 60_000


def tick_file_per_symbol(ticks_csv: Path, symbols: Sequence[str], out_dir: Path, max_ticks: int) -> tuple[list[Path], int]:
    """One real tick file played as ``len(symbols)`` symbols by the paper terminal: a file per symbol in ``out_dir``,
    and how many of the file's rows they hold.

    The file's first ``max_ticks`` good rows (the reader's: a bad row is
    skipped) are cut into ``len(symbols)`` stretches of equal market time
    (pauses over :data:`MAX_PAUSE_MS` counted as that), symbol i gets the
    i-th, its times moved so that every stretch starts at the file's first
    time. The terminal merges its files by time, so the symbols interleave
    with their own stretch's gaps between ticks and all end together; cut by
    row counts instead, a stretch over a weekend lasted days of file time
    and the busy ones ran out minutes into a run. The prices are the file's,
    whatever the symbol's name: the scenarios that use this measure delivery,
    not prices.
    """
    from quantumtrader.paper.ticks import TickFileError, read_csv_ticks

    n = len(symbols)
    rows = list(itertools.islice(read_csv_ticks(ticks_csv), max_ticks))
    if len(rows) < n:
        raise TickFileError(f"{ticks_csv}: {len(rows)} good rows; {n} symbols need at least one each")
    times = np.array([t.time_msc for t in rows], dtype=np.int64)
    clock = np.concatenate(([0], np.cumsum(np.minimum(np.diff(times), MAX_PAUSE_MS))))  # market time, ms from the first row
    span = clock[-1] / n
    which = np.minimum((clock / span).astype(np.int64), n - 1) if span > 0 else np.arange(len(rows)) * n // len(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, symbol in enumerate(symbols):
        stretch = np.flatnonzero(which == i)
        if stretch.size == 0:
            raise TickFileError(f"{ticks_csv}: no tick in stretch {i + 1} of {n} (equal parts of its first {len(rows):,} rows' market time); fewer symbols or a longer file")
        stamps = times[0] + np.round(clock[stretch] - i * span).astype(np.int64)
        lines = [f"{stamp},{rows[j].bid!r},{rows[j].ask!r},{rows[j].volume!r}" for stamp, j in zip(stamps.tolist(), stretch.tolist())]
        path = out_dir / f"{symbol}.csv"
        path.write_text("time,bid,ask,volume\n" + "\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths, len(rows)


def paper_source(ticks: Path | Sequence[Path] | None) -> list[str]:
    """The paper terminal's arguments for its ticks: files to replay (at its --rate), or none (its generator)."""
    files = [] if ticks is None else [ticks] if isinstance(ticks, Path) else list(ticks)
    return [arg for path in files for arg in ("--ticks", str(path))]


def progress(total: int, description: str, refresh_per_second: float | None = 10.0) -> Any:
    """A rich progress bar on stderr (typer brings rich); disabled when stderr is not a terminal.

    Its redraws run on a thread of this process: where this process is also
    measuring (the pipeline's receiver stamps arrivals), ask for fewer. Where
    the timed code runs in this very thread (the features' kernels), pass
    None: no thread, a redraw only when :func:`advance_to` is called between
    the timings, so that none lands inside one.

    Drawn on stderr's console: rich's default console is stdout's, so with
    the figures sent to a file (``> out.txt``) the bar was drawn into nothing
    while stderr's terminal showed none. The scenarios' own lines go through
    the bar (above it) only when stdout is a terminal too; else straight to
    their file.

    ``bar.advance_to(done, description=None)``: ``done`` of ``total`` (and
    the step now under way, when given).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    auto = refresh_per_second is not None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        redirect_stdout=sys.stdout.isatty(),
        transient=True,
        disable=not sys.stderr.isatty(),
        auto_refresh=auto,
        refresh_per_second=refresh_per_second or 10.0,
    )
    bar.start()
    task = bar.add_task(description, total=total)

    def advance_to(done: float, description: str | None = None) -> None:
        bar.update(task, completed=done, description=description, refresh=not auto)

    bar.advance_to = advance_to  # type: ignore[attr-defined]
    return bar


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """A scenario's figures to its ``--json`` (none: not asked for), whole or not at all (``outputs.UnwrittenOutput``)."""
    if path is not None:
        outputs.write_json(path, result)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


#: The percentiles a latency plot's x axis marks (log of 1/(1-p)).
_PLOT_PERCENTILES = np.array([50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99])


def summary_points(summary: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The percentiles of a latency summary (:func:`latency_summary`, the daemon's histograms: ``p99.9_us`` ...)
    and their values in µs, ascending: what a plot can show of a figure whose samples stayed in another process."""
    points = sorted((float(key[1:-3]), value) for key, value in summary.items() if key.startswith("p") and key.endswith("_us"))
    return np.array([p for p, _ in points]), np.array([v for _, v in points])


def percentile_plot(
    path: Path, series: dict[str, np.ndarray], title: str, throughput: dict[str, float] | None = None, summaries: dict[str, dict[str, float]] | None = None
) -> None:
    """Latency by percentile (log x of 1/(1-p)), one line per series (samples in ns), and beside it ``throughput``
    (ticks/s per run) as bars when given; ``summaries``: more lines from only a summary's percentile points
    (:func:`summary_points`), dashed. Needs matplotlib (bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if throughput:
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
        names = list(throughput)
        bars.bar(range(len(names)), [throughput[n] / 1000.0 for n in names], color="tab:gray")
        bars.set_xticks(range(len(names)))
        bars.set_xticklabels(names, rotation=15)
        bars.set_ylabel("throughput (thousand ticks/s)")
        bars.grid(True, axis="y", alpha=0.3)
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    pct = _PLOT_PERCENTILES
    for name, values_ns in series.items():
        if len(values_ns):
            ax.plot(1 / (1 - pct / 100), np.percentile(values_ns, pct) / 1000.0, marker="o", label=name)
    for name, summary in (summaries or {}).items():
        at, values_us = summary_points(summary)
        if len(at):
            ax.plot(1 / (1 - at / 100), values_us, marker="s", linestyle="--", label=f"{name} (summary)")
    ax.set_xscale("log")
    ax.set_xticks(1 / (1 - pct / 100))
    ax.set_xticklabels([f"{p:g}" for p in pct])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    outputs.save_figure(fig, path)


def bar_chart(path: Path, values: dict[str, float], title: str, unit: str) -> None:
    """One horizontal bar per name, log scale: figures that span orders of magnitude (the features' ns/tick run from
    ~10 to ~10^6), which a linear axis would show as one bar. Needs matplotlib (bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(values)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
    ax.barh(range(len(names)), [values[n] for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()  # the first name on top, as in the console's table
    ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    for i, n in enumerate(names):
        ax.annotate(f"{values[n]:,.1f}", (values[n], i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    fig.tight_layout()
    outputs.save_figure(fig, path)
