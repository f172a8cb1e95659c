"""Signals in the store: journaled before they are published, inserted by the writer, read newest first.

The durability rule: every signal a subscriber saw must be in the store after
a kill -9, exactly once. The loop makes the rows durable in the signal
journal (store/journal.py: one copy into a mapped file per batch that emits,
before the publication); the writer thread inserts them into SQLite, and files a dead
process left behind are replayed at the next start. ``INSERT OR IGNORE`` on
the signal id makes a duplicate impossible however often a row is inserted.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.store.crypto import SignalCipher, StoreKeyError
from quantumtrader.store.db import connect, transaction

_INSERT = "INSERT OR IGNORE INTO signals (id, symbol, time_msc, prediction, confidence, body, encrypted) VALUES (?, ?, ?, ?, ?, ?, ?)"


def insert_rows(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
    """Insert store rows inside the caller's transaction; returns how many were new."""
    before = conn.total_changes
    conn.executemany(_INSERT, rows)
    return conn.total_changes - before


class SignalLog:
    """Signal objects -> store rows (encrypted when a key is set), and committing them."""

    def __init__(self, conn: sqlite3.Connection, cipher: SignalCipher | None = None) -> None:
        self._conn = conn
        self._cipher = cipher

    def rows(self, signals: Sequence[dict[str, Any]], bodies: Sequence[bytes] | None = None) -> list[tuple[Any, ...]]:
        """Store rows; ``bodies`` are the signals already serialized (the daemon's, also published), else made here."""
        out = []
        for i, sig in enumerate(signals):
            body = orjson.dumps(sig) if bodies is None else bodies[i]
            if self._cipher is None:
                out.append((sig["id"], sig["symbol"], sig["time_msc"], sig["prediction"], sig["confidence"], body.decode(), 0))
            else:
                out.append((sig["id"], sig["symbol"], sig["time_msc"], None, None, self._cipher.encrypt(body), 1))
        return out

    def commit(self, signals: Sequence[dict[str, Any]]) -> int:
        """Insert ``signals`` in one transaction; returns how many were new (duplicates ignored)."""
        return self.commit_rows(self.rows(signals))

    def commit_rows(self, rows: Sequence[Sequence[Any]]) -> int:
        """Insert store rows (from :meth:`rows` or a journal) in one transaction."""
        with transaction(self._conn):
            return insert_rows(self._conn, rows)


#: SQLite virtual machine steps between two looks at a query's deadline (well under a millisecond of work).
_PROGRESS_STEPS = 20_000


class SignalPage(list[dict[str, Any]]):
    """Signals, newest first. ``complete`` is False when the query's time budget ran out before it
    had looked at every row it might match (there may be more, older than the last one here), or when
    ``unreadable`` rows were left out: encrypted with another key, or without one, or damaged."""

    unreadable: int = 0
    timed_out: bool = False  # the budget ran out

    @property
    def complete(self) -> bool:
        return not self.timed_out and not self.unreadable


class SignalReader:
    """Read-only queries for the sidecar and tools: a connection of their own, never the daemon's."""

    def __init__(self, path: Path, cipher: SignalCipher | None = None) -> None:
        self._conn = connect(path, readonly=True)
        self._cipher = cipher

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SignalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, body: str, encrypted: int) -> dict[str, Any]:
        if encrypted:
            if self._cipher is None:
                raise StoreKeyError("the store holds encrypted signals; set the store key to read them")
            return orjson.loads(self._cipher.decrypt(body))
        return orjson.loads(body)

    def signals(
        self,
        symbol: str | None = None,
        *,
        min_confidence: float | None = None,
        limit: int = 100,
        since_msc: int | None = None,
        budget_s: float | None = None,
    ) -> SignalPage:
        """Signal objects, newest first (by time_msc, then insertion order).

        ``since_msc`` keeps signals at or after that time. ``min_confidence``
        is applied in SQL on plaintext rows and after decryption on encrypted
        ones, so the result is the same either way.

        ``budget_s`` bounds the work: a query that matches few rows walks the
        whole history to prove it (the full history is kept by default, and
        an encrypted row must be decrypted to be judged), while holding the
        sidecar's one reader. Past the budget it stops, SQLite interrupted by
        its progress handler, and returns what it found, ``complete`` False.
        """
        out = SignalPage()
        if limit <= 0:
            return out
        where: list[str] = []
        args: list[Any] = []
        if symbol is not None:
            where.append("symbol = ?")
            args.append(symbol)
        if since_msc is not None:
            where.append("time_msc >= ?")
            args.append(int(since_msc))
        if min_confidence is not None:
            where.append("(encrypted = 1 OR confidence >= ?)")
            args.append(float(min_confidence))
        sql = "SELECT body, encrypted FROM signals"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time_msc DESC, rowid DESC"
        conn = self._conn
        deadline = None if budget_s is None else time.monotonic() + budget_s
        if deadline is not None:
            conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)  # truthy: interrupt
        try:
            for body, encrypted in conn.execute(sql, args):
                if deadline is not None and time.monotonic() > deadline:  # decrypting is the slow part of encrypted rows
                    out.timed_out = True
                    break
                try:
                    sig = self._decode(body, encrypted)
                    confidence = sig["confidence"]
                except (StoreKeyError, ValueError, KeyError, TypeError):  # orjson's JSONDecodeError is a ValueError
                    # One such row ended the whole query, so the app saw none of the history around it (a review,
                    # 2026-12-06: a restart with another key hid every signal from a filtered query).
                    out.unreadable += 1
                    continue
                if min_confidence is not None and confidence < min_confidence:
                    continue
                out.append(sig)
                if len(out) >= limit:
                    break
        except sqlite3.OperationalError as exc:
            if deadline is None or "interrupt" not in str(exc):
                raise
            out.timed_out = True
        finally:
            if deadline is not None:
                conn.set_progress_handler(None, 0)
        return out

    def count(self, signal_id: str | None = None) -> int:
        if signal_id is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM signals").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM signals WHERE id = ?", (signal_id,)).fetchone()[0])

    def ids(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT id FROM signals")]
