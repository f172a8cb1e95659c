"""The order journal's schema migration and the risk state it keeps across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from quantumtrader.execution.journal import OrderJournal, RiskStateDamaged


def test_a_version_1_journal_gains_the_risk_state_and_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite"
    OrderJournal(path).close()
    db = sqlite3.connect(path)  # back to what version 1 wrote: no risk_state table
    db.execute("DROP TABLE risk_state")
    db.execute("UPDATE schema_version SET version = 1")
    db.execute("INSERT INTO orders (id, kind, terminal, symbol, broker_symbol, side, lots, sl, tp, status, created_msc) "
               "VALUES ('OLDORDER01', 'open', 't', 'EURUSD', 'EURUSD', 'buy', 0.1, 0, 0, 'filled', 1)")  # fmt: skip
    db.commit()
    db.close()

    journal = OrderJournal(path)
    try:
        assert journal.load_risk() is None
        journal.save_risk({"kill_switch": True, "day": 20_000, "day_start_equity": {"t": 10_000.0}})
        assert [o.id for o in journal.recent(10)] == ["OLDORDER01"]
    finally:
        journal.close()
    reopened = OrderJournal(path)
    try:
        assert reopened.load_risk() == {"kill_switch": True, "day": 20_000, "day_start_equity": {"t": 10_000.0}}
    finally:
        reopened.close()
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchone() == (2,)


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
