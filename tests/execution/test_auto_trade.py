"""Auto-trading over real sockets: signals become orders through the same path, one per direction."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from support import Endpoints, control, daemon_process, start, stop, wait_for

# Loose thresholds so the ensemble's BUY/SELL signals come within seconds of paper ticks.
AUTO = {
    "QT_AUTO_TRADE__ENABLED": "true",
    "QT_AUTO_TRADE__MIN_CONFIDENCE": "0.5",
    "QT_AUTO_TRADE__LOTS": "0.01",
    "QT_SIGNALS__BUY_THRESHOLD": "0.5001",
    "QT_SIGNALS__SELL_THRESHOLD": "0.4999",
    "QT_SIGNALS__INTERVAL_S": "0.2",
    "QT_RISK__MAX_SPREAD_PCT": "1",
    "QT_AUTO_TRADE__SETTLE_AFTER_BREAK_S": "0",  # signals from the first seconds on (test_auto_rules.py tests the rule)
}


def test_signals_become_orders_through_the_risk_path_one_per_symbol_and_direction(tmp_path: Path) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path, **AUTO):
        paper = start(["paper", "--rate", "400", "--heartbeat-s", "0.5"], eps.env(tmp_path / "data", **AUTO), tmp_path / "paper.log")
        try:
            orders = wait_for(
                lambda: [o for o in control(eps.control, "orders", limit=500)["orders"] if o["source"].startswith("auto:") and o["status"] == "filled"],
                60,
                "an auto-trading order to fill",
            )
            assert orders[0]["lots"] == 0.01
            positions = control(eps.control, "snapshot")["positions"]
            per_direction = Counter((p["symbol"], p["type"]) for p in positions)
            assert per_direction and max(per_direction.values()) == 1, f"more than one position per symbol and direction: {per_direction}"
            assert control(eps.control)["health"]["counters"]["auto_orders_sent"] >= 1
        finally:
            stop(paper)


def test_auto_trading_is_off_by_default(tmp_path: Path) -> None:
    eps = Endpoints()
    loose = {k: v for k, v in AUTO.items() if not k.startswith("QT_AUTO_TRADE__ENABLED")}
    with daemon_process(eps, tmp_path, **loose):
        paper = start(["paper", "--rate", "400", "--heartbeat-s", "0.5"], eps.env(tmp_path / "data", **loose), tmp_path / "paper.log")
        try:
            wait_for(lambda: control(eps.control, "signals").get("ok") and control(eps.control)["health"]["data_flow"]["last_signal"], 30, "signals to flow")
            time.sleep(2)
            assert control(eps.control, "orders")["orders"] == []
        finally:
            stop(paper)
