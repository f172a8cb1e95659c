"""qt-bench ws's staleness: how long a client shows a quote after a newer tick exists. Hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from quantumtrader.bench.staleness import summarize_staleness

MS = 1_000_000


def _one_client(ticks_ms: list[float], quotes: list[tuple[float, float]], end_ms: float) -> dict:
    """One client, one symbol (0): ``quotes`` = (tick sent, received) in ms."""
    sent = np.array([q[0] for q in quotes]) * MS
    received = np.array([q[1] for q in quotes]) * MS
    zeros = np.zeros(len(quotes), dtype=np.int64)
    return summarize_staleness({0: (np.array(ticks_ms) * MS).astype(np.int64)}, zeros, zeros, sent.astype(np.int64), received.astype(np.int64), int(end_ms * MS))


def test_a_quote_superseded_until_the_next_arrives() -> None:
    # ticks sent at 0, 10, 20 ms; the client gets tick 0 at 1 ms, then tick 2 at 25 ms; the phase ends at 30 ms.
    # From 10 ms (tick 1 exists) to 25 ms it shows tick 0: stale rising 0 -> 15 ms; then current to the end.
    st = _one_client([0, 10, 20], [(0, 1), (20, 25)], 30)
    assert st["followed_s"] == pytest.approx(0.029)
    assert st["mean_ms"] == pytest.approx(15 * 15 / 2 / 29)
    assert st["max_ms"] == pytest.approx(15)
    # 15 of 29 ms stale, uniformly over 0..15 ms: half the time above 0.5 ms, a tenth above 12.1 ms
    assert st["p50_ms"] == pytest.approx(0.5, abs=1e-6)
    assert st["p90_ms"] == pytest.approx(12.1, abs=1e-6)
    assert st["time_share_over_ms"]["10"] == pytest.approx(5 / 29)
    assert st["time_share_over_ms"]["50"] == 0.0


def test_a_client_that_always_shows_the_newest_is_never_stale() -> None:
    # every tick delivered as it is sent: staleness 0 throughout
    st = _one_client([0, 10, 20], [(0, 0), (10, 10), (20, 20)], 40)
    assert st["mean_ms"] == 0.0 and st["p99_ms"] == 0.0 and st["max_ms"] == 0.0


def test_the_way_to_the_client_counts_as_staleness() -> None:
    # the same ticks each 2 ms on the way: for 2 ms of each 10 the client shows the previous one
    st = _one_client([0, 10, 20], [(0, 2), (10, 12), (20, 22)], 40)
    assert st["max_ms"] == pytest.approx(2)
    assert st["mean_ms"] == pytest.approx(2 * (2 * 2 / 2) / 38)


def test_pairs_are_followed_apart_and_weighted_by_time() -> None:
    # client 0 on symbol 0 as in the first test (29 ms followed, 112.5 ms^2 of staleness); client 1 on symbol 1
    # current all along (it got the only tick at once): the mean is over both pairs' time
    ticks = {0: np.array([0, 10, 20]) * MS, 1: np.array([5]) * MS}
    client = np.array([0, 1, 0])
    symbol = np.array([0, 1, 0])
    sent = np.array([0, 5, 20]) * MS
    received = np.array([1, 5, 25]) * MS
    st = summarize_staleness(ticks, client, symbol, sent, received, 30 * MS)
    assert st["followed_s"] == pytest.approx((29 + 25) / 1000)
    assert st["mean_ms"] == pytest.approx(112.5 / 54)


def test_an_older_quote_after_a_newer_one_does_not_make_the_client_look_older() -> None:
    # the client keeps the newest it has seen: a late duplicate of tick 0 after tick 1 changes nothing
    with_late = _one_client([0, 10], [(0, 1), (10, 12), (0, 15)], 20)
    without = _one_client([0, 10], [(0, 1), (10, 12)], 20)
    assert with_late["mean_ms"] == pytest.approx(without["mean_ms"])


def test_quotes_after_the_end_of_the_phase_are_not_followed_past_it() -> None:
    # the phase ends at 30 ms and a quote arrives at 35 (the clients are told to stop after the clock is read):
    # staleness is counted up to 30 only, as the time followed is
    st = _one_client([0, 10], [(0, 1), (10, 35)], 30)
    assert st["followed_s"] == pytest.approx(0.029)
    assert st["mean_ms"] == pytest.approx(20 * 20 / 2 / 29)
    assert st["max_ms"] == pytest.approx(20)


def test_a_symbol_with_no_tick_on_record_and_an_empty_phase_are_answered() -> None:
    # no reference ticks for the symbol (the recorder missed them): nothing newer is known, never stale
    st = summarize_staleness({}, np.array([0, 0]), np.array([3, 3]), np.array([0, 10]) * MS, np.array([1, 11]) * MS, 20 * MS)
    assert st["mean_ms"] == 0.0 and st["followed_s"] == pytest.approx(0.019)
    empty = np.empty(0, dtype=np.int64)
    assert summarize_staleness({0: np.array([0])}, empty, empty, empty, empty, 10 * MS) == {}
