"""The data directory's free space, watched: the trader hears of a filling disk before its writes fail.

Everything the daemon keeps goes to the data directory: the signal store and
its journal, the order journal, the models' saved state. A full disk is
handled when it comes (writes counted, held, retried: docs/signals.md), but by
then signals are held in memory and health is degraded for a reason the
trader could have seen days before: with the full signal history kept
(``store.signal_retention_days`` 0, the default) the store grows every day.
So health names the disk while there is still room (``store.low_disk_mb``).

Read every ``CHECK_EVERY_S`` on a thread of its own: one ``statvfs`` or
``GetDiskFreeSpaceExW`` takes microseconds, but on a network drive that
hangs it can take seconds, and the loop's thread must not wait on it (a
review, 2026-12-05). Health reads the latest answer.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantumtrader.log import get_logger

log = get_logger("quantumtrader.daemon.disk")

#: How often the free space is read.
CHECK_EVERY_S = 10.0

_MB = 1_000_000


class DiskSpaceWatch:
    """``problems()`` for health while the data directory's disk has less than ``low_mb`` MB free (0: never)."""

    def __init__(
        self,
        path: Path,
        low_mb: int,
        usage: Callable[[Path], Any] = shutil.disk_usage,  # anything with a ``free`` in bytes, as shutil's answer
    ) -> None:
        self.path = path
        self.low_mb = low_mb
        self._usage = usage
        self.free_mb: int | None = None  # None: not read yet, or it cannot be
        self._low = False
        self._unreadable: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="qt-disk-watch", daemon=True)

    def attach(self, daemon: Any) -> None:
        """Read once now (health is right from its first message), then on the thread; stopped with the daemon."""
        self.check()
        self._thread.start()
        daemon.on_shutdown(self.stop)
        daemon.health_problems(self.problems)
        daemon.health_fields(lambda: {"disk": {"free_mb": self.free_mb, "low_disk_mb": self.low_mb}})
        daemon.status_fields(lambda: {"disk_free_mb": self.free_mb})

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            try:
                self.check()
            except Exception:  # never the thread's end: the next read may work
                log.exception("the data directory's free space could not be checked")

    def check(self) -> None:
        """Read the free space; log a crossing of ``low_mb`` either way, once."""
        try:
            free = self._usage(self.path).free
        except OSError as exc:  # the directory removed under the daemon, a network drive gone: said once, not a crash
            if self._unreadable != str(exc):
                log.warning("the data directory's free space cannot be read", path=str(self.path), error=str(exc))
            self._unreadable = str(exc)
            self.free_mb = None
            return
        self._unreadable = None
        self.free_mb = free // _MB
        low = bool(self.low_mb) and self.free_mb < self.low_mb
        if low and not self._low:
            log.warning(
                "the data directory's disk is nearly full: free space, or set store.signal_retention_days",
                path=str(self.path),
                free_mb=self.free_mb,
                low_disk_mb=self.low_mb,
            )
        elif self._low and not low:
            log.info("the data directory's disk has room again", path=str(self.path), free_mb=self.free_mb, low_disk_mb=self.low_mb)
        self._low = low

    def problems(self) -> list[str]:
        free_mb = self.free_mb
        if not self._low or free_mb is None:
            return []
        # Without the path: /api/health answers callers without a token, and a Windows path names the user. The log has it.
        return [
            f"data directory's disk: {free_mb:,} MB free, under store.low_disk_mb ({self.low_mb:,}): signals, orders"
            " and saved state cannot be written once it is full (free space, or set store.signal_retention_days; the log names the path)"
        ]
