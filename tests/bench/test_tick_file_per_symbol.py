"""qt-bench ws --ticks: one real tick file played as N symbols. Before, the file's one symbol was all the
clients got (four of the app clients' five symbols had no updates) whatever --symbols said."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from quantumtrader.bench.common import MAX_PAUSE_MS, paper_source, tick_file_per_symbol
from quantumtrader.paper.ticks import TickFileError, merge_csv_ticks, read_csv_ticks, symbol_from_path

SHARED_TICKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ticks" / "EURUSD.csv.gz"


@pytest.fixture(scope="module")
def real_ticks() -> Path:
    assert SHARED_TICKS.is_file(), f"the shared tick data is missing: looked for {SHARED_TICKS}"
    return SHARED_TICKS


def test_each_symbol_gets_an_equal_stretch_of_market_time_and_all_end_together(tmp_path: Path, real_ticks: Path) -> None:
    # 120,000 rows of the real file span a weekend: cut by row counts, the stretch over it lasted days of file
    # time and busy ones ran out minutes into a run (found in review); cut by market time they end together
    symbols = [f"SYM{i:02d}" for i in range(20)]
    files, held = tick_file_per_symbol(real_ticks, symbols, tmp_path, 120_000)
    source = list(itertools.islice(read_csv_ticks(real_ticks), 120_000))
    assert held == len(source) == 120_000
    assert max(b.time_msc - a.time_msc for a, b in itertools.pairwise(source)) > 24 * 3_600_000  # the weekend is in it
    assert [symbol_from_path(f) for f in files] == symbols
    got = [list(read_csv_ticks(path)) for path in files]  # the paper terminal's own reader
    # every row once, in the file's order, stretch after stretch
    assert [(t.bid, t.ask) for stretch in got for t in stretch] == [(t.bid, t.ask) for t in source]
    firsts = [stretch[0].time_msc for stretch in got]
    lasts = [stretch[-1].time_msc for stretch in got]
    assert min(firsts) == source[0].time_msc and max(firsts) - source[0].time_msc <= MAX_PAUSE_MS  # each from its stretch's start
    assert max(lasts) - min(lasts) <= MAX_PAUSE_MS
    # inside a stretch the file's gaps, a pause over a minute cut to one (1 ms of rounding)
    row = 0
    for stretch in got:
        original = source[row : row + len(stretch)]
        row += len(stretch)
        want = [min(b.time_msc - a.time_msc, MAX_PAUSE_MS) for a, b in itertools.pairwise(original)]
        have = [b.time_msc - a.time_msc for a, b in itertools.pairwise(stretch)]
        assert all(abs(h - w) <= 1 for h, w in zip(have, want, strict=True))
    # the terminal merges by time: every symbol is streaming from the start, not one after another
    first = list(itertools.islice(merge_csv_ticks(files), 2000))
    assert {t.symbol for t in first} == set(symbols)
    assert paper_source(files) == [arg for f in files for arg in ("--ticks", str(f))]


def test_a_file_too_short_for_the_symbols_is_a_clear_error(tmp_path: Path) -> None:
    short = tmp_path / "EURUSD.csv"
    short.write_text("time,bid,ask\n1700000000000,1.1,1.1001\n1700000000100,1.1,1.1002\n", encoding="utf-8")
    with pytest.raises(TickFileError, match="2 good rows; 3 symbols"):
        tick_file_per_symbol(short, ["A", "B", "C"], tmp_path / "out", 1000)
