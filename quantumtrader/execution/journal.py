"""The order journal: every trade intent is durable before its command leaves.

SQLite in WAL mode in the data directory (``orders.sqlite``), written from
the loop thread because the rule "intent committed before the command is
sent" is synchronous by nature. Orders are rare next to ticks and a WAL
commit with ``synchronous=NORMAL`` costs tens of microseconds (it survives a
crash of the daemon; ``execution.journal_sync = "full"`` also survives a power
loss at about a millisecond per order).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.execution.orders import FINAL, TRANSIENT, Order
from quantumtrader.store.db import StateFileError, check_state_file, checkpoint_on_close, opening

#: 2 added ``risk_state`` (the kill switch and the day's starting equity survive a restart); 3 the orders'
#: ``fingerprint`` (a request id reused for another request is refused, after a restart too).
_SCHEMA_VERSION = 3
_COLUMNS = tuple(f.name for f in fields(Order) if f.name not in TRANSIENT)
_TYPES = {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bool": "INTEGER"}


_CHECKPOINT_EVERY_S = 2.0
#: SQLite's INTEGER is a signed 64-bit value and MT5's tickets are ulong: a ticket from 2^63 up is
#: stored as the signed value of the same 64 bits (a fuzzed close of position 2^64 - 1 raised
#: OverflowError in save, a 500 to the app, and nothing was recorded). Tickets are never negative.
_TICKET_WRAP = 2**64


def _sql_ticket(ticket: int) -> int:
    return ticket - _TICKET_WRAP if ticket >= _TICKET_WRAP // 2 else ticket


def _ticket_from_sql(value: int | None) -> int | None:
    """None stays None: a row of an older journal written without a ticket."""
    return value + _TICKET_WRAP if value is not None and value < 0 else value


#: risk_state rows of the positions each terminal last listed: "book:" + terminal id.
_BOOK_PREFIX = "book:"
_RISK_TABLE = "CREATE TABLE risk_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


class RiskStateDamaged(ValueError):
    """The saved risk state (the kill switch, the day's starting equity) is there but cannot be read."""


class OrderJournal:
    def __init__(self, path: Path, sync: str = "normal") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        check_state_file(path)  # an empty one read as a new journal: no orders to reconcile, the kill switch off
        with opening(path):
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            # The loop's connection never checkpoints: an automatic checkpoint copies the
            # WAL into the database and fsyncs, 1-4 ms on the loop thread (measured: 27
            # of 6,000 saves). A background thread with its own connection does it instead.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._migrate()
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(path,), name="orders-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self, path: Path) -> None:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(_CHECKPOINT_EVERY_S):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for the writer
                except sqlite3.Error:
                    pass  # busy or locked: the next round catches up
        finally:
            db.close()

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            cols = ", ".join(
                f"{f.name} {_TYPES[f.type if isinstance(f.type, str) else f.type.__name__]}"
                + (" PRIMARY KEY" if f.name == "id" else "")
                for f in fields(Order)
                if f.name not in TRANSIENT or f.name == "position_lots"  # a column since the first schema, never written
            )
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(f"CREATE TABLE orders ({cols})")
                self._db.execute("CREATE INDEX orders_status ON orders(status)")
                self._db.execute("CREATE INDEX orders_request ON orders(request_id)")
                self._db.execute(_RISK_TABLE)
                self._db.execute("INSERT INTO schema_version VALUES (?)", (_SCHEMA_VERSION,))
        elif row[0] > _SCHEMA_VERSION:
            raise StateFileError(f"order journal schema {row[0]} is newer than this version understands ({_SCHEMA_VERSION}); upgrade QuantumTrader")
        elif row[0] < _SCHEMA_VERSION:
            with self._db:  # one transaction: a journal is at one version or the next, never between
                self._db.execute("BEGIN")
                if row[0] < 2:
                    self._db.execute(_RISK_TABLE)
                if row[0] < 3:
                    self._db.execute("ALTER TABLE orders ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
                self._db.execute("UPDATE schema_version SET version = ?", (_SCHEMA_VERSION,))

    def save_risk(self, state: dict[str, Any]) -> None:
        """The risk engine's state to survive a restart (RiskEngine.saved_state), committed when this returns."""
        self._db.execute("INSERT OR REPLACE INTO risk_state (name, value) VALUES ('risk', ?)", (orjson.dumps(state).decode(),))

    def load_risk(self) -> dict[str, Any] | None:
        """The saved risk state; None if none was ever saved. RiskStateDamaged when one was and cannot be read:
        the caller must not take that for "no kill switch" (it did: a damaged row resumed halted trading)."""
        row = self._db.execute("SELECT value FROM risk_state WHERE name = 'risk'").fetchone()
        if row is None:
            return None
        try:
            state = orjson.loads(row[0])
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise RiskStateDamaged(f"not JSON ({exc})") from None
        if not isinstance(state, dict) or state.get("kill_switch") not in (None, True, False):
            raise RiskStateDamaged(f"not a risk state: {str(row[0])[:80]!r}")
        return state

    def save_book(self, terminal: str, positions: list[dict[str, Any]]) -> None:
        """The positions ``terminal`` last listed (its row gone when it lists none), committed when this returns: a
        restarted daemon diffs each terminal's first list against it, so apps are told what changed while it was
        down. One row per terminal: a change of one book does not rewrite the others."""
        name = _BOOK_PREFIX + terminal
        if positions:
            self._db.execute("INSERT OR REPLACE INTO risk_state (name, value) VALUES (?, ?)", (name, orjson.dumps(positions).decode()))
        else:
            self._db.execute("DELETE FROM risk_state WHERE name = ?", (name,))

    def load_books(self) -> dict[str, Any]:
        """The saved books by terminal as they were written, unchecked; a row that is not JSON is left out (a wrong
        baseline costs only position events: that terminal's first list is then all "opened")."""
        books: dict[str, Any] = {}
        for name, value in self._db.execute("SELECT name, value FROM risk_state WHERE substr(name, 1, ?) = ?", (len(_BOOK_PREFIX), _BOOK_PREFIX)):
            try:
                books[name[len(_BOOK_PREFIX) :]] = orjson.loads(value)
            except (orjson.JSONDecodeError, TypeError):
                continue
        return books

    def save(self, order: Order) -> None:
        """Insert or update one order, committed when this returns."""
        row = order.to_row()
        row["ticket"] = _sql_ticket(row["ticket"])
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._db.execute(f"INSERT OR REPLACE INTO orders ({', '.join(_COLUMNS)}) VALUES ({placeholders})", [row[c] for c in _COLUMNS])

    def unsettled(self) -> list[Order]:
        """Orders whose outcome the daemon does not know (pending or unknown), oldest first."""
        marks = ", ".join("?" for _ in FINAL)
        cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM orders WHERE status NOT IN ({marks}) ORDER BY created_msc", FINAL)
        return [self._order(r) for r in cur.fetchall()]

    def recent(self, limit: int) -> list[Order]:
        cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM orders ORDER BY created_msc DESC LIMIT ?", (limit,))
        return [self._order(r) for r in cur.fetchall()]

    def by_request(self, request_id: str) -> Order | None:
        cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM orders WHERE request_id = ? LIMIT 1", (request_id,))
        row = cur.fetchone()
        return self._order(row) if row else None

    @staticmethod
    def _order(row: tuple) -> Order:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["reconciled"] = bool(values["reconciled"])
        values["ticket"] = _ticket_from_sql(values["ticket"])
        return Order(**values)

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=5)
        checkpoint_on_close(self._db)
        self._db.close()
