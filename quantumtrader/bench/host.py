"""``qt-bench host``: what a pause costs the next small step on this machine, sleeping vs spinning.

Why: ``daemon.busy_poll_us`` (docs/architecture.md) rests on the observation
that on a VM the work after a sleep runs on cold caches (and sometimes on a
core that ran another guest meanwhile). This times one small step of the
tick path's kind (a no-op call, a 1,200-byte copy, a 1,200-byte ``os.write``
to a file) after a pause spent sleeping and after the same pause spent
spinning, alternating sample by sample so drift in the machine hits both
alike, and reports the ratio and how long the pauses really were (a sleep
overshoots: timer slack on Linux, a coarse timer on Windows before Python
3.11). A hint for a VPS, not a verdict: the daemon spins in ``zmq_poll`` and
is woken by a socket, not a timer; the pipeline benchmark with
``--set daemon.busy_poll_us=0`` and ``=200`` is the real comparison.

It also times what the daemon does first with every tick: a feed publication
(``FeedPublisher.publish`` on a PUB socket, a subscriber in another process),
after a pause and right after another. After a pause ZeroMQ's I/O thread has
gone back to sleep and the send has to wake it (a system call, and on a VM
a wake-up of another virtual CPU); right after, it is still awake and the
send only queues the message. At 10,000 ticks/s every tick comes after a
pause, so every price publication pays the wake-up, and a signal in the same
batch pays it again when the thread went back to sleep meanwhile. What the
ratio is on the machine is what the daemon cannot save by being faster.

The same two timings of a one-byte pipe write to another process asleep in a
``read`` (no ZeroMQ, no Python on the waking side's path) say whose cost that
is: on the 2-core VM of 2026-12-05 the write cost 12-13 µs p50 after 100 µs and
0.8 µs right after another, the feed publication 14-15 and 3-7 (``haltpoll``: an
idle virtual CPU polls for ~10 µs, then halts, and waking a halted one costs
the waker a trip through the hypervisor), so the wake-up is the host's price,
not ZeroMQ's.

Usage of the module itself: ``python -m quantumtrader.bench.host ENDPOINT``
is that subscriber (prints how many messages it took when told to end);
``python -m quantumtrader.bench.host --pipe-reader`` is the pipe's reader
(prints how many bytes it read before the pipe closed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from quantumtrader.bench.common import APPEND_FLAGS, machine, spin, table, write_json
from quantumtrader.bench.cpu import CpuPhase, describe
from quantumtrader.children import popen_kwargs
from quantumtrader.children import stop as stop_child
from quantumtrader.config import DaemonConfig
from quantumtrader.daemon.feed import FeedPublisher

LINE = b"x" * 1200
PAUSES_S = (0.0001, 0.005)  # 100 µs: between two ticks at 10,000/s; 5 ms: a quiet market
#: The feed step's message: a price update as the daemon publishes one.
PRICE = {"symbol": "EURUSD", "bid": 1.38676, "ask": 1.38686, "spread": 0.0001, "volume": 0, "time_msc": 1398902400292, "timestamp": "2014-05-01T00:00:00.292Z", "terminal": "host-bench"}
END_TOPIC = b"end"
PIPE_READER = "--pipe-reader"
READY = b"ready\n"


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {"p50_us": ordered[n // 2] / 1000, "p90_us": ordered[int(n * 0.9)] / 1000, "p99_us": ordered[int(n * 0.99)] / 1000}


def _measure(step: Callable[[int], object], pause_s: float, samples: int) -> dict[str, dict[str, float]]:
    """The step after sleeping and after spinning (``samples`` each, alternating), and how long each pause really was."""
    clock = time.perf_counter_ns
    figures: dict[str, list[int]] = {"after_sleep": [], "after_spin": [], "sleep_pause": [], "spin_pause": []}
    for i in range(2 * samples):
        sleeping = i % 2 == 0
        paused = clock()
        if sleeping:
            time.sleep(pause_s)
        else:
            spin(pause_s)
        started = clock()
        step(i)
        ended = clock()
        figures["after_sleep" if sleeping else "after_spin"].append(ended - started)
        figures["sleep_pause" if sleeping else "spin_pause"].append(started - paused)
    return {name: _percentiles(values) for name, values in figures.items()}


def _measure_wakeup(step: Callable[[int], object], pause_s: float, samples: int) -> dict[str, dict[str, float]]:
    """The step after ``pause_s`` of spinning and again right after it (``samples`` each, alternating).

    Spinning, not sleeping, so that this process's own caches stay warm and
    the difference is the other side's: whoever the step has to wake.
    """
    clock = time.perf_counter_ns
    figures: dict[str, list[int]] = {"after_pause": [], "back_to_back": []}
    for i in range(samples):
        spin(pause_s)
        started = clock()
        step(2 * i)
        between = clock()
        step(2 * i + 1)
        ended = clock()
        figures["after_pause"].append(between - started)
        figures["back_to_back"].append(ended - between)
    return {name: _percentiles(values) for name, values in figures.items()}


def _feed_wakeup(samples: int, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], int]:
    """The daemon's feed publication after each pause and back to back, to a subscriber in another process.

    Returns the figures and how many messages the subscriber took, which must
    be all of them (raises otherwise): a send that dropped would be a cheap one.
    """
    ctx = zmq.Context()
    # XPUB is PUB that also hands over subscriptions (the same send path in libzmq): the
    # first one received says the subscriber is connected, so no message is lost to a slow join.
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, DaemonConfig().feed_hwm)
    pub.setsockopt(zmq.LINGER, 2000)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    child = subprocess.Popen([sys.executable, "-m", "quantumtrader.bench.host", f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE, **popen_kwargs())
    results = []
    try:
        if not pub.poll(30_000):
            raise RuntimeError("the subscriber process did not connect within 30 s")
        pub.recv()
        feed = FeedPublisher(pub)
        publish = lambda i: feed.publish("price", PRICE, PRICE["time_msc"], "EURUSD", PRICE["timestamp"])  # noqa: E731
        for pause_s in PAUSES_S:
            log(f"host: feed publish after {pause_s * 1e6:.0f} µs and back to back, {samples} samples each")
            figures = _measure_wakeup(publish, pause_s, samples)
            ratio = figures["after_pause"]["p50_us"] / max(figures["back_to_back"]["p50_us"], 1e-3)
            results.append({"step": "feed publish", "pause_us": pause_s * 1e6, **figures, "p50_ratio": ratio})
        pub.send_multipart([END_TOPIC, b""])
        out, _ = child.communicate(timeout=30)
    finally:
        stop_child(child)
        pub.close()
        ctx.term()
    delivered = int(out.split()[-1])
    if delivered != feed.seq:
        raise RuntimeError(f"the subscriber took {delivered} of the {feed.seq} messages published")
    return results, delivered


def _process_wakeup(samples: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """A one-byte pipe write to a reader process asleep in ``read``, after each pause and back to back.

    The reader must have taken every byte (raises otherwise), as the feed's subscriber must.
    """
    child = subprocess.Popen([sys.executable, "-m", "quantumtrader.bench.host", PIPE_READER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, **popen_kwargs())
    assert child.stdin is not None and child.stdout is not None
    fd = child.stdin.fileno()
    results = []
    try:
        try:
            os.write(fd, b"x")
            if child.stdout.readline() != READY:  # it has read the first byte: the next read is the one it sleeps in
                raise RuntimeError("the reader process did not start")
            for pause_s in PAUSES_S:
                log(f"host: wake a process (pipe write) after {pause_s * 1e6:.0f} µs and back to back, {samples} samples each")
                figures = _measure_wakeup(lambda i: os.write(fd, b"x"), pause_s, samples)
                ratio = figures["after_pause"]["p50_us"] / max(figures["back_to_back"]["p50_us"], 1e-3)
                results.append({"step": "wake a process", "pause_us": pause_s * 1e6, **figures, "p50_ratio": ratio})
        except OSError as exc:  # a broken pipe (EINVAL on Windows): the reader is gone
            raise RuntimeError(f"the reader process died: {exc!r}") from None
        child.stdin.close()  # the reader's end of input
        child.stdin = None  # so communicate() does not flush it
        out, _ = child.communicate(timeout=30)
    finally:
        stop_child(child)
    written = 1 + 2 * samples * len(PAUSES_S)
    took = int(out.split()[-1]) if out.split() else 0  # nothing printed: the reader died
    if took != written:
        raise RuntimeError(f"the reader took {took} of the {written} bytes written")
    return results


def run_host_bench(*, samples: int = 400, json_out: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every step after every pause, sleeping vs spinning; returns (and writes) the figures with the machine.

    No live progress bar: its redraw thread would run inside the measurement.
    A line per step instead (the whole run takes ~25 s at 400 samples).
    """
    if not 10 <= samples <= 10_000:
        raise ValueError("samples must be between 10 and 10000")
    buffer = bytearray(len(LINE) * 2 * samples)
    results = []
    with CpuPhase() as cpu, tempfile.TemporaryDirectory(prefix="qt-bench-host-") as tmp:
        fd = os.open(Path(tmp) / "journal.bin", APPEND_FLAGS, 0o600)
        try:
            steps: dict[str, Callable[[int], object]] = {
                "no-op call": lambda i: None,
                "1,200-byte copy": lambda i: buffer.__setitem__(slice(i * len(LINE), (i + 1) * len(LINE)), LINE),
                "1,200-byte os.write": lambda i: os.write(fd, LINE),
            }
            for pause_s in PAUSES_S:
                for name, step in steps.items():
                    log(f"host: {name} after {pause_s * 1e6:.0f} µs, {samples} samples sleeping and {samples} spinning")
                    figures = _measure(step, pause_s, samples)
                    ratio = figures["after_sleep"]["p50_us"] / max(figures["after_spin"]["p50_us"], 1e-3)
                    results.append({"step": name, "pause_us": pause_s * 1e6, **figures, "p50_ratio": ratio})
        finally:
            os.close(fd)
        wakeup, delivered = _feed_wakeup(samples, log)
        process = _process_wakeup(samples, log)
    rows = [
        (
            r["step"],
            f"{r['pause_us']:.0f} µs",
            f"{r['sleep_pause']['p50_us']:.0f}",
            f"{r['after_sleep']['p50_us']:.1f} / {r['after_sleep']['p99_us']:.1f}",
            f"{r['after_spin']['p50_us']:.1f} / {r['after_spin']['p99_us']:.1f}",
            f"x{r['p50_ratio']:.1f}",
        )
        for r in results
    ]
    log(table(rows, ("step", "pause", "slept p50 µs", "after sleep p50 / p99 µs", "after spin p50 / p99 µs", "sleep/spin p50")))
    wake_rows = [
        (
            r["step"],
            f"{r['pause_us']:.0f} µs",
            f"{r['after_pause']['p50_us']:.1f} / {r['after_pause']['p99_us']:.1f}",
            f"{r['back_to_back']['p50_us']:.1f} / {r['back_to_back']['p99_us']:.1f}",
            f"x{r['p50_ratio']:.1f}",
        )
        for r in wakeup + process
    ]
    log(table(wake_rows, ("step", "pause (spun)", "after pause p50 / p99 µs", "back to back p50 / p99 µs", "pause/back-to-back p50")))
    log(describe({"this run": cpu.shares}))
    result = {"scenario": "host", "samples": samples, "results": results, "feed_wakeup": wakeup, "feed_delivered": delivered, "process_wakeup": process, "cpu": cpu.shares, "machine": machine()}
    write_json(json_out, result)
    return result


def _subscriber(endpoint: str) -> int:
    """Take every feed message until the end topic; how many there were (the end excluded)."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, DaemonConfig().feed_hwm)
    sub.connect(endpoint)
    count = 0
    try:
        while True:
            if not sub.poll(60_000):  # the parent is gone: do not linger for ever
                return count
            if sub.recv_multipart()[0] == END_TOPIC:
                return count
            count += 1
    finally:
        sub.close(0)
        ctx.term()


def _pipe_reader() -> int:
    """Read standard input a byte at a time, each read a sleep until the next write, until it closes; how many bytes.
    Says READY after the first, so the parent's samples start with this process asleep in a read."""
    count = 0
    while os.read(0, 1):
        count += 1
        if count == 1:
            sys.stdout.buffer.write(READY)
            sys.stdout.buffer.flush()
    return count


if __name__ == "__main__":
    print(_pipe_reader() if sys.argv[1] == PIPE_READER else _subscriber(sys.argv[1]), flush=True)
