"""Tick sources for the paper terminal: CSV replay and a built-in generator.

CSV format (../shared/data/ticks): a header ``time,bid,ask[,volume]``, gzip or
plain (detected by the gzip magic bytes, not the name), ``time`` either
ISO-8601 with a zone (``2014-05-01T00:00:00.292Z``) or integer milliseconds
since 1970, from 2000-01-01 (:func:`tick_time_msc`); prices and volumes plain
decimal numbers (:func:`_number`). A row that does not parse is skipped and
counted (the first with its reason), never fatal: recorded data is outside
input like any other. Crossed quotes are passed through untouched, as a real
broker feed would send them; the daemon's validation rejects them.
"""

from __future__ import annotations

import gzip
import heapq
import io
import math
import random
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from quantumtrader.pips import pip_size
from quantumtrader.protocol import MAX_TIME_MSC, MIN_TIME_MSC, ProtocolError, check_symbol, cut, decimal, iso_from_msc, msc_from_text, shorten
from quantumtrader.outputs import file_key


class TickFileError(ValueError):
    """A tick file that cannot be used as it is (missing, unreadable, no header, a name that is no symbol).

    Bad input: the paper terminal exits 2 on it, and its supervisor does not
    restart it (it would meet the same file). Other ValueErrors are not this."""


class SourceTick(NamedTuple):
    time_msc: int
    symbol: str
    bid: float
    ask: float
    volume: float


@dataclass
class CsvStats:
    rows: int = 0
    skipped: int = 0
    first_error: str = ""
    errors_by_line: list[int] = field(default_factory=list)
    # rows earlier than the row before them in their file: replayed in the file's order, and a merge of several
    # files (heapq.merge) assumes each is in time order, so the merged order is off too. Counted and said.
    out_of_order: int = 0
    first_out_of_order: str = ""
    # symbol -> the files of it whose ticks interleave in time: two feeds of one symbol, not consecutive periods
    overlapping: dict[str, list[str]] = field(default_factory=dict)


def open_text(path: Path) -> IO[str]:
    """Open a CSV that may be gzip-compressed, deciding by content.

    ``utf-8-sig``: Excel's "CSV UTF-8" and Windows editors begin the file with a byte-order mark, which
    made the header ``\ufefftime,bid,ask`` and the file refused."""
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def symbol_from_path(path: Path) -> str:
    """``EURUSD.csv.gz`` -> ``EURUSD``; ``eurusd.csv`` -> ``EURUSD``; ``EURUSDm.csv`` -> ``EURUSDm``.

    An all-lowercase name is taken for the symbol in capitals; any other keeps its case, which brokers'
    suffixes carry (``EURUSDm`` is not ``EURUSDM`` to a terminal, and was reported as such)."""
    name = path.name
    for suffix in (".gz", ".csv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name.upper() if name.islower() else name


def read_csv_ticks(path: Path, symbol: str | None = None, stats: CsvStats | None = None) -> Iterator[SourceTick]:
    """Yield ticks from one CSV file. Bad rows are skipped and counted in ``stats``."""
    stats = stats if stats is not None else CsvStats()
    symbol = symbol or symbol_from_path(path)
    try:
        check_symbol(symbol)
    except ProtocolError as exc:
        raise TickFileError(f"{path}: cannot use {symbol!r} as a symbol ({exc.detail}); name the file SYMBOL.csv or SYMBOL.csv.gz") from None
    try:
        yield from _read_rows(path, symbol, stats)
    # unreadable, a truncated gzip (EOFError), a corrupt one (BadGzipFile is an OSError; bad compressed data
    # past a good header is zlib.error), not text
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise TickFileError(f"{path}: cannot read it ({type(exc).__name__}: {exc}); {stats.rows:,} rows read before") from None


def check_tick_file(path: Path) -> SourceTick:
    """``path``'s first tick; TickFileError naming the problem unless the file opens, has a time,bid,ask header
    and a row the reader accepts.

    Run before anything starts, so a bad file is a clear error at once, not a
    child process that fails and is restarted forever. A header alone, or only
    unreadable rows, is refused alike by every command that replays files: the
    paper terminal replayed nothing and sat idle on one."""
    if not path.exists():
        raise TickFileError(f"{path}: no such file")
    if not path.is_file():
        raise TickFileError(f"{path}: not a file")
    stats = CsvStats()
    rows = read_csv_ticks(path, stats=stats)
    try:
        first = next(rows, None)
    finally:
        rows.close()
    if first is None:
        found = f"{stats.skipped:,} unreadable rows; first: {stats.first_error}" if stats.skipped else "only its header"
        raise TickFileError(f"{path}: no tick in it ({found})")
    return first


def check_distinct_files(paths: list[Path]) -> None:
    """Raise TickFileError when one file is given twice, under the same name or another (``./t/../t/X.csv``,
    a link): the same file by :func:`~quantumtrader.outputs.file_key` (device and inode, or the resolved name).

    Why: files are merged by time, so a file given twice was merged with itself, every tick twice, and
    scored as such (a base rate of 0.14 reported as 0.57) with only the note that files of one symbol
    are merged. A path that cannot be looked at is left to the reader, which names it."""
    seen: dict[tuple[int, int] | str, Path] = {}
    for path in paths:
        key = file_key(path)
        if key is None:
            continue
        first = seen.get(key)
        if first is not None:
            raise TickFileError(f"{first} and {path} are the same file, given twice: its ticks would be merged with themselves")
        seen[key] = path


def shared_symbols(paths: list[Path]) -> dict[str, list[Path]]:
    """Symbols that more than one of ``paths`` names (the symbol is the file's name): their ticks are merged
    by time into one series, right for consecutive months of one feed, wrong for two brokers' feeds."""
    by_symbol: dict[str, list[Path]] = {}
    for path in paths:
        by_symbol.setdefault(symbol_from_path(path), []).append(path)
    return {symbol: files for symbol, files in by_symbol.items() if len(files) > 1}


#: The forms a tick file's time may take, said with every time that takes none of them.
TIME_FORMS = "integer milliseconds since 1970 (1398902400292) or ISO-8601 with a zone (2014-05-01T00:00:00.292Z)"

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def tick_time_msc(text: str) -> int:
    """A tick file's time as integer ms since 1970, from 2000-01-01 (the daemon's own floor, ``MIN_TIME_MSC``);
    ValueError naming what is wrong and the forms a time may take (``TIME_FORMS``) otherwise.

    Why: ``1705314600000.5`` fell through to the ISO parser and was reported as
    "month must be in 1..12", and integer seconds were read as milliseconds in
    January 1970, which only the daemon's validation refused, as ``bad_time``
    with no hint. A time without a zone is refused (a local time is a mistake
    to name, not to guess)."""
    try:
        time_msc = msc_from_text(text, naive_is_utc=False)
    except ValueError as exc:  # the checks here only on the way out: reading a million rows pays for none of them
        text = text.strip()
        if decimal(text) is None and _NUMBER.fullmatch(text):
            raise ValueError(f"time {text} is not integer milliseconds; a time is {TIME_FORMS}") from None
        # each cut: Python's message repeats the whole text (a 1 MB row was echoed twice: a hunt, 2026-12-05)
        raise ValueError(f"time {shorten(text)}: {cut(str(exc), 120)}; a time is {TIME_FORMS}") from None
    if time_msc < MIN_TIME_MSC:
        text = text.strip()
        as_seconds = time_msc * 1000 if decimal(text) is not None else None
        hint = f" (seconds? times 1000 it is {iso_from_msc(as_seconds)})" if as_seconds is not None and MIN_TIME_MSC <= as_seconds <= MAX_TIME_MSC else ""
        raise ValueError(f"time {text} is before 2000-01-01{hint}; a time is {TIME_FORMS}")
    return time_msc


def _number(name: str, text: str) -> float:
    """A price or volume as written in a CSV: ASCII digits, a point, an exponent; finite.

    Why not ``float`` alone: it also takes digit-group underscores (PEP 515)
    and non-ASCII digits, so ``1_1,1_1002`` was read as a quote of 11 / 11002."""
    if "_" in text or not text.isascii():
        raise _not_a_number(name, text)
    try:
        value = float(text)
    except ValueError:
        raise _not_a_number(name, text) from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {text.strip()} is not a finite number")
    return value


def _not_a_number(name: str, text: str) -> ValueError:
    return ValueError(f"{name} {shorten(text.strip())} is not a decimal number")


def _read_rows(path: Path, symbol: str, stats: CsvStats) -> Iterator[SourceTick]:
    with open_text(path) as handle:
        header = handle.readline().strip().lower().split(",")
        if header[:3] != ["time", "bid", "ask"]:
            raise TickFileError(f"{path}: header must start with time,bid,ask (got {shorten(','.join(header))})")
        has_volume = len(header) > 3 and header[3] == "volume"
        last_msc = None
        for line_no, line in enumerate(handle, start=2):
            parts = line.rstrip("\r\n").split(",")
            try:
                time_msc = tick_time_msc(parts[0])
                bid = _number("bid", parts[1])
                ask = _number("ask", parts[2])
                volume = _number("volume", parts[3]) if has_volume and len(parts) > 3 and parts[3] else 0.0
            except (ValueError, IndexError) as exc:
                stats.skipped += 1
                if not stats.first_error:
                    stats.first_error = f"{path}:{line_no}: {exc}"
                if len(stats.errors_by_line) < 100:
                    stats.errors_by_line.append(line_no)
                continue
            stats.rows += 1
            if last_msc is not None and time_msc < last_msc:
                stats.out_of_order += 1
                if not stats.first_out_of_order:
                    stats.first_out_of_order = f"{path}:{line_no}: {parts[0]} is earlier than the row before it"
            last_msc = time_msc
            yield SourceTick(time_msc, symbol, bid, ask, volume)


def merge_csv_ticks(paths: list[Path], stats: CsvStats | None = None, *, watch_overlap: bool = False) -> Iterator[SourceTick]:
    """Several files (the symbol of each is its name) merged into one time-ordered stream; one file given
    twice is a TickFileError (:func:`check_distinct_files`)."""
    check_distinct_files(paths)
    streams = [read_csv_ticks(path, stats=stats) for path in paths]
    if len(streams) == 1:
        return streams[0]
    if not (watch_overlap and shared_symbols(paths)):  # only evaluate reads stats.overlapping: none pay for it else
        return heapq.merge(*streams, key=lambda t: t.time_msc)
    tagged = [_tagged(stream, i) for i, stream in enumerate(streams)]
    return _watch_overlap(heapq.merge(*tagged, key=lambda pair: pair[0].time_msc), paths, stats if stats is not None else CsvStats())


def _tagged(stream: Iterator[SourceTick], i: int) -> Iterator[tuple[SourceTick, int]]:
    """Each tick with the index of its file (a function: a generator expression would bind ``i`` late, to the last)."""
    for tick in stream:
        yield tick, i


def _watch_overlap(merged: Iterator[tuple[SourceTick, int]], paths: list[Path], stats: CsvStats) -> Iterator[SourceTick]:
    """The merged ticks; files of one symbol whose ticks interleave (the symbol's ticks leave a file and come back to
    it) are named in ``stats.overlapping``. Consecutive periods of one feed never do; two brokers' feeds of one
    period always do, and scored as one series a trade opened on one feed's ask and closed on the other's bid (a
    hunt of evaluate, 2026-12-06: the mix read a positive Brier skill that neither feed had)."""
    current: dict[str, int] = {}  # symbol -> the file its latest tick came from
    left: dict[str, set[int]] = {}  # symbol -> files its ticks have moved on from
    for tick, i in merged:
        was = current.get(tick.symbol)
        if was != i:
            if was is not None:
                done = left.setdefault(tick.symbol, set())
                done.add(was)
                if i in done:  # back to a file it had left: they interleave
                    named = stats.overlapping.setdefault(tick.symbol, [])
                    for path in (str(paths[was]), str(paths[i])):
                        if path not in named:
                            named.append(path)
            current[tick.symbol] = i
        yield tick


#: Starting mid and typical spread in pips for the generator's well-known symbols (their pips: ``pips.pip_size``).
_KNOWN = {
    "EURUSD": (1.0850, 0.8),
    "GBPUSD": (1.2650, 1.1),
    "USDJPY": (148.50, 0.9),
    "AUDUSD": (0.6550, 0.9),
    "USDCHF": (0.8850, 1.2),
    "USDCAD": (1.3550, 1.3),
    "NZDUSD": (0.6050, 1.4),
    "EURJPY": (161.00, 1.5),
    "XAUUSD": (2350.0, 25.0),
}


def _start(symbol: str, i: int) -> tuple[float, float, float]:
    """Starting mid, pip and typical spread in pips of the generator's ``i``-th symbol.

    One not in ``_KNOWN`` starts at 10,000 pips (+1,000 per place in the list): 1.0, 1.1, ... for an FX
    pair, 100, 110, ... for a JPY-quoted one, so its quotes are as many pips wide and as many digits
    deep as a known one's.
    """
    if symbol in _KNOWN:
        mid, spread = _KNOWN[symbol]
        return mid, pip_size(symbol, mid), spread
    pip = pip_size(symbol, 1.0)
    return 10_000 * pip * (1.0 + 0.1 * i), pip, 1.0


def _digits(pip: float) -> int:
    """Price digits a quote is rounded to: one below the pip (5 for most FX, 3 for JPY pairs and gold)."""
    return max(0, round(-math.log10(pip)) + 1)


def generate_ticks(symbols: tuple[str, ...], seed: int, starts: Mapping[str, float] | None = None) -> Iterator[tuple[str, float, float, float]]:
    """Endless random-walk quotes: (symbol, bid, ask, volume), symbols in random turn.

    Mid follows a driftless random walk with occasional bursts, ~0.3 pip per
    tick where the typical spread is a pip or less and 0.3 x the spread where
    it is wider (gold's 25 pips: 7.5), so a spread is a few ticks' moves on
    every symbol (gold at 0.3 pip a tick took ~77 ticks' moves to earn its
    spread back: every paper trade on it lost); spreads wander around the
    symbol's typical spread. Realistic enough for features, signals and paper
    fills to do real work; not a market model.
    """
    rng = random.Random(seed)
    state: dict[str, list[Any]] = {}  # [mid, pip, typical spread in pips, price digits]: the digits once, not per tick
    for i, symbol in enumerate(symbols):
        mid, pip, typical = _start(symbol, i)
        if starts and starts.get(symbol, 0) > 0:  # where a restored book's position of it was opened: no P&L jump
            mid = starts[symbol]
        state[symbol] = [mid, pip, typical, _digits(pip)]
    while True:
        symbol = symbols[rng.randrange(len(symbols))]
        entry = state[symbol]
        mid, pip, typical, digits = entry
        burst = 4.0 if rng.random() < 0.01 else 1.0
        mid = max(pip * 10, mid + rng.gauss(0.0, 0.3 * max(1.0, typical) * pip * burst))
        entry[0] = mid
        spread_pips = max(0.1, typical * (0.6 + 0.8 * rng.random()))
        half = spread_pips * pip / 2
        bid = round(mid - half, digits)
        ask = round(mid + half, digits)
        if ask <= bid:
            ask = round(bid + pip / 10, digits)
        yield symbol, bid, ask, float(rng.randint(1, 10))
