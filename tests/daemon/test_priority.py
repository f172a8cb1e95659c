"""The tick thread's priority: raised for the loop's thread only, reported, and a refusal is not fatal."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from quantumtrader.priority import LEVELS, raise_thread_priority
from support import Endpoints, control, daemon_process

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads per-thread nice values from /proc")
#: The nice value the tests run at: "normal" and "from before" mean this one, not 0 (a suite started under
#: ``nice -n 5`` failed four of these tests that assumed 0).
BASE_NICE = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def _thread_nice(pid: int) -> dict[str, int]:
    """name -> nice of every thread of ``pid`` (from /proc/PID/task/TID/stat; field 19 is nice)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[f"{name}:{task.name}"] = int(fields[16])
    return out


def test_unknown_level_is_a_clear_error_and_normal_changes_nothing() -> None:
    with pytest.raises(ValueError, match="above_normal"):
        raise_thread_priority("ludicrous")
    before = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    result = raise_thread_priority("normal")
    assert result.applied and result.requested == "normal"
    if before is not None:
        assert os.getpriority(os.PRIO_PROCESS, 0) == before


@linux_only
def test_only_the_calling_thread_is_raised_or_the_refusal_says_how_to_allow_it() -> None:
    results = []
    thread = threading.Thread(target=lambda: results.append((raise_thread_priority("high"), threading.get_native_id())))
    thread.start()
    thread.join()
    (result, tid), = results
    # our own thread is untouched: the level is per thread, not per process
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == BASE_NICE
    if result.applied:
        assert result.detail == f"nice {LEVELS['high'][0]}"
    else:
        assert "CAP_SYS_NICE" in result.detail and "normal" in result.detail


@linux_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run a child as an unprivileged user")
def test_an_unprivileged_process_is_refused_and_runs_on() -> None:
    # The module is imported as root, then the child gives up root for good, as a service account would run.
    code = (
        "import os; from quantumtrader.priority import raise_thread_priority as r;"
        " os.setgid(65534); os.setuid(65534); x = r('high'); print(x.applied, x.detail)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False ") and "CAP_SYS_NICE" in done.stdout


@linux_only
@pytest.mark.parametrize("level", ["high", "normal"])
def test_the_daemon_raises_its_tick_thread_above_its_io_thread_and_reports_it(tmp_path: Path, level: str) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path, QT_DAEMON__TICK_PRIORITY=level) as proc:
        reported = control(eps.control)["health"]["tick_priority"]
        threads = _thread_nice(proc.pid)
    assert reported["requested"] == level
    loop = threads[next(name for name in threads if name.endswith(f":{proc.pid}"))]  # the main thread runs the loop
    io_threads = [nice for name, nice in threads.items() if name.startswith("ZMQbg/IO")]
    assert io_threads, threads
    assert all(nice == BASE_NICE for nice in io_threads), threads
    if level == "normal" or not reported["applied"]:
        assert loop == BASE_NICE
    else:
        assert loop == LEVELS["high"][0], threads
    # every other thread (ZeroMQ's, the store's writer, the signal journal's helper) keeps the normal level
    others = [nice for name, nice in threads.items() if not name.endswith(f":{proc.pid}")]
    assert len(others) >= len(io_threads) + 2 and all(nice == BASE_NICE for nice in others), threads


@linux_only
def test_a_child_started_from_the_raised_thread_runs_at_the_priority_from_before() -> None:
    from quantumtrader.daemon.supervisor import Child

    found: list[tuple[bool, int, int]] = []

    def from_the_loop_thread() -> None:
        result = raise_thread_priority("high")
        child = Child("sleeper", [])
        child.args = [sys.executable, "-c", "import time; time.sleep(30)"]
        child.start()  # as a restart from the loop would
        assert child.process is not None
        try:
            found.append((result.applied, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), os.getpriority(os.PRIO_PROCESS, child.process.pid)))
        finally:
            child.stop()

    thread = threading.Thread(target=from_the_loop_thread)
    thread.start()
    thread.join()
    (applied, loop_nice, child_nice), = found
    if applied:
        assert loop_nice == LEVELS["high"][0]
    assert child_nice == BASE_NICE
