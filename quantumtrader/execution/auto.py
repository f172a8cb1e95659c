"""Auto-trading: orders from signals, through exactly the path and risk rules of any trade request.

Off by default (``auto_trade.enabled``). A published BUY/SELL signal at least
``auto_trade.min_confidence`` confident becomes a ``trade`` request from
source ``auto:<signal id>`` to the terminal the request is routed to; with
``one_per_direction`` (default) nothing is sent while that terminal already
holds a position, or has an order under way, in that symbol (its broker's
name) and direction. Nothing is sent while trading is halted or
reducing-only, when a position limit is reached (judged with the lots the order will have), for a while after
that terminal refused that symbol and direction, or when no terminal trades the symbol: counted as skipped,
never journaled as a refused order (one per signal per symbol filled the
order journal for as long as a halt lasted). Refusals by the risk rules are
counted and logged at most once per interval, never raised: a signal that
cannot be traded must not disturb the tick path.

What it does not do (docs/execution.md, "Auto-trading"): a SELL while a BUY
is open opens a sell, it does not close the buy; and a periodic signal (the
same prediction re-published every ``signals.interval_s``) is acted on like
a new one, so once a position closes the next BUY opens another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quantumtrader.config import AutoTradeConfig
from quantumtrader.daemon.control import ControlError
from quantumtrader.daemon.server import Daemon
from quantumtrader.execution.engine import ExecutionEngine, tick_lag_ms
from quantumtrader.execution.risk import TradingState
from quantumtrader.log import get_logger
from quantumtrader.metrics import LogLimiter

log = get_logger("quantumtrader.auto_trade")


class _LogResponder:
    """Where an auto order's outcome goes: no one is waiting, so it is counted and logged (once per interval per status)."""

    def __init__(self, daemon: Daemon, signal_id: str, limiter: LogLimiter, on_refused: Callable[[], None]) -> None:
        self._daemon = daemon
        self._signal_id = signal_id
        self._limiter = limiter
        self._on_refused = on_refused
        self.refused = False

    def ok(self, **fields: Any) -> None:
        self._daemon.counters["auto_orders_filled"] += 1

    def error(self, message: str, status: int = 400, **fields: Any) -> None:
        if status == 504:  # no answer in time, or an outcome-unknown code: it may have filled (the positions settle it)
            self._daemon.counters["auto_orders_unknown"] += 1
            self._limiter.log("unknown", log.warning, "auto order outcome unknown; will settle from the terminal's positions", signal=self._signal_id, reason=message)
            return
        self._daemon.counters["auto_orders_refused"] += 1
        self.refused = True
        if status == 422:  # a risk rule or the terminal said no; not a 503 (no command session yet), which passes
            self._on_refused()
        self._limiter.log(f"refused-{status}", log.info, "auto order not filled", signal=self._signal_id, status=status, reason=message)


class AutoTrader:
    def __init__(self, config: AutoTradeConfig, execution: ExecutionEngine, daemon: Daemon) -> None:
        self.config = config
        self.execution = execution
        self.daemon = daemon
        self._log = LogLimiter(execution.config.daemon.reject_log_interval_s)
        # symbol -> (its last signal's tick time, its series' owner then, the tick time its signals are acted on from)
        self._series: dict[str, tuple[int, str | None, int]] = {}
        # (terminal, broker symbol, side) -> when (monotonic) auto orders of it may be sent again after a refusal
        self._paused: dict[tuple[str, str, str], float] = {}

    def attach(self) -> None:
        self.daemon.signal_hooks.append(self.on_signal)
        log.warning("auto-trading is ON", min_confidence=self.config.min_confidence, lots=self.config.lots or "by risk")

    def on_signal(self, signal: dict[str, Any]) -> None:
        after_break = self._after_break(signal)  # every signal, HOLD too: their times tell where the series broke
        prediction = signal["prediction"]
        if prediction == "HOLD" or signal["confidence"] < self.config.min_confidence:
            return
        side = "buy" if prediction == "BUY" else "sell"
        symbol = signal["symbol"]
        counters = self.daemon.counters
        if after_break:
            counters["auto_skipped_after_break"] += 1
            self._log.log("break", log.info, "auto order not sent: the symbol's series broke lately (auto_trade.settle_after_break_s)", signal=signal["id"], symbol=symbol)
            return
        age_s = tick_lag_ms(signal) / 1000.0
        if self.config.max_signal_age_s and age_s > self.config.max_signal_age_s:
            # A hunt (2026-12-05): after a restart the daemon read the ticks its terminal had queued meanwhile, and
            # an order went out on a signal whose tick was 61 s old. Its tick time is the broker's, in UTC.
            counters["auto_skipped_stale"] += 1
            self._log.log(
                "stale",
                log.warning,
                "auto order not sent: the signal's tick is older than auto_trade.max_signal_age_s (a backlog after a"
                " restart or a daemon behind its feed; or this machine's clock or the broker's is off)",
                signal=signal["id"],
                symbol=symbol,
                age_s=round(age_s, 1),
            )
            return
        state = self.execution.risk.state
        if state is not TradingState.ACTIVE:
            counters[f"auto_skipped_{state.value}"] += 1
            return
        try:
            terminal, broker_symbol = self.execution.route(symbol, None)
        except ControlError as exc:
            counters["auto_skipped_no_terminal"] += 1
            self._log.log("route", log.info, "auto order not sent: no terminal to trade it", signal=signal["id"], symbol=symbol, reason=str(exc))
            return
        if not self.execution.positions_known(terminal):  # after a restart, until its positions arrive: what it holds is unknown
            counters["auto_skipped_positions_unknown"] += 1
            self._log.log("positions", log.info, "auto order not sent: the terminal's positions are not known yet", signal=signal["id"], terminal=terminal)
            return
        if self.config.one_per_direction and self._holding(terminal, broker_symbol, side):
            counters["auto_skipped_holding"] += 1
            return
        key = (terminal, broker_symbol, side)
        if self._paused.get(key, 0.0) > time.monotonic():
            # A hunt (2026-12-06): a market closed, a spread too wide, a size that cannot be computed refused every
            # signal again (each periodic one too), each a journaled refusal on the app's feed, or a broker request.
            counters["auto_skipped_refused_lately"] += 1
            return
        # The limits judged with the lots the order will have: with 0 (sized later) a sized order passed them, and at
        # the symbol limit every signal became a journaled refusal after all (a hunt, 2026-12-06).
        plan = self.execution.plan_open(terminal, broker_symbol, side, self.config.lots or None)
        limits = self.execution.limits_reason(terminal, broker_symbol, plan.lots)
        if limits:
            # A soak (2026-12-05): at the position limit every BUY/SELL signal became an order refused by it, in the
            # journal and on the app's feed: 1,782 of them in ten minutes. Skipped and counted, as while halted.
            counters["auto_skipped_limits"] += 1
            self._log.log("limits", log.info, "auto order not sent: a position limit is reached", signal=signal["id"], symbol=symbol, reason=limits)
            return
        request: dict[str, Any] = {
            "type": "trade",
            "id": "auto-" + signal["id"],
            "symbol": symbol,
            "terminal": terminal,
            "side": side,
            "source": f"auto:{signal['id']}",
        }
        if self.config.lots > 0:
            request["lots"] = self.config.lots
        responder = _LogResponder(self.daemon, signal["id"], self._log, lambda: self._pause(key))
        counters["auto_orders_requested"] += 1
        try:
            self.execution.control_trade(request, responder)  # type: ignore[arg-type]
        except ControlError as exc:
            responder.error(str(exc), exc.status)
        if not responder.refused:  # past the risk rules: queued for its terminal (which may still refuse it)
            counters["auto_orders_sent"] += 1

    def _pause(self, key: tuple[str, str, str]) -> None:
        """After a refusal: that terminal, symbol and direction get no auto order for ``refused_pause_s``."""
        pause_s = self.config.refused_pause_s
        if not pause_s:
            return
        now = time.monotonic()
        if len(self._paused) > 4096:  # keys come from the symbols terminals stream: bounded, expired ones dropped
            self._paused = {k: until for k, until in self._paused.items() if until > now}
        self._paused[key] = now + pause_s

    def _after_break(self, signal: dict[str, Any]) -> bool:
        """Whether ``signal`` comes within ``settle_after_break_s`` (tick time) of a break in its symbol's series.

        A weekend's gap, another broker taking the symbol over, or the downtime a restart's restored state spans is
        one return in the indicators: after a 35-pip Monday gap the first signal went out with RSI 97 and an order's
        default stop 948 pips away; after a restart 15 pips away, 281 (two hunts, 2026-12-05). Signals are published
        at least every signals.interval_s while ticks come, so their times show a gap in the ticks."""
        settle_ms = self.config.settle_after_break_s * 1000
        if not settle_ms:
            return False
        symbol, stamp = signal["symbol"], signal["time_msc"]
        owner = self.daemon.market.owner.get(symbol)
        last = self._series.get(symbol)
        settled_at = last[2] if last is not None else 0
        if last is None or stamp - last[0] > self.config.break_gap_s * 1000 or last[1] != owner:
            settled_at = stamp + int(settle_ms)
        self._series[symbol] = (stamp, owner, settled_at)
        return stamp < settled_at

    def _holding(self, terminal: str, broker_symbol: str, side: str) -> bool:
        """The terminal the order would go to holds, or has under way, a position in this symbol and direction.

        Its own book under the broker's name: the signal's name (EURUSD) missed a position listed as EURUSDm
        at a terminal with a suffix, and another terminal's positions (one that said bye, say) blocked it."""
        return any(held_side == side for held_side, _ in self.execution.holdings(terminal, broker_symbol))
