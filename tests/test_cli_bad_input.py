"""The CLI on bad files and paths: a clear message and a non-zero exit, never a traceback (each case found by a review)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    return subprocess.run([sys.executable, "-m", "quantumtrader", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _refused(result: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for text in says:
        assert text in result.stderr, (text, result.stderr[-2000:])


def _good_csv(path: Path, rows: int = 5) -> Path:
    path.write_text("time,bid,ask,volume\n" + "".join(f"2024-01-15T10:30:{i:02d}.000Z,1.1,1.1002,1\n" for i in range(rows)))
    return path


def test_tick_files_that_cannot_be_read_are_named_before_anything_runs(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    truncated = tmp_path / "EURUSD.csv.gz"
    truncated.write_bytes(gzip.compress(b"time,bid,ask\n" + b"2024-01-15T10:30:00.000Z,1.1,1.1002\n" * 2000)[:200])
    # its header and first rows read: refused when the replay reaches the cut
    _refused(_cli("evaluate", str(truncated), "--no-progress", "--data-dir", data), 1, "EURUSD.csv.gz", "cannot read", "EOFError")
    _refused(_cli("evaluate", str(tmp_path / "nope.csv"), "--data-dir", data), 2, "FILE:", "no such file")
    _refused(_cli("evaluate", str(tmp_path), "--data-dir", data), 2, "not a file")  # a directory
    headerless = tmp_path / "GBPUSD.csv"
    headerless.write_text("1,2,3\n")
    _refused(_cli("evaluate", str(headerless), "--data-dir", data), 2, "header must start with time,bid,ask")
    # run --paper: before, the check was only that the file existed; the paper child then failed and was restarted forever
    _refused(_cli("run", "--paper", "--no-sidecar", "--ticks", str(headerless), "--data-dir", data), 2, "--ticks:", "header")


@pytest.mark.timeout(300)
def test_a_file_of_only_unreadable_rows_is_an_error_not_a_table_of_zeros(tmp_path: Path) -> None:
    naive = tmp_path / "EURUSD.csv"
    naive.write_text("time,bid,ask\n2024-01-15T10:30:00,1.1,1.1002\n2024-01-15T10:30:01,1.1,1.1002\n")  # no timezone
    (tmp_path / "fxcm").mkdir()
    other = tmp_path / "fxcm" / "EURUSD.csv"
    other.write_text(naive.read_text())
    # two files of one symbol are merged by time (consecutive months of one feed): said, not refused
    _refused(_cli("evaluate", str(naive), str(other), "--no-progress", "--data-dir", str(tmp_path / "data"), timeout=280), 1, "merged by time", "no tick accepted", "4 unreadable", "time has no timezone")


def test_config_and_output_paths_that_cannot_be_used_are_clear_errors(tmp_path: Path) -> None:
    _refused(_cli("config", "show", "--config", str(tmp_path)), 2, "--config", "cannot read")
    _refused(_cli("config", "init", str(tmp_path / "missing" / "dir" / "q.toml")), 1, "cannot write")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused(_cli("token", "--user", "nobody", "--data-dir", str(blocker / "data")), 2, "data_dir: cannot create")
    good = _good_csv(tmp_path / "EURUSD.csv")
    _refused(_cli("evaluate", str(good), "--plot", str(blocker / "out.png"), "--data-dir", str(tmp_path / "data")), 2, "cannot write")


def test_a_numba_cache_dir_that_cannot_be_made_is_named_not_a_traceback(tmp_path: Path) -> None:
    """Found by a fresh-machine audit: NUMBA_CACHE_DIR set by hand to a place that cannot be created raised
    PermissionError from the daemon's start-up (a traceback, exit 1) instead of the usual exit 2 naming it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    env["NUMBA_CACHE_DIR"] = str(blocker / "numba")
    result = subprocess.run([sys.executable, "-m", "quantumtrader", "run", "--no-sidecar", "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=120)
    _refused(result, 2, "NUMBA_CACHE_DIR", "cannot write the Numba cache")
    # commands that compile nothing are not held up by it (a lost phone's tokens must be revocable)
    listed = subprocess.run([sys.executable, "-m", "quantumtrader", "user", "list", "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
