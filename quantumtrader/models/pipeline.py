"""Ticks in, feature rows, probabilities and due signals out: the whole signal path, no sockets.

Importing this module decorates the Numba kernels, which fixes where their
cache lives: call ``features.cache.ensure_numba_cache_dir`` *before* importing
it (the daemon stage and ``evaluate`` do).

The daemon's :class:`~quantumtrader.daemon.pipeline.PipelineStage` and
``qt-daemon evaluate`` both drive this class, so what is evaluated is the
code that trades, not a copy of it. Per batch: one FeatureEngine.update (one
jitted call), one ModelEngine.step (one jitted call). The clock for the signal
policy is an argument: the daemon's monotonic seconds, or the ticks' own time
in a replay.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, NamedTuple

import numpy as np

from quantumtrader.config import FeaturesConfig, SignalsConfig
from quantumtrader.features.engine import FeatureEngine
from quantumtrader.features.names import FEATURE_NAMES
from quantumtrader.log import get_logger
from quantumtrader.models.engine import ModelEngine, StepResult
from quantumtrader.models.kernel import OUT_CHAOS, OUT_ML, OUT_NB, OUT_PROBABILITY, OUT_QUANTUM, OUT_SGD, OUT_TECHNICAL, OUT_TREND
from quantumtrader.models.policy import PREDICTIONS
from quantumtrader.protocol import signal_object

#: |trend score| below this is "neutral": tanh(z/2) < 0.2 means |z| < ~0.4,
#: well inside what noise alone produces.
TREND_NEUTRAL_BAND = 0.2
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_NONE_EMITTED = np.empty(0, dtype=np.int64)
_NONE_EMITTED.flags.writeable = False


log = get_logger("quantumtrader.models")


class SignalIds:
    """Unique signal ids ``s-<boot>-<n>``: a random per-process prefix and a counter.

    The prefix (50 random bits) keeps ids unique across restarts without
    reading the store; the counter keeps them cheap on the hot path.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"s-{self.prefix}-{self._n}"


class Batch(NamedTuple):
    """One processed batch; arrays alias engine buffers until the next call."""

    sym_idx: np.ndarray  # i4[n]
    features: np.ndarray  # f8[n, N_FEATURES]
    models: StepResult
    emitted: np.ndarray  # i8[k]: rows whose signal is due, in arrival order


def trend_label(score: float) -> str:
    if score > TREND_NEUTRAL_BAND:
        return "bullish"
    if score < -TREND_NEUTRAL_BAND:
        return "bearish"
    return "neutral"


class Restored(NamedTuple):
    """What :meth:`SignalPipeline.restore` could use of a saved state, and why not the rest."""

    features: bool
    models: bool
    unfit: dict[str, str]  # "features"/"models" -> why that half starts cold (the settings that differ, by name)

    @property
    def whole(self) -> bool:
        return self.features and self.models


class SignalPipeline:
    """Feature engine + model engine + signal objects for any number of symbols."""

    def __init__(self, features_cfg: FeaturesConfig, signals_cfg: SignalsConfig, *, ids: SignalIds | None = None) -> None:
        self.features_cfg = features_cfg
        self.signals_cfg = signals_cfg
        self.features = FeatureEngine(features_cfg)
        self.models = ModelEngine(signals_cfg, capacity=features_cfg.max_symbols)
        self.ids = ids or SignalIds()
        self.symbols: list[str] = []
        self._index: dict[str, int] = {}

    def index_of(self, symbol: str) -> int:
        """The symbol's row in every state array; adds the symbol on first sight."""
        idx = self._index.get(symbol)
        if idx is None:
            idx = int(self.features.add_symbol(symbol))
            self._index[symbol] = idx
            while len(self.symbols) <= idx:
                self.symbols.append("")
            self.symbols[idx] = symbol
            self.models.ensure_capacity(idx + 1)
        return idx

    def process(
        self,
        sym_idx: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        volume: np.ndarray,
        time_msc: np.ndarray,
        clock_s: np.ndarray,
    ) -> Batch:
        """Features, then models and policy, for ``n`` validated ticks (indices from :meth:`index_of`)."""
        features = self.compute_features(sym_idx, bid, ask, volume, time_msc)
        return self.decide(sym_idx, bid, ask, features, clock_s)

    def compute_features(self, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, volume: np.ndarray, time_msc: np.ndarray) -> np.ndarray:
        """The feature kernel's one call for the batch (separate so the daemon can time it alone)."""
        return self.features.update(sym_idx, bid, ask, volume, time_msc)

    def decide(self, sym_idx: np.ndarray, bid: np.ndarray, ask: np.ndarray, features: np.ndarray, clock_s: np.ndarray) -> Batch:
        """The model kernel's one call: probabilities, predictions and which signals are due.

        The kernel computes each tick's mid from ``bid`` and ``ask``, so a
        batch costs no numpy call for it; most batches emit nothing, so the
        emitted rows are searched for only when there are any.
        """
        result = self.models.step_quotes(sym_idx, bid, ask, features, clock_s)
        emitted = np.flatnonzero(result.emit) if result.n_emitted else _NONE_EMITTED
        return Batch(sym_idx, features, result, emitted)

    def signal(self, batch: Batch, row: int, time_msc: int) -> dict[str, Any]:
        """The PROTOCOL.md signal object for ``row`` of ``batch``, with a fresh id."""
        out = batch.models.out[row].tolist()  # one call for the row, not a numpy scalar per field
        return signal_object(
            signal_id=self.ids(),
            symbol=self.symbols[int(batch.sym_idx[row])],
            prediction=PREDICTIONS[int(batch.models.prediction[row])],
            probability=out[OUT_PROBABILITY],
            trend=trend_label(out[OUT_TREND]),
            time_msc=time_msc,
            components={
                "quantum": out[OUT_QUANTUM],
                "chaos": out[OUT_CHAOS],
                "ml_ensemble": out[OUT_ML],
                "technical": out[OUT_TECHNICAL],
            },
            features=zip(FEATURE_NAMES, batch.features[row].tolist()),
            ml_probability=out[OUT_ML],
            ml_components={"sgd_logistic": out[OUT_SGD], "gaussian_nb": out[OUT_NB]},
        )

    # -- persistence and start-up ------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Copies of all learned and feature state, with the symbol order they are indexed by."""
        return {"symbols": list(self.symbols), "features": self.features.snapshot(), "models": self.models.snapshot(rows=len(self.symbols))}

    def restore(self, snapshot: dict[str, Any]) -> Restored:
        """Resume from a :meth:`snapshot`, replacing all state: each half only if it fits the current config, else
        cold, with the reason (:class:`Restored`). Calling it again with another snapshot leaves nothing of the first."""
        symbols = [str(s) for s in snapshot.get("symbols", [])]
        unfit: dict[str, str] = {}
        features_unfit = self._restore_features(snapshot.get("features"), symbols)
        if features_unfit is not None:
            unfit["features"] = features_unfit
        self.models = ModelEngine(self.signals_cfg, capacity=self.features_cfg.max_symbols)
        self.symbols, self._index = [], {}
        for name in symbols:
            if name:
                self.index_of(name)
        models_unfit = self._restore_models(snapshot.get("models", {}), features_fit=features_unfit is None)
        if models_unfit is not None:
            unfit["models"] = models_unfit
        return Restored("features" not in unfit, "models" not in unfit, unfit)

    def _restore_features(self, saved: Any, symbols: list[str]) -> str | None:
        """The saved feature state if it fits (None), else a cold engine and why it did not."""
        try:
            features = FeatureEngine.restore(saved, self.features_cfg)
        except Exception as exc:  # a snapshot from another feature layout: start features cold
            self.features = FeatureEngine(self.features_cfg)
            return str(exc) if isinstance(exc, ValueError) else f"not a feature state ({exc!r})"
        if not all(features.symbol_index(s) == i for i, s in enumerate(symbols) if s):
            self.features = FeatureEngine(self.features_cfg)
            return "its symbols are not in the order of its rows"
        self.features = features
        return None

    def _restore_models(self, saved: dict[str, Any], *, features_fit: bool) -> str | None:
        """The saved learners into the (cold) model engine if they fit (None), else why not."""
        reason = self.models.unfit(saved)
        if reason is None and not features_fit:
            # Models learned on the features as they were computed: a feature state refused for other windows
            # or bins means the learners' weights and scaling fit another definition, so they start cold too.
            reason = "learned on the saved features, which could not be used"
        if reason is None:
            try:
                self.models.restore(saved)
            except ValueError as exc:  # arrays of the right names but not the shapes this config makes
                reason = f"its arrays do not fit ({exc})"
        return reason

    def warm_up(self) -> float:
        """Compile (or load from the Numba cache) both kernels on a scratch pipeline; seconds taken.

        A cache Numba cannot load (a file cut by a power cut mid-compile: EOFError, UnpicklingError) is
        deleted and the kernels compiled afresh, once, logged; a second failure is not the cache's."""
        started = time.perf_counter()
        try:
            self._warm_once()
        except Exception as exc:
            from quantumtrader.features.cache import clear_numba_cache

            removed = clear_numba_cache()
            log.warning("Numba cache could not be loaded; deleted and compiling afresh", error=repr(exc)[:200], files_removed=removed)
            self._warm_once()
        return time.perf_counter() - started

    def _warm_once(self) -> None:
        scratch = SignalPipeline(self.features_cfg, self.signals_cfg, ids=SignalIds("warmup"))
        idx = scratch.index_of("WARMUP")
        n = 4
        sym = np.full(n, idx, dtype=np.int32)
        bid = np.array([1.1, 1.1001, 1.1002, 1.1001])
        scratch.process(sym, bid, bid + 0.0001, np.ones(n), np.arange(n, dtype=np.int64) + 1_700_000_000_000, np.arange(n, dtype=np.float64))
