"""One daemon per data directory: a second one refuses to start and names the holder; a killed holder frees it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from quantumtrader.store.db import StateFileError
from quantumtrader.store.lock import DataDirBusy, DataDirLock
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
