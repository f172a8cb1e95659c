"""Auto-trading: orders from signals, through exactly the path and risk rules of any trade request.

Off by default (``auto_trade.enabled``). A published BUY/SELL signal at least
``auto_trade.min_confidence`` confident becomes a ``trade`` request from
source ``auto:<signal id>``; with ``one_per_direction`` (default) nothing is
sent while the symbol already has an open position or a pending order in that
direction. Refusals (risk rules, no terminal) are logged and counted, never
raised: a signal that cannot be traded must not disturb the tick path.
"""

from __future__ import annotations

from typing import Any

from quantumtrader.config import AutoTradeConfig
from quantumtrader.daemon.control import ControlError
from quantumtrader.daemon.server import Daemon
from quantumtrader.execution.engine import ExecutionEngine
from quantumtrader.log import get_logger

log = get_logger("quantumtrader.auto_trade")


class _LogResponder:
    """Where an auto order's outcome goes: no one is waiting, so it is logged and counted."""

    def __init__(self, daemon: Daemon, signal_id: str) -> None:
        self._daemon = daemon
        self._signal_id = signal_id
        self.done = False

    def ok(self, **fields: Any) -> None:
        self._daemon.counters["auto_orders_filled"] += 1

    def error(self, message: str, status: int = 400, **fields: Any) -> None:
        self._daemon.counters["auto_orders_refused"] += 1
        log.info("auto order not filled", signal=self._signal_id, status=status, reason=message)


class AutoTrader:
    def __init__(self, config: AutoTradeConfig, execution: ExecutionEngine, daemon: Daemon) -> None:
        self.config = config
        self.execution = execution
        self.daemon = daemon

    def attach(self) -> None:
        self.daemon.signal_hooks.append(self.on_signal)
        log.warning("auto-trading is ON", min_confidence=self.config.min_confidence, lots=self.config.lots or "by risk")

    def on_signal(self, signal: dict[str, Any]) -> None:
        prediction = signal["prediction"]
        if prediction == "HOLD" or signal["confidence"] < self.config.min_confidence:
            return
        side = "buy" if prediction == "BUY" else "sell"
        symbol = signal["symbol"]
        if self.config.one_per_direction and self._holding(symbol, side):
            return
        request: dict[str, Any] = {"type": "trade", "id": "auto-" + signal["id"], "symbol": symbol, "side": side, "source": f"auto:{signal['id']}"}
        if self.config.lots > 0:
            request["lots"] = self.config.lots
        responder = _LogResponder(self.daemon, signal["id"])
        self.daemon.counters["auto_orders_sent"] += 1
        try:
            self.execution.control_trade(request, responder)  # type: ignore[arg-type]
        except ControlError as exc:
            responder.error(str(exc), exc.status)

    def _holding(self, symbol: str, side: str) -> bool:
        for book in self.daemon.market.positions.values():
            if any(p["symbol"] == symbol and p["side"] == side for p in book.values()):
                return True
        return any(o.symbol == symbol and o.side == side for o in self.execution.opens_not_in_positions())
