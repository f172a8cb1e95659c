"""Pre-trade risk rules, position sizing and default stops.

Shaped after nautilus_trader's risk engine: the trading state is explicit
(``active``: anything allowed; ``reducing``: only closes and stop changes;
``halted``: kill switch, nothing new) and each rule is a ``_check_*``
predicate that returns the reason for a refusal, or None. Rules read the
clock they are given, never the wall clock directly, so they are testable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from collections.abc import Container, Mapping
from typing import Any

from quantumtrader import money
from quantumtrader.config import RiskConfig, parse_day_start
from quantumtrader.log import get_logger
from quantumtrader.pips import fx_pair
from quantumtrader.protocol import MS_PER_DAY


class TradingState(str, Enum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class OpenIntent:
    """A new position as risk sees it, after sizing and default stops."""

    symbol: str
    side: str
    lots: float
    sl: float
    tp: float


@dataclass(frozen=True, slots=True)
class Exposure:
    """What is already open or on its way, for the limits."""

    open_positions: int
    symbol_lots: float  # open + pending lots in the intent's symbol


def round_lots_down(lots: float, step: float) -> float:
    """Round down to the lot step (never up: risk sized it, we may only take less)."""
    steps = math.floor(lots / step + 1e-9)
    return round(steps * step, 8)


log = get_logger("quantumtrader.execution")
_EPOCH_DATE = date(1970, 1, 1)


class RiskEngine:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._day_start = parse_day_start(config.day_start)
        self.kill_switch = not config.trading_enabled
        self._switched: bool | None = None  # what the control request last set: saved, unlike the config's halt
        self._day: int = -1
        self._day_start_equity: dict[str, float] = {}
        self._equity: dict[str, float] = {}
        # Each terminal's account as its account events name it: (login, currency). Losses are summed per currency,
        # never across (USD and EUR were added; a hunt, 2026-12-05: max_daily_loss_pct is the rule for a JPY account
        # beside a USD one), and a terminal logged in to another account starts that account's day afresh.
        self._account: dict[str, tuple[int | None, str]] = {}
        # The day's loss of terminals forgotten since it began (ExecutionEngine.forget_terminal), or of the account a
        # terminal left, per currency: so ids that come and go do not grow the dicts above without bound, and a loss
        # stays counted.
        self._forgotten_loss: dict[str, float] = {}
        # Each terminal's open positions as its last positions event listed them, saved: after a restart a terminal
        # not heard yet (frozen, its EA restarting) counted 0 toward max_open_positions, and a churn soak saw 8
        # positions open under a limit of 6 (2026-12-05). ``_held_restored``: those read at start, counted for a
        # terminal until it reports (ExecutionEngine._exposure).
        self._held: dict[str, int] = {}
        self._held_restored: dict[str, int] = {}
        # The UTC day the daily loss reached its limit: reducing-only holds for the rest of it. Recomputed from
        # equity alone, the limit lifted itself when a floating loss recovered a little or a deposit came in.
        self._breached_day: int = -1

    # -- state -----------------------------------------------------------------

    @property
    def state(self) -> TradingState:
        if self.kill_switch:
            return TradingState.HALTED
        if self.daily_loss_breached:
            return TradingState.REDUCING
        return TradingState.ACTIVE

    def day_of(self, now_msc: int) -> int:
        """The trading day ``now_msc`` falls in, as days since 1970-01-01, starting at ``risk.day_start``.

        UTC midnight fell 2-3 hours into the FX session (which opens at 17:00 New York): a loss before it and
        another after it each had the whole limit (a hunt, 2026-12-05)."""
        minutes, zone = self._day_start
        if zone is None:
            return (now_msc - minutes * 60_000) // MS_PER_DAY
        local = datetime.fromtimestamp(now_msc / 1000.0, zone) - timedelta(minutes=minutes)
        return (local.date() - _EPOCH_DATE).days

    def on_account(self, terminal: str, equity: float, now_msc: int, *, currency: str = "", login: int | None = None) -> bool:
        """Track equity per terminal and where it stood when the trading day began (:meth:`day_of`).

        True when the day's starting equity changed or the daily loss just reached its limit: the
        caller saves :meth:`saved_state`, so a restart later that day neither starts the daily loss
        afresh nor lifts the limit.
        """
        # Days only go forward: the clock set back across the day's start (NTP) began the day afresh, and reducing-only
        # was lifted until the clock came back (a hunt, 2026-12-05).
        day = max(self.day_of(now_msc), self._day)
        changed = day != self._day
        if changed:
            self._day = day
            self._start_day()
        # No equity (a terminal not logged in yet sends zeros) is no day's start nor a loss: its 0 counted the whole
        # day's start as lost. So every equity kept below is > 0.
        if equity <= 0:
            return changed
        account = (login, currency)
        before = self._account.get(terminal)
        # (a login restored as None, from before a restart, is not known to differ)
        if before is not None and terminal in self._day_start_equity and (before[1] != currency or before[0] not in (None, login)):
            # Another account under the same terminal id (a fixed TerminalId, a login changed): its 50,000 -> 5,000
            # counted 45,000 lost at once. The left account's loss so far stays counted; this one starts now.
            self._keep_loss(terminal)
            log.warning("terminal logged in to another account: its day's loss counts afresh", terminal=terminal, was=f"{before[0]} {before[1]}", now=f"{login} {currency}")
        self._account[terminal] = account
        if terminal not in self._day_start_equity:
            self._day_start_equity[terminal] = equity
            changed = True
        self._equity[terminal] = equity
        if self._breached_day != day and self._daily_limit_reached():
            self._breached_day = day
            changed = True
        return changed

    def _daily_limit_reached(self) -> bool:
        """``max_daily_loss`` by one currency's accounts, or ``max_daily_loss_pct`` of one account's day-start equity."""
        limit, pct = self.config.max_daily_loss, self.config.max_daily_loss_pct
        if limit > 0 and self.daily_loss() >= limit:
            return True
        return pct > 0 and any((start - self._equity.get(t, start)) / start * 100.0 >= pct for t, start in self._day_start_equity.items())

    def _keep_loss(self, terminal: str) -> None:
        """``terminal``'s day's loss so far into the forgotten sum of its currency; its start and equity let go."""
        equity = self._equity.pop(terminal, None)
        start = self._day_start_equity.pop(terminal, None)
        if start is not None and equity is not None and start > equity:
            currency = self._account.get(terminal, (None, ""))[1]
            self._forgotten_loss[currency] = self._forgotten_loss.get(currency, 0.0) + start - equity

    def reset_daily_loss(self) -> None:
        """An operator's decision to trade on today: the day starts again from each terminal's equity now."""
        self._breached_day = -1
        self._start_day()

    def _start_day(self) -> None:
        """The day's loss counts from each terminal's equity now (one not logged in has none kept: no start)."""
        self._day_start_equity = dict(self._equity)
        self._forgotten_loss = {}

    def forget_terminal(self, terminal: str) -> bool:
        """``terminal``'s session gave up its slot: its day's loss so far is kept in one sum, its equity let go.
        True when there was anything of it (the caller saves :meth:`saved_state`)."""
        if terminal not in self._equity:  # no account since the daemon started: a start restored from before it stays, to
            return False  # count its loss when it returns (the review of the change, 2026-12-05)
        self._keep_loss(terminal)
        self._account.pop(terminal, None)
        self._held.pop(terminal, None)
        self._held_restored.pop(terminal, None)
        return True

    def switch(self, on: bool) -> None:
        """The kill switch as the control request sets it (saved; the config's halt is not, and a request does not
        lift it: ``risk.trading_enabled = false`` halts until the config says otherwise. A control request lifted it,
        against the documentation: a hunt, 2026-12-05)."""
        self._switched = on
        self.kill_switch = on or self.config_halts

    @property
    def config_halts(self) -> bool:
        """Whether the config halts trading (``risk.trading_enabled = false``), whatever the control request says."""
        return not self.config.trading_enabled

    def saved_state(self) -> dict[str, Any]:
        """What must survive a restart: the kill switch as the control request set it (None: never; a halt
        from the config is the config's, so lifting it there and restarting lifts it) and the day's
        starting equity per terminal, and whether the daily loss reached its limit that day."""
        return {
            "kill_switch": self._switched,
            "day": self._day,
            "day_start_equity": dict(self._day_start_equity),
            "currencies": {t: a[1] for t, a in self._account.items() if t in self._day_start_equity},
            "daily_loss_breached": self._breached_day == self._day >= 0,
            "forgotten_losses": dict(self._forgotten_loss),
            "positions_held": dict(self._held),
        }

    def restore(self, state: dict[str, Any], now_msc: int) -> bool:
        """Resume from :meth:`saved_state`: a crash or a restart must neither resume trading that an
        operator halted nor give a fresh daily-loss allowance. A halt from the config
        (``trading_enabled = false``, lifted there) or from the saved switch (lifted by the control
        request) holds.
        A starting equity of another day is ignored. Malformed parts are ignored (the file is ours,
        but a crash may have left anything). Returns whether the saved kill switch halts trading."""
        halted = state.get("kill_switch") is True
        if halted:
            self.kill_switch = self._switched = True
        held = state.get("positions_held")
        if isinstance(held, dict):  # not of a day: positions stay open across days
            self._held_restored = {str(t): n for t, n in held.items() if type(n) is int and 0 < n < 1_000_000}
            self._held = dict(self._held_restored)
        starts = state.get("day_start_equity")
        today = self.day_of(now_msc)
        if state.get("day") == today and isinstance(starts, dict):
            valid = {str(t): float(e) for t, e in starts.items() if type(e) in (int, float) and math.isfinite(e) and e > 0}
            self._day = today
            self._day_start_equity = valid
            forgotten = state.get("forgotten_losses")
            if not isinstance(forgotten, dict):  # saved before losses were kept per currency: one number
                forgotten = {"": state.get("forgotten_loss", 0.0)}
            self._forgotten_loss = {str(c): float(v) for c, v in forgotten.items() if type(v) in (int, float) and math.isfinite(v) and v > 0}
            currencies = state.get("currencies")
            if isinstance(currencies, dict):  # until each terminal's next account event names its account
                self._account = {t: (None, c) for t, c in currencies.items() if t in valid and isinstance(c, str)}
            if state.get("daily_loss_breached") is True:
                self._breached_day = today
        return halted

    def on_positions(self, terminal: str, count: int) -> bool:
        """``terminal`` lists ``count`` open positions; True when that changed (the caller saves :meth:`saved_state`)."""
        self._held_restored.pop(terminal, None)  # it reports for itself from now on
        if self._held.get(terminal, 0) == count:
            return False
        if count:
            self._held[terminal] = count
        else:
            del self._held[terminal]
        return True

    def held_restored(self) -> dict[str, int]:
        """The positions each terminal listed before the restart, for those that have not listed theirs since."""
        return dict(self._held_restored)

    def unreported_positions(self, reported: Container[str]) -> int:
        """The positions that terminals listed before the restart and have not listed since (not in ``reported``)."""
        return sum(n for t, n in self._held_restored.items() if t not in reported)

    def forget_held(self) -> None:
        """The restored counts of terminals that never came back stop counting (after daemon.retire_after_s)."""
        for terminal in self._held_restored:
            self._held.pop(terminal, None)
        self._held_restored = {}

    def daily_losses(self) -> dict[str, float]:
        """The day's loss so far per account currency ("" where no account event named one yet)."""
        losses = dict(self._forgotten_loss)
        for terminal, start in self._day_start_equity.items():
            currency = self._account.get(terminal, (None, ""))[1]
            losses[currency] = losses.get(currency, 0.0) + max(0.0, start - self._equity.get(terminal, start))
        return losses

    def daily_loss(self) -> float:
        """The largest day's loss of one currency: what ``max_daily_loss`` is judged on (in each currency alone)."""
        return max(self.daily_losses().values(), default=0.0)

    def _daily_limits_text(self) -> str:
        limits = [f"risk.max_daily_loss {self.config.max_daily_loss:g}"] if self.config.max_daily_loss > 0 else []
        if self.config.max_daily_loss_pct > 0:
            limits.append(f"risk.max_daily_loss_pct {self.config.max_daily_loss_pct:g}% of an account")
        return " or ".join(limits)

    def _daily_loss_text(self) -> str:
        currency, loss = max(self.daily_losses().items(), key=lambda item: item[1], default=("", 0.0))
        return f"{loss:.2f}" + (f" {currency}" if currency else "")

    @property
    def daily_loss_breached(self) -> bool:
        """The daily loss reached ``max_daily_loss`` today (latched until the next trading day or :meth:`reset_daily_loss`)."""
        return (self.config.max_daily_loss > 0 or self.config.max_daily_loss_pct > 0) and self._breached_day == self._day >= 0

    # -- sizing and default stops ----------------------------------------------

    def default_stop_distance(self, price: float, volatility: float | None) -> float:
        """From recent volatility when known, else a fixed % of price.

        ``volatility`` is the std of *tick* returns; a stop must survive the
        moves of a horizon, not of one tick, so it is scaled by the square root
        of ``stop_horizon_ticks`` (random-walk scaling) before ``stop_sigmas``, and capped at
        ``max_default_stop_pct``: volatility_20 holds a price gap's return for 20 ticks.
        """
        cfg = self.config
        floor = price * cfg.min_stop_pct / 100.0 * 1.5
        if volatility is not None and math.isfinite(volatility) and volatility > 0:
            distance = cfg.stop_sigmas * volatility * math.sqrt(cfg.stop_horizon_ticks) * price
            if cfg.max_default_stop_pct:  # a gap's one return made it 948 pips after a weekend (a hunt, 2026-12-05)
                distance = min(distance, price * cfg.max_default_stop_pct / 100.0)
            return max(floor, distance)
        return max(floor, price * cfg.default_stop_pct / 100.0)

    def default_stops(self, side: str, bid: float, ask: float, sl: float, tp: float, volatility: float | None) -> tuple[float, float]:
        """Fill in a missing SL (from volatility) and TP (reward/risk x the stop distance)."""
        price = ask if side == "buy" else bid
        distance = abs(price - sl) if sl > 0 else self.default_stop_distance(price, volatility)
        sign = 1.0 if side == "buy" else -1.0
        if sl <= 0:
            sl = price - sign * distance
        if tp <= 0:
            tp = price + sign * distance * self.config.reward_risk
        return sl, tp

    def lot_step(self, spec: Mapping[str, float] | None = None) -> float:
        """The symbol's volume step at the broker when its terminal said it, else ``risk.lot_step``."""
        if spec is not None and spec["volume_step"] > 0:
            return spec["volume_step"]
        return self.config.lot_step

    def sizing_problem(self, symbol: str, account_currency: str | None, spec: Mapping[str, float] | None = None) -> str | None:
        """Why lots cannot be sized for ``symbol``, or None.

        With the broker's tick value (specs) any symbol and account currency can be sized. Without it, the
        100,000-unit FX approximation (:mod:`quantumtrader.money`) holds only for a USD account trading a
        pair with USD on one side; anywhere else it was off by the exchange rate (a JPY account: 150 times
        the risk asked for).
        """
        if spec is not None and spec["tick_size"] > 0 and spec["tick_value"] > 0:
            return None
        pair = fx_pair(symbol)
        if account_currency == "USD" and pair is not None and "USD" in pair:
            return None
        return (
            f"cannot size {symbol}: its terminal sent no tick value for it, and without one only a USD account's pairs with USD "
            f"are sized (the account is in {account_currency or 'an unknown currency'}); give lots"
        )

    def size_lots(self, symbol: str, side: str, bid: float, ask: float, sl: float, equity: float, spec: Mapping[str, float] | None = None) -> float:
        """Lots so that hitting the stop loses risk_pct of equity, rounded down to the step.

        ``spec``: the symbol's specs from its terminal (protocol.SYMBOL_SPEC_FIELDS), when it sent them.
        """
        per_lot = self._loss_per_lot(symbol, side, bid, ask, sl, spec)
        if per_lot is None or equity <= 0:
            return 0.0
        lots = equity * self.config.risk_pct / 100.0 / per_lot
        cap = self.config.lot_max
        if spec is not None and spec["volume_max"] > 0:
            cap = min(cap, spec["volume_max"])
        return min(round_lots_down(lots, self.lot_step(spec)), cap)

    @staticmethod
    def _loss_per_lot(symbol: str, side: str, bid: float, ask: float, sl: float, spec: Mapping[str, float] | None) -> float | None:
        """What one lot loses at the stop, in the account currency; None for no distance or odd specs (within their
        bounds): no size, no judgement, rather than a crash."""
        price = ask if side == "buy" else bid
        distance = abs(price - sl)
        if distance <= 0:
            return None
        per_lot = money.loss_per_lot(symbol, price, distance, spec)
        return per_lot if per_lot > 0 and math.isfinite(per_lot) else None

    def _check_trade_risk(self, intent: OpenIntent, quote: dict[str, Any] | None, equity: float, account_currency: str | None, spec: Mapping[str, float] | None) -> str | None:
        """Why the open's stop-out would lose too much of the account (``max_trade_risk_pct``), or None.

        Sizing keeps a stop-out to ``risk_pct`` only when lots are missing. Given lots (the app, auto_trade.lots)
        with a far stop were not judged at all: after a 35-pip Monday gap, volatility_20 held the gap's return and
        the default stop came out 948 pips away, 47% of equity at 0.5 lots (a hunt, 2026-12-05). Not judged when
        the loss per lot cannot be known (see sizing_problem), without a quote, or before the equity is known."""
        limit = self.config.max_trade_risk_pct
        if not limit or quote is None or intent.sl <= 0 or intent.lots <= 0 or not equity > 0 or self.sizing_problem(intent.symbol, account_currency, spec):
            return None
        per_lot = self._loss_per_lot(intent.symbol, intent.side, quote["bid"], quote["ask"], intent.sl, spec)
        if per_lot is None:
            return None
        loss = per_lot * intent.lots
        share = loss / equity * 100.0
        if share <= limit:
            return None
        money_text = f"{loss:.2f} {account_currency}" if account_currency else f"{loss:.2f}"
        return (
            f"the stop at {intent.sl:g} would lose {money_text} ({share:.1f}% of equity) at {intent.lots:g} lots,"
            f" above risk.max_trade_risk_pct {limit:g}: give fewer lots or a nearer stop (a default stop follows recent volatility,"
            " which a price gap inflates for a while)"
        )

    # -- the rules -------------------------------------------------------------

    def check_open(
        self,
        intent: OpenIntent,
        quote: dict[str, Any] | None,
        quote_age_ms: float,
        exposure: Exposure,
        spec: Mapping[str, float] | None = None,
        *,
        tick_lag_ms: float = 0.0,
        equity: float = 0.0,
        account_currency: str | None = None,
    ) -> str | None:
        """The reason a new position is refused, or None if every rule passes. ``quote_age_ms``: since the quote
        arrived; ``tick_lag_ms``: how far its own tick time lies behind this machine's UTC clock; ``equity`` (0: not
        known) and ``account_currency``: the account's, for the stop-out's share of it."""
        for reason in (
            self.check_queued(intent, quote, quote_age_ms, tick_lag_ms=tick_lag_ms),
            self._check_lots(intent.symbol, intent.lots, spec),
            self.check_limits(exposure, intent.lots),
            self._check_trade_risk(intent, quote, equity, account_currency, spec),
        ):
            if reason:
                return reason
        return None

    def check_queued(self, intent: OpenIntent, quote: dict[str, Any] | None, quote_age_ms: float, *, tick_lag_ms: float = 0.0) -> str | None:
        """The rules that may change while an open waits its turn at a busy terminal (the kill switch, the
        daily loss, the quote's age and spread, the stops against the price): run when it is requested and
        again when it leaves the queue. The limits need not be: they counted it from its request on."""
        for reason in (
            self._check_state(),
            self._check_quote(quote, quote_age_ms, tick_lag_ms),
            self._check_spread(quote),
            self._check_stops(intent.side, quote, intent.sl, intent.tp),
            self._check_stops_set(intent.sl, intent.tp),
        ):
            if reason:
                return reason
        return None

    def check_modify(self, side: str, quote: dict[str, Any] | None, sl: float, tp: float) -> str | None:
        if self.kill_switch:
            return None  # moving stops never adds risk we are not already carrying
        return self._check_stops(side, quote, sl, tp)

    def _check_state(self) -> str | None:
        state = self.state
        if state is TradingState.HALTED:
            return "trading halted: the kill switch is on (risk.trading_enabled)"
        if state is TradingState.REDUCING:
            return (
                f"reducing only: the daily loss reached {self._daily_limits_text()} today (now {self._daily_loss_text()}); "
                f'until the next trading day (risk.day_start {self.config.day_start}), or control risk {{"daily_loss_reset": true}}'
            )
        return None

    def _check_quote(self, quote: dict[str, Any] | None, age_ms: float, tick_lag_ms: float) -> str | None:
        if quote is None:
            return "no quote for this symbol yet"
        if age_ms > self.config.max_quote_age_ms:
            return f"quote is stale: {age_ms:.0f} ms old (risk.max_quote_age_ms {self.config.max_quote_age_ms})"
        # Its arrival is recent, its tick is not: a backlog read after a restart passed the rule above with quotes
        # 23 s old and the default stops were set from them (a hunt, 2026-12-05).
        limit_s = self.config.max_tick_lag_s
        if limit_s and tick_lag_ms > limit_s * 1000:
            return (
                f"quote is from a backlog: its tick time is {tick_lag_ms / 1000:.0f} s behind this machine's UTC clock"
                f" (risk.max_tick_lag_s {limit_s:g}; the daemon is reading ticks queued earlier, or this machine's clock or the"
                " broker's is off)"
            )
        return None

    def _check_spread(self, quote: dict[str, Any] | None) -> str | None:
        if quote is None:
            return None
        mid = (quote["bid"] + quote["ask"]) / 2
        spread_pct = (quote["ask"] - quote["bid"]) / mid * 100.0
        if spread_pct > self.config.max_spread_pct:
            return f"spread too wide: {spread_pct:.4f}% of price (risk.max_spread_pct {self.config.max_spread_pct:g})"
        return None

    def _check_lots(self, symbol: str, lots: float, spec: Mapping[str, float] | None = None) -> str | None:
        cfg = self.config
        if lots < cfg.lot_min - 1e-12:
            return f"lots {lots:g} below the minimum {cfg.lot_min:g}"
        if lots > cfg.lot_max + 1e-12:
            return f"lots {lots:g} above the maximum {cfg.lot_max:g}"
        if spec is not None:  # the broker's limits: the terminal would refuse the order anyway, after a round trip
            if lots < spec["volume_min"] - 1e-12:
                return f"lots {lots:g} below {symbol}'s minimum at the broker ({spec['volume_min']:g})"
            if 0 < spec["volume_max"] < lots - 1e-12:
                return f"lots {lots:g} above {symbol}'s maximum at the broker ({spec['volume_max']:g})"
        return None

    def _check_stops_set(self, sl: float, tp: float) -> str | None:
        """A new position always carries both stops (default ones fill in what was not given): one at or
        below 0 is a default stop that volatility pushed past 0, sent as no stop at all."""
        for name, value in (("stop loss", sl), ("take profit", tp)):
            if not value > 0:
                return f"{name} {value:g} is not a price: give one (the default, from volatility or the other stop, fell to or below 0)"
        return None

    def _check_stops(self, side: str, quote: dict[str, Any] | None, sl: float, tp: float) -> str | None:
        if quote is None:
            return None
        price = quote["bid"] if side == "buy" else quote["ask"]  # the price a position is closed at
        max_distance = price * self.config.max_stop_pct / 100.0
        for name, value in (("stop loss", sl), ("take profit", tp)):
            if value > 0 and abs(value - price) > max_distance:
                return (
                    f"{name} {value:g} is {abs(value - price) / price * 100:.0f}% from the price {price:g}, beyond risk.max_stop_pct "
                    f"{self.config.max_stop_pct:g}: stops are prices, not pips or distances"
                )
        min_distance = price * self.config.min_stop_pct / 100.0
        below, above = (sl, tp) if side == "buy" else (tp, sl)
        if below > 0 and below > price - min_distance:
            name = "stop loss" if side == "buy" else "take profit"
            return f"{name} {below:g} must be below {price:g} by at least {min_distance:.6g}"
        if above > 0 and above < price + min_distance:
            name = "take profit" if side == "buy" else "stop loss"
            return f"{name} {above:g} must be above {price:g} by at least {min_distance:.6g}"
        return None

    def check_limits(self, exposure: Exposure, lots: float) -> str | None:
        """The position limits alone (max_open_positions, max_lots_per_symbol): what auto-trading asks before it
        sends, as check_open asks them of every open."""
        return self._check_open_positions(exposure.open_positions) or self._check_symbol_exposure(exposure.symbol_lots, lots)

    def _check_open_positions(self, open_positions: int) -> str | None:
        limit = self.config.max_open_positions
        if limit and open_positions >= limit:
            return f"{open_positions} positions open: risk.max_open_positions is {limit}"
        return None

    def _check_symbol_exposure(self, symbol_lots: float, lots: float) -> str | None:
        limit = self.config.max_lots_per_symbol
        if limit and symbol_lots + lots > limit + 1e-9:
            return f"{symbol_lots:g} lots open or pending in this symbol + {lots:g} exceeds risk.max_lots_per_symbol {limit:g}"
        return None
