"""The paper generator quotes in the pips evaluate reports in (quantumtrader.pips)."""

from __future__ import annotations

import itertools
import statistics

from quantumtrader.paper.ticks import generate_ticks
from quantumtrader.pips import pip_size

SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD", "GBPJPY", "XAGUSD", "BTCUSD", "FOO")


def test_generated_spreads_are_a_few_pips_wide_by_the_one_pip_convention() -> None:
    ticks = list(itertools.islice(generate_ticks(SYMBOLS, seed=3), 20_000))

    for symbol in SYMBOLS:
        quotes = [(bid, ask) for name, bid, ask, _ in ticks if name == symbol]
        pip = pip_size(symbol, statistics.median(0.5 * (bid + ask) for bid, ask in quotes))
        spread_pips = statistics.median((ask - bid) / pip for bid, ask in quotes)
        assert 0.5 <= spread_pips <= 30.0, (symbol, pip, spread_pips)  # typical spreads: 0.8 (EURUSD) to 25 (gold)
