"""The CPU shares a benchmark phase records: parsed from /proc/stat's format, and real on Linux."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from quantumtrader.bench.cpu import CpuPhase, CpuTimes, cpu_shares, describe, read_cpu_times


def _stat(path: Path, user: int, idle: int, steal: int, guest: int = 0) -> Path:
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is part of user already
    path.write_text(f"cpu  {user} 5 20 {idle} 10 0 5 {steal} {guest} 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\n")
    return path


def test_the_aggregate_line_is_read_with_guest_time_counted_once_and_iowait_as_idle(tmp_path: Path) -> None:
    times = read_cpu_times(_stat(tmp_path / "stat", user=100, idle=300, steal=40, guest=60))
    assert times == CpuTimes(busy=100 + 5 + 20 + 0 + 5, idle=300 + 10, steal=40)


def test_shares_are_of_the_difference_between_two_readings(tmp_path: Path) -> None:
    before = read_cpu_times(_stat(tmp_path / "a", user=1000, idle=5000, steal=100))
    after = read_cpu_times(_stat(tmp_path / "b", user=1000 + 50, idle=5000 + 30, steal=100 + 20))
    shares = cpu_shares(before, after)
    assert shares is not None
    assert (shares["busy_pct"], shares["idle_pct"], shares["steal_pct"]) == (50.0, 30.0, 20.0)


def test_no_file_a_foreign_format_or_a_zero_interval_gives_none_not_a_guess(tmp_path: Path) -> None:
    assert read_cpu_times(tmp_path / "missing") is None
    (tmp_path / "odd").write_text("intr 1 2 3\n")
    assert read_cpu_times(tmp_path / "odd") is None
    (tmp_path / "bad").write_text("cpu  1 2 x 4 5\n")
    assert read_cpu_times(tmp_path / "bad") is None
    same = CpuTimes(1, 2, 3)
    assert cpu_shares(same, same) is None and cpu_shares(None, same) is None
    assert cpu_shares(CpuTimes(10, 10, 10), CpuTimes(5, 20, 10)) is None  # a counter went back: not trusted
    assert describe({"floor": None}) == "CPU: not measured here (no /proc/stat)"


def test_the_console_line_warns_only_when_the_host_took_a_notable_share() -> None:
    quiet = describe({"floor": {"busy_pct": 40.0, "idle_pct": 58.0, "steal_pct": 2.0}})
    assert "floor 40% / 2%" in quiet and "host took" not in quiet
    noisy = describe({"floor": {"busy_pct": 40.0, "idle_pct": 28.0, "steal_pct": 32.0}, "daemon": None})
    assert "host took up to 32%" in noisy and "daemon" not in noisy


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_a_busy_phase_on_this_machine_shows_busy_time() -> None:
    with CpuPhase() as phase:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
    shares = phase.shares
    assert shares is not None, "no CPU shares from /proc/stat on Linux"
    assert abs(shares["busy_pct"] + shares["idle_pct"] + shares["steal_pct"] - 100) < 0.5
    # one core of the machine's spun the whole time, less what the host stole (35 % steal seen here)
    assert shares["busy_pct"] > 0.6 * (100 - shares["steal_pct"]) / (os.cpu_count() or 1)
    assert 0.2 < shares["cpu_seconds"]
