"""Money arithmetic shared by risk sizing and the paper terminal: one place for the rules.

Sizing uses the broker's own figures when the terminal sends them (the
``specs`` of its hello: a tick's value in the account currency, see
:func:`loss_per_lot`). Without them, a documented simplification: a lot is
100,000 units of an FX pair, 100 oz of gold, 5,000 oz of silver
(:func:`contract_size`); profit in the quote currency is converted to a USD
account by dividing by the price when USD is not the quote currency (exact
for USDxxx, approximate for crosses, whose base currency it takes for USD);
margin is the notional so converted, over leverage.
"""

from __future__ import annotations

from collections.abc import Mapping

from quantumtrader.pips import metal

CONTRACT_SIZE = 100_000.0

#: Units in a lot of a metal, by the names of ``pips.METALS`` (the usual CFD contracts); FX is CONTRACT_SIZE.
METAL_CONTRACTS = {"XAU": 100.0, "GOLD": 100.0, "XAG": 5_000.0, "SILVER": 5_000.0}


def contract_size(symbol: str) -> float:
    """Units in one lot of ``symbol``: 100,000 for FX (and any other name), a metal's own contract. Gold at
    100,000 units a lot made a 0.01-lot paper order need $23,500 of margin and pay $750 a dollar."""
    kind = metal(symbol)
    return METAL_CONTRACTS[kind] if kind is not None else CONTRACT_SIZE


def to_account_currency(symbol: str, amount_in_quote: float, price: float) -> float:
    """Convert an amount in the symbol's quote currency to USD."""
    if symbol[3:6] == "USD" or symbol.endswith("USD"):
        return amount_in_quote
    return amount_in_quote / price


def profit(symbol: str, side: str, lots: float, open_price: float, close_price: float) -> float:
    """Profit of a position in USD: long gains when price rises, short when it falls."""
    move = (close_price - open_price) if side == "buy" else (open_price - close_price)
    return to_account_currency(symbol, move * lots * contract_size(symbol), close_price)


def value_per_price_unit(symbol: str, lots: float, price: float) -> float:
    """USD gained or lost per 1.0 of price movement (so a stop distance d costs d x this)."""
    return to_account_currency(symbol, lots * contract_size(symbol), price)


def margin(symbol: str, lots: float, price: float, leverage: int) -> float:
    """The notional in USD over leverage, converted as profit is (:func:`to_account_currency` of the notional in
    the quote currency): the base units for USDxxx, x the price for a USD quote, and for a cross the base units
    taken for USD (EURJPY's notional x its price was counted as USD: 16,100 for 0.1 lot, a broker asks ~108)."""
    notional = lots * contract_size(symbol)
    return to_account_currency(symbol, notional * price, price) / leverage


def loss_per_lot(symbol: str, price: float, distance: float, spec: Mapping[str, float] | None = None) -> float:
    """What a move of ``distance`` against one lot costs, in the account currency.

    From the broker's specs when the terminal gave them (distance / tick_size
    x tick_value: right for gold, indices, crypto and any account currency),
    else the FX approximation above, with the broker's contract size when it
    gave one. Only a USD account's pairs with USD are sized that way
    (``RiskEngine.sizing_problem`` refuses the rest).
    """
    if spec is not None and spec["tick_size"] > 0 and spec["tick_value"] > 0:
        return distance / spec["tick_size"] * spec["tick_value"]
    contract = spec["contract_size"] if spec is not None and spec["contract_size"] > 0 else contract_size(symbol)
    return to_account_currency(symbol, contract, price) * distance
