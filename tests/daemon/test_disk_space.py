"""Health names a nearly full data disk (``store.low_disk_mb``) before the store's writes fail on it.

The full signal history (the default) grows every day; before, the first sign of a filling disk was the
writes failing (health degraded, signals held in memory)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import structlog

from quantumtrader.daemon.disk import DiskSpaceWatch
from support import Endpoints, control, daemon_process, start, stop, wait_for


def _watch(free_mb: list[int | OSError], low_mb: int) -> DiskSpaceWatch:
    def usage(path: Path) -> SimpleNamespace:
        value = free_mb[0]
        if isinstance(value, OSError):
            raise value
        return SimpleNamespace(free=value * 1_000_000 + 999_999)

    return DiskSpaceWatch(Path("/data"), low_mb, usage=usage)


def test_a_disk_under_the_threshold_is_a_problem_logged_once_each_way() -> None:
    free: list[int | OSError] = [5_000]
    watch = _watch(free, 1_000)
    with structlog.testing.capture_logs() as logged:
        watch.check()
        assert watch.problems() == [] and watch.free_mb == 5_000
        free[0] = 800
        assert watch.problems() == []  # health reads the latest check, it does not read the disk itself
        watch.check()
        problems = watch.problems()
        assert len(problems) == 1 and problems[0].startswith("data directory's disk: 800 MB free, under store.low_disk_mb (1,000)")
        assert "/data" not in problems[0]  # health answers callers without a token; the log names the path
        free[0] = 700
        watch.check()
        assert watch.problems()[0].startswith("data directory's disk: 700 MB free")
        free[0] = 1_000  # at the threshold is not under it
        watch.check()
        assert watch.problems() == []
    assert [(e["event"].split(":")[0], e.get("free_mb")) for e in logged] == [
        ("the data directory's disk is nearly full", 800),
        ("the data directory's disk has room again", 1_000),
    ]
    assert logged[0]["path"] == str(Path("/data")) and logged[0]["log_level"] == "warning"


def test_zero_never_warns_and_an_unreadable_disk_is_said_once_not_raised() -> None:
    free: list[int | OSError] = [0]
    never = _watch(free, 0)
    never.check()
    assert never.problems() == []
    watch = _watch(free, 1_000)
    free[0] = FileNotFoundError(2, "No such file or directory")
    with structlog.testing.capture_logs() as logged:
        for _ in range(3):
            watch.check()
            assert watch.problems() == [] and watch.free_mb is None
    assert [e["event"] for e in logged] == ["the data directory's free space cannot be read"]


def test_a_disk_that_hangs_never_holds_up_health() -> None:
    """A network drive that hangs: statvfs waits for seconds. Health answers from the latest read meanwhile."""
    import threading
    import time

    release = threading.Event()

    def hanging(path: Path) -> SimpleNamespace:
        release.wait(10)
        return SimpleNamespace(free=1)

    watch = DiskSpaceWatch(Path("/data"), 1_000, usage=hanging)
    reader = threading.Thread(target=watch.check)
    reader.start()
    try:
        began = time.monotonic()
        assert watch.problems() == [] and time.monotonic() - began < 0.1
    finally:
        release.set()
        reader.join(10)
    assert watch.problems()[0].startswith("data directory's disk: 0 MB free")


def test_the_daemon_says_so_in_health_and_its_log(tmp_path: Path) -> None:
    """A real daemon on the real disk, the threshold above any disk's size (2,000,000,000 MB: 2 PB)."""
    eps = Endpoints()
    data = tmp_path / "data"
    with daemon_process(eps, tmp_path, QT_DAEMON__HEALTH_INTERVAL_S="0.2", QT_STORE__LOW_DISK_MB=str(2_000_000_000), QT_DAEMON__STATUS_INTERVAL_S="0.5"):
        paper = start(["paper", "--rate", "20", "--heartbeat-s", "0.5"], eps.env(data), tmp_path / "paper.log")
        try:
            health = wait_for(lambda: (h := control(eps.control)["health"])["terminals"] and h, 20, "a terminal")
            assert health["status"] == "degraded", health
            disk = [p for p in health["problems"] if p.startswith("data directory's disk:")]
            assert len(disk) == 1 and "under store.low_disk_mb (2,000,000,000)" in disk[0], health["problems"]
            assert isinstance(health["disk"]["free_mb"], int) and 0 < health["disk"]["free_mb"] < 2_000_000_000, health["disk"]
            assert health["disk"]["low_disk_mb"] == 2_000_000_000
            wait_for(lambda: '"disk_free_mb":' in (tmp_path / "daemon.log").read_text(encoding="utf-8"), 10, "a status line")
        finally:
            stop(paper)
    text = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    warned = [line for line in text.splitlines() if "the data directory's disk is nearly full" in line]
    assert len(warned) == 1 and f'"path": "{data.as_posix()}"' in warned[0].replace("\\\\", "/"), warned  # once, with the path
