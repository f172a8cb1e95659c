"""qt-bench ws, trade and features --plot (issue 8: "--plot FILE.png (latency percentile plot and throughput)"): a real
run with the shortest settings writes the picture; a name matplotlib cannot write, or one another output takes, is
refused before anything starts (exit 2), as pipeline's --plot is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import shared_ticks

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The quickest run each scenario takes (ws: the shortest --duration it accepts).
_QUICK = {
    "ws": ["ws", "--clients", "3", "--duration", "2", "--tick-rate", "100", "--symbols", "2"],
    "trade": ["trade", "--orders", "20"],
    "features": ["features", "--n-ticks", "20000"],
}
#: What each scenario prints first: a refused run printed none of it.
_FIRST_LINE = {"ws": "ws:", "trade": "trade:", "features": "features:"}


def _bench(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """qt-bench in a child process, its data directory (the features' Numba cache key) under ``tmp_path``."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "500", "QT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "quantumtrader.bench.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == _PNG_MAGIC, data[:16]
    assert len(data) > 10_000, len(data)  # axes, lines and labels; an empty figure is ~2 kB


@pytest.mark.parametrize("scenario", sorted(_QUICK))
def test_plot_writes_a_png(tmp_path: Path, scenario: str) -> None:
    extra = ["--ticks", str(shared_ticks())] if scenario == "features" else []
    out = tmp_path / f"{scenario}.png"
    done = _bench(tmp_path, *_QUICK[scenario], *extra, "--plot", str(out), "--json", str(tmp_path / f"{scenario}.json"))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    _assert_png(out)


@pytest.mark.parametrize("scenario", sorted(_QUICK))
@pytest.mark.parametrize(("plot", "says"), [("out.txt", "must end in .png"), ("same.png", "name one file")])
def test_a_bad_plot_name_is_refused_before_anything_runs(tmp_path: Path, scenario: str, plot: str, says: str) -> None:
    """A name matplotlib cannot write, or the --json file's (``same.png`` is both)."""
    json = tmp_path / ("same.png" if plot == "same.png" else "out.json")
    done = _bench(tmp_path, *_QUICK[scenario], "--plot", str(tmp_path / plot), "--json", str(json), timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert "--plot" in done.stderr and says in done.stderr, done.stderr[-2000:]
    assert _FIRST_LINE[scenario] not in done.stdout, done.stdout[-1000:]
    assert not (tmp_path / plot).exists()


def test_a_summarys_percentile_points_are_plotted_beside_samples(tmp_path: Path) -> None:
    """trade's daemon round trip is only its histogram's summary: its points, ascending, drawn with the client's samples."""
    from quantumtrader.bench.common import latency_summary, percentile_plot, summary_points

    summary = latency_summary(range(1000, 101_000, 100))
    at, values_us = summary_points(summary)
    assert at.tolist() == [50.0, 90.0, 99.0, 99.9] and values_us.tolist() == sorted(values_us.tolist())
    assert summary_points({"count": 0.0}) == (pytest.approx(np.array([])), pytest.approx(np.array([])))
    out = tmp_path / "trade.png"
    percentile_plot(out, {"client": np.arange(1000, 200_000, 7)}, "round trips", summaries={"daemon": summary, "empty": {"count": 0.0}})
    _assert_png(out)


def test_the_features_bar_chart_takes_figures_orders_of_magnitude_apart(tmp_path: Path) -> None:
    from quantumtrader.bench.common import bar_chart

    out = tmp_path / "features.png"
    bar_chart(out, {"ours_batch": 80.0, "talib_stream": 500.0, "pandas_recompute_1000": 1_700_000.0}, "ns per tick", "ns per tick")
    _assert_png(out)
