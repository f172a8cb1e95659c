"""Recorded ticks through the daemon's own validation and the daemon's own pipeline.

Rows come from ``quantumtrader.paper.ticks`` (the paper terminal's reader);
each becomes the tick event an EA would send and is checked by
``protocol.decode_event``, so a crossed FXCM quote is skipped here for
exactly the reason the daemon would reject it (``crossed_quote``), counted by
reason. Accepted ticks go through :class:`SignalPipeline` in batches, with
the ticks' own time as the signal policy's clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantumtrader.config import Config
from quantumtrader.models.kernel import OUT_PROBABILITY, OUT_TECHNICAL
from quantumtrader.models.pipeline import SignalIds, SignalPipeline
from quantumtrader.paper.ticks import CsvStats, merge_csv_ticks
from quantumtrader.protocol import ProtocolError, decode_event, encode, event, now_msc

BATCH = 4096


@dataclass
class TickArrays:
    """Accepted ticks of all files, in replay order."""

    symbols: list[str]
    sym: np.ndarray  # i4[n] index into symbols
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray
    time_msc: np.ndarray
    rows_read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: the same per symbol: a symbol none of whose ticks was accepted is in no other field
    rejected_by_symbol: dict[str, Counter[str]] = field(default_factory=dict)
    bad_rows: int = 0
    first_error: str = ""  # where the first unreadable row was, and why
    out_of_order: int = 0  # rows earlier than the row before them in their file (CsvStats)
    first_out_of_order: str = ""
    overlapping: dict[str, list[str]] = field(default_factory=dict)  # CsvStats.overlapping


@dataclass
class ReplayResult:
    """Per accepted tick: what the pipeline said."""

    ticks: TickArrays
    rows: np.ndarray  # i4[len(ticks.symbols)]: each symbol's row in the pipeline's state (its signal policy's too)
    probability: np.ndarray  # f8[n] ensemble P(up)
    technical: np.ndarray  # f8[n] technical component alone
    prediction: np.ndarray  # i8[n]
    emit: np.ndarray  # bool[n]


def load_ticks(paths: list[Path], progress: Callable[[int], None] | None = None) -> TickArrays:
    """Read, validate (as the daemon does) and keep the accepted ticks as arrays."""
    stats = CsvStats()
    rejected: Counter[str] = Counter()
    rejected_by_symbol: dict[str, Counter[str]] = {}
    index: dict[str, int] = {}
    sym: list[int] = []
    bid: list[float] = []
    ask: list[float] = []
    volume: list[float] = []
    stamp: list[int] = []
    read = 0
    # "Too far ahead" is judged as the daemon judges it, against this machine's clock: against each tick's own time
    # it never fired, and one row dated 2099 moved the signal policy's clock on by 75 years (a hunt, 2026-12-05).
    clock_msc = now_msc()
    for seq, tick in enumerate(merge_csv_ticks(paths, stats, watch_overlap=True)):
        read += 1
        if progress is not None and read % 50_000 == 0:
            progress(50_000)
        raw = encode(event("tick", "evaluate", seq, tick.time_msc, symbol=tick.symbol, bid=tick.bid, ask=tick.ask, volume=tick.volume))
        try:
            decode_event(raw, clock_msc)
        except ProtocolError as exc:
            rejected[exc.reason] += 1
            rejected_by_symbol.setdefault(tick.symbol, Counter())[exc.reason] += 1
            continue
        sym.append(index.setdefault(tick.symbol, len(index)))
        bid.append(tick.bid)
        ask.append(tick.ask)
        volume.append(tick.volume)
        stamp.append(tick.time_msc)
    if progress is not None:
        progress(read % 50_000)
    return TickArrays(
        symbols=list(index),
        sym=np.array(sym, dtype=np.int32),
        bid=np.array(bid),
        ask=np.array(ask),
        volume=np.array(volume),
        time_msc=np.array(stamp, dtype=np.int64),
        rows_read=read,
        rejected=rejected,
        rejected_by_symbol=rejected_by_symbol,
        bad_rows=stats.skipped,
        first_error=stats.first_error,
        out_of_order=stats.out_of_order,
        first_out_of_order=stats.first_out_of_order,
        overlapping=stats.overlapping,
    )


def replay(config: Config, ticks: TickArrays, progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Run the accepted ticks through a fresh SignalPipeline (cold models, as a new install starts)."""
    pipeline = SignalPipeline(config.features, config.signals, ids=SignalIds("evaluate"))
    remap = np.array([pipeline.index_of(name) for name in ticks.symbols], dtype=np.int32)
    n = ticks.sym.shape[0]
    probability = np.empty(n)
    technical = np.empty(n)
    prediction = np.empty(n, dtype=np.int64)
    emit = np.empty(n, dtype=np.bool_)
    for start in range(0, n, BATCH):
        stop = min(n, start + BATCH)
        sl = slice(start, stop)
        sym = remap[ticks.sym[sl]]
        clock_s = ticks.time_msc[sl] / 1000.0
        batch = pipeline.process(sym, ticks.bid[sl], ticks.ask[sl], ticks.volume[sl], ticks.time_msc[sl], clock_s)
        probability[sl] = batch.models.out[:, OUT_PROBABILITY]
        technical[sl] = batch.models.out[:, OUT_TECHNICAL]
        prediction[sl] = batch.models.prediction
        emit[sl] = batch.models.emit
        if progress is not None:
            progress(stop - start)
    return ReplayResult(ticks, remap, probability, technical, prediction, emit)
