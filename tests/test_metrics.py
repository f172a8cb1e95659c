"""Latency histograms: the vectorized fold and percentile read agree with hdrh's own, value for value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quantumtrader.metrics import PERCENTILES, add_values, new_histogram, percentile_values, prometheus_text, summarize
from support import FakeClock

# nanoseconds from below the histogram's floor (clamped) to over a minute (clamped), skewed like latencies
latencies = st.lists(st.one_of(st.integers(0, 2_000), st.integers(2_000, 5_000_000), st.integers(5_000_000, 90 * 10**9)), min_size=1, max_size=400)


@settings(max_examples=200, deadline=None)
@given(latencies)
def test_bulk_fold_and_percentiles_equal_hdrh_recording_one_by_one(values: list[int]) -> None:
    bulk = new_histogram()
    add_values(bulk, np.array(values, dtype=np.int64))
    one_by_one = new_histogram()
    for v in values:
        one_by_one.record_value(min(max(v, one_by_one.lowest_trackable_value), one_by_one.highest_trackable_value))
    assert list(bulk.counts) == list(one_by_one.counts)
    assert bulk.get_total_count() == len(values)
    expected = one_by_one.get_percentile_to_value_dict(list(PERCENTILES))
    assert percentile_values(bulk, PERCENTILES) == [expected[p] for p in PERCENTILES]
    summary = summarize(bulk)
    assert summary["count"] == len(values)
    assert summary["p99_us"] == expected[99.0] / 1000.0
    assert summary["max_us"] == one_by_one.get_max_value() / 1000.0


def test_an_empty_histogram_has_only_a_count() -> None:
    assert summarize(new_histogram()) == {"count": 0.0}


def test_record_count_is_count_single_records_and_the_total_is_their_sum() -> None:
    from quantumtrader.metrics import LatencyRecorder

    counted, single = LatencyRecorder(capacity=8), LatencyRecorder(capacity=8)
    for value, count in ((5_000, 3), (70_000, 1), (2_000_000, 20), (900, 6)):  # 20 > capacity: folded directly
        counted.record_count(value, count)
        for _ in range(count):
            single.record(value)
    assert list(counted.fold().counts) == list(single.fold().counts)
    assert counted.total_ns == single.total_ns == 3 * 5_000 + 70_000 + 20 * 2_000_000 + 6 * 900



def test_a_repeating_reject_is_logged_once_per_interval_with_the_count_since() -> None:
    from quantumtrader.metrics import RejectLog

    clock, lines = FakeClock(), []
    rejects = RejectLog(lambda event, **fields: lines.append((event, fields)), 10.0, clock)
    for _ in range(5):
        rejects.reject("events", "bad_json", "x")
    rejects.reject("events", "bad_value", "y")  # another reason has its own interval
    clock.now += 10.0
    rejects.reject("events", "bad_json", "x")
    assert [(f["reason"], f["count_since_last_log"], f["total"]) for _, f in lines] == [("bad_json", 1, 1), ("bad_value", 1, 1), ("bad_json", 5, 6)]
    assert rejects.counts["bad_json"] == 6 and rejects.total == 7


def test_rejects_no_line_counted_yet_are_said_once_their_interval_is_over() -> None:
    """An ops check (2026-12-05): 248 refused after a restart were logged as one line ('total: 1'), since the count
    of the suppressed ones waited for a next reject of that reason, and none came."""
    from quantumtrader.metrics import RejectLog

    clock, lines = FakeClock(), []
    rejects = RejectLog(lambda event, **fields: lines.append((event, fields)), 10.0, clock)
    for i in range(248):
        rejects.reject("events", "not_registered", f"t{i}")
    rejects.flush()  # the interval is not over: nothing yet
    clock.now += 10.0
    rejects.flush()
    rejects.flush()  # said once
    assert [(f["count_since_last_log"], f["total"], f["detail"]) for _, f in lines] == [(1, 1, "t0"), (247, 248, "t247")]


def test_prometheus_values_are_exact_not_six_significant_digits() -> None:
    """``:g`` printed 1234567891 as 1.23457e+09: a counter moving in steps of 10,000 made rate() read 0 or a spike."""
    text = prometheus_text({"ticks": 1_234_567_891.0}, {"uptime_seconds": 12.345678912}, {"stage": {"p50_us": 123456.789, "count": 7_654_321.0}})
    assert "qt_ticks_total 1234567891\n" in text
    assert "qt_uptime_seconds 12.345678912\n" in text
    assert 'qt_latency_stage_microseconds{quantile="0.5"} 123456.789\n' in text
    assert "qt_latency_stage_microseconds_count 7654321\n" in text

