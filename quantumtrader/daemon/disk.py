"""The data directory's free space, watched: the trader hears of a filling disk before its writes fail.

Everything the daemon keeps goes to the data directory: the signal store and
its journal, the order journal, the models' saved state. A full disk is
handled when it comes (writes counted, held, retried: docs/signals.md), but by
then signals are held in memory and health is degraded for a reason the
trader could have seen days before: with the full signal history kept
(``store.signal_retention_days`` 0, the default) the store grows every day.
So health names the disk while there is still room (``store.low_disk_mb``).

Read at most every ``CHECK_EVERY_S`` on the loop's thread (one ``statvfs`` or
``GetDiskFreeSpaceExW``: microseconds), never per tick.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantumtrader.log import get_logger

log = get_logger("quantumtrader.daemon.disk")

#: How often the free space is read; health asks every ``daemon.health_interval_s``.
CHECK_EVERY_S = 10.0

_MB = 1_000_000


class DiskSpaceWatch:
    """``problems()`` for health while the data directory's disk has less than ``low_mb`` MB free (0: never)."""

    def __init__(
        self,
        path: Path,
        low_mb: int,
        usage: Callable[[Path], Any] = shutil.disk_usage,  # anything with a ``free`` in bytes, as shutil's answer
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.low_mb = low_mb
        self._usage = usage
        self._clock = clock
        self._next_check = 0.0
        self.free_mb: int | None = None  # None: not read yet, or it cannot be
        self._low = False
        self._unreadable: str | None = None

    def attach(self, daemon: Any) -> None:
        daemon.health_problems(self.problems)
        daemon.health_fields(lambda: {"disk": {"free_mb": self.free_mb, "low_disk_mb": self.low_mb}})
        daemon.status_fields(lambda: {"disk_free_mb": self.free_mb})

    def check(self) -> None:
        """Read the free space if ``CHECK_EVERY_S`` has passed; log a crossing of ``low_mb`` either way, once."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
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
        self.check()
        if not self._low:
            return []
        # Without the path: /api/health answers callers without a token, and a Windows path names the user. The log has it.
        return [
            f"data directory's disk: {self.free_mb:,} MB free, under store.low_disk_mb ({self.low_mb:,}): signals, orders"
            " and saved state cannot be written once it is full (free space, or set store.signal_retention_days; the log names the path)"
        ]
