"""Tick sources: the paper generator quotes in the pips evaluate reports in (quantumtrader.pips); the CSV reader
reads what a tick file holds and nothing Python alone would make of it."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest

from quantumtrader.paper.ticks import CsvStats, SourceTick, generate_ticks, read_csv_ticks
from quantumtrader.pips import pip_size

SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD", "GBPJPY", "XAGUSD", "BTCUSD", "FOO")


def test_generated_spreads_are_a_few_pips_wide_by_the_one_pip_convention() -> None:
    ticks = list(itertools.islice(generate_ticks(SYMBOLS, seed=3), 20_000))

    for symbol in SYMBOLS:
        quotes = [(bid, ask) for name, bid, ask, _ in ticks if name == symbol]
        pip = pip_size(symbol, statistics.median(0.5 * (bid + ask) for bid, ask in quotes))
        spread_pips = statistics.median((ask - bid) / pip for bid, ask in quotes)
        assert 0.5 <= spread_pips <= 30.0, (symbol, pip, spread_pips)  # typical spreads: 0.8 (EURUSD) to 25 (gold)


def _read(tmp: Path, *rows: str) -> tuple[list[SourceTick], CsvStats]:
    path = tmp / "EURUSD.csv"
    path.write_text("time,bid,ask,volume\n" + "".join(row + "\n" for row in rows))
    stats = CsvStats()
    return list(read_csv_ticks(path, stats=stats)), stats


@pytest.mark.parametrize("row", ["1705314600000,1_1,1_1002", "1705314600000,1.1,1.1002,1_0", "1705314600000,١.١,1.1002"])
def test_a_number_python_reads_but_a_csv_does_not_hold_is_malformed(tmp_path: Path, row: str) -> None:
    """Found by a review (2026-12-05): float() takes digit-group underscores (PEP 515) and non-ASCII digits, so
    `1_1,1_1002` was read as a quote of 11 / 11002."""
    ticks, stats = _read(tmp_path, row, "1705314600000,1.1,1.1002,1")

    assert [(t.bid, t.ask, t.volume) for t in ticks] == [(1.1, 1.1002, 1.0)]
    assert stats.skipped == 1 and "is not a decimal number" in stats.first_error, stats.first_error


@pytest.mark.parametrize(
    ("time", "says"),
    [
        ("1705314600000.5", "time 1705314600000.5 is not integer milliseconds"),  # was "month must be in 1..12"
        ("1.7e12", "time 1.7e12 is not integer milliseconds"),
        ("1705314600", "time 1705314600 is before 2000-01-01 (seconds? times 1000 it is 2024-01-15T10:30:00.000Z)"),  # was read as January 1970
        ("0", "time 0 is before 2000-01-01;"),
        ("1999-12-31T23:59:59Z", "is before 2000-01-01"),
        ("99999999999999999999", "time after 9999-12-31"),
        ("2014-02-30T00:00:00Z", "day is out of range for month"),
        ("2024-01-15T10:30:00", "time has no timezone"),
    ],
)
def test_a_time_that_cannot_be_used_is_named_with_the_forms_a_time_may_take(tmp_path: Path, time: str, says: str) -> None:
    ticks, stats = _read(tmp_path, f"{time},1.1,1.1002,1")

    assert ticks == [] and stats.skipped == 1
    assert says in stats.first_error and "integer milliseconds since 1970" in stats.first_error and "ISO-8601" in stats.first_error, stats.first_error


def test_times_the_daemon_takes_are_read_as_before(tmp_path: Path) -> None:
    ticks, stats = _read(tmp_path, "1398902400292,1.1,1.1002,1", " 2014-05-01T00:00:00.292Z , 1.1 ,1.1002,", "2014-05-01T02:00:00.292+02:00,1.1,1.1002,2")

    assert stats.skipped == 0 and [t.time_msc for t in ticks] == [1398902400292] * 3


def test_files_whose_system_gives_no_inode_are_told_apart_by_their_resolved_names(tmp_path: Path, monkeypatch) -> None:
    """st_ino is unique only when non-zero: some Windows file systems and redirectors give 0, and two different
    files were refused as "the same file" (a review, 2026-12-05). Simulated: every stat answers inode 0."""
    import os

    from quantumtrader.paper import ticks

    (tmp_path / "t").mkdir()
    one, other = tmp_path / "t" / "EURUSD.csv", tmp_path / "t" / "GBPUSD.csv"
    for path in (one, other):
        path.write_text("time,bid,ask\n2024-01-15T10:30:00.000Z,1.1,1.1002\n")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: os.stat_result((*real_stat(p, *a, **k)[:1], 0, *real_stat(p, *a, **k)[2:10])))
    ticks.check_distinct_files([one, other])  # two files
    with pytest.raises(ticks.TickFileError, match="the same file, given twice"):
        ticks.check_distinct_files([one, tmp_path / "t" / ".." / "t" / "EURUSD.csv"])  # one, by two names
