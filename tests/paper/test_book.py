"""The paper account: fills at its own bid/ask, SL/TP, MT5 return codes, money."""

from __future__ import annotations

import pytest

from quantumtrader.paper.book import (
    RET_INVALID_STOPS,
    RET_INVALID_VOLUME,
    RET_NO_MONEY,
    RET_POSITION_CLOSED,
    RET_PRICE_OFF,
    PaperBook,
    TradeError,
)

T = 1_705_314_645_000


def book_with_quote(bid: float = 1.1000, ask: float = 1.1002) -> PaperBook:
    book = PaperBook(balance=10_000.0, leverage=100)
    book.on_quote("EURUSD", bid, ask, T)
    return book


def test_a_new_book_never_reuses_the_tickets_of_one_before_it() -> None:
    """Every book counted from 100001, so a restarted paper terminal handed out the tickets of its last run again,
    which the daemon's order journal holds (an unknown order of that run could settle on the new position)."""
    before = PaperBook(balance=1e9, leverage=100)
    before.on_quote("EURUSD", 1.1000, 1.1002, T)
    tickets = [before.open("EURUSD", "buy", 0.01, 0, 0, 1, "", T).ticket for _ in range(1000)]
    after = book_with_quote()
    ticket = after.open("EURUSD", "buy", 0.01, 0, 0, 1, "", T).ticket
    assert ticket > max(tickets)
    assert ticket < 2**53  # the dashboard's JavaScript reads it exactly


def test_buy_fills_at_ask_and_sell_at_bid() -> None:
    book = book_with_quote()
    buy = book.open("EURUSD", "buy", 0.1, 0, 0, 1, "QT-A", T)
    sell = book.open("EURUSD", "sell", 0.1, 0, 0, 1, "QT-B", T)
    assert (buy.open_price, sell.open_price) == (1.1002, 1.1000)
    assert buy.ticket != sell.ticket
    # both pay the spread straight away: 2 pips of 0.1 lot = $2 each
    assert buy.profit == pytest.approx(-2.0) and sell.profit == pytest.approx(-2.0)


def test_take_profit_and_stop_loss_close_on_later_ticks_and_realize_pnl() -> None:
    book = book_with_quote()
    tp = book.open("EURUSD", "buy", 0.1, 1.0950, 1.1050, 1, "QT-TP", T)
    sl = book.open("EURUSD", "sell", 0.2, 1.1040, 1.0900, 1, "QT-SL", T)
    assert book.on_quote("EURUSD", 1.1030, 1.1032, T) == []
    closed = book.on_quote("EURUSD", 1.1050, 1.1052, T)
    assert {p.ticket for p in closed} == {tp.ticket, sl.ticket}
    # buy 0.1 from 1.1002 closed at bid 1.1050: +48 pips = $48; sell 0.2 from 1.1000 closed at ask 1.1052: -52 pips x 2 = -$104
    assert book.balance == pytest.approx(10_000 + 48 - 104)
    assert book.positions == {}


def test_partial_close_keeps_the_rest_open() -> None:
    book = book_with_quote()
    pos = book.open("EURUSD", "buy", 0.3, 0, 0, 1, "QT-P", T)
    _, price, lots = book.close(pos.ticket, 0.1)
    assert (price, lots) == (1.1000, 0.1)
    assert book.positions[pos.ticket].lots == pytest.approx(0.2)
    book.close(pos.ticket, 0)
    assert pos.ticket not in book.positions


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (lambda b: b.open("GBPUSD", "buy", 0.1, 0, 0, 1, "x", T), RET_PRICE_OFF),
        (lambda b: b.open("EURUSD", "buy", 0.015, 0, 0, 1, "x", T), RET_INVALID_VOLUME),
        (lambda b: b.open("EURUSD", "buy", 0.0, 0, 0, 1, "x", T), RET_INVALID_VOLUME),
        (lambda b: b.open("EURUSD", "buy", 0.1, 1.1001, 0, 1, "x", T), RET_INVALID_STOPS),  # SL above bid
        (lambda b: b.open("EURUSD", "sell", 0.1, 0, 1.1003, 1, "x", T), RET_INVALID_STOPS),  # TP above ask
        (lambda b: b.open("EURUSD", "buy", 100.0, 0, 0, 1, "x", T), RET_NO_MONEY),
        (lambda b: b.close(999, 0), RET_POSITION_CLOSED),
        (lambda b: b.modify(999, 0, 0), RET_POSITION_CLOSED),
    ],
)
def test_refusals_carry_mt5_return_codes(action, code: int) -> None:
    with pytest.raises(TradeError) as info:
        action(book_with_quote())
    assert info.value.code == code


def test_crossed_quote_is_not_tradeable() -> None:
    book = book_with_quote(1.1002, 1.1000)
    with pytest.raises(TradeError) as info:
        book.open("EURUSD", "buy", 0.1, 0, 0, 1, "x", T)
    assert info.value.code == RET_PRICE_OFF


def test_equity_margin_and_free_margin() -> None:
    book = book_with_quote()
    book.open("EURUSD", "buy", 1.0, 0, 0, 1, "x", T)
    acct = book.account_fields()
    assert acct["margin"] == pytest.approx(100_000 * 1.1002 / 100, abs=0.01)
    assert acct["equity"] == pytest.approx(10_000 - 20, abs=0.01)
    assert acct["free_margin"] == pytest.approx(acct["equity"] - acct["margin"], abs=0.01)


def test_the_books_specs_are_what_it_trades_by() -> None:
    """What the paper terminal sends in hello and heartbeats (as a real EA sends its broker's): sizing by them
    (distance / tick_size x tick_value) gives what the book's own money rules lose, and each value passes the
    protocol's check, 0 while a value is not known."""
    from quantumtrader import money, protocol
    from quantumtrader.paper.book import LOT_MAX, LOT_MIN, LOT_STEP, PaperBook

    book = PaperBook(10_000.0, 100)
    assert book.symbol_spec("EURUSD") == {"contract_size": 100_000.0, "tick_size": 0.0, "tick_value": 0.0, "volume_min": LOT_MIN, "volume_step": LOT_STEP, "volume_max": LOT_MAX}
    for symbol, bid, ask in (("EURUSD", 1.08550, 1.08560), ("USDJPY", 151.230, 151.245), ("XAUUSD", 2310.10, 2310.40), ("EURGBP", 0.85510, 0.85522)):
        book.on_quote(symbol, bid, ask, 1_700_000_000_000)
        spec = book.symbol_spec(symbol)
        mid = (bid + ask) / 2
        distance = 0.0050 * mid  # a stop half a per cent away
        loss = money.profit(symbol, "buy", 1.0, mid, mid - distance)
        # the same as sizing without specs (the 100,000-unit rule at today's price) ...
        assert money.loss_per_lot(symbol, mid, distance, spec) == pytest.approx(money.loss_per_lot(symbol, mid, distance), rel=1e-9), symbol
        if symbol.endswith("USD"):  # ... which is what the book loses exactly where no conversion at the stop's price enters
            assert money.loss_per_lot(symbol, mid, distance, spec) == pytest.approx(-loss, rel=1e-9), symbol
        protocol._check_specs({symbol: spec})
    assert book.symbol_spec("USDJPY")["tick_size"] == pytest.approx(0.001) and book.symbol_spec("EURUSD")["tick_value"] == pytest.approx(1.0)
    book.on_quote("PENNY", 0.00001, 0.00002, 1_700_000_000_000)  # a tick of 1e-10: below what the protocol takes
    assert book.symbol_spec("PENNY")["tick_size"] == 0.0 and book.symbol_spec("PENNY")["tick_value"] == 0.0
    # quotes the daemon refuses (the book keeps any) give no specs, and none raises: a heartbeat must go out
    for bid, ask in ((1e308, 1.5e308), (1.1, 1.0), (1.1, 1.1)):
        book.on_quote("US30", bid, ask, 1_700_000_000_000)
        assert book.symbol_spec("US30")["tick_size"] == 0.0 and book.symbol_spec("US30")["tick_value"] == 0.0


def test_money_of_crosses_and_metals_is_a_brokers_order_of_magnitude() -> None:
    """Found by a review (2026-12-04): gold was 100,000 units a lot (a 0.01-lot order needed $23,500 of margin
    and paid $750 a dollar) and a cross's margin was its notional x its price counted as USD (0.1 EURJPY:
    16,100). Now a metal's own contract (gold 100 oz, silver 5,000) and a cross's base units taken for USD,
    as its profit already converts them."""
    book = PaperBook(balance=10_000.0, leverage=100)
    book.on_quote("XAUUSD", 2350.00, 2350.25, T)
    book.on_quote("EURJPY", 161.000, 161.015, T)
    gold = book.open("XAUUSD", "buy", 0.01, 0, 0, 1, "QT-G", T)
    assert book.margin == pytest.approx(0.01 * 100 * 2350.25 / 100)  # $23.50
    book.on_quote("XAUUSD", 2351.25, 2351.50, T)
    assert gold.profit == pytest.approx(1.0)  # $1 on 1 oz
    assert book.symbol_spec("XAUUSD")["contract_size"] == 100.0 and book.symbol_spec("EURJPY")["contract_size"] == 100_000.0
    book.open("EURJPY", "buy", 0.1, 0, 0, 1, "QT-J", T)  # refused before: not enough money
    assert book.margin - 23.5025 == pytest.approx(10_000 / 100)


def test_a_margin_level_below_the_stop_out_closes_the_biggest_loser_first() -> None:
    book = PaperBook(balance=10_000.0, leverage=100, stop_out_pct=50.0)
    book.on_quote("EURUSD", 1.1000, 1.1001, T)
    book.on_quote("GBPUSD", 1.2650, 1.2651, T)
    big = book.open("EURUSD", "buy", 8.0, 0, 0, 1, "QT-BIG", T)  # margin 8,800.8
    small = book.open("GBPUSD", "buy", 0.1, 0, 0, 1, "QT-SMALL", T)
    assert book.on_quote("EURUSD", 1.0950, 1.0951, T) == []  # equity ~5,990 of margin ~8,927: 67 %
    closed = book.on_quote("EURUSD", 1.0940, 1.0941, T)  # ~5,190: 58 %, still above
    assert closed == []
    closed = book.on_quote("EURUSD", 1.0925, 1.0926, T)  # ~3,990: 45 %: the stop-out
    assert closed == [big] and list(book.positions) == [small.ticket]
    assert book.balance == pytest.approx(10_000 + 8.0 * 100_000 * (1.0925 - 1.1001))  # at the tick's bid, not above
    assert PaperBook(10_000.0, 100).stop_out_pct == 0.0  # the book alone never stops out; the terminal sets paper.stop_out_pct


def test_stops_are_not_judged_against_a_crossed_quote() -> None:
    book = book_with_quote()
    pos = book.open("EURUSD", "buy", 0.1, 0, 0, 1, "QT-X", T)
    book.on_quote("EURUSD", 1.1003, 1.1001, T)
    with pytest.raises(TradeError) as refused:
        book.modify(pos.ticket, 1.0900, 1.1100)
    assert refused.value.code == RET_PRICE_OFF


def test_an_account_labelled_in_another_currency_sends_no_tick_value() -> None:
    """The paper book computes in USD; paper.currency only labels it (a review, 2026-12-04): a "JPY" account sent
    EURUSD's tick value of 1.0 "JPY", and the daemon sized by it to ~150 times the risk asked for. Unless USD, the
    specs now say "not known" (0), and the daemon refuses to size an order without lots for such an account."""
    usd, jpy = PaperBook(10_000.0, 100), PaperBook(1_500_000.0, 100, currency="JPY")
    for book in (usd, jpy):
        book.on_quote("EURUSD", 1.1000, 1.1002, T)
    assert usd.symbol_spec("EURUSD")["tick_value"] == pytest.approx(1.0)
    assert jpy.symbol_spec("EURUSD")["tick_value"] == 0.0 and jpy.symbol_spec("EURUSD")["tick_size"] == 0.0


def test_a_restored_position_without_a_quote_yet_is_refused_a_modify_not_a_crash() -> None:
    """A review (2026-12-05): a position restored from the saved book before its symbol's first quote (or of a symbol
    this run does not stream) made modify raise KeyError, which ended the paper terminal."""
    saved = book_with_quote()
    pos = saved.open("EURUSD", "buy", 0.1, 0, 0, 1, "QT-KEPT", T)
    restored = PaperBook(balance=10_000.0, leverage=100)
    restored.restore(saved.saved())
    with pytest.raises(TradeError) as refused:
        restored.modify(pos.ticket, 1.09, 1.11)
    assert refused.value.code == RET_PRICE_OFF
    restored.on_quote("EURUSD", 1.1000, 1.1002, T)
    assert restored.modify(pos.ticket, 1.09, 1.11).sl == 1.09
