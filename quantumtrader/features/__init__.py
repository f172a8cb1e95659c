"""Numba-jitted incremental indicators: per-symbol state, one kernel call per tick batch."""

from quantumtrader.features.names import FEATURE_INDEX, FEATURE_NAMES, N_FEATURES

__all__ = ["FEATURE_INDEX", "FEATURE_NAMES", "N_FEATURES"]
