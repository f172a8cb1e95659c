"""qt-bench journal: both ways measured on the same rows, the journal's files really used, bad options refused."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from quantumtrader.bench import journal as journal_bench
from quantumtrader.bench.journal import run_journal_bench
from quantumtrader.store import journal as journal_module


def test_each_way_is_measured_per_batch_and_the_journal_changes_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal_bench, "WARMUP_BATCHES", 10)
    monkeypatch.setattr(journal_module, "CHUNK_BYTES", 64 << 10)  # ~65 rows a file: the run goes through several
    monkeypatch.setattr(journal_module, "TOUCH_AHEAD_BYTES", 16 << 10)
    out = tmp_path / "journal.json"
    lines: list[str] = []
    result = run_journal_bench(batches=200, signals_per_batch=2, pause_us=10, directory=tmp_path, json_out=out, log=lines.append)
    written = orjson.loads(out.read_bytes())
    assert written["figures"] == result["figures"] and written["machine"]["cores"]
    for name in ("os.write (before)", "journal (mmap)", "prepare (between batches)"):
        assert result["figures"][name]["count"] == 200, name  # warm-up excluded
    assert result["journal_files"] >= (200 + 10) * 2 * result["row_bytes"] // (64 << 10)
    assert 500 < result["row_bytes"] < 3000  # a signal row of the daemon's shape
    ratio = result["journal_over_write"]["p50_us"]
    assert ratio == pytest.approx(result["figures"]["journal (mmap)"]["p50_us"] / result["figures"]["os.write (before)"]["p50_us"])
    assert any("journal / os.write" in line for line in lines)
    assert result["directory"] == str(tmp_path) and [p.name for p in tmp_path.iterdir()] == ["journal.json"]  # its files removed


@pytest.mark.parametrize(("kwargs", "message"), [({"batches": 99}, "batches"), ({"signals_per_batch": 0}, "signals per batch"), ({"pause_us": -1}, "pause")])
def test_options_out_of_range_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_journal_bench(**kwargs)
