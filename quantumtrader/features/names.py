"""The feature vector's column names: the one tuple the kernel, the feed and the API read.

The first twelve are the wire contract (PROTOCOL.md, "Feature vector keys"); any
extra feature is appended after them, never inserted, so column indices of the
contract features never move.
"""

from __future__ import annotations

CONTRACT_FEATURES: tuple[str, ...] = (
    "returns",
    "log_returns",
    "volatility_5",
    "volatility_20",
    "rsi",
    "macd",
    "macd_signal",
    "spread",
    "spread_pct",
    "volume_rate",
    "wave_function",
    "chaos_index",
)

#: Every column of the feature matrix, in order. Extras go at the end.
FEATURE_NAMES: tuple[str, ...] = CONTRACT_FEATURES + ("perm_entropy",)

#: Column index by name, for code that reads one feature (models, tests).
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

N_FEATURES: int = len(FEATURE_NAMES)
