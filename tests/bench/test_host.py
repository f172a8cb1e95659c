"""qt-bench host: each sample is a pause then the step, sleeping and spinning alternate, and each lands in its own figures."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from quantumtrader.bench import host
from quantumtrader.bench.host import PAUSES_S, run_host_bench


def test_a_step_after_a_sleep_is_counted_as_after_sleep_and_alternates_with_spins(monkeypatch) -> None:
    """With a fake clock, a step "costs" 5 µs after a sleep and 1 µs after a spin: the figures must say exactly that."""
    now = [0]
    cold = [False]
    events: list[str] = []
    monkeypatch.setattr(host.time, "perf_counter_ns", lambda: now[0])

    def fake_sleep(seconds: float) -> None:
        events.append("sleep")
        cold[0] = True
        now[0] += 150_000  # a sleep overshoots

    def fake_spin(seconds: float) -> None:
        events.append("spin")
        cold[0] = False
        now[0] += 100_000

    def step(i: int) -> None:
        events.append("step")
        now[0] += 5_000 if cold[0] else 1_000

    monkeypatch.setattr(host.time, "sleep", fake_sleep)
    monkeypatch.setattr(host, "spin", fake_spin)
    figures = host._measure(step, 0.0001, 20)
    assert events == ["sleep", "step", "spin", "step"] * 20
    assert figures["after_sleep"]["p50_us"] == figures["after_sleep"]["p99_us"] == 5.0
    assert figures["after_spin"]["p50_us"] == figures["after_spin"]["p99_us"] == 1.0
    assert figures["sleep_pause"]["p50_us"] == 150.0 and figures["spin_pause"]["p50_us"] == 100.0


def test_the_wakeup_figures_put_the_step_after_the_pause_and_the_one_right_after_it_apart(monkeypatch) -> None:
    """With a fake clock, a step "costs" 20 µs after a pause and 2 µs right after another: the figures must say exactly that."""
    now = [0]
    asleep = [False]
    events: list[str] = []
    monkeypatch.setattr(host.time, "perf_counter_ns", lambda: now[0])

    def fake_spin(seconds: float) -> None:
        events.append("spin")
        asleep[0] = True
        now[0] += int(seconds * 1e9)

    def step(i: int) -> None:
        events.append("step")
        now[0] += 20_000 if asleep[0] else 2_000
        asleep[0] = False

    monkeypatch.setattr(host, "spin", fake_spin)
    figures = host._measure_wakeup(step, 0.0001, 20)
    assert events == ["spin", "step", "step"] * 20
    assert figures["after_pause"]["p50_us"] == figures["after_pause"]["p99_us"] == 20.0
    assert figures["back_to_back"]["p50_us"] == figures["back_to_back"]["p99_us"] == 2.0


def test_each_step_and_pause_is_measured_both_ways_and_written(tmp_path: Path) -> None:
    out = tmp_path / "host.json"
    lines: list[str] = []
    result = run_host_bench(samples=20, json_out=out, log=lines.append)
    written = orjson.loads(out.read_bytes())
    assert written["results"] == result["results"] and written["machine"]["cores"]
    assert sorted((r["step"], r["pause_us"]) for r in result["results"]) == sorted((step, p * 1e6) for step in ("no-op call", "1,200-byte copy", "1,200-byte os.write") for p in PAUSES_S)
    for r in result["results"]:
        assert r["sleep_pause"]["p50_us"] >= r["pause_us"] * 0.9, r  # it really slept about that long (or longer)
        assert r["spin_pause"]["p50_us"] >= r["pause_us"] * 0.99, r
        if r["step"] == "1,200-byte os.write":  # a system call: measurable on any clock (a no-op call may read 0 on Windows' 100 ns one)
            assert r["after_sleep"]["p50_us"] > 0 and r["after_spin"]["p50_us"] > 0, r
    assert any("sleep/spin p50" in line for line in lines)
    # the feed publication: the daemon's publisher to a subscriber process that took every message (2 per sample and pause)
    assert [(r["step"], r["pause_us"]) for r in written["feed_wakeup"]] == [("feed publish", p * 1e6) for p in PAUSES_S]
    assert written["feed_delivered"] == 2 * 20 * len(PAUSES_S)
    for r in written["feed_wakeup"]:
        assert r["after_pause"]["p50_us"] > 0 and r["back_to_back"]["p50_us"] > 0 and r["p50_ratio"] > 0, r
    # a one-byte pipe write to a reader process, the same two timings (the reader took every byte, or it raised)
    assert [(r["step"], r["pause_us"]) for r in written["process_wakeup"]] == [("wake a process", p * 1e6) for p in PAUSES_S]
    for r in written["process_wakeup"]:
        assert r["after_pause"]["p50_us"] > 0 and r["back_to_back"]["p50_us"] > 0 and r["p50_ratio"] > 0, r
    assert any("pause/back-to-back p50" in line for line in lines) and any(line.startswith("wake a process") for line in "\n".join(lines).splitlines())
    if sys.platform.startswith("linux"):  # the run's CPU time from /proc/stat, steal included
        assert written["cpu"]["busy_pct"] > 0 and lines[-1].startswith("CPU over all cores")


def test_a_sample_count_out_of_range_is_refused() -> None:
    for samples in (5, 10_001):
        with pytest.raises(ValueError, match="between 10 and 10000"):
            run_host_bench(samples=samples)
