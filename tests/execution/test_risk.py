"""Each risk rule refuses what it should and lets through what it should; sizing to the lot step."""

from __future__ import annotations

import dataclasses

import pytest

from quantumtrader.config import RiskConfig
from quantumtrader.execution.errors import describe
from quantumtrader.execution.risk import Exposure, OpenIntent, RiskEngine, TradingState, round_lots_down

QUOTE = {"symbol": "EURUSD", "bid": 1.10000, "ask": 1.10010}
FREE = Exposure(open_positions=0, symbol_lots=0.0)
GOLD = {"contract_size": 100.0, "tick_size": 0.01, "tick_value": 1.0, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 50.0}


def engine(**over: object) -> RiskEngine:
    return RiskEngine(dataclasses.replace(RiskConfig(), **over))


def check(risk: RiskEngine, *, side: str = "buy", lots: float = 0.1, sl: float = 1.0950, tp: float = 1.1100, quote: dict | None = QUOTE, age_ms: float = 10, exposure: Exposure = FREE) -> str | None:
    return risk.check_open(OpenIntent("EURUSD", side, lots, sl, tp), quote, age_ms, exposure)


def test_a_sound_order_passes_every_rule() -> None:
    assert check(engine()) is None
    assert check(engine(), side="sell", sl=1.1050, tp=1.0900) is None


@pytest.mark.parametrize(
    ("kwargs", "config", "needle"),
    [
        ({}, {"trading_enabled": False}, "kill switch"),
        ({"quote": None}, {}, "no quote"),
        ({"age_ms": 6000}, {}, "stale"),
        ({"quote": {"symbol": "EURUSD", "bid": 1.1, "ask": 1.1008}}, {}, "spread too wide"),
        ({"lots": 0.001}, {}, "below the minimum"),
        ({"lots": 11.0}, {}, "above the maximum"),
        ({"sl": 1.1005}, {}, "stop loss 1.1005 must be below"),  # buy SL above the bid
        ({"sl": 1.09995}, {}, "stop loss"),  # buy SL closer than min_stop_pct
        ({"tp": 1.0990}, {}, "take profit 1.099 must be above"),
        ({"side": "sell", "sl": 1.0990, "tp": 1.0900}, {}, "stop loss 1.099 must be above"),
        ({"side": "sell", "sl": 1.1050, "tp": 1.1050}, {}, "take profit 1.105 must be below"),
        ({"exposure": Exposure(20, 0.0)}, {}, "max_open_positions"),
        ({"exposure": Exposure(0, 4.95)}, {}, "max_lots_per_symbol"),
    ],
)
def test_each_rule_refuses_with_its_reason(kwargs: dict, config: dict, needle: str) -> None:
    reason = check(engine(**config), **kwargs)
    assert reason is not None and needle in reason


def test_limits_set_to_zero_mean_no_limit() -> None:
    assert check(engine(max_open_positions=0, max_lots_per_symbol=0), exposure=Exposure(10_000, 10_000.0)) is None


def test_daily_loss_switches_to_reducing_and_recovers_next_day() -> None:
    risk = engine(max_daily_loss=100.0)
    day = 1_705_276_800_000  # 2024-01-15T00:00Z
    risk.on_account("t", 10_000.0, day + 1000)
    risk.on_account("t", 9_950.0, day + 2000)
    assert risk.state is TradingState.ACTIVE
    risk.on_account("t", 9_899.0, day + 3000)
    assert risk.state is TradingState.REDUCING
    assert "reducing only" in check(risk)
    risk.on_account("t", 9_899.0, day + 86_400_000 + 1)  # a new UTC day starts from here
    assert risk.state is TradingState.ACTIVE


def test_a_daily_loss_that_reached_the_limit_holds_for_the_day_through_a_recovery_a_deposit_and_a_restart() -> None:
    """It was recomputed from equity on every check: a floating loss that recovered a little, or a deposit,
    lifted the limit the same day (a review, 2026-12-04)."""
    risk = engine(max_daily_loss=100.0)
    day = 1_705_276_800_000  # 2024-01-15T00:00Z
    risk.on_account("t", 10_000.0, day + 1000)
    assert risk.on_account("t", 9_890.0, day + 2000) is True  # the breach is saved at once
    assert risk.state is TradingState.REDUCING
    risk.on_account("t", 9_905.0, day + 3000)  # recovered to a loss of 95
    assert risk.state is TradingState.REDUCING and "reached risk.max_daily_loss 100 today (now 95.00)" in check(risk)
    risk.on_account("t", 10_905.0, day + 4000)  # a deposit of 1,000
    assert risk.state is TradingState.REDUCING and risk.daily_loss() == 0.0

    restarted = engine(max_daily_loss=100.0)
    restarted.restore(risk.saved_state(), day + 5000)
    assert restarted.state is TradingState.REDUCING
    tomorrow = engine(max_daily_loss=100.0)
    tomorrow.restore(risk.saved_state(), day + 86_400_000 + 1)  # another day's breach is not today's
    assert tomorrow.state is TradingState.ACTIVE

    risk.reset_daily_loss()  # an operator trades on: the day starts again from the equity now
    assert risk.state is TradingState.ACTIVE and risk.saved_state()["daily_loss_breached"] is False
    risk.on_account("t", 10_800.0, day + 6000)  # 105 below the new start
    assert risk.state is TradingState.REDUCING
    risk.on_account("t", 10_800.0, day + 86_400_000 + 1)
    assert risk.state is TradingState.ACTIVE


def test_a_forgotten_terminal_keeps_its_days_loss_and_nothing_else() -> None:
    """A terminal's session may give up its slot (daemon.max_terminals): ids that come and go must not grow the
    risk state, and a loss a terminal took before it went must still count that day, restart included."""
    risk = engine(max_daily_loss=100.0)
    day = 1_705_276_800_000  # 2024-01-15T00:00Z
    risk.on_account("lost", 10_000.0, day + 1000)
    risk.on_account("lost", 9_940.0, day + 2000)  # 60 down, then it leaves
    assert risk.forget_terminal("lost") is True
    for i in range(1000):  # ids that come and go
        risk.on_account(f"passing-{i}", 5_000.0, day + 3000 + i)
        risk.forget_terminal(f"passing-{i}")
    assert risk.saved_state()["day_start_equity"] == {} and risk.daily_loss() == 60.0
    risk.on_account("live", 1_000.0, day + 5000)
    risk.on_account("live", 955.0, day + 6000)  # 45 more: 105 in all
    assert risk.state is TradingState.REDUCING
    restarted = engine(max_daily_loss=100.0)
    restarted.restore({**risk.saved_state(), "daily_loss_breached": False}, day + 7000)
    assert restarted.daily_loss() == 60.0  # the forgotten terminal's part survives the restart
    risk.on_account("live", 955.0, day + 86_400_000 + 1)  # a new day starts afresh
    assert risk.daily_loss() == 0.0 and risk.state is TradingState.ACTIVE
    assert risk.forget_terminal("never-met") is False  # nothing to save


def test_a_terminal_forgotten_before_its_first_account_since_a_restart_keeps_its_start() -> None:
    """The review of the change: the day's start restored from before the restart was dropped with no loss counted
    (no equity yet), so the terminal's 60 down that day was lost when it came back."""
    day = 1_705_276_800_000
    risk = engine(max_daily_loss=100.0)
    risk.on_account("t", 10_000.0, day + 1000)
    restarted = engine(max_daily_loss=100.0)
    restarted.restore(risk.saved_state(), day + 2000)
    assert restarted.forget_terminal("t") is False
    restarted.on_account("t", 9_940.0, day + 3000)
    assert restarted.daily_loss() == 60.0


def test_an_account_with_no_equity_is_not_a_loss() -> None:
    """The review of the change: a terminal not logged in yet sends zeros, and after a same-day restart its 0 counted
    the whole restored start as lost: reducing-only for the rest of the day."""
    day = 1_705_276_800_000
    risk = engine(max_daily_loss=100.0)
    risk.on_account("t", 10_000.0, day + 1000)
    restarted = engine(max_daily_loss=100.0)
    restarted.restore(risk.saved_state(), day + 2000)
    restarted.on_account("t", 0.0, day + 3000)  # the terminal starts again, not logged in yet
    assert restarted.daily_loss() == 0.0 and restarted.state is TradingState.ACTIVE
    restarted.on_account("t", 9_940.0, day + 4000)
    assert restarted.daily_loss() == 60.0


def test_the_daily_loss_is_judged_in_each_account_currency_and_afresh_for_another_account() -> None:
    """A hunt of two terminals (2026-12-05): a JPY account's 5,000 yen (~33 USD) reached a limit of 100 and halted the
    USD account; USD and EUR losses were added; a terminal logged in to another account (50,000 -> 5,000) counted
    45,000 lost at once."""
    day = 1_764_892_800_000  # a UTC midnight
    risk = engine(max_daily_loss=100.0)
    risk.on_account("usd", 10_000.0, day + 1000, currency="USD", login=1)
    risk.on_account("eur", 10_000.0, day + 1000, currency="EUR", login=2)
    risk.on_account("usd", 9_940.0, day + 2000, currency="USD", login=1)
    risk.on_account("eur", 9_940.0, day + 2000, currency="EUR", login=2)
    assert risk.state is TradingState.ACTIVE and risk.daily_losses() == {"USD": 60.0, "EUR": 60.0}  # 120 if added
    risk.on_account("usd", 9_890.0, day + 3000, currency="USD", login=1)
    assert risk.state is TradingState.REDUCING and "(now 110.00 USD)" in check(risk)

    yen = engine(max_daily_loss_pct=2.0)  # one rule for every currency: % of each account
    yen.on_account("jpy", 1_500_000.0, day + 1000, currency="JPY", login=3)
    yen.on_account("usd", 10_000.0, day + 1000, currency="USD", login=1)
    yen.on_account("jpy", 1_495_000.0, day + 2000, currency="JPY", login=3)  # 5,000 yen: 0.3%
    assert yen.state is TradingState.ACTIVE
    yen.on_account("usd", 9_790.0, day + 3000, currency="USD", login=1)  # 2.1%
    assert yen.state is TradingState.REDUCING and "risk.max_daily_loss_pct 2% of an account" in check(yen)

    switched = engine(max_daily_loss=1000.0)
    switched.on_account("fixed-id", 50_000.0, day + 1000, currency="USD", login=1)
    switched.on_account("fixed-id", 49_800.0, day + 2000, currency="USD", login=1)  # 200 lost on the first account
    switched.on_account("fixed-id", 5_000.0, day + 3000, currency="USD", login=2)  # logged in to another
    assert switched.state is TradingState.ACTIVE and switched.daily_losses() == {"USD": 200.0}
    switched.on_account("fixed-id", 4_100.0, day + 4000, currency="USD", login=2)
    assert switched.daily_losses() == {"USD": 1100.0} and switched.state is TradingState.REDUCING  # both accounts' losses
    restarted = engine(max_daily_loss=1000.0)
    restarted.restore({**switched.saved_state(), "daily_loss_breached": False}, day + 5000)
    assert restarted.daily_losses() == {"USD": 200.0}  # the left account's, kept per currency across a restart
    restarted.on_account("fixed-id", 4_100.0, day + 6000, currency="USD", login=2)  # the live one's when it reports
    assert restarted.daily_losses() == {"USD": 1100.0}


def test_the_trading_day_starts_at_risk_day_start() -> None:
    """A hunt (2026-12-05): the day began at UTC midnight, 2-3 hours into the FX session, so a loss on each side of it
    had the whole limit. 17:00 New York is 22:00 UTC in winter and 21:00 in summer."""
    winter = 1_764_892_800_000  # 2025-12-05 00:00 UTC
    ny = engine(day_start="17:00 America/New_York")
    assert ny.day_of(winter - 2 * 3_600_000 - 1) == ny.day_of(winter - 3 * 3_600_000)  # 21:59 and 21:00 UTC: one day
    assert ny.day_of(winter - 2 * 3_600_000) == ny.day_of(winter + 3_600_000) == ny.day_of(winter - 3 * 3_600_000) + 1  # from 22:00
    summer = winter - 170 * 86_400_000  # June: 17:00 New York is 21:00 UTC
    assert ny.day_of(summer - 3 * 3_600_000) == ny.day_of(summer - 3 * 3_600_000 - 1) + 1
    utc = engine()
    assert utc.day_of(winter) == winter // 86_400_000 == utc.day_of(winter - 1) + 1  # the default: UTC midnight, as before
    assert engine(day_start="22:00").day_of(winter - 2 * 3_600_000) == engine(day_start="22:00").day_of(winter + 21 * 3_600_000)
    risk = engine(max_daily_loss=100.0, day_start="22:00")
    risk.on_account("t", 10_000.0, winter - 3 * 3_600_000, currency="USD", login=1)
    risk.on_account("t", 9_950.0, winter - 2 * 3_600_000 - 1000, currency="USD", login=1)  # 21:59:59: 50 lost
    risk.on_account("t", 9_950.0, winter - 2 * 3_600_000 + 1000, currency="USD", login=1)  # 22:00:01: a new day
    risk.on_account("t", 9_900.0, winter + 1000, currency="USD", login=1)  # after UTC midnight: the same day
    assert risk.daily_losses() == {"USD": 50.0}
    # the clock set back across the day's start: the day does not begin again (reducing-only would have lifted)
    risk.on_account("t", 9_850.0, winter - 2 * 3_600_000 - 60_000, currency="USD", login=1)
    assert risk.daily_losses() == {"USD": 100.0}


def test_stops_that_are_pips_or_distances_or_past_zero_are_refused() -> None:
    """A stop in pips (20) or a distance (0.002) sent as a price, or a default stop that high volatility put below 0,
    passed every rule and went to the terminal (a review, 2026-12-04)."""
    risk = engine()
    assert "20 is 1718% from the price 1.1001, beyond risk.max_stop_pct 20" in check(risk, side="sell", sl=20.0, tp=1.09)
    assert "stop loss 0.002 is 100% from the price" in check(risk, sl=0.002)
    assert "take profit 40 is" in check(risk, tp=40.0)
    sl, tp = engine(max_default_stop_pct=0.0).default_stops("buy", 1.1, 1.1001, 0.0, 0.0, volatility=0.01)
    assert sl < 0
    assert "stop loss" in check(engine(max_stop_pct=1000.0), sl=sl, tp=tp) and "is not a price" in check(engine(max_stop_pct=1000.0), sl=sl, tp=tp)
    assert check(engine(max_stop_pct=30.0), sl=0.8, tp=1.3) is None  # within the bound set
    assert "risk.max_stop_pct" in risk.check_modify("sell", QUOTE, 20.0, 0.0)


@pytest.mark.parametrize(
    ("symbol", "currency", "spec", "sized"),
    [
        ("EURUSD", "USD", None, True),
        ("USDJPY", "USD", None, True),
        ("EURUSD.r", "USD", None, True),
        ("EURUSD", "JPY", None, False),  # the approximation is in USD: 150x the risk in yen
        ("EURUSD", "JPY", {**GOLD, "tick_value": 0.0}, False),  # MT5's 0: no conversion rate
        ("GBPJPY", "USD", None, False),  # a cross converted by its own price
        ("XAUUSD", "USD", None, False),
        ("EURUSD", None, None, False),  # no account event yet
        ("XAUUSD", "JPY", GOLD, True),  # the broker's tick value: any symbol, any currency
    ],
)
def test_lots_are_sized_without_a_tick_value_only_where_the_approximation_holds(symbol: str, currency: str | None, spec: dict | None, sized: bool) -> None:
    problem = engine().sizing_problem(symbol, currency, spec)
    assert (problem is None) is sized, problem
    if problem:
        assert problem.startswith(f"cannot size {symbol}") and "give lots" in problem


def test_the_saved_state_restores_a_halt_and_today_s_start_only() -> None:
    day = 1_705_276_800_000  # 2024-01-15T00:00Z
    before = engine(max_daily_loss=100.0)
    before.on_account("t", 0.0, day + 500)
    assert before.saved_state()["day_start_equity"] == {}  # not logged in yet: zeros are no day's start
    assert before.on_account("t", 10_000.0, day + 1000) is True  # the day's start: worth saving
    assert before.on_account("t", 9_950.0, day + 2000) is False
    before.switch(True)
    saved = before.saved_state()

    same_day = engine(max_daily_loss=100.0)
    same_day.restore(saved, day + 5000)
    assert same_day.kill_switch is True
    same_day.switch(False)
    assert same_day.on_account("t", 9_899.0, day + 6000) is True  # not a new start (the loss is 101), but the limit reached: saved
    assert same_day.state is TradingState.REDUCING and same_day.saved_state()["day_start_equity"] == {"t": 10_000.0}

    next_day = engine(max_daily_loss=100.0)
    next_day.restore(saved, day + 86_400_000 + 1)  # yesterday's start is no baseline today
    next_day.switch(False)
    next_day.on_account("t", 9_899.0, day + 86_400_000 + 2)
    assert next_day.state is TradingState.ACTIVE

    off_in_config = engine(trading_enabled=False)
    off_in_config.restore({**saved, "kill_switch": False}, day + 5000)  # a saved "off" does not lift the config's halt
    assert off_in_config.state is TradingState.HALTED
    assert engine(trading_enabled=False).saved_state()["kill_switch"] is None  # the config's halt is the config's to lift
    off_in_config.switch(False)  # nor does the control request lift it (a hunt, 2026-12-05: it did)
    assert off_in_config.state is TradingState.HALTED and off_in_config.config_halts
    assert off_in_config.saved_state()["kill_switch"] is False  # what the request set is still what is saved

    garbled = engine(max_daily_loss=100.0)
    garbled.restore({"kill_switch": "yes", "day": (day + 5000) // 86_400_000, "day_start_equity": {"t": "lots", "u": float("nan"), "w": 0.0, "v": 1.0}}, day + 5000)
    assert garbled.kill_switch is False and garbled.saved_state()["day_start_equity"] == {"v": 1.0}


def test_kill_switch_still_allows_moving_stops() -> None:
    risk = engine(trading_enabled=False)
    assert risk.state is TradingState.HALTED
    assert risk.check_modify("buy", QUOTE, 1.0950, 1.1100) is None


@pytest.mark.parametrize(("lots", "step", "expected"), [(0.129, 0.01, 0.12), (0.13, 0.01, 0.13), (1.0, 0.1, 1.0), (0.0999, 0.01, 0.09), (2.5, 1.0, 2.0)])
def test_sizes_round_down_to_the_step_never_up(lots: float, step: float, expected: float) -> None:
    assert round_lots_down(lots, step) == pytest.approx(expected)


def test_size_by_risk_loses_risk_pct_of_equity_at_the_stop() -> None:
    risk = engine(risk_pct=1.0)
    # buy at 1.10010 with SL 1.09010: 100 pips = $1,000 per lot; 1% of $10,000 = $100 -> 0.1 lot
    assert risk.size_lots("EURUSD", "buy", 1.1, 1.1001, 1.0901, 10_000.0) == pytest.approx(0.1)
    # USDJPY: 1 yen per unit; 100,000 yen per lot per 1.0 move, in USD / price
    lots = risk.size_lots("USDJPY", "sell", 150.0, 150.02, 151.0, 10_000.0)
    assert lots == pytest.approx(0.15)  # 1.0 yen x 100,000 / 150 = $666.67 per lot -> 100/666.67 = 0.15


def test_size_by_the_brokers_specs_when_the_terminal_sent_them() -> None:
    risk = engine(risk_pct=1.0)
    # XAUUSD, 100 oz a lot: a $10 stop is 1,000 ticks of $1 = $1,000 per lot -> 1% of $10,000 is 0.1 lot
    assert risk.size_lots("XAUUSD", "buy", 2000.0, 2000.3, 1990.3, 10_000.0, GOLD) == pytest.approx(0.1)
    # without them the approximation takes gold's own contract (100 oz; 100,000 units made it 0.0001 lot: nothing at
    # all); the engine still sizes no gold order without the broker's tick value (sizing_problem: only USD FX pairs)
    assert risk.size_lots("XAUUSD", "buy", 2000.0, 2000.3, 1990.3, 10_000.0) == pytest.approx(0.1)
    assert risk.sizing_problem("XAUUSD", "USD", None) is not None
    # a EUR account: the broker's tick value is in EUR (0.5 per tick, say), so the same stop costs less per lot
    eur = {**GOLD, "tick_value": 0.5}
    assert risk.size_lots("XAUUSD", "buy", 2000.0, 2000.3, 1990.3, 10_000.0, eur) == pytest.approx(0.2)  # 100 / 500
    # the symbol's own step and maximum
    index = {"contract_size": 1.0, "tick_size": 1.0, "tick_value": 1.0, "volume_min": 0.1, "volume_step": 0.1, "volume_max": 5.0}
    assert risk.size_lots("US30", "sell", 39000.0, 39002.0, 39052.0, 10_000.0, index) == pytest.approx(1.9)  # 100 / 52 = 1.92 -> 1.9
    assert risk.size_lots("US30", "sell", 39000.0, 39002.0, 39004.0, 10_000.0, index) == pytest.approx(5.0)  # 50 lots, capped by the broker
    assert risk.lot_step(index) == 0.1 and risk.lot_step(None) == risk.config.lot_step
    zero = {**index, "tick_value": 0.0, "volume_step": 0.0}  # a terminal that does not know: the approximation and risk.lot_step
    assert risk.lot_step(zero) == risk.config.lot_step
    fx = {**zero, "tick_size": 0.00001, "contract_size": 100_000.0}
    assert risk.size_lots("EURUSD", "buy", 1.1, 1.1001, 1.0901, 10_000.0, fx) == pytest.approx(0.1)
    # with the broker's contract size (a mini-lot account: 10,000 units), 100 pips cost $100 a lot
    assert risk.size_lots("EURUSD", "buy", 1.1, 1.1001, 1.0901, 10_000.0, {**fx, "contract_size": 10_000.0}) == pytest.approx(1.0)
    # odd specs within the protocol's bounds: a loss per lot of ~1e-19 sizes to the cap, not an overflow
    odd = {**GOLD, "tick_size": 1e12, "tick_value": 1e-8}
    assert risk.size_lots("XAUUSD", "buy", 2000.0, 2000.3, 1990.3, 10_000.0, odd) == risk.config.lot_max


def test_the_brokers_volume_limits_refuse_with_the_symbol_named() -> None:
    risk = engine()
    index = {"contract_size": 1.0, "tick_size": 1.0, "tick_value": 1.0, "volume_min": 0.1, "volume_step": 0.1, "volume_max": 5.0}
    intent = OpenIntent("US30", "buy", 0.05, 0.0, 0.0)
    assert risk.check_open(intent, None, 10, FREE, index) == "no quote for this symbol yet"  # the rules keep their order
    reason = risk._check_lots("US30", 0.05, index)
    assert reason == "lots 0.05 below US30's minimum at the broker (0.1)"
    assert risk._check_lots("US30", 6.0, index) == "lots 6 above US30's maximum at the broker (5)"
    assert risk._check_lots("US30", 0.5, index) is None and risk._check_lots("US30", 0.05, None) is None


def test_default_stops_come_from_volatility_and_reward_risk() -> None:
    risk = engine(stop_sigmas=2.0, stop_horizon_ticks=3600, reward_risk=2.0)
    sl, tp = risk.default_stops("buy", 1.1, 1.1001, 0.0, 0.0, volatility=0.00001)
    assert sl == pytest.approx(1.1001 - 2 * 0.00001 * 60 * 1.1001)  # 2 sigma over sqrt(3600) ticks
    assert tp - 1.1001 == pytest.approx(2 * (1.1001 - sl))
    sl, tp = risk.default_stops("sell", 1.1, 1.1001, 0.0, 0.0, volatility=None)
    assert sl - 1.1 == pytest.approx(1.1 * 0.2 / 100)  # default_stop_pct
    # a price gap's return in volatility_20 (35 pips after a weekend: 7.2e-4) gave a stop 948 pips away (a hunt,
    # 2026-12-05): capped at max_default_stop_pct (1% of price)
    sl, tp = risk.default_stops("buy", 1.1, 1.1001, 0.0, 0.0, volatility=7.2e-4)
    assert 1.1001 - sl == pytest.approx(1.1001 * 0.01) and tp - 1.1001 == pytest.approx(2 * 1.1001 * 0.01)
    assert 1.1001 - engine(max_default_stop_pct=0.0).default_stops("buy", 1.1, 1.1001, 0.0, 0.0, volatility=7.2e-4)[0] > 0.09


def test_error_codes_read_as_text_for_both_platforms() -> None:
    assert describe(134, "not enough money") == "not enough money (134)"
    assert describe(10019, "No money") == "there is not enough money to complete the request (10019): No money"
    assert describe(99999, "broker says no") == "broker says no (99999)"
