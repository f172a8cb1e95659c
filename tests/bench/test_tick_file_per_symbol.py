"""qt-bench ws --ticks: one real tick file played as N symbols. Before, the file's one symbol was all the
clients got (four of the app clients' five symbols had no updates) whatever --symbols said."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from quantumtrader.bench.common import paper_source, tick_file_per_symbol
from quantumtrader.paper.ticks import TickFileError, merge_csv_ticks, read_csv_ticks, symbol_from_path

SHARED_TICKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ticks" / "EURUSD.csv.gz"


@pytest.fixture(scope="module")
def real_ticks() -> Path:
    assert SHARED_TICKS.is_file(), f"the shared tick data is missing: looked for {SHARED_TICKS}"
    return SHARED_TICKS


def test_each_symbol_gets_its_own_stretch_of_the_file_starting_together(tmp_path: Path, real_ticks: Path) -> None:
    symbols = ["EURUSD", "GBPUSD", "XAUUSD", "USDJPY", "AUDUSD"]
    files = tick_file_per_symbol(real_ticks, symbols, tmp_path, 5000)
    source = list(itertools.islice(read_csv_ticks(real_ticks), 5000))
    assert [symbol_from_path(f) for f in files] == symbols
    for i, path in enumerate(files):
        got = list(read_csv_ticks(path))  # the paper terminal's own reader
        stretch = source[i * 1000 : (i + 1) * 1000]
        assert [(t.bid, t.ask) for t in got] == [(t.bid, t.ask) for t in stretch]
        assert got[0].time_msc == source[0].time_msc
        assert [b.time_msc - a.time_msc for a, b in itertools.pairwise(got)] == [b.time_msc - a.time_msc for a, b in itertools.pairwise(stretch)]
    # the terminal merges by time: every symbol is streaming from the start, not one after another
    first = list(itertools.islice(merge_csv_ticks(files), 200))
    assert {t.symbol for t in first} == set(symbols)
    assert paper_source(files) == [arg for f in files for arg in ("--ticks", str(f))]


def test_a_file_too_short_for_the_symbols_is_a_clear_error(tmp_path: Path) -> None:
    short = tmp_path / "EURUSD.csv"
    short.write_text("time,bid,ask\n1700000000000,1.1,1.1001\n1700000000100,1.1,1.1002\n", encoding="utf-8")
    with pytest.raises(TickFileError, match="2 good rows; 3 symbols"):
        tick_file_per_symbol(short, ["A", "B", "C"], tmp_path / "out", 1000)
