"""The store's :class:`~quantumtrader.store.SignalReader`, opened read-only when the daemon has made the file.

Calls come from worker threads under the sidecar's own capacity limiter (runtime.STORE_QUERIES_AT_ONCE), not the
default one the static files are served under; SQLite must not block the event loop; one
lock serializes them on the single read-only connection, which is plenty for
a query that reads at most ``limit`` rows of an index.
"""

from __future__ import annotations

import threading
from typing import Any

from quantumtrader.config import Config
from quantumtrader.log import get_logger
from quantumtrader.sidecar.signals import SignalReader

log = get_logger("quantumtrader.sidecar.store")


class LockedReader:
    """One connection, one query at a time, each bounded by ``budget_s`` (a query waiting its turn waits at most
    the queries ahead of it, each within its budget)."""

    def __init__(self, reader: Any, budget_s: float) -> None:
        self._reader = reader
        self._lock = threading.Lock()
        self._budget_s = budget_s

    def signals(self, *, symbol: str | None, min_confidence: float, limit: int, since_msc: int | None) -> tuple[list[dict[str, Any]], bool]:
        with self._lock:
            page = self._reader.signals(symbol, min_confidence=min_confidence, limit=limit, since_msc=since_msc, budget_s=self._budget_s)
            return page, page.complete  # a SignalPage is a list


def open_signal_reader(config: Config) -> SignalReader | None:
    """A reader of the store's signals, or None while there is no store file (or it cannot be read)."""
    from quantumtrader.store import SignalReader as StoreSignalReader
    from quantumtrader.store import cipher_from_env, store_path

    path = store_path(config.data_path, config.store.file_name)
    if not path.is_file():
        return None
    try:
        return LockedReader(StoreSignalReader(path, cipher_from_env(config.store.encrypt_env)), config.sidecar.signal_query_budget_ms / 1000.0)
    except Exception as exc:  # a bad key or an unreadable file: fall back to the feed, say why once
        log.warning("cannot open the store for reading; serving signals seen on the feed", path=str(path), error=str(exc))
        return None
