"""Latest-value conflation of feature vectors: at most one per interval per key, the last one always."""

from __future__ import annotations

import math

from quantumtrader.daemon.conflate import Conflator


def test_first_update_goes_out_and_the_next_within_the_interval_is_held() -> None:
    c = Conflator(0.1)

    assert c.offer(7, 0.0)
    assert not c.offer(7, 0.05)
    assert c.next_deadline() == 0.1


def test_a_held_update_is_flushed_when_its_interval_ends_even_without_another_tick() -> None:
    c = Conflator(0.1)
    c.offer(7, 0.0)
    c.offer(7, 0.05)

    assert c.due(0.09) == []
    assert c.due(0.1) == [7]
    assert c.next_deadline() == math.inf
    assert not c.offer(7, 0.15)  # the flush counts as a publication: next one from 0.2


def test_keys_have_their_own_intervals() -> None:
    c = Conflator(0.25)
    c.offer(1, 0.0)
    c.offer(2, 0.125)
    c.offer(1, 0.1875)
    c.offer(2, 0.1875)

    assert c.due(0.25) == [1]
    assert c.due(0.375) == [2]


def test_an_update_on_its_own_tick_clears_the_held_one_and_the_deadline_is_never_late() -> None:
    c = Conflator(0.1)
    c.offer(1, 0.0)
    c.offer(1, 0.05)

    assert c.offer(1, 0.1)
    assert c.next_deadline() <= 0.1
    assert c.due(1.0) == []
    assert c.next_deadline() == math.inf
