"""The models' parameters as the kernels read them: one float array, one column-index array.

Kernels take arrays, not config objects, so the [signals] section is resolved
here once at start-up (structlog's "decide once at set-up") into a float64
vector with named slots, and the feature columns the components read are
looked up by name in :data:`FEATURE_INDEX` (the one tuple), never hard-coded.
"""

from __future__ import annotations

import numpy as np

from quantumtrader.config import SignalsConfig
from quantumtrader.features.names import FEATURE_INDEX

# -- slots of the float parameter vector ------------------------------------------
W_QUANTUM = 0
W_CHAOS = 1
W_ML = 2
W_TECHNICAL = 3
BUY_THRESHOLD = 4
SELL_THRESHOLD = 5
INTERVAL_S = 6
TREND_ALPHA = 7  # EMA weight of the chaos component's momentum, 2 / (span + 1)
CHAOS_SCALE = 8
ML_WARMUP = 9
ML_ALPHA_MIN = 10  # 1 / ml_memory_ticks: the floor of the forgetting weights
SGD_LR = 11
SGD_L2 = 12
NB_TEMPERATURE = 13
N_PARAMS = 14

# -- slots of the column-index vector (feature columns the components read) --------
COL_RETURNS = 0
COL_VOLATILITY_20 = 1
COL_RSI = 2
COL_MACD = 3
COL_MACD_SIGNAL = 4
COL_WAVE_FUNCTION = 5
COL_CHAOS_INDEX = 6

_COLUMN_NAMES = ("returns", "volatility_20", "rsi", "macd", "macd_signal", "wave_function", "chaos_index")


def model_params(cfg: SignalsConfig) -> np.ndarray:
    """float64[N_PARAMS] from the [signals] section (already validated: weights sum to 1)."""
    params = np.zeros(N_PARAMS, dtype=np.float64)
    params[W_QUANTUM] = cfg.weight_quantum
    params[W_CHAOS] = cfg.weight_chaos
    params[W_ML] = cfg.weight_ml_ensemble
    params[W_TECHNICAL] = cfg.weight_technical
    params[BUY_THRESHOLD] = cfg.buy_threshold
    params[SELL_THRESHOLD] = cfg.sell_threshold
    params[INTERVAL_S] = cfg.interval_s
    params[TREND_ALPHA] = 2.0 / (cfg.trend_span_ticks + 1.0)
    params[CHAOS_SCALE] = cfg.chaos_scale
    params[ML_WARMUP] = cfg.ml_warmup_labels
    params[ML_ALPHA_MIN] = 1.0 / cfg.ml_memory_ticks
    params[SGD_LR] = cfg.sgd_learning_rate
    params[SGD_L2] = cfg.sgd_l2
    params[NB_TEMPERATURE] = cfg.nb_temperature
    return params


def feature_columns() -> np.ndarray:
    """int64 column indices of the feature matrix, in the COL_* slot order."""
    return np.array([FEATURE_INDEX[name] for name in _COLUMN_NAMES], dtype=np.int64)
