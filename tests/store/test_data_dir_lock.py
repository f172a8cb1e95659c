"""One daemon per data directory: a second one refuses to start and names the holder; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quantumtrader.store import lock
from quantumtrader.store.db import StateFileError
from quantumtrader.store.lock import DEAD_HOLDER_WAIT_S, DataDirBusy, DataDirLock
from support import Endpoints, control, start, stop, wait_for, wait_ready


def test_a_second_lock_on_the_directory_is_refused_until_the_first_is_released(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path), DataDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DataDirBusy, match=f"in use by process {os.getpid()}"):
            second.acquire()
    finally:
        first.release()
    second.acquire()  # released: free again
    second.release()


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=60)
    return gone.pid


def _held_for(tmp_path: Path, pid: int) -> DataDirLock:
    """The directory's lock taken in this process, the file naming ``pid`` as its holder: a lock the OS has not yet
    released after its process died, as Windows may leave one for a while (msvcrt.locking's "depending on available
    system resources"), which Linux's flock never does; so it is made by hand here."""
    held = DataDirLock(tmp_path)
    held.acquire()
    (tmp_path / "daemon.lock").write_text(f"{pid:<20}")
    return held


def _refused_after(tmp_path: Path, pid: int, match: str) -> float:
    """Seconds a second lock took to be refused (DataDirBusy matching ``match``) while one is held for ``pid``."""
    held = _held_for(tmp_path, pid)
    try:
        began = time.monotonic()
        with pytest.raises(DataDirBusy, match=match):
            DataDirLock(tmp_path).acquire()
        return time.monotonic() - began
    finally:
        held.release()


def test_a_lock_recorded_for_a_dead_process_is_waited_for_where_locks_outlive_their_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a Windows review (2026-12-05): a service manager restarting a killed daemon at once could be
    refused with DataDirBusy naming the dead pid. Tried again while the recorded holder is not alive."""
    monkeypatch.setattr(lock, "LOCKS_OUTLIVE_THEIR_HOLDER", True)  # as on Windows
    held = _held_for(tmp_path, _dead_pid())
    threading.Timer(0.5, held.release).start()  # the OS gets round to it
    began = time.monotonic()
    restarted = DataDirLock(tmp_path)
    restarted.acquire()
    restarted.release()
    assert 0.4 < time.monotonic() - began < DEAD_HOLDER_WAIT_S


def test_a_dead_holders_lock_that_stays_is_refused_after_the_wait_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "DEAD_HOLDER_WAIT_S", 0.3)
    monkeypatch.setattr(lock, "LOCKS_OUTLIVE_THEIR_HOLDER", True)  # as on Windows
    dead = _dead_pid()
    assert _refused_after(tmp_path, dead, f"locked for process {dead}, which is no longer running: .* try again in a moment") >= 0.3


def test_on_linux_a_held_lock_recorded_for_an_unknown_pid_is_a_live_holder_out_of_sight(tmp_path: Path) -> None:
    """flock is never held by a dead process: a pid this machine does not know holds it from another container or
    host. It was waited for 5 s and called dead, "try again": an invitation to delete the file (a review, 2026-12-05)."""
    if lock.LOCKS_OUTLIVE_THEIR_HOLDER:
        pytest.skip("Windows: such a lock may be a dead process's")
    unknown = _dead_pid()
    assert _refused_after(tmp_path, unknown, f"in use by process {unknown} \\(not a process this machine sees") < 0.5  # at once


def test_a_lock_held_by_a_live_process_is_refused_at_once(tmp_path: Path) -> None:
    assert _refused_after(tmp_path, os.getpid(), f"in use by process {os.getpid()}") < 0.5


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_lock_file_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    """A full disk at start: writing the pid raised a bare OSError, a traceback out of ``qt-daemon run``."""
    (tmp_path / "daemon.lock").symlink_to("/dev/full")  # every write: ENOSPC, as on a full disk
    with pytest.raises(StateFileError, match="cannot write the data directory's lock file .*No space left on device"):
        DataDirLock(tmp_path).acquire()
    with pytest.raises(StateFileError):  # the same error again, not DataDirBusy: the failed start let the lock go
        DataDirLock(tmp_path).acquire()


@pytest.mark.timeout(180)
def test_a_second_daemon_on_the_same_data_directory_refuses_to_start_until_the_first_is_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first_eps, second_eps = Endpoints(), Endpoints()  # other ports: only the directory is shared
    first = start(["run", "--no-sidecar"], first_eps.env(data), tmp_path / "first.log")
    refused = second = None
    try:
        wait_ready(first_eps.control, first, tmp_path / "first.log")
        refused = start(["run", "--no-sidecar"], second_eps.env(data), tmp_path / "refused.log")
        assert refused.wait(timeout=60) == 1
        message = (tmp_path / "refused.log").read_text(encoding="utf-8")
        assert f"in use by process {first.pid}" in message and "--data-dir" in message, message
        # the first one never noticed: still serving, and the lock file still names it (the refused one wrote nothing)
        assert control(first_eps.control)["health"]["uptime"] > 0
        assert (data / "daemon.lock").read_text().split()[0] == str(first.pid)

        first.send_signal(signal.SIGKILL)  # dies holding the lock: the OS frees it
        first.wait(timeout=10)
        second = start(["run", "--no-sidecar"], second_eps.env(data), tmp_path / "second.log")
        wait_ready(second_eps.control, second, tmp_path / "second.log")
        wait_for(lambda: (data / "daemon.lock").read_text().strip() == str(second.pid), 5, "the new holder's pid in the lock file")
    finally:
        for proc in (first, refused, second):
            if proc is not None and proc.poll() is None:
                stop(proc)
