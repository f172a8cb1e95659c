"""Money arithmetic shared by risk sizing and the paper terminal: one place for the rules.

Documented simplification (the daemon does not know each broker's contract
specs): FX contract size 100,000 units; profit in the quote currency is
converted to a USD account by dividing by the price when USD is not the quote
currency (exact for USDxxx, approximate for crosses); margin is notional in
USD over leverage.
"""

from __future__ import annotations

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
