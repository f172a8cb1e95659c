from __future__ import annotations

from quantumtrader.daemon.market import diff_positions


def pos(ticket: int, **over: float) -> dict:
    base = {"ticket": ticket, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0, "swap": 0.0, "commission": 0.0}
    base.update(over)
    return base


def test_snapshots_diff_into_opened_updated_closed() -> None:
    old = {1: pos(1), 2: pos(2), 3: pos(3)}
    new = [pos(1), pos(2, sl=1.09), pos(4)]
    assert diff_positions(old, new) == [("updated", pos(2, sl=1.09)), ("opened", pos(4)), ("closed", pos(3))]


def test_identical_snapshot_is_no_change() -> None:
    assert diff_positions({1: pos(1)}, [pos(1)]) == []
