"""ModelEngine: owns the model and policy state, grows it with symbols, calls the kernel once per batch.

The Python side of the nautilus-style split: the class orchestrates (capacity,
buffers, snapshot/restore, warm-up), :mod:`quantumtrader.models.kernel`
computes. Output buffers are preallocated and reused; results returned by
:meth:`step` alias them and are valid until the next call (copy what you keep).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from quantumtrader.config import SignalsConfig
from quantumtrader.features.names import N_FEATURES
from quantumtrader.kernel_entry import CompiledKernel, array_types
from quantumtrader.models.kernel import N_OUT, ensemble_step
from quantumtrader.models.params import feature_columns, model_params
from quantumtrader.models.state import ModelState, PolicyState, grow_rows, make_model_state, make_policy_state

#: Bumped when the meaning or layout of ModelState changes; a saved state of
#: another version is ignored (models start cold) rather than misread, unless
#: :func:`_upgraded` knows how to bring it up to date.
#: 2 (2026-12-06): ``trend_log_scale`` and ``trend_moves``, the typical move the momentum's returns are clipped at.
STATE_VERSION = 2
_ADDED_IN_2 = ("trend_log_scale", "trend_moves")


def _upgraded(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A version 1 snapshot as version 2: no move seen by the scale yet, as at a symbol's first tick (the momentum
    is kept, and waits for the scale's first ``TREND_SCALE_WARMUP`` moves). Everything the learners learned is
    kept: a new version of the program does not cost a trader the models' history. Anything else is returned
    as it is."""
    arrays = snapshot.get("arrays")
    if snapshot.get("version") != 1 or not isinstance(arrays, dict) or any(name in arrays for name in _ADDED_IN_2) or "momentum" not in arrays:
        return snapshot
    rows = np.asarray(arrays["momentum"]).shape
    return {**snapshot, "version": 2, "arrays": {**arrays, **{name: np.zeros(rows) for name in _ADDED_IN_2}}}


class StepResult(NamedTuple):
    """Views into the engine's buffers for one batch of ``n`` ticks."""

    out: np.ndarray  # f8[n, N_OUT]; columns OUT_* of kernel.py
    prediction: np.ndarray  # i8[n]: HOLD/BUY/SELL codes
    emit: np.ndarray  # bool[n]: a signal is due for this tick
    n_emitted: int  # how many rows of ``emit`` are set


class ModelEngine:
    """The four components, the online learners and the signal policy for every symbol."""

    def __init__(self, cfg: SignalsConfig, *, capacity: int = 64, n_features: int = N_FEATURES) -> None:
        self.cfg = cfg
        self.params = model_params(cfg)
        self.cols = feature_columns()
        self.n_features = n_features
        self.horizon = cfg.horizon_ticks
        self.capacity = max(1, capacity)
        self.state: ModelState = make_model_state(self.capacity, n_features, self.horizon)
        self.policy: PolicyState = make_policy_state(self.capacity)
        self._kernel = CompiledKernel(ensemble_step)  # no per-call typing of the state tuples (kernel_entry.py)
        self._alloc(256)

    def _alloc(self, rows: int) -> None:
        self._out = np.empty((rows, N_OUT))
        self._prediction = np.empty(rows, dtype=np.int64)
        self._emit = np.empty(rows, dtype=np.bool_)

    def ensure_capacity(self, n_symbols: int) -> None:
        """Make room for symbol indices < ``n_symbols`` (doubling; existing rows copied)."""
        if n_symbols <= self.capacity:
            return
        capacity = self.capacity
        while capacity < n_symbols:
            capacity *= 2
        self.state = ModelState(*grow_rows(self.state, make_model_state(capacity, self.n_features, self.horizon)))
        self.policy = PolicyState(*grow_rows(self.policy, make_policy_state(capacity)))
        self.capacity = capacity

    def step(self, sym_idx: np.ndarray, mid: np.ndarray, features: np.ndarray, clock_s: np.ndarray) -> StepResult:
        """:meth:`step_quotes` for callers that have mid prices, not quotes: ``mid`` as both sides is exact ((m + m) * 0.5 == m short of overflow)."""
        return self.step_quotes(sym_idx, mid, mid, features, clock_s)

    def step_quotes(self, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, features: np.ndarray, clock_s: np.ndarray) -> StepResult:
        """One jitted call for the batch; the kernel takes the mid from ``bid`` and ``ask``. Symbol indices must be < ``capacity``."""
        n = sym_idx.shape[0]
        if n > self._out.shape[0]:
            self._alloc(max(n, 2 * self._out.shape[0]))
        out, prediction, emit = self._out[:n], self._prediction[:n], self._emit[:n]
        key = array_types(sym_idx, bid, ask, features, clock_s)  # the arguments whose types the caller decides
        emitted: int = self._kernel(key, self.state, self.policy, self.params, self.cols, sym_idx, bid, ask, features, clock_s, out, prediction, emit)
        return StepResult(out, prediction, emit, emitted)

    def labels_seen(self, s: int) -> int:
        return int(self.state.labels[s])

    # -- persistence -----------------------------------------------------------

    def snapshot(self, rows: int | None = None) -> dict[str, Any]:
        """Copies of the learned state (not the policy's: its clock is per process), of the first ``rows``
        symbols when given (those in use): the copy is made on the tick loop's thread, and the whole capacity
        with a long horizon took milliseconds every save (a helper's measurement, 2026-12-06: 2-86 ms at 256
        symbols and H = 1,000), as the feature engine's snapshot already avoided."""
        n = self.capacity if rows is None else min(rows, self.capacity)
        return {
            "version": STATE_VERSION,
            "n_features": self.n_features,
            "horizon": self.horizon,
            "arrays": {name: arr[:n].copy() for name, arr in zip(ModelState._fields, self.state)},
        }

    def unfit(self, snapshot: dict[str, Any]) -> str | None:
        """Why a :meth:`snapshot` does not fit this engine (the setting that differs, by name), or None when it does."""
        return self._unfit_current(_upgraded(snapshot))

    def _unfit_current(self, snapshot: dict[str, Any]) -> str | None:
        """:meth:`unfit` of a snapshot already brought up to date (:func:`_upgraded`)."""
        if snapshot.get("version") != STATE_VERSION:
            return f"saved as model state version {snapshot.get('version')!r}, this program's is {STATE_VERSION} (another version of it)"
        if snapshot.get("n_features") != self.n_features:
            return f"saved with {snapshot.get('n_features')!r} features, this program has {self.n_features} (another version of it)"
        if snapshot.get("horizon") != self.horizon:
            return f"signals.horizon_ticks {snapshot.get('horizon')!r}, now {self.horizon}"
        if set(snapshot.get("arrays", ())) != set(ModelState._fields):
            return "its arrays are not this program's model state"
        return None

    def restore(self, snapshot: dict[str, Any]) -> bool:
        """Load a :meth:`snapshot`. False (and the state untouched) when it does not fit this config (:meth:`unfit`)."""
        snapshot = _upgraded(snapshot)
        if self._unfit_current(snapshot) is not None:
            return False
        arrays = snapshot["arrays"]
        saved = ModelState(**{name: np.asarray(arrays[name]) for name in ModelState._fields})
        self.ensure_capacity(saved.momentum.shape[0])
        self.state = ModelState(*grow_rows(saved, make_model_state(self.capacity, self.n_features, self.horizon)))
        return True
