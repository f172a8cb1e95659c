"""SignalPipeline: ticks in, the PROTOCOL.md signal object out, ids unique, state resumes through a snapshot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quantumtrader.config import FeaturesConfig, SignalsConfig
from quantumtrader.features.names import FEATURE_NAMES
from quantumtrader.models.kernel import OUT_ML
from quantumtrader.models.pipeline import SignalIds, SignalPipeline
from quantumtrader.protocol import signal_object

SIGNAL_KEYS = {"id", "symbol", "prediction", "trend", "probability", "confidence", "action", "timestamp", "time_msc", "components", "features", "ml_prediction"}
FAST = dataclasses.replace(SignalsConfig(), ml_warmup_labels=50, interval_s=1.0)


def _ticks(n: int, symbols: tuple[str, ...], seed: int = 5) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    names = [symbols[i % len(symbols)] for i in range(n)]
    mid = 1.1 + np.cumsum(rng.normal(0, 2e-5, n))
    bid = np.round(mid - 5e-5, 5)
    ask = bid + 0.0001
    stamp = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 100
    return names, bid, ask, np.ones(n), stamp


def _run(pipeline: SignalPipeline, ticks, start: int, stop: int, batch: int = 256) -> list[dict]:
    names, bid, ask, volume, stamp = ticks
    signals = []
    for lo in range(start, stop, batch):
        hi = min(stop, lo + batch)
        sym = np.array([pipeline.index_of(s) for s in names[lo:hi]], dtype=np.int32)
        result = pipeline.process(sym, bid[lo:hi], ask[lo:hi], volume[lo:hi], stamp[lo:hi], stamp[lo:hi] / 1000.0)
        signals += [pipeline.signal(result, int(r), int(stamp[lo + r])) for r in result.emitted]
    return signals


def test_signals_have_exactly_the_protocol_shape_and_unique_ids() -> None:
    pipeline = SignalPipeline(FeaturesConfig(), FAST)
    signals = _run(pipeline, _ticks(3000, ("EURUSD", "GBPUSD")), 0, 3000)

    assert len(signals) > 2
    assert len({s["id"] for s in signals}) == len(signals) and all(s["id"].startswith("s-") for s in signals)
    for sig in signals:
        assert set(sig) == SIGNAL_KEYS
        assert set(sig["components"]) == {"quantum", "chaos", "ml_ensemble", "technical"}
        assert list(sig["features"]) == list(FEATURE_NAMES)
        assert sig["confidence"] == max(sig["probability"], 1 - sig["probability"])
        assert sig["action"] == ("hold" if sig["prediction"] == "HOLD" else "entry")
        assert sig["timestamp"].endswith("Z") and sig["ml_prediction"]["probability"] == sig["components"]["ml_ensemble"]
        assert all(v is None or v == v for v in sig["features"].values())  # NaN never leaks


def test_signal_object_rejects_an_unknown_prediction() -> None:
    with pytest.raises(ValueError):
        signal_object(signal_id="s-1", symbol="X", prediction="STRONG_BUY", probability=0.9, trend="bullish", time_msc=0,
                      components={"quantum": 0, "chaos": 0, "ml_ensemble": 0, "technical": 0}, features={}, ml_probability=0.5, ml_components={})


def test_ids_differ_between_processes() -> None:
    assert SignalIds().prefix != SignalIds().prefix
    ids = SignalIds("abc")
    assert [ids(), ids()] == ["s-abc-1", "s-abc-2"]


def test_snapshot_restore_resumes_the_learners_instead_of_starting_at_half() -> None:
    ticks = _ticks(4000, ("EURUSD", "GBPUSD", "USDJPY"))
    whole = SignalPipeline(FeaturesConfig(), FAST)
    first = SignalPipeline(FeaturesConfig(), FAST)
    _run(whole, ticks, 0, 2000)
    _run(first, ticks, 0, 2000)

    resumed = SignalPipeline(FeaturesConfig(), FAST)
    restored = resumed.restore(first.snapshot())
    assert restored.whole and restored.unfit == {}
    assert resumed.symbols == first.symbols
    names, bid, ask, volume, stamp = ticks
    sym = np.array([resumed.index_of(s) for s in names[2000:2300]], dtype=np.int32)
    got = resumed.process(sym, bid[2000:2300], ask[2000:2300], volume[2000:2300], stamp[2000:2300], stamp[2000:2300] / 1000.0).models.out[:, OUT_ML].copy()
    ref = whole.process(sym, bid[2000:2300], ask[2000:2300], volume[2000:2300], stamp[2000:2300], stamp[2000:2300] / 1000.0).models.out[:, OUT_ML]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert np.all(got != 0.5)
    # the symbols in use only, not the engine's whole capacity: the copy is made on the tick loop's thread
    assert {arr.shape[0] for arr in first.snapshot()["models"]["arrays"].values()} == {3} and first.models.capacity > 3


def test_models_start_cold_when_the_feature_state_is_refused_for_another_definition() -> None:
    """Learners fitted on features computed with other windows would predict at once from a scaling that no longer fits."""
    import dataclasses

    ticks = _ticks(3000, ("EURUSD",))
    first = SignalPipeline(FeaturesConfig(), FAST)
    _run(first, ticks, 0, 3000)
    # A window's length changes the arrays' shapes too; chaos_every and the bandwidth do not, so the parameters' own
    # check is what must refuse them.
    for change in ({"wave_window": FeaturesConfig().wave_window + 8}, {"chaos_every": FeaturesConfig().chaos_every * 2}, {"wave_bandwidth": FeaturesConfig().wave_bandwidth * 1.5}):
        resumed = SignalPipeline(dataclasses.replace(FeaturesConfig(), **change), FAST)
        restored = resumed.restore(first.snapshot())
        assert (restored.features, restored.models) == (False, False), change
        (setting,) = change
        assert f"features.{setting}" in restored.unfit["features"], restored.unfit  # the setting that differs, named
        assert restored.unfit["models"] == "learned on the saved features, which could not be used"


def test_a_refused_half_is_named_with_the_setting_that_differs_and_a_second_restore_leaves_nothing_of_the_first() -> None:
    """A changed setting dropped learned models with only "models=False" at info level (a review, 2026-12-05)."""
    ticks = _ticks(3000, ("EURUSD",))
    first = SignalPipeline(FeaturesConfig(), FAST)
    _run(first, ticks, 0, 3000)
    longer = SignalPipeline(FeaturesConfig(), dataclasses.replace(FAST, horizon_ticks=FAST.horizon_ticks + 30))
    restored = longer.restore(first.snapshot())
    assert restored.features and not restored.models
    assert restored.unfit == {"models": f"signals.horizon_ticks {FAST.horizon_ticks}, now {FAST.horizon_ticks + 30}"}
    narrower = SignalPipeline(dataclasses.replace(FeaturesConfig(), wave_window=32), FAST)
    assert narrower.restore(first.snapshot()).unfit["features"].endswith(f"features.wave_window {FeaturesConfig().wave_window}, now 32")
    # restored twice (the daemon tries a kept state, then goes back): the second leaves nothing of the first
    again = SignalPipeline(FeaturesConfig(), FAST)
    assert again.restore(first.snapshot()).whole and again.models.labels_seen(0) == first.models.labels_seen(0) > 0
    assert not again.restore({**first.snapshot(), "models": longer.snapshot()["models"]}).models
    assert again.models.labels_seen(0) == 0  # cold, not the learners of the first restore

