"""The store's schema and its migrations, in order. Never edit a released step: append one.

``schema_version`` holds one row per applied step, so a database says which
steps it has and when they were applied. :func:`migrate` applies the missing
steps, each in its own transaction together with its version row, so a crash
mid-migration leaves the database at the previous version, not half-way.
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from quantumtrader.store.db import StateFileError, transaction


class Migration(NamedTuple):
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "signals (full history) and saved model state",
        """
        CREATE TABLE signals (
            id TEXT PRIMARY KEY,
            symbol TEXT NOT NULL,
            time_msc INTEGER NOT NULL,
            prediction TEXT,
            confidence REAL,
            body TEXT NOT NULL
        );
        CREATE INDEX signals_symbol_time ON signals (symbol, time_msc DESC);
        CREATE INDEX signals_time ON signals (time_msc DESC);
        CREATE TABLE model_state (
            name TEXT PRIMARY KEY,
            saved_msc INTEGER NOT NULL,
            body BLOB NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "encryption at rest: a flag per signal row (body is then a Fernet token, prediction/confidence NULL)",
        "ALTER TABLE signals ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Bring the database up to ``target``; returns the versions applied (empty when current).

    Raises RuntimeError for a database newer than this code knows: running old
    code on a newer store would silently misread it.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_msc INTEGER NOT NULL)")
    have = current_version(conn)
    if have > SCHEMA_VERSION:
        raise StateFileError(f"store schema version {have} is newer than this program's {SCHEMA_VERSION}; upgrade QuantumTrader")
    applied: list[int] = []
    for step in MIGRATIONS:
        if step.version <= have or step.version > target:
            continue
        with transaction(conn, "BEGIN IMMEDIATE"):
            for statement in step.sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_msc) VALUES (?, ?, ?)",
                (step.version, step.description, time.time_ns() // 1_000_000),
            )
        applied.append(step.version)
    return applied
