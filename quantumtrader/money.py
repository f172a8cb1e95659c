"""Money arithmetic shared by risk sizing and the paper terminal: one place for the rules.

Sizing uses the broker's own figures when the terminal sends them (the
``specs`` of its hello: a tick's value in the account currency, see
:func:`loss_per_lot`). Without them, a documented simplification: FX contract size 100,000 units; profit in the quote currency is
converted to a USD account by dividing by the price when USD is not the quote
currency (exact for USDxxx, approximate for crosses); margin is notional in
USD over leverage.
"""

from __future__ import annotations

from collections.abc import Mapping

CONTRACT_SIZE = 100_000.0


def to_account_currency(symbol: str, amount_in_quote: float, price: float) -> float:
    """Convert an amount in the symbol's quote currency to USD."""
    if symbol[3:6] == "USD" or symbol.endswith("USD"):
        return amount_in_quote
    return amount_in_quote / price


def profit(symbol: str, side: str, lots: float, open_price: float, close_price: float) -> float:
    """Profit of a position in USD: long gains when price rises, short when it falls."""
    move = (close_price - open_price) if side == "buy" else (open_price - close_price)
    return to_account_currency(symbol, move * lots * CONTRACT_SIZE, close_price)


def value_per_price_unit(symbol: str, lots: float, price: float) -> float:
    """USD gained or lost per 1.0 of price movement (so a stop distance d costs d x this)."""
    return to_account_currency(symbol, lots * CONTRACT_SIZE, price)


def margin(symbol: str, lots: float, price: float, leverage: int) -> float:
    notional = lots * CONTRACT_SIZE
    usd = notional if symbol.startswith("USD") else notional * price
    return usd / leverage


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
    contract = spec["contract_size"] if spec is not None and spec["contract_size"] > 0 else CONTRACT_SIZE
    return to_account_currency(symbol, contract, price) * distance
