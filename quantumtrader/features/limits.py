"""The feature kernel's fixed definitions and the limits its parameters must keep, without numpy.

Why a module of its own: ``load_config`` checks these limits for every
command (a bad ``features.*`` value is exit 2 naming the key, not a traceback
when the kernels are built), and the state module's numpy import cost every
CLI call (``qt-daemon token``, ``status``) ~0.1 s for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantumtrader.config import FeaturesConfig

#: Rosenstein parameters fixed by our definition (nolds.lyap_r is called with the same).
CHAOS_EMB_DIM = 4
CHAOS_MIN_TSEP = 10
CHAOS_TRAJ_LEN = 20


def check_params(cfg: FeaturesConfig) -> None:
    """Reject parameter combinations the kernel cannot honour, naming the key."""
    from quantumtrader.config import ConfigError

    min_chaos = (CHAOS_EMB_DIM - 1) + CHAOS_TRAJ_LEN + 2 * CHAOS_MIN_TSEP + 2
    if cfg.chaos_window < min_chaos:
        raise ConfigError("features.chaos_window", f"must be at least {min_chaos} for emb_dim {CHAOS_EMB_DIM}, min_tsep {CHAOS_MIN_TSEP}, trajectory_len {CHAOS_TRAJ_LEN}")
    if not 2 <= cfg.perm_order <= 6:
        raise ConfigError("features.perm_order", "must be 2..6 (6! = 720 patterns)")
    if cfg.perm_window <= cfg.perm_order:
        raise ConfigError("features.perm_window", "must exceed features.perm_order")
    if cfg.wave_bins < 3 or cfg.wave_bins % 2 == 0:
        # Odd, so that one bin is centred on 0: an unchanged bid (a quarter to half of the ticks in
        # ../shared/data) must weigh 0.5, not Φ(0.25) = 0.60 as in the bin above 0 of an even count.
        raise ConfigError("features.wave_bins", "must be odd and at least 3, so one bin is centred on a zero return (33 is the default; a config written before 2026-12-03 may say 32)")
