"""qt-bench host: every step after every pause, sleeping and spinning, into the table and the JSON."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from quantumtrader.bench.host import PAUSES_S, run_host_bench


def test_each_step_and_pause_is_measured_both_ways_and_written(tmp_path: Path) -> None:
    out = tmp_path / "host.json"
    lines: list[str] = []
    result = run_host_bench(samples=20, json_out=out, log=lines.append)
    written = orjson.loads(out.read_bytes())
    assert written["results"] == result["results"] and written["machine"]["cores"]
    assert sorted({(r["step"], r["pause_us"]) for r in result["results"]}) == sorted((step, p * 1e6) for step in ("no-op call", "1,200-byte copy", "1,200-byte os.write") for p in PAUSES_S)
    for r in result["results"]:
        for mode in ("after_sleep", "after_spin"):
            figures = r[mode]
            assert 0 < figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"], r
        assert r["p50_ratio"] == pytest.approx(r["after_sleep"]["p50_us"] / max(r["after_spin"]["p50_us"], 1e-3))
    assert "sleep/spin p50" in lines[-1]


def test_too_few_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        run_host_bench(samples=5)
