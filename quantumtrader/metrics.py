"""Counters, reject accounting and per-stage latency histograms.

One ``Metrics`` object per process. Counters are plain dict increments (the
tick path can afford nothing more); histograms are HDR (constant memory,
bounded relative error) in nanoseconds; rejects are counted by reason and
logged at most once per reason per interval, so a flood of bad input costs a
counter increment, not a log line each.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from quantumtrader.protocol import REJECT_REASONS

#: Latency stages the daemon measures (DESIGN.md, "Observability").
STAGES: tuple[str, ...] = (
    "ea_to_receive",  # EA sent_ns (same-host monotonic clock) -> daemon receive
    "receive_to_publish",  # batch received -> batch decoded, every price_update of it published
    "features",  # feature kernel call, per batch
    "receive_to_signal",  # batch received -> signal published
    "command_round_trip",  # command sent to a terminal -> its reply
)

_LOWEST_NS = 100
_HIGHEST_NS = 60 * 1_000_000_000  # one minute: anything slower is clamped
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
#: Samples a :class:`LatencyRecorder` buffers before it folds them into its histogram.
BUFFER_SAMPLES = 4096


def new_histogram() -> HdrHistogram:
    """100 ns .. 60 s with 2 significant digits (1 % error).

    Coarse on purpose: reading percentiles walks the counts array in Python,
    and health reads them every second on the loop thread. At this precision
    one pass costs ~0.15 ms; at 1 ns / 3 digits it cost ~1.3 ms, and hdrh's
    get_mean_value (never called here) ~46 ms.
    """
    return HdrHistogram(_LOWEST_NS, _HIGHEST_NS, 2)


def summarize(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles and max, in microseconds, with the count.

    The daemon reads its histograms for every health message, on the tick
    loop: hdrh's ``get_percentile_to_value_dict`` walks the counts array in
    Python (~65 µs a histogram, ~0.3 ms for the five), a stall every tick that
    arrives meanwhile waits out. :func:`percentile_values` gives the same
    values from one numpy cumulative sum.
    """
    count = hist.get_total_count()
    out: dict[str, float] = {"count": float(count)}
    if count == 0:
        return out
    for pct, value in zip(PERCENTILES, percentile_values(hist, PERCENTILES), strict=True):
        out[f"p{pct:g}_us"] = value / 1000.0
    out["max_us"] = hist.get_max_value() / 1000.0
    return out


def percentile_values(hist: HdrHistogram, percentiles: Iterable[float]) -> list[int]:
    """What ``hist.get_percentile_to_value_dict`` answers for each of ``percentiles`` (each > 0), vectorized.

    hdrh's rule: the first counts index where the running total reaches the
    percentile's target count, reported as the highest value equivalent to it.
    """
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    running = np.cumsum(counts)
    out = []
    for pct in percentiles:
        index = int(np.searchsorted(running, hist.get_target_count_at_percentile(pct), side="left"))
        out.append(hist.get_highest_equivalent_value(hist.get_value_from_index(min(index, hist.counts_len - 1))))
    return out


def add_values(hist: HdrHistogram, values_ns: np.ndarray) -> None:
    """Record many values at once: hdrh's own bucket arithmetic, vectorized.

    ``record_value`` is pure Python (~0.85 µs a call); this is one numpy pass
    over the batch, adding the counts in bulk to the histogram's own counts
    array, so the histogram reads exactly as if each value had been recorded.
    Values are clamped into the histogram's range first (a clock oddity never
    raises and is never silently dropped).
    """
    if values_ns.size == 0:
        return
    values = np.clip(values_ns, hist.lowest_trackable_value, hist.highest_trackable_value).astype(np.int64)
    # bit length of (value | sub_bucket_mask): frexp's exponent, exact below 2**53
    _, bits = np.frexp((values | hist.sub_bucket_mask).astype(np.float64))
    bucket = bits.astype(np.int64) - hist.unit_magnitude - (hist.sub_bucket_half_count_magnitude + 1)
    sub_bucket = values >> (bucket + hist.unit_magnitude)
    index = ((bucket + 1) << hist.sub_bucket_half_count_magnitude) + sub_bucket - hist.sub_bucket_half_count
    counts = np.ctypeslib.as_array(hist.counts)  # a view: hdrh keeps its counts in a ctypes array
    counts += np.bincount(index, minlength=hist.counts_len)[: hist.counts_len].astype(counts.dtype)
    hist.total_count += int(values.size)
    hist.min_value = min(hist.min_value, int(values.min()))
    hist.max_value = max(hist.max_value, int(values.max()))


class LatencyRecorder:
    """An HDR histogram fed through a preallocated buffer: the tick path pays one array store.

    Recording straight into hdrh cost ~0.85 µs per sample, four per tick
    batch plus one per tick (the daemon's biggest fixed cost after the
    kernels). Samples wait in a numpy buffer and are folded in bulk
    (:func:`add_values`) when it fills or when the histogram is read
    (health, status, the control queries), so readers always see every sample.
    """

    __slots__ = ("_buffer", "_n", "histogram", "total_ns")

    def __init__(self, capacity: int = BUFFER_SAMPLES) -> None:
        self.histogram = new_histogram()
        self._buffer = np.empty(capacity, dtype=np.int64)
        self._n = 0
        self.total_ns = 0  # sum of every sample folded, for a mean (hdrh's get_mean_value walks every bucket)

    def record(self, value_ns: int) -> None:
        n = self._n
        self._buffer[n] = value_ns
        n += 1
        self._n = n
        if n == self._buffer.shape[0]:
            self.fold()

    def record_count(self, value_ns: int, count: int) -> None:
        """``count`` samples of one value (a fan-out timed as a whole), as one slice fill."""
        n = self._n
        if n + count > self._buffer.shape[0]:
            self.fold()
            n = 0
            if count > self._buffer.shape[0]:
                self._fold_values(np.full(count, value_ns, dtype=np.int64))
                return
        self._buffer[n : n + count] = value_ns
        self._n = n + count

    def fold(self) -> HdrHistogram:
        """Move the buffered samples into the histogram; returns it (complete)."""
        if self._n:
            self._fold_values(self._buffer[: self._n])
            self._n = 0
        return self.histogram

    def _fold_values(self, values: np.ndarray) -> None:
        add_values(self.histogram, values)
        self.total_ns += int(values.sum())

    def summary(self) -> dict[str, float]:
        return summarize(self.fold())

    def reset(self) -> None:
        self._n = 0
        self.total_ns = 0
        self.histogram.reset()


class LogLimiter:
    """At most one log line per key and interval: a failure that repeats on every tick must not flood the log."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last_logged: dict[Hashable, float] = {}
        self._since_logged: Counter[Hashable] = Counter()

    def due(self, key: Hashable) -> int | None:
        """Count one occurrence of ``key``; if a line is due, how many occurred since the last one (this one included)."""
        self._since_logged[key] += 1
        now = self._clock()
        last = self._last_logged.get(key)
        if last is not None and now - last < self._interval_s:
            return None
        self._last_logged[key] = now
        since, self._since_logged[key] = self._since_logged[key], 0
        return since

    def log(self, key: Hashable, emit: Callable[..., Any], event: str, **fields: Any) -> None:
        """Count one occurrence of ``key``; when a line is due, ``emit(event, count_since_last_log=N, **fields)``."""
        since = self.due(key)
        if since is not None:
            emit(event, count_since_last_log=since, **fields)

    def __len__(self) -> int:
        """How many keys it remembers (each key ever logged: bound them where keys come from outside)."""
        return len(self._last_logged)

    def overdue(self) -> list[tuple[Hashable, int]]:
        """Keys with occurrences no line has counted yet and whose interval is over: (key, how many), counted afresh.

        Without it those were said only by the next occurrence's line, and after a burst none may come."""
        now = self._clock()
        out = []
        for key, since in self._since_logged.items():
            if since and now - self._last_logged.get(key, now) >= self._interval_s:
                out.append((key, since))
        for key, _ in out:
            self._last_logged[key] = now
            self._since_logged[key] = 0
        return out


class RejectLog:
    """Counts rejected messages by reason; logs each reason at most once per interval."""

    def __init__(self, log: Callable[..., Any], interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in REJECT_REASONS})
        # by where they came from ("events": the EAs, "control": the sidecar and the CLI): an operator's mistyped
        # trade must not read as trouble on the EA link, which is what the reject counters are for (docs/mql.md)
        self.by_source: Counter[str] = Counter()
        self._log = log
        self._limiter = LogLimiter(interval_s, clock)
        self._last: dict[str, tuple[str, str]] = {}  # reason -> (source, detail) of its latest reject

    def reject(self, source: str, reason: str, detail: str) -> None:
        self.counts[reason] += 1
        self.by_source[source] += 1
        self._last[reason] = (source, detail)
        self._limiter.log(reason, self._log, "message rejected", source=source, reason=reason, detail=detail, total=self.counts[reason])

    def flush(self) -> None:
        """Say the rejects a line has not counted yet, once their interval is over (the owner calls it periodically):
        an ops check saw 248 refused after a restart logged as one line, 'total: 1'."""
        for reason, since in self._limiter.overdue():
            source, detail = self._last[reason]
            self._log("message rejected", source=source, reason=reason, detail=detail, total=self.counts[reason], count_since_last_log=since, last_of_those=True)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Metrics:
    """All counters and histograms of one process."""

    def __init__(self, stages: Iterable[str] = STAGES) -> None:
        self.counters: Counter[str] = Counter()
        self.histograms: dict[str, LatencyRecorder] = {stage: LatencyRecorder() for stage in stages}

    def record(self, stage: str, value_ns: int) -> None:
        """Off the tick path (commands); the tick path holds its recorders' ``record`` directly."""
        self.histograms[stage].record(value_ns)

    def latency(self) -> dict[str, dict[str, float]]:
        return {stage: recorder.summary() for stage, recorder in self.histograms.items()}


def _number(value: float) -> str:
    """Exact: a whole number as an integer, anything else as repr. ``:g`` kept 6 digits, so a tick counter
    past a million moved in steps and rate() over a scrape read 0 or a spike."""
    if value == value and abs(value) < 2**63 and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def prometheus_text(
    counters: dict[str, float],
    gauges: dict[str, float],
    latency: dict[str, dict[str, float]],
    prefix: str = "qt",
) -> str:
    """Prometheus text exposition (version 0.0.4) of counters, gauges and latency summaries."""
    lines: list[str] = []
    for name, value in sorted(counters.items()):
        metric = f"{prefix}_{_metric_name(name)}_total"
        lines += [f"# TYPE {metric} counter", f"{metric} {_number(value)}"]
    for name, value in sorted(gauges.items()):
        metric = f"{prefix}_{_metric_name(name)}"
        lines += [f"# TYPE {metric} gauge", f"{metric} {_number(value)}"]
    for stage, summary in sorted(latency.items()):
        metric = f"{prefix}_latency_{_metric_name(stage)}_microseconds"
        lines.append(f"# TYPE {metric} summary")
        for pct in PERCENTILES:
            key = f"p{pct:g}_us"
            if key in summary:
                lines.append(f'{metric}{{quantile="{pct / 100:g}"}} {_number(summary[key])}')
        lines.append(f"{metric}_count {_number(summary.get('count', 0))}")
    return "\n".join(lines) + "\n"


def _metric_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()
