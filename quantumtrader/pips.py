"""What a pip is, per symbol class: the one place for the convention.

``evaluate`` reports P&L and spreads in pips and the paper terminal's
generator quotes in pips, so both read :func:`pip_size`. The classes
(docs/evaluation.md, "What a pip is"):

- **FX pair** (the first six letters are two currency codes, a broker suffix
  such as ``EURUSDm`` or ``EURUSD.r`` ignored): 0.0001, and 0.01 when the
  quote currency is JPY, what FX traders call a pip (USDJPY, EURJPY);
- **gold** (``XAU...``, ``GOLD``): 0.01; **silver** (``XAG...``,
  ``SILVER``): 0.001, the usual CFD conventions;
- **crypto, indices, stocks and any other name**: there is no common
  convention, so a pip is the power of ten about 1/10,000 of the price,
  ``10 ** (floor(log10(price)) - 4)``: BTCUSD at 60,000 -> 1, ETHUSD at 3,000
  -> 0.1, US30 at 39,000 -> 1, a stock at 190 -> 0.01. Like an FX pip, it is
  then roughly 1-10 basis points of the price. The price is the caller's
  reference (``evaluate``: the series' median mid), so it needs one.
"""

from __future__ import annotations

import math

FX_PIP = 0.0001
JPY_PIP = 0.01

#: Currency codes (ISO 4217) a six-letter FX pair is made of.
CURRENCIES = frozenset(
    "USD EUR JPY GBP CHF AUD NZD CAD SEK NOK DKK ISK PLN HUF CZK RON BGN TRY RUB ZAR ILS MXN BRL CLP COP PEN ARS "
    "SGD HKD CNH CNY TWD KRW INR IDR MYR PHP THB SAR AED KWD QAR".split()
)

#: Metals by prefix of the symbol, or by the name some brokers use.
METALS = {"XAU": 0.01, "GOLD": 0.01, "XAG": 0.001, "SILVER": 0.001}


def metal(symbol: str) -> str | None:
    """The ``METALS`` key the symbol is named by (``XAU``, ``GOLD``, ...), or None: one place for "is it a metal"."""
    name = symbol.upper()
    return next((prefix for prefix in METALS if name.startswith(prefix)), None)


def fx_pair(symbol: str) -> tuple[str, str] | None:
    """(base, quote) currency codes of an FX pair (a broker suffix ignored), or None."""
    name = symbol.upper()
    return (name[:3], name[3:6]) if name[:3] in CURRENCIES and name[3:6] in CURRENCIES else None


def pip_size(symbol: str, price: float) -> float:
    """The symbol's pip in price units; ``price`` (> 0) is used only for symbols outside FX and metals."""
    kind = metal(symbol)
    if kind is not None:
        return METALS[kind]
    pair = fx_pair(symbol)
    if pair is not None:
        return JPY_PIP if pair[1] == "JPY" else FX_PIP
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"{symbol}: a pip outside FX and metals is scaled to the price, which must be > 0 (got {price!r})")
    return 10.0 ** (math.floor(math.log10(price)) - 4)
