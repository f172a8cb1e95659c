"""What a pip is per symbol class (quantumtrader.pips): one convention for evaluate and the paper generator."""

from __future__ import annotations

import math

import pytest

from quantumtrader.pips import pip_size


@pytest.mark.parametrize(
    ("symbol", "price", "pip"),
    [
        ("EURUSD", 1.085, 0.0001),
        ("AUDUSD", 0.655, 0.0001),  # an FX pair's pip does not follow its price
        ("EURUSDm", 1.085, 0.0001),  # broker suffixes
        ("eurusd.r", 1.085, 0.0001),
        ("USDJPY", 148.5, 0.01),
        ("GBPJPY", 190.0, 0.01),
        ("USDHUF", 360.0, 0.0001),  # JPY is the only quote currency with a 0.01 pip here
        ("XAUUSD", 2350.0, 0.01),
        ("GOLD", 2350.0, 0.01),
        ("XAGUSD", 29.5, 0.001),
        ("SILVER", 29.5, 0.001),
        ("BTCUSD", 60_000.0, 1.0),  # crypto and other names: the power of ten about 1/10,000 of the price
        ("ETHUSD", 3_000.0, 0.1),
        ("US30", 39_000.0, 1.0),
        ("AAPL", 190.0, 0.01),
        ("XRPUSD", 0.52, 0.00001),
    ],
)
def test_pip_size_per_symbol_class(symbol: str, price: float, pip: float) -> None:
    assert pip_size(symbol, price) == pytest.approx(pip, rel=1e-12)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf])
def test_a_price_scaled_pip_needs_a_price(price: float) -> None:
    with pytest.raises(ValueError, match="BTCUSD"):
        pip_size("BTCUSD", price)
    assert pip_size("EURUSD", price) == 0.0001  # FX and metals never read it
