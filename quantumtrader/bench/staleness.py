"""How long a WebSocket client shows a quote after a newer one exists (``qt-bench ws``).

With the sidecar's throttle (at most ``max_updates_per_s`` a symbol), the
age of each quote a client *receives* says little about what a phone
*shows*: a rule that holds a newer quote back to send a fresher one later
delivers young quotes while the screen stays behind. Staleness is what the
trader sees: at time t, a client that shows the quote of the tick sent at q
is stale by ``t - n`` when n, the send time of the next tick of that symbol
after q, is before t, and is 0 otherwise (it shows the newest quote).

Inputs are the terminal's ``sent_ns`` stamps (the clock every process of
the machine shares): the quotes a client received with their receive times,
and every tick the daemon published (the bench's own feed subscriber). Each
(client, symbol) pair is followed from its first quote of the phase to the
phase's end. Over a stretch between two quotes the staleness rises at slope
1 from where it starts, so its time integral and its time-weighted
distribution are exact, no sampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Staleness levels whose share of the time is reported, in ms.
OVER_MS = (10, 50, 100, 200, 500)


def stale_segments(ticks_sent: np.ndarray, shown_sent: np.ndarray, received: np.ndarray, end_ns: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One (client, symbol) pair: the staleness at the start and end of each stretch where it is stale, and the time followed.

    ``ticks_sent``: send times of every tick of the symbol, ascending (may be
    empty: then nothing newer is known and the pair is never stale);
    ``shown_sent`` / ``received``: each quote the client got (its tick's send
    time, and when it arrived), in arrival order; ``end_ns``: the phase's end,
    where following stops (a quote that arrived after it only ends the stretch
    there). Returns (start, end) staleness of each stale stretch, in ns, and
    the ns from the first quote to ``end_ns``.
    """
    if received.size == 0 or end_ns <= received[0]:
        return np.empty(0), np.empty(0), 0.0
    shown = np.maximum.accumulate(shown_sent)  # a client keeps the newest it has seen
    stretch_end = np.minimum(np.append(received[1:], end_ns), end_ns).astype(np.float64)
    stretch_start = received.astype(np.float64)
    next_sent = np.full(shown.shape, np.inf)
    if ticks_sent.size:
        following = np.searchsorted(ticks_sent, shown, side="right")
        newer = following < ticks_sent.size
        next_sent[newer] = ticks_sent[following[newer]]
    start = np.maximum(stretch_start, next_sent)  # when the stretch becomes stale (inf: never)
    stale = start < stretch_end
    return start[stale] - next_sent[stale], stretch_end[stale] - next_sent[stale], float(end_ns - received[0])


def ramp_summary(a: np.ndarray, b: np.ndarray, followed: float, scale: float = 1e6) -> dict[str, Any]:
    """A quantity that rises at slope 1 from ``a[i]`` to ``b[i]`` over each stretch i and is 0 the rest of ``followed``:
    its time-weighted mean, p50/p90/p99 and max, and the share of the time over each of :data:`OVER_MS`.

    Exact: over a stretch the time above a level x is ``b - max(a, x)`` when
    positive, so the percentiles are found by bisection on x. Values are
    divided by ``scale`` (ns -> ms by default; 1 when they are ms already).
    """
    if followed <= 0:
        return {}

    def time_over(x: float) -> float:
        return float(np.sum(np.clip(b - np.maximum(a, x), 0.0, None)))

    def percentile(p: float) -> float:
        want = (1.0 - p) * followed  # the time above the answer
        lo, hi = 0.0, float(b.max()) if b.size else 0.0
        if time_over(0.0) <= want:
            return 0.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if time_over(mid) > want else (lo, mid)
        return hi

    return {
        "mean_ms": float(np.sum(b * b - a * a) / 2.0 / followed / scale),
        "p50_ms": percentile(0.50) / scale,
        "p90_ms": percentile(0.90) / scale,
        "p99_ms": percentile(0.99) / scale,
        "max_ms": float(b.max()) / scale if b.size else 0.0,
        "time_share_over_ms": {str(x): time_over(x * scale) / followed for x in OVER_MS},
    }


def summarize_staleness(
    ticks_sent: Mapping[int, np.ndarray], client: np.ndarray, symbol: np.ndarray, shown_sent: np.ndarray, received: np.ndarray, end_ns: int
) -> dict[str, Any]:
    """Over every (client, symbol) pair of the quotes given: :func:`ramp_summary` of the staleness, and the seconds followed.

    ``client``, ``symbol``, ``shown_sent``, ``received``: one entry per quote received
    (symbols as keys of ``ticks_sent``, which holds each symbol's tick send times).
    """
    if client.size == 0:
        return {}
    order = np.lexsort((received, symbol, client))
    client, symbol, shown_sent, received = client[order], symbol[order], shown_sent[order], received[order]
    cuts = np.flatnonzero((np.diff(client) != 0) | (np.diff(symbol) != 0)) + 1
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    followed = 0.0
    empty = np.empty(0, dtype=np.int64)
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, client.size]):
        a, b, t = stale_segments(ticks_sent.get(int(symbol[lo]), empty), shown_sent[lo:hi], received[lo:hi], end_ns)
        starts.append(a)
        ends.append(b)
        followed += t
    summary = ramp_summary(np.concatenate(starts) if starts else np.empty(0), np.concatenate(ends) if ends else np.empty(0), followed)
    return {**summary, "followed_s": followed / 1e9} if summary else {}
