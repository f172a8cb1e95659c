"""The order journal's schema migration and the risk state it keeps across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from quantumtrader.execution.journal import OrderJournal, RiskStateDamaged


def _as_written_by(path: Path, version: int, undo: str | None, order_id: str, request_id: str) -> None:
    """Take a journal back to what ``version`` wrote (no fingerprint column, ``undo`` of any later change) and add
    an order of that time."""
    db = sqlite3.connect(path)
    if undo:
        db.execute(undo)
    db.execute("ALTER TABLE orders DROP COLUMN fingerprint")
    db.execute("UPDATE schema_version SET version = ?", (version,))
    db.execute("INSERT INTO orders (id, kind, terminal, symbol, broker_symbol, side, lots, sl, tp, ticket, status, request_id, created_msc) "
               "VALUES (?, 'open', 't', 'EURUSD', 'EURUSD', 'buy', 0.1, 0, 0, 7, 'filled', ?, 1)", (order_id, request_id))  # fmt: skip
    db.commit()
    db.close()


def test_a_version_1_journal_gains_the_risk_state_and_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite"
    OrderJournal(path).close()
    _as_written_by(path, 1, "DROP TABLE risk_state", "OLDORDER01", "")  # no risk_state table, no fingerprint column

    journal = OrderJournal(path)
    try:
        assert journal.load_risk() is None
        journal.save_risk({"kill_switch": True, "day": 20_000, "day_start_equity": {"t": 10_000.0}})
        assert [(o.id, o.fingerprint) for o in journal.recent(10)] == [("OLDORDER01", "")]  # answered as before
    finally:
        journal.close()
    reopened = OrderJournal(path)
    try:
        assert reopened.load_risk() == {"kill_switch": True, "day": 20_000, "day_start_equity": {"t": 10_000.0}}
    finally:
        reopened.close()
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (3,)


def test_a_version_2_journal_gains_the_fingerprints_and_keeps_its_orders_and_risk_state(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite"
    journal = OrderJournal(path)
    journal.save_risk({"kill_switch": True})
    journal.close()
    _as_written_by(path, 2, None, "OLDORDER02", "req-2")  # no fingerprint column

    journal = OrderJournal(path)
    try:
        assert journal.load_risk() == {"kill_switch": True}
        old = journal.by_request("req-2")
        assert old is not None and old.id == "OLDORDER02" and old.fingerprint == ""
        old.fingerprint = "abc"
        journal.save(old)
    finally:
        journal.close()
    reopened = OrderJournal(path)
    try:
        again = reopened.by_request("req-2")
        assert again is not None and again.fingerprint == "abc"
    finally:
        reopened.close()
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (3,)


def test_a_risk_state_that_cannot_be_read_is_said_not_taken_for_none(tmp_path: Path) -> None:
    """None means "never saved" and lets trading run; a damaged row read as None resumed a halted daemon."""
    path = tmp_path / "orders.sqlite"
    OrderJournal(path).close()
    for value in ("[1, 2", "[1, 2]", '{"kill_switch": "yes"}'):
        db = sqlite3.connect(path)
        db.execute("INSERT OR REPLACE INTO risk_state (name, value) VALUES ('risk', ?)", (value,))
        db.commit()
        db.close()
        journal = OrderJournal(path)
        try:
            with pytest.raises(RiskStateDamaged):
                journal.load_risk()
        finally:
            journal.close()


def test_mt5_tickets_past_a_signed_64_bit_integer_are_kept_exactly(tmp_path: Path) -> None:
    """MT5 tickets are ulong and SQLite's INTEGER is signed: 2^64 - 1 raised OverflowError in save (a 500, nothing recorded)."""
    from quantumtrader.execution.orders import Order

    path = tmp_path / "orders.sqlite"
    tickets = {"T1": 1, "T2": 2**63 - 1, "T3": 2**63, "T4": 2**64 - 1}
    journal = OrderJournal(path)
    try:
        for n, (order_id, ticket) in enumerate(tickets.items()):
            journal.save(Order(id=order_id, kind="close", terminal="t", symbol="EURUSD", broker_symbol="EURUSD", side="", lots=0.0, sl=0.0, tp=0.0, ticket=ticket, created_msc=n))
    finally:
        journal.close()
    reopened = OrderJournal(path)
    try:
        assert {o.id: o.ticket for o in reopened.recent(10)} == tickets
        assert reopened.by_request("") is not None and reopened.by_request("").ticket in tickets.values()
    finally:
        reopened.close()
