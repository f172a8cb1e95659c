"""One daemon per data directory, held by an OS file lock for as long as the process lives.

The store's write path assumes it is the only writer: at start a daemon
settles every signal journal file it finds (they are what a dead process
left), and it retires its own files as it rotates them. A second daemon on
the same directory (another config with other ports, a copy started by
hand) would settle the first one's live journal and race it for the
SQLite writer. So the daemon takes an exclusive lock on ``daemon.lock`` in
the data directory before it touches the store, and refuses to start,
naming the holder, when another process has it.

The lock is the operating system's (``flock`` on Linux, ``msvcrt.locking``
on Windows): it goes with the process however the process ends, kill -9
included, so a stale lock file never blocks a restart. Windows releases the
locks of a killed process "depending on available system resources"
(``msvcrt.locking``), not at once: there a lock whose recorded holder is no
live process is tried again for :data:`DEAD_HOLDER_WAIT_S` before the start is
refused, so a service manager restarting the daemon at once is not refused in
the name of a dead pid. The descriptor is
not inherited (Python's default), so the terminals and the sidecar the
daemon starts never hold it. The file itself stays; its content (the
holder's pid) is only for the message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from quantumtrader.store.db import StateFileError

LOCK_FILE = "daemon.lock"
#: How long a lock whose recorded holder is dead is tried again (the module's docstring says why).
DEAD_HOLDER_WAIT_S = 5.0
#: Whether a lock may outlive its process: on Windows (msvcrt.locking) for a while; never with Linux's flock,
#: where a held lock recorded for a pid this machine does not know is a live holder out of sight (another
#: container or host sharing the directory): waiting, then calling it dead, invited deleting the lock file
#: and a second daemon on the same directory (a review, 2026-12-05).
LOCKS_OUTLIVE_THEIR_HOLDER = os.name == "nt"


class DataDirBusy(RuntimeError):
    """Another live process holds the data directory's lock."""


class DataDirLock:
    """``acquire()`` once at start; the OS releases it when the process exits (``release()`` for tests and tidiness).

    The data directory's by default; ``name`` and ``what`` make it another file's (a paper terminal's book: two
    terminals of one id on one directory each rewrote the book whole, and one's positions were gone)."""

    def __init__(self, data_dir: Path, *, name: str = LOCK_FILE, kind: str = "data directory", what: str = "", hint: str = "") -> None:
        self.path = Path(data_dir) / name
        self.kind = kind
        self.what = what or f"data directory {Path(data_dir)}"
        self.hint = hint or "(another daemon?); stop it, or give this one its own data directory (--data-dir or QT_DATA_DIR)"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirBusy` with the holder's pid when it is known."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        except OSError as exc:  # a directory in its place, no permission: a traceback before
            raise StateFileError(f"cannot open the {self.kind}'s lock file {self.path}: {exc.strerror or exc}") from None
        try:
            _lock_unless_held_by_the_living(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            unseen = holder is not None and not psutil.pid_exists(holder)
            if unseen and LOCKS_OUTLIVE_THEIR_HOLDER:
                raise DataDirBusy(
                    f"{self.what} is locked for process {holder}, which is no longer running:"
                    f" the OS has not released its lock after {DEAD_HOLDER_WAIT_S:g} s; try again in a moment"
                ) from None
            who = "another process" if holder is None else f"process {holder}"
            if unseen:  # flock: a live holder this machine does not see
                who += " (not a process this machine sees: another container or host sharing the directory?)"
            raise DataDirBusy(f"{self.what} is in use by {who} {self.hint}") from None
        # Written over the previous holder's pid at a fixed width: no truncation, which
        # Windows may refuse with a locked range in the file.
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid():<20}".encode())
        except OSError as exc:  # a full disk: the first write of a start, a traceback before (an operations review)
            os.close(fd)
            raise StateFileError(f"cannot write the {self.kind}'s lock file {self.path}: {exc.strerror or exc} (a full disk?)") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


def live_holder(data_dir: Path, name: str = LOCK_FILE) -> int | None:
    """The pid the lock file records when that process is running, else None (no file, a dead or unknown pid).

    Read only, never locked: a probe that took the lock for a moment could refuse a daemon starting at that
    moment. A pid reused by another program reads as live: callers use it for a hint, never to decide."""
    try:
        fd = os.open(Path(data_dir) / name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        pid = _read_pid(fd)
    finally:
        os.close(fd)
    return pid if pid is not None and psutil.pid_exists(pid) else None


def _lock_unless_held_by_the_living(fd: int) -> None:
    """``_lock(fd)``; where locks outlive their process (Windows), tried again every 0.1 s for up to
    DEAD_HOLDER_WAIT_S while the pid recorded in the file is no live process's. OSError when held by a live (or
    unknown) one, at once, or by a dead one after the wait."""
    deadline = time.monotonic() + DEAD_HOLDER_WAIT_S
    while True:
        try:
            _lock(fd)
            return
        except OSError:
            holder = _read_pid(fd)
            if not LOCKS_OUTLIVE_THEIR_HOLDER or holder is None or psutil.pid_exists(holder) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


if os.name == "nt":  # pragma: no cover - no Windows machine runs the tests here
    import msvcrt

    def _lock(fd: int) -> None:
        # One byte far past any pid: the pid text stays readable for the message (Windows locks are mandatory).
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)

    def _unlock(fd: int) -> None:
        # Explicitly: Windows releases a lock left at close only "depending on available system resources", and the
        # paper terminal's book is locked again in the same process (a review, 2026-12-06).
        try:
            os.lseek(fd, 1 << 20, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass  # not held: nothing to release

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        pass  # closing the descriptor releases a flock at once
