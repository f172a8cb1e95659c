"""The paper terminal's account: fills at its own bid/ask, SL/TP, balance and equity.

It answers commands with MetaTrader 5 trade server return codes (the
``TRADE_RETCODE_*`` numbers) and texts, so the daemon's error table and the
apps see the same codes as from a real MT5 terminal.

Money follows :mod:`quantumtrader.money` (the same rules risk sizing uses).
No swap or commission.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from quantumtrader import money
from quantumtrader.pips import pip_size
from quantumtrader.protocol import CLOSE_ALREADY_RAN, MAX_MONEY, MAX_PRICE, MIN_PRICE, ProtocolError, check_positions, is_number, now_msc, spec_in_range

LOT_MIN = 0.01
LOT_MAX = 100.0
LOT_STEP = 0.01

# MT5 trade server return codes (the ones the paper terminal can produce).
RET_DONE = 10009
RET_INVALID = 10013
RET_INVALID_VOLUME = 10014
RET_INVALID_STOPS = 10016
RET_NO_MONEY = 10019
RET_PRICE_OFF = 10021
RET_POSITION_CLOSED = 10036

RET_TEXT = {
    RET_INVALID: "invalid request",
    RET_INVALID_VOLUME: "invalid volume in the request",
    RET_INVALID_STOPS: "invalid stops in the request",
    RET_NO_MONEY: "there is not enough money to complete the request",
    RET_PRICE_OFF: "there are no quotes to process the request",
    RET_POSITION_CLOSED: "position with the specified identifier has already been closed",
    CLOSE_ALREADY_RAN: "the position is smaller than when the close was asked: an earlier try of this close ran",
}


class TradeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(RET_TEXT[code])
        self.code = code


@dataclass
class PaperPosition:
    ticket: int
    symbol: str
    side: str
    lots: float
    open_price: float
    sl: float
    tp: float
    magic: int
    comment: str
    open_time_msc: int
    profit: float = 0.0

    def to_event(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "symbol": self.symbol,
            "side": self.side,
            "lots": self.lots,
            "open_price": self.open_price,
            "sl": self.sl,
            "tp": self.tp,
            "profit": round(self.profit, 2),
            "swap": 0.0,
            "commission": 0.0,
            "magic": self.magic,
            "comment": self.comment,
            "open_time_msc": self.open_time_msc,
        }


#: The fields of a position a restart keeps (all but the profit, recomputed from the next quote).
_SAVED_FIELDS = tuple(f.name for f in fields(PaperPosition) if f.name != "profit")


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _lots_ok(lots: float) -> bool:
    steps = lots / LOT_STEP
    return LOT_MIN - 1e-12 <= lots <= LOT_MAX + 1e-12 and abs(steps - round(steps)) < 1e-6


class PaperBook:
    """Quotes, positions and money of one paper account."""

    def __init__(self, balance: float, leverage: int, first_ticket: int | None = None, stop_out_pct: float = 0.0, currency: str = "USD") -> None:
        """``first_ticket`` None: the microseconds since the epoch, so a restarted paper terminal (a new book) never
        reuses a ticket of its previous run that the daemon's order journal holds (every book counted from 100001,
        and an unknown order of the last run could settle on the new run's position of that number). Below
        2**53: the dashboard's JavaScript reads tickets as doubles."""
        if first_ticket is None:
            first_ticket = time.time_ns() // 1000
        self.balance = balance
        self.leverage = leverage
        self.currency = currency  # only a label unless USD: the book's arithmetic is in USD
        self.stop_out_pct = stop_out_pct  # margin level (equity / margin x 100) below which positions are closed; 0: never
        self.quotes: dict[str, tuple[float, float]] = {}
        self.positions: dict[int, PaperPosition] = {}
        self._next_ticket = first_ticket
        self.closed_trades = 0

    # -- what a restart keeps -------------------------------------------------------

    def saved(self) -> dict[str, Any]:
        """Money, positions and the ticket counter: what a real terminal's broker keeps across the EA's restarts.
        Profits are left out (recomputed from the next quotes), so an unchanged book saves the same dict."""
        positions = [{name: getattr(pos, name) for name in _SAVED_FIELDS} for pos in self.positions.values()]
        return {"version": 1, "currency": self.currency, "balance": self.balance, "next_ticket": self._next_ticket, "closed_trades": self.closed_trades, "positions": positions}

    def check_saved(self, saved: Any) -> None:
        """ValueError unless ``saved`` is a book :meth:`restore` may load: positions as the protocol's positions
        event takes them (else the daemon refuses every positions event of this terminal), money in range."""
        if not isinstance(saved, dict) or saved.get("version") != 1:
            raise ValueError("not a saved paper book (version 1)")
        if saved.get("currency") != self.currency:
            raise ValueError(f"an account in {saved.get('currency')!r}, this one is in {self.currency!r} (paper.currency)")
        balance, next_ticket, closed = saved.get("balance"), saved.get("next_ticket"), saved.get("closed_trades")
        if not is_number(balance) or abs(balance) > MAX_MONEY or not _count(next_ticket) or not _count(closed) or not isinstance(saved.get("positions"), list):
            raise ValueError("balance, next_ticket, closed_trades or positions of the wrong kind or out of range")
        if not all(isinstance(raw, dict) and set(raw) == set(_SAVED_FIELDS) for raw in saved["positions"]):
            raise ValueError(f"a position without exactly the fields {', '.join(_SAVED_FIELDS)}")
        try:  # as the daemon will read them (ticket, side, prices, lots, comment; no ticket twice)
            check_positions([{**raw, "profit": 0.0, "swap": 0.0, "commission": 0.0} for raw in saved["positions"]], now_msc())
        except ProtocolError as exc:
            raise ValueError(f"positions: {exc.detail}") from None
        for raw in saved["positions"]:  # what is the book's own: below its ticket counter, a lot size it trades
            if not (raw["ticket"] < next_ticket and _lots_ok(raw["lots"])):
                raise ValueError(f"position {raw['ticket']!r}: ticket or lots out of range")

    def restore(self, saved: Any) -> None:
        """Load :meth:`saved`; ValueError (the book untouched) for anything :meth:`check_saved` refuses.

        The ticket counter never goes back: a trade filled after the last save (a kill right after its reply)
        must not give its ticket to the next run's first position (a review, 2026-12-05)."""
        self.check_saved(saved)
        self.positions = {raw["ticket"]: PaperPosition(**raw) for raw in saved["positions"]}
        self.balance, self.closed_trades = float(saved["balance"]), saved["closed_trades"]
        self._next_ticket = max(saved["next_ticket"], self._next_ticket)

    # -- market --------------------------------------------------------------------

    def symbol_spec(self, symbol: str) -> dict[str, float]:
        """The symbol's specs as a broker's terminal sends them (hello and heartbeats), by this book's own rules.

        Contract and lot limits are the book's (``money.contract_size``, ``LOT_*``); a tick is a tenth
        of the symbol's pip (the generator's digits); its value in the account currency is taken at
        the latest valid quote's mid, 0 ("not known", the daemon then sizes as without specs) before
        the first. So the daemon sizes paper orders through the same path as a real EA's: to the same
        lots as without specs for USD-quoted symbols, within a step for others (their tick value is
        the mid's as of the last heartbeat, the approximation without specs converts at the order's
        side of the current quote).
        """
        quote = self.quotes.get(symbol)
        tick_size = tick_value = 0.0
        if quote is not None and MIN_PRICE <= quote[0] < quote[1] <= MAX_PRICE:  # a quote the daemon takes, and not locked (the book keeps any)
            price = (quote[0] + quote[1]) / 2.0
            tick_size = pip_size(symbol, price) / 10.0
            tick_value = money.value_per_price_unit(symbol, 1.0, price) * tick_size
            if not (spec_in_range(tick_size) and spec_in_range(tick_value)):
                tick_size = tick_value = 0.0  # a price of 1e-5 or 1e13: outside what the protocol takes, so not known
            if self.currency != "USD":
                # a USD figure labelled JPY: sizing by it took ~150x the risk asked for; "not known" makes the daemon refuse to size
                tick_size = tick_value = 0.0
        return {
            "contract_size": money.contract_size(symbol),
            "tick_size": tick_size,
            "tick_value": tick_value,
            "volume_min": LOT_MIN,
            "volume_step": LOT_STEP,
            "volume_max": LOT_MAX,
        }

    def on_quote(self, symbol: str, bid: float, ask: float, time_msc: int) -> list[PaperPosition]:
        """Mark positions to market; close those whose SL or TP was touched. Returns the closed ones."""
        self.quotes[symbol] = (bid, ask)
        if bid >= ask:  # a crossed or locked quote is not a price anyone can trade at
            return []
        hit: list[PaperPosition] = []
        for pos in list(self.positions.values()):
            if pos.symbol != symbol:
                continue
            price = bid if pos.side == "buy" else ask
            pos.profit = self._profit(pos, price, pos.lots)
            if pos.side == "buy":
                touched = (pos.sl > 0 and bid <= pos.sl) or (pos.tp > 0 and bid >= pos.tp)
            else:
                touched = (pos.sl > 0 and ask >= pos.sl) or (pos.tp > 0 and ask <= pos.tp)
            if touched:
                self._realize(pos, price, pos.lots)
                hit.append(pos)
        return hit + self._stop_out()

    def _stop_out(self) -> list[PaperPosition]:
        """A broker's stop-out: below ``stop_out_pct`` of margin level the biggest loser is closed at its price
        now, then the next, until the level recovers. Without it a paper account went on to a margin level
        of -81 % and a negative balance, which no broker allows."""
        closed: list[PaperPosition] = []
        while self.stop_out_pct > 0 and self.positions:
            margin = self.margin
            if margin <= 0 or self.equity / margin * 100.0 >= self.stop_out_pct:
                break
            tradable = [p for p in self.positions.values() if (q := self.quotes.get(p.symbol)) is not None and q[0] < q[1]]
            if not tradable:
                break
            worst = min(tradable, key=lambda p: p.profit)
            bid, ask = self.quotes[worst.symbol]
            self._realize(worst, bid if worst.side == "buy" else ask, worst.lots)
            closed.append(worst)
        return closed

    def _profit(self, pos: PaperPosition, price: float, lots: float) -> float:
        return money.profit(pos.symbol, pos.side, lots, pos.open_price, price)

    def _margin(self, symbol: str, lots: float, price: float) -> float:
        return money.margin(symbol, lots, price, self.leverage)

    def _realize(self, pos: PaperPosition, price: float, lots: float) -> None:
        self.balance += self._profit(pos, price, lots)
        if lots >= pos.lots - 1e-9:
            del self.positions[pos.ticket]
            self.closed_trades += 1
        else:
            pos.lots = round(pos.lots - lots, 2)
            pos.profit = self._profit(pos, price, pos.lots)

    # -- account -------------------------------------------------------------------

    @property
    def equity(self) -> float:
        return self.balance + sum(p.profit for p in self.positions.values())

    @property
    def margin(self) -> float:
        return sum(self._margin(p.symbol, p.lots, p.open_price) for p in self.positions.values())

    def account_fields(self) -> dict[str, Any]:
        margin = self.margin
        equity = self.equity
        return {
            "balance": round(self.balance, 2),
            "equity": round(equity, 2),
            "margin": round(margin, 2),
            "free_margin": round(equity - margin, 2),
            "leverage": self.leverage,
        }

    def positions_event(self) -> list[dict[str, Any]]:
        return [p.to_event() for p in self.positions.values()]

    # -- trading -------------------------------------------------------------------

    def _check_stops(self, side: str, bid: float, ask: float, sl: float, tp: float) -> None:
        if side == "buy":
            if (sl > 0 and sl >= bid) or (tp > 0 and tp <= bid):
                raise TradeError(RET_INVALID_STOPS)
        elif (sl > 0 and sl <= ask) or (tp > 0 and tp >= ask):
            raise TradeError(RET_INVALID_STOPS)

    def _tradable_quote(self, symbol: str) -> tuple[float, float]:
        """(bid, ask) to trade at, or RET_PRICE_OFF: no quote yet (a position restored before its symbol's first tick),
        or a crossed one, which is no price to fill or judge stops by."""
        quote = self.quotes.get(symbol)
        if quote is None or quote[0] >= quote[1]:
            raise TradeError(RET_PRICE_OFF)
        return quote

    def open(self, symbol: str, side: str, lots: float, sl: float, tp: float, magic: int, comment: str, time_msc: int) -> PaperPosition:
        quote = self._tradable_quote(symbol)
        if not _lots_ok(lots):
            raise TradeError(RET_INVALID_VOLUME)
        bid, ask = quote
        self._check_stops(side, bid, ask, sl, tp)
        price = ask if side == "buy" else bid
        if self._margin(symbol, lots, price) > self.equity - self.margin:
            raise TradeError(RET_NO_MONEY)
        pos = PaperPosition(self._next_ticket, symbol, side, round(lots, 2), price, sl, tp, magic, comment[:31], time_msc)
        self._next_ticket += 1
        pos.profit = self._profit(pos, bid if side == "buy" else ask, pos.lots)
        self.positions[pos.ticket] = pos
        return pos

    def close(self, ticket: int, lots: float, position_lots: float = 0.0) -> tuple[PaperPosition, float, float]:
        """Close ``lots`` (0 = all) of a position. Returns (position, price, lots closed).

        ``position_lots``: what the position held when the close was asked (0: not said); a position already
        smaller is refused (protocol.close_command). The paper book keeps no history of close ids; the MT5 EA
        decides from the close's own deal instead (docs/mql.md)."""
        pos = self.positions.get(ticket)
        if pos is None:
            raise TradeError(RET_POSITION_CLOSED)
        if position_lots > 0 and pos.lots < position_lots - 1e-9:
            raise TradeError(CLOSE_ALREADY_RAN)
        quote = self._tradable_quote(pos.symbol)
        lots = pos.lots if lots == 0 else lots
        if lots > pos.lots + 1e-9 or not _lots_ok(lots):
            raise TradeError(RET_INVALID_VOLUME)
        price = quote[0] if pos.side == "buy" else quote[1]
        self._realize(pos, price, lots)
        return pos, price, lots

    def modify(self, ticket: int, sl: float, tp: float) -> PaperPosition:
        pos = self.positions.get(ticket)
        if pos is None:
            raise TradeError(RET_POSITION_CLOSED)
        bid, ask = self._tradable_quote(pos.symbol)  # none yet after a restart restored it (a review, 2026-12-05)
        self._check_stops(pos.side, bid, ask, sl, tp)
        pos.sl, pos.tp = sl, tp
        return pos
