"""Tick files are outside input: any row, however broken, is skipped and counted; only a file that cannot be used at all
(no header, not text, a name that is no symbol) is an error, and that one is named. Never a traceback.

Found by trying extremes: a row whose time was 20 digits of milliseconds (they parse; 2^64 and beyond) passed the
reader and ended ``qt-daemon evaluate`` when the tick was encoded for validation (no JSON encoder writes such an
integer); the paper terminal would have met it the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantumtrader.evaluate.replay import load_ticks
from quantumtrader.paper.ticks import TickFileError

FIELDS = ("", " ", "0", "-0", "1.1", "1.1002", "1e308", "1e309", "-1e308", "nan", "inf", "-inf", "1e-320", "0x10", "1_000",
          "99999999999999999999", "18446744073709551615", "253402300799999", "253402300800000", "1398902400292", "-5",
          "2014-05-01T00:00:00.292Z", "2014-05-01T00:00:00.292", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z",
          "2014-05-01T00:00:00.292+23:59", "2014-02-30T00:00:00Z", "\x00", "ü", '"1.1"', "1,1")
rows = st.lists(st.sampled_from(FIELDS), min_size=0, max_size=6).map(",".join)
headers = st.sampled_from(("time,bid,ask", "time,bid,ask,volume", "TIME,BID,ASK,VOLUME", "time,bid", "bid,ask,time", ""))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=headers, lines=st.lists(rows, max_size=12), ending=st.sampled_from(("\n", "\r\n")))
def test_any_rows_are_read_or_skipped_and_only_an_unusable_file_is_an_error(tmp_path: Path, header: str, lines: list[str], ending: str) -> None:
    path = tmp_path / "EURUSD.csv"
    path.write_text(ending.join([header, *lines]) + ending, encoding="utf-8", newline="")
    try:
        ticks = load_ticks([path])
    except TickFileError as exc:
        assert not header.lower().startswith("time,bid,ask"), exc  # only the header makes a file unusable here
        return
    assert header.lower().startswith("time,bid,ask")
    assert ticks.rows_read + ticks.bad_rows == len(lines)  # every row either read or counted as skipped
    assert len(ticks.sym) == ticks.rows_read - sum(ticks.rejected.values())  # and every read one kept or refused with a reason


def test_qt_daemon_evaluate_on_a_file_of_broken_rows_reports_what_it_could_use(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD.csv"
    good = [f"{1398902400292 + 100 * i},1.1,1.1002" for i in range(50)]
    path.write_text("\n".join(["time,bid,ask", "99999999999999999999,1.1,1.1002", "18446744073709551615,1.1,1.1002", "1398902400000,1e308,1e309", *good]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    result = subprocess.run([sys.executable, "-m", "quantumtrader", "evaluate", str(path), "--data-dir", str(tmp_path / "data"), "--json", str(tmp_path / "out.json")],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert (tmp_path / "out.json").is_file()
