"""Auto-trading's own rules against the real daemon in process, over real sockets, with scripted terminals.

Found by a read-only review (2026-12-04): the one-per-direction check compared the signal's symbol with the
broker's (a terminal trading EURUSD as EURUSDm took a new position on every BUY) and looked at every
terminal's positions (one that had said bye blocked the symbol on all others); while trading was halted
every BUY/SELL signal became a journaled, refused order; an order whose outcome was unknown was counted
and logged as refused. Signals are handed to the auto-trader on the daemon's own thread (a pass hook), as
the signal stage does; real signals never reach it here (min_confidence 0.99, the models say ~0.5).
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import pytest

from quantumtrader.protocol import now_msc, reply_error, reply_ok
from support import control, inproc_daemon, serving, wait_for
from test_orders_over_sockets import ScriptedTerminal

def _decided(counters: dict[str, int]) -> int:
    """How many BUY/SELL signals the auto-trader has decided on: each ends in one skip counter or in an order requested.
    Not every auto_ counter: an order's outcome (auto_orders_filled...) comes later, with its reply, and a CI run's
    wait for the next signal was met by the last order's fill before the signal was read (2026-12-06)."""
    return sum(v for k, v in counters.items() if k.startswith("auto_skipped_") or k == "auto_orders_requested")


ENV = {
    "QT_AUTO_TRADE__ENABLED": "true",
    "QT_AUTO_TRADE__MIN_CONFIDENCE": "0.99",
    "QT_AUTO_TRADE__LOTS": "0.01",
    "QT_EXECUTION__DEFAULT_TERMINAL": "B@X",
    "QT_EXECUTION__COMMAND_TIMEOUT_MS": "10000",
    "QT_EXECUTION__COMMAND_RETRIES": "0",
    "QT_RISK__MAX_SPREAD_PCT": "1",
    "QT_AUTO_TRADE__SETTLE_AFTER_BREAK_S": "0",  # the tests below are about other rules (the last one turns it on)
}


def _auto_trader(daemon: Any) -> Any:
    return next(hook.__self__ for hook in daemon.signal_hooks if type(hook.__self__).__name__ == "AutoTrader")


def _signals_to_auto_trader(daemon: Any) -> queue.Queue[dict[str, Any]]:
    """A queue whose signals the daemon's auto-trader takes on the daemon's own thread (a pass hook), as the signal
    stage hands them."""
    signals: queue.Queue[dict[str, Any]] = queue.Queue()
    auto = _auto_trader(daemon)
    daemon.every_pass(lambda now: [auto.on_signal(signals.get_nowait()) for _ in range(signals.qsize())])
    return signals


@pytest.mark.timeout(90)
def test_auto_trading_looks_at_the_terminal_it_trades_at_and_skips_while_halted(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data", **ENV)
    signals = _signals_to_auto_trader(d)
    a, b = ScriptedTerminal(eps, "A@X"), ScriptedTerminal(eps, "B@X")
    ids = iter(range(1000))

    def counters() -> dict[str, int]:
        return control(eps.control)["health"]["counters"]

    def signal(prediction: str) -> None:
        """One signal for EURUSD, after fresh quotes at both terminals; returns once the auto-trader has seen it."""
        seen = counters()
        before = _decided(seen)
        a.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
        b.send(type="tick", symbol="EURUSDm", bid=1.1, ask=1.1001, volume=1)
        # both quotes in before the signal: on a busy machine a pass could take the signal before the ticks arrived
        arrived = lambda c: c.get("ticks", 0) + c.get("ticks_after_bye", 0)  # noqa: E731 (A's, once it said bye)
        wait_for(lambda: arrived(counters()) >= arrived(seen) + 2, 10, "both terminals' ticks")
        signals.put({"id": f"sig-{next(ids)}", "symbol": "EURUSD", "prediction": prediction, "confidence": 1.0, "time_msc": now_msc()})
        wait_for(lambda: _decided(counters()) > before, 10, f"the {prediction} signal acted on")

    def position(ticket: int, side: str, command_id: str, symbol: str = "EURUSDm") -> dict[str, Any]:
        return {"ticket": ticket, "symbol": symbol, "side": side, "lots": 0.01, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
                "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "QT-" + command_id, "open_time_msc": now_msc()}  # fmt: skip

    try:
        with serving(d):
            a.hello(symbols=("EURUSD",))
            b.hello(symbols=("EURUSDm",))
            for term in (a, b):
                term.account(10_000.0)
                term.send(type="positions", positions=[])

            # B trades EURUSD as EURUSDm (the default of the two): a BUY, then another while it holds that buy
            signal("BUY")
            ident, command = b.next_command()
            assert (command["type"], command["symbol"], command["side"]) == ("open", "EURUSDm", "buy"), command
            b.answer(ident, reply_ok(command["id"], ticket=500, price=1.1001, lots=0.01, time_msc=now_msc()))
            b.send(type="positions", positions=[position(500, "buy", command["id"])])
            signal("BUY")
            assert b.next_command(300) is None, "a second EURUSDm buy for a second BUY signal"
            assert counters()["auto_skipped_holding"] == 1

            # A's own sell, then A says bye: its book no longer speaks for the terminal that trades the symbol
            a.send(type="positions", positions=[position(900, "sell", "manual", symbol="EURUSD")])
            a.send(type="bye", reason="test")
            signal("SELL")
            ident, command = b.next_command()
            assert (command["symbol"], command["side"]) == ("EURUSDm", "sell"), command
            b.answer(ident, reply_ok(command["id"], ticket=501, price=1.1, lots=0.01, time_msc=now_msc()))
            b.send(type="positions", positions=[])  # both closed

            # halted: skipped and counted, nothing journaled, nothing sent
            journaled = len(control(eps.control, "orders", limit=100)["orders"])
            control(eps.control, "risk", kill_switch=True, source="test")
            signal("BUY")
            assert counters()["auto_skipped_halted"] == 1 and len(control(eps.control, "orders", limit=100)["orders"]) == journaled
            assert b.next_command(300) is None
            control(eps.control, "risk", kill_switch=False, source="test")

            # an outcome the terminal leaves unknown (MT4 128, trade timeout) is no refusal
            signal("BUY")
            ident, command = b.next_command()
            b.answer(ident, reply_error(command["id"], 128, "trade timeout"))
            wait_for(lambda: counters().get("auto_orders_unknown") == 1, 10, "the unknown outcome counted")
            assert counters().get("auto_orders_refused", 0) == 0
    finally:
        a.close()
        b.close()
        d.close()


@pytest.mark.timeout(90)
def test_after_a_restart_a_terminal_is_not_traded_until_its_positions_come(tmp_path: Path) -> None:
    """A kill -9 soak (2026-12-05): a terminal that outlived the daemon is routable from its first heartbeat, its
    positions come in the next events, and the signals of a batch in between were traded against an empty book:
    16 positions became 31, each symbol's pair held twice, max_open_positions (20) passed. Here the heartbeat
    alone (the daemon never had a hello from it), then a signal and a manual trade, then the positions. And a
    signal from a tick queued while the daemon was down is not acted on (auto_trade.max_signal_age_s)."""
    d, eps = inproc_daemon(tmp_path / "data", **{**ENV, "QT_EXECUTION__DEFAULT_TERMINAL": ""})
    signals = _signals_to_auto_trader(d)
    b = ScriptedTerminal(eps, "B@X")

    def counters() -> dict[str, int]:
        return control(eps.control)["health"]["counters"]

    def signal(prediction: str, age_s: float = 0.0) -> None:
        before = _decided(counters())
        tick_msc = now_msc() - int(age_s * 1000)
        signals.put({"id": f"sig-{prediction}-{before}", "symbol": "EURUSD", "prediction": prediction, "confidence": 1.0, "time_msc": tick_msc})
        wait_for(lambda: _decided(counters()) > before, 10, f"the {prediction} signal acted on")

    held = {"ticket": 500, "symbol": "EURUSD", "side": "buy", "lots": 0.01, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0,
            "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "QT-EARLIER", "open_time_msc": now_msc()}  # fmt: skip
    try:
        with serving(d):
            b.hello("heartbeat", dropped=0, send_positions=False)
            b.account(10_000.0)
            b.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
            wait_for(lambda: counters().get("ticks", 0) >= 1, 10, "the terminal's quote")

            signal("BUY")
            assert counters()["auto_skipped_positions_unknown"] == 1
            manual = control(eps.control, "trade", symbol="EURUSD", side="buy", lots=0.01, source="test")
            assert manual["ok"] is False and manual["status"] == 503 and "has not sent its positions" in manual["error"], manual
            assert b.next_command(300) is None, "an open sent before the terminal's positions were known"

            b.send(type="positions", positions=[held])  # it already holds a buy (from before the restart)
            wait_for(lambda: control(eps.control, "snapshot")["positions"], 10, "the positions")
            signal("BUY")
            assert counters()["auto_skipped_holding"] == 1 and b.next_command(300) is None
            # a signal from a tick the terminal queued while the daemon was down (a hunt, 2026-12-05: an order on a 61 s old one)
            signal("SELL", age_s=61)
            assert counters()["auto_skipped_stale"] == 1 and b.next_command(300) is None
            signal("SELL")
            ident, command = b.next_command()
            assert (command["type"], command["side"]) == ("open", "sell"), command
            b.answer(ident, reply_ok(command["id"], ticket=501, price=1.1, lots=0.01, time_msc=now_msc()))
    finally:
        b.close()
        d.close()


@pytest.mark.timeout(90)
def test_signals_right_after_a_break_in_the_series_are_not_acted_on(tmp_path: Path) -> None:
    """Two hunts (2026-12-05): after a 35-pip Monday gap the first signal (RSI 97, volatility_20 29 times its
    Friday value) became an order, and after a restart whose restored state spanned a 15-pip move an auto order's
    default stop was 281 pips away. Signals within auto_trade.settle_after_break_s (tick time) of a break (the
    run's first signal of a symbol, no signal for break_gap_s, another terminal owning it) are skipped."""
    d, eps = inproc_daemon(tmp_path / "data", **{**ENV, "QT_AUTO_TRADE__SETTLE_AFTER_BREAK_S": "60", "QT_EXECUTION__DEFAULT_TERMINAL": ""})
    signals = _signals_to_auto_trader(d)
    term = ScriptedTerminal(eps, "A@X")
    ids = iter(range(1000))
    start = now_msc()

    def counters() -> dict[str, int]:
        return control(eps.control)["health"]["counters"]

    def signal(prediction: str, at_s: float) -> None:
        seen = _decided(counters()) + counters().get("ticks", 0)
        term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
        signals.put({"id": f"sig-{next(ids)}", "symbol": "EURUSD", "prediction": prediction, "confidence": 1.0, "time_msc": start + int(at_s * 1000)})
        wait_for(lambda: _decided(c := counters()) + c.get("ticks", 0) >= seen + (1 if prediction == "HOLD" else 2), 10, f"the {prediction} signal at {at_s} s")

    try:
        with serving(d):
            term.hello(symbols=("EURUSD",))
            term.account(10_000.0)
            signal("BUY", 0)  # the run's first: its features may span the downtime
            assert counters()["auto_skipped_after_break"] == 1 and term.next_command(300) is None
            signal("HOLD", 30)
            signal("SELL", 59)
            assert counters()["auto_skipped_after_break"] == 2 and term.next_command(300) is None
            signal("BUY", 61)  # settled
            ident, command = term.next_command()
            assert (command["type"], command["side"]) == ("open", "buy"), command
            term.answer(ident, reply_ok(command["id"], ticket=700, price=1.1001, lots=0.01, time_msc=now_msc()))
            signal("SELL", 61 + 301)  # after a gap of more than break_gap_s (300): a weekend, an outage
            assert counters()["auto_skipped_after_break"] == 3 and term.next_command(300) is None
    finally:
        term.close()
        d.close()


@pytest.mark.timeout(60)
def test_at_a_position_limit_signals_are_skipped_not_journaled_as_refused_orders(tmp_path: Path) -> None:
    """A churn soak (2026-12-05): at max_open_positions every BUY/SELL signal became an order the limit refused, in
    the order journal and on the app's feed: 1,782 in ten minutes. Skipped and counted instead, as while halted."""
    d, eps = inproc_daemon(tmp_path / "data", **{**ENV, "QT_RISK__MAX_OPEN_POSITIONS": "1", "QT_EXECUTION__DEFAULT_TERMINAL": ""})
    signals = _signals_to_auto_trader(d)
    term = ScriptedTerminal(eps, "A@X")
    held = {"ticket": 1, "symbol": "GBPUSD", "side": "buy", "lots": 0.01, "open_price": 1.3, "sl": 0.0, "tp": 0.0, "profit": 0.0,
            "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "manual", "open_time_msc": now_msc()}  # fmt: skip
    try:
        with serving(d):
            term.hello(symbols=("EURUSD", "GBPUSD"))
            term.account(10_000.0)
            term.send(type="positions", positions=[held])
            term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
            wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks", 0) >= 1, 10, "the tick")
            for i in range(3):
                signals.put({"id": f"sig-{i}", "symbol": "EURUSD", "prediction": "BUY", "confidence": 1.0, "time_msc": now_msc()})
            wait_for(lambda: control(eps.control)["health"]["counters"].get("auto_skipped_limits", 0) == 3, 10, "three signals skipped")
            assert control(eps.control, "orders", limit=100)["orders"] == [] and term.next_command(300) is None
    finally:
        term.close()
        d.close()


def _auto_daemon(tmp_path: Path, **env: str) -> tuple[Any, Any, Any, Any]:
    """An in-process daemon with auto-trading on, one scripted terminal A@X streaming EURUSD with an account and no
    positions, and the queue that hands the auto-trader its signals (the caller serves, then closes both)."""
    d, eps = inproc_daemon(tmp_path / "data", **{**ENV, "QT_EXECUTION__DEFAULT_TERMINAL": "", **env})
    return d, eps, _signals_to_auto_trader(d), ScriptedTerminal(eps, "A@X")


@pytest.mark.timeout(90)
def test_a_sized_order_at_the_symbol_limit_is_skipped_not_journaled_as_a_refusal(tmp_path: Path) -> None:
    """A hunt (2026-12-06): with auto_trade.lots 0 (sized by risk, the default) the limits were judged with 0 lots, so
    at risk.max_lots_per_symbol every signal became a sized order the limit refused, journaled and on the feed."""
    d, eps, signals, term = _auto_daemon(tmp_path, QT_AUTO_TRADE__LOTS="0", QT_RISK__MAX_LOTS_PER_SYMBOL="0.5")

    def counters() -> dict[str, int]:
        return control(eps.control)["health"]["counters"]

    try:
        with serving(d):
            term.hello()
            term.account(10_000.0)
            term.send(type="positions", positions=[])
            term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)
            wait_for(lambda: counters().get("ticks", 0) >= 1, 10, "the tick")
            signals.put({"id": "sig-buy", "symbol": "EURUSD", "prediction": "BUY", "confidence": 1.0, "time_msc": now_msc()})
            ident, command = term.next_command()
            lots = command["lots"]
            assert 0.25 < lots <= 0.5, command  # sized so that a second one passes the symbol's limit of 0.5
            term.answer(ident, reply_ok(command["id"], ticket=1, price=1.1001, lots=lots, time_msc=now_msc()))
            held = {"ticket": 1, "symbol": "EURUSD", "side": "buy", "lots": lots, "open_price": 1.1001, "sl": command["sl"], "tp": command["tp"],
                    "profit": 0.0, "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "QT-" + command["id"], "open_time_msc": now_msc()}  # fmt: skip
            term.send(type="positions", positions=[held])
            wait_for(lambda: control(eps.control, "snapshot")["positions"], 10, "the position listed")
            for i in range(3):  # the prediction turned: SELL, re-published
                signals.put({"id": f"sig-sell-{i}", "symbol": "EURUSD", "prediction": "SELL", "confidence": 1.0, "time_msc": now_msc()})
            wait_for(lambda: counters().get("auto_skipped_limits", 0) == 3, 10, "three sells skipped at the limit")
            assert term.next_command(300) is None
            assert [o["status"] for o in control(eps.control, "orders", limit=100)["orders"]] == ["filled"]
            assert counters().get("auto_orders_sent") == counters().get("auto_orders_requested") == 1
    finally:
        term.close()
        d.close()


@pytest.mark.timeout(90)
def test_after_a_refusal_that_symbol_and_direction_get_no_auto_order_for_a_while(tmp_path: Path) -> None:
    """A hunt (2026-12-06): a refusal that does not go away (the market closed, a spread too wide) met every signal
    again, the periodic ones too: each a broker request or a journaled refusal on the app's feed. Now that terminal,
    symbol and direction get none for auto_trade.refused_pause_s; the other direction still trades."""
    d, eps, signals, term = _auto_daemon(tmp_path, QT_AUTO_TRADE__REFUSED_PAUSE_S="60")

    def counters() -> dict[str, int]:
        return control(eps.control)["health"]["counters"]

    def signal(i: int, prediction: str) -> None:
        term.send(type="tick", symbol="EURUSD", bid=1.1, ask=1.1001, volume=1)  # a fresh quote for the risk rules
        before = _decided(counters())
        signals.put({"id": f"sig-{i}", "symbol": "EURUSD", "prediction": prediction, "confidence": 1.0, "time_msc": now_msc()})
        wait_for(lambda: _decided(counters()) > before, 10, f"signal {i} decided")

    try:
        with serving(d):
            term.hello()
            term.account(10_000.0)
            term.send(type="positions", positions=[])
            signal(0, "BUY")
            ident, command = term.next_command()
            term.answer(ident, reply_error(command["id"], 10018, "Market is closed"))
            wait_for(lambda: counters().get("auto_orders_refused") == 1, 10, "the refusal")
            for i in range(1, 4):
                signal(i, "BUY")
            assert term.next_command(300) is None, "a buy sent again after the terminal refused one"
            assert counters()["auto_skipped_refused_lately"] == 3
            signal(4, "SELL")
            ident, command = term.next_command()
            assert command["side"] == "sell", command
            assert len(control(eps.control, "orders", limit=100)["orders"]) == 2
    finally:
        term.close()
        d.close()
