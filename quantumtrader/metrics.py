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
from collections.abc import Callable, Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

from quantumtrader.protocol import REJECT_REASONS

#: Latency stages the daemon measures (DESIGN.md, "Observability").
STAGES: tuple[str, ...] = (
    "ea_to_receive",  # EA sent_ns (same-host monotonic clock) -> daemon receive
    "receive_to_publish",  # batch received -> price_update published
    "features",  # feature kernel call, per batch
    "receive_to_signal",  # batch received -> signal published
    "command_round_trip",  # command sent to a terminal -> its reply
)

_HIGHEST_NS = 60 * 1_000_000_000  # one minute: anything slower is clamped
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    """100 ns .. 60 s with 2 significant digits (1 % error).

    Coarse on purpose: reading percentiles walks the counts array in Python,
    and health reads them every second on the loop thread. At this precision
    one pass costs ~0.15 ms; at 1 ns / 3 digits it cost ~1.3 ms, and hdrh's
    get_mean_value (never called here) ~46 ms.
    """
    return HdrHistogram(100, _HIGHEST_NS, 2)


def summarize(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles (one pass over the counts) and max, in microseconds, with the count."""
    count = hist.get_total_count()
    out: dict[str, float] = {"count": float(count)}
    if count == 0:
        return out
    values = hist.get_percentile_to_value_dict(list(PERCENTILES))
    for pct in PERCENTILES:
        out[f"p{pct:g}_us"] = values[pct] / 1000.0
    out["max_us"] = hist.get_max_value() / 1000.0
    return out


class RejectLog:
    """Counts rejected messages by reason; logs each reason at most once per interval."""

    def __init__(self, log: Callable[..., Any], interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in REJECT_REASONS})
        self._log = log
        self._interval_s = interval_s
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._since_logged: Counter[str] = Counter()

    def reject(self, source: str, reason: str, detail: str) -> None:
        self.counts[reason] += 1
        self._since_logged[reason] += 1
        now = self._clock()
        last = self._last_logged.get(reason)
        if last is None or now - last >= self._interval_s:
            self._last_logged[reason] = now
            self._log(
                "message rejected",
                source=source,
                reason=reason,
                detail=detail,
                count_since_last_log=self._since_logged[reason],
                total=self.counts[reason],
            )
            self._since_logged[reason] = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Metrics:
    """All counters and histograms of one process."""

    def __init__(self, stages: Iterable[str] = STAGES) -> None:
        self.counters: Counter[str] = Counter()
        self.histograms: dict[str, HdrHistogram] = {stage: new_histogram() for stage in stages}

    def record(self, stage: str, value_ns: int) -> None:
        # HDR rejects values outside its range; clamp so a clock oddity never raises.
        self.histograms[stage].record_value(min(max(value_ns, 100), _HIGHEST_NS))

    def latency(self) -> dict[str, dict[str, float]]:
        return {stage: summarize(hist) for stage, hist in self.histograms.items()}


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
        lines += [f"# TYPE {metric} counter", f"{metric} {value:g}"]
    for name, value in sorted(gauges.items()):
        metric = f"{prefix}_{_metric_name(name)}"
        lines += [f"# TYPE {metric} gauge", f"{metric} {value:g}"]
    for stage, summary in sorted(latency.items()):
        metric = f"{prefix}_latency_{_metric_name(stage)}_microseconds"
        lines.append(f"# TYPE {metric} summary")
        for pct in PERCENTILES:
            key = f"p{pct:g}_us"
            if key in summary:
                lines.append(f'{metric}{{quantile="{pct / 100:g}"}} {summary[key]:g}')
        lines.append(f"{metric}_count {summary.get('count', 0):g}")
    return "\n".join(lines) + "\n"


def _metric_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()
