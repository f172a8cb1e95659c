"""``FeatureEngine``: the Python side of the feature kernel (symbols, buffers, validation, snapshots).

The kernel computes; this class orchestrates: it maps symbol names to state
rows (adding symbols at run time), keeps one reusable output buffer, checks a
batch once with vectorized numpy before it reaches the kernel (defence in
depth: the daemon's protocol validation already rejected such ticks), and
turns state into plain arrays for the store and back.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from quantumtrader.config import FeaturesConfig
from quantumtrader.features.kernel import update_batch, update_tick
from quantumtrader.features.names import FEATURE_NAMES, N_FEATURES
from quantumtrader.features.state import SHARED, FeatureState, grow, make_feature_state, param_changes
from quantumtrader.kernel_entry import CompiledKernel, array_types

_SNAPSHOT_VERSION = 1


def _as(array: np.ndarray, dtype: type) -> np.ndarray:
    """The array itself when it already has the kernel's dtype (the daemon's buffers do)."""
    return array if array.dtype == dtype else array.astype(dtype)


class FeatureEngine:
    def __init__(self, cfg: FeaturesConfig) -> None:
        self.cfg = cfg
        self.state: FeatureState = make_feature_state(cfg.max_symbols, cfg)
        self.symbols: list[str] = []
        self._index: dict[str, int] = {}
        self._out = np.empty((1024, N_FEATURES))
        self._latest = np.full((self.state.num.shape[0], N_FEATURES), np.nan)
        self._update_batch = CompiledKernel(update_batch)  # no per-call typing of the state tuple (kernel_entry.py)

    # -- symbols -----------------------------------------------------------------

    def add_symbol(self, name: str) -> int:
        """The symbol's state row, added on first sight (idempotent)."""
        idx = self._index.get(name)
        if idx is not None:
            return idx
        idx = len(self.symbols)
        if idx >= self.state.num.shape[0]:
            capacity = 2 * self.state.num.shape[0]
            self.state = grow(self.state, capacity)
            latest = np.full((capacity, N_FEATURES), np.nan)
            latest[: self._latest.shape[0]] = self._latest
            self._latest = latest
        self.symbols.append(name)
        self._index[name] = idx
        return idx

    def symbol_index(self, name: str) -> int | None:
        return self._index.get(name)

    # -- ticks -------------------------------------------------------------------

    def update(self, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray, time_msc: np.ndarray | None = None) -> np.ndarray:
        """Features of a batch, one row per tick, columns in FEATURE_NAMES order.

        The returned array is a view of an internal buffer: valid until the next
        call; copy what you keep. Raises ValueError (before touching any state)
        for non-finite or non-positive prices, negative volume or unknown rows.
        """
        n = sym_idx.shape[0]
        if n > self._out.shape[0]:
            self._out = np.empty((max(n, 2 * self._out.shape[0]), N_FEATURES))
        out = self._out[:n]
        if n == 0:
            return out
        sym, x, a, v = _as(sym_idx, np.int32), _as(bid, np.float64), _as(ask, np.float64), _as(volume, np.float64)
        # out and latest are this engine's own buffers, whose types never change: only the caller's arrays are in the key
        bad = self._update_batch(array_types(sym, x, a, v), self.state, sym, x, a, v, out, self._latest, len(self.symbols))
        if bad:
            r = bad - 1
            raise ValueError(f"feature batch row {r}: symbol row {int(sym_idx[r])}, bid {bid[r]!r}, ask {ask[r]!r}, volume {volume[r]!r} (prices must be finite and > 0, volume >= 0, the symbol added)")
        return out

    def update_one(self, idx: int, bid: float, ask: float, volume: float) -> np.ndarray:
        """One tick through the per-tick entry point (for the benchmark's comparison)."""
        out = self._out[:1]
        update_tick(self.state, idx, bid, ask, volume, out)
        return out[0]

    def latest(self, name: str) -> dict[str, float | None]:
        """The symbol's feature vector after its last tick; NaN (warming up) as None, for JSON."""
        idx = self._index.get(name)
        if idx is None:
            raise KeyError(name)
        return {f: (None if math.isnan(v) else float(v)) for f, v in zip(FEATURE_NAMES, self._latest[idx].tolist(), strict=True)}

    # -- persistence ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain arrays (copies) and the symbol order, so a store can persist them."""
        n = len(self.symbols)
        arrays = {name: (arr.copy() if name in SHARED else arr[:n].copy()) for name, arr in zip(FeatureState._fields, self.state, strict=True)}
        return {"version": _SNAPSHOT_VERSION, "symbols": list(self.symbols), "arrays": arrays, "latest": self._latest[:n].copy()}

    @classmethod
    def restore(cls, snapshot: dict[str, Any], cfg: FeaturesConfig) -> FeatureEngine:
        """An engine that continues exactly where :meth:`snapshot` left off.

        Raises ValueError when the snapshot was taken with other parameters
        (its arrays would not mean the same thing).
        """
        if snapshot.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"feature snapshot version {snapshot.get('version')!r} is not {_SNAPSHOT_VERSION}")
        engine = cls(cfg)
        arrays = snapshot["arrays"]
        changes = param_changes(np.asarray(arrays["params"]), engine.state.params)
        if not changes and not np.allclose(arrays["wave_table"], engine.state.wave_table):
            changes = ["features.wave_bandwidth (its wave_function table differs)"]  # the one setting params do not hold
        if changes:
            raise ValueError(f"feature snapshot was taken with different feature parameters: {'; '.join(changes)}")
        for name in snapshot["symbols"]:
            engine.add_symbol(str(name))
        n = len(engine.symbols)
        for name, arr in zip(FeatureState._fields, engine.state, strict=True):
            if name in SHARED:
                continue
            saved = np.asarray(arrays[name])
            if saved.shape[1:] != arr.shape[1:] or saved.shape[0] != n:
                raise ValueError(f"feature snapshot array {name} has shape {saved.shape}, expected ({n}, {arr.shape[1:]})")
            arr[:n] = saved
        engine._latest[:n] = snapshot["latest"]
        return engine

    # -- start-up ------------------------------------------------------------------

    def warmup(self) -> float:
        """Compile or load the kernels on a scratch engine; seconds taken (this is start-up cost)."""
        started = time.perf_counter()
        scratch = FeatureEngine(self.cfg)
        idx = scratch.add_symbol("WARMUP")
        n = 4
        prices = np.array([1.1, 1.1001, 1.1002, 1.1001])
        scratch.update(np.full(n, idx, dtype=np.int32), prices, prices + 1e-4, np.ones(n))
        scratch.update_one(idx, 1.1, 1.1001, 1.0)
        return time.perf_counter() - started
