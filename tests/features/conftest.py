"""Real ticks (both feeds) loaded once per session, and the features our kernel computes on them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quantumtrader.config import load_config  # noqa: E402
from quantumtrader.features.engine import FeatureEngine  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ticks"
FILES = {"oanda": DATA / "EURUSD.csv.gz", "fxcm": DATA / "fxcm" / "EURUSD.csv.gz"}


def synthetic_volume(n: int) -> np.ndarray:
    """The files have no volume: a deterministic stand-in with the shape of tick counts."""
    return (np.arange(n) * 7919 % 13).astype(np.float64)


@pytest.fixture(scope="session")
def ticks() -> dict[str, pd.DataFrame]:
    out = {}
    for name, path in FILES.items():
        if not path.is_file():
            raise AssertionError(f"test data not found: looked for {path} (../shared/data beside the repo)")
        out[name] = pd.read_csv(path, usecols=["bid", "ask"], dtype={"bid": np.float64, "ask": np.float64})
    return out


@pytest.fixture(scope="session")
def features_cfg():
    return load_config(environ={}).features


@pytest.fixture(scope="session")
def computed(ticks, features_cfg) -> dict[str, np.ndarray]:
    """Our features for every tick of each file, one symbol per file, in one batch call."""
    out = {}
    for name, frame in ticks.items():
        engine = FeatureEngine(features_cfg)
        idx = engine.add_symbol("EURUSD")
        n = len(frame)
        out[name] = engine.update(np.full(n, idx, dtype=np.int32), frame["bid"].to_numpy(), frame["ask"].to_numpy(), synthetic_volume(n)).copy()
    return out
