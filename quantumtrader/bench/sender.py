"""An EA-like sender process for benchmarks: hello, then ticks at a rate, each stamped.

Each tick carries ``sent_ns`` (the sender's ``time.perf_counter_ns()``), so a
receiver can compute tick -> feed latency per tick and count loss. The ticks
are encoded before the clock starts (at a rate, up to ``PRE_ENCODED_MAX``,
the stamp spliced in at the send); at rate 0 (as fast as possible) they carry
no ``sent_ns`` (the send times go to OUT.npy only). Tick ``i`` has ``time_msc`` =
``base_msc + i + 1`` (``base_msc`` is printed at the end): unique, so a price
update or a signal (which carry their tick's time_msc) map back to the tick,
and each symbol's market clock advances ``n_symbols`` ms a tick. The volume is
the data's (the tick index stood there once and fed the volume_rate feature
a ramp). ``base_msc`` lies far enough back that the run's last tick is still
an hour in the past (:func:`base_time_msc`).

Why one clock works across processes: ``time.perf_counter_ns()`` is
CLOCK_MONOTONIC on Linux and QueryPerformanceCounter on Windows; both are
system-wide clocks, so two processes on one host read the same timeline.
Not ``time.monotonic_ns()``: on Linux the same clock, but before Python 3.13
on Windows it is GetTickCount64, which moves in ~15.6 ms steps (every stage
of the daemon would read 0 or 15.6 ms). The daemon, the sidecar and the
benches all stamp with ``perf_counter_ns``.

Usage: python -m quantumtrader.bench.sender EVENTS N_TICKS N_SYMBOLS RATE OUT.npy [--csv FILE | --series FILE.npy]

``--series``: the rows of a tick file as :func:`file_series` gives them, saved
with ``np.save`` by the bench once per run; parsing the real EURUSD file took
each sender ~2.5 s of start-up, and a run starts eight or more.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import orjson
import zmq

TERMINAL = "bench-sender@QuantumTrader"
#: Most ticks a paced run encodes before its clock starts (~0.2 KB each in memory).
PRE_ENCODED_MAX = 1_000_000
#: Most ticks one sender run may carry: the bench's receiver holds 24 bytes a tick and the sender ~40 before any
#: encoding (--rate 1000000 --duration 86400 asked numpy for 644 GiB and died with a traceback, a review).
MAX_RUN_TICKS = 100_000_000


def base_time_msc(n_ticks: int, now_msc: int) -> int:
    """The ``time_msc`` before tick 0: an hour and the run's ``n_ticks`` ms in the past.

    Tick i carries ``base + i + 1`` (one ms of market time a tick, whatever the
    rate) and the daemon refuses a time more than a day ahead of its clock: with
    the base an hour back, every tick beyond ~89 million of one run was refused as
    bad_time (a review, 2026-12-06). Going back by the run's own length keeps every
    tick in the past; the daemon sets no lower bound but 2000-01-01."""
    return now_msc - 3_600_000 - n_ticks


def symbols(n: int) -> list[str]:
    return [f"SYM{i:03d}" for i in range(n)]


def file_series(csv: Path) -> np.ndarray:
    """A tick file's (bid, ask, volume) rows, [n, 3], crossed quotes left out."""
    from quantumtrader.paper.ticks import read_csv_ticks

    return np.array([(t.bid, t.ask, t.volume) for t in read_csv_ticks(csv) if t.ask >= t.bid])


def prices(n_ticks: int, n_symbols: int, csv: Path | np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bid/ask/volume of tick i, which belongs to symbol ``i % n_symbols``: a series of its own per symbol.

    Each symbol replays the CSV from its own starting point (cycled), or walks
    its own seeded random walk. One series dealt round-robin to all symbols
    would make 50 copies of one market a tick apart, whose predictions flip
    together: bursts of simultaneous signals no set of real symbols produces.
    """
    per_symbol = -(-n_ticks // n_symbols)
    if csv is not None:
        series = csv if isinstance(csv, np.ndarray) else file_series(csv)
        starts = np.arange(n_symbols) * len(series) // n_symbols
        rows = (starts[:, None] + np.arange(per_symbol)[None, :]) % len(series)  # [symbol, k]
        quotes = series[rows.T.reshape(-1)[:n_ticks]]  # tick i = symbol i % n, its (i // n)-th quote
        return quotes[:, 0], quotes[:, 1], quotes[:, 2]
    rng = np.random.default_rng(7)
    mid = 1.1 + rng.random(n_symbols)[None, :] + np.cumsum(rng.normal(0, 3e-5, (per_symbol, n_symbols)), axis=0)
    half = 0.00005 + rng.random((per_symbol, n_symbols)) * 0.00005
    mid, half = mid.reshape(-1)[:n_ticks], half.reshape(-1)[:n_ticks]
    return np.round(mid - half, 5), np.round(mid + half, 5), np.ones(n_ticks)


def main(argv: list[str]) -> None:
    endpoint, n_ticks, n_symbols, rate, out = argv[0], int(argv[1]), int(argv[2]), float(argv[3]), Path(argv[4])
    source: Path | np.ndarray | None = None
    if len(argv) > 6 and argv[5] == "--csv":
        source = Path(argv[6])
    elif len(argv) > 6 and argv[5] == "--series":
        source = np.load(argv[6])
    names = symbols(n_symbols)
    bids, asks, volumes = prices(n_ticks, n_symbols, source)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    push.setsockopt(zmq.LINGER, 60_000)
    push.connect(endpoint)
    now_msc = int(time.time() * 1000)
    base_msc = base_time_msc(n_ticks, now_msc)
    push.send(orjson.dumps({"v": 1, "type": "hello", "terminal": TERMINAL, "seq": 0, "platform": "BENCH", "command_endpoint": "tcp://127.0.0.1:1", "symbols": names, "time_msc": now_msc}))
    time.sleep(0.2)
    sent_ns = np.zeros(n_ticks, dtype=np.int64)

    def tick(i: int) -> dict[str, object]:
        return {"v": 1, "type": "tick", "terminal": TERMINAL, "seq": i + 1, "symbol": names[i % n_symbols], "bid": float(bids[i]), "ask": float(asks[i]), "time_msc": base_msc + i + 1, "volume": float(volumes[i])}

    interval_ns = int(1e9 / rate) if rate > 0 else 0
    dumps = orjson.dumps
    send = push.send
    clock = time.perf_counter_ns
    if not interval_ns:
        # As fast as possible: the ticks are encoded before the clock starts and
        # carry no sent_ns, so the sender's share of the 2 cores is the sends
        # alone and the run measures the daemon, not the load generator.
        encoded = [dumps(tick(i)) for i in range(n_ticks)]
        started = _starting()
        for i, message in enumerate(encoded):
            sent_ns[i] = clock()
            send(message)
        _finish(push, ctx, out, sent_ns, n_ticks, base_msc, started, 0)
        return
    # At a rate too the ticks are encoded first, up to PRE_ENCODED_MAX of them
    # (~0.2 KB each): the stamp, taken just before the send, is spliced in as
    # the object's last field, exactly what dumps of the dict with it gives.
    # Longer runs encode each tick as it goes (more of a core; the stamp is
    # taken after the encoding, so it is not counted as latency).
    heads = [dumps(tick(i))[:-1] for i in range(n_ticks)] if n_ticks <= PRE_ENCODED_MAX else None
    started = _starting()
    start = started[0]
    for i in range(n_ticks):
        # Sleep until due, never spin: a spinning sender would take one of the
        # machine's two cores from the processes being measured. Ticks due
        # within the same ~ms go out as a burst, as real ticks often do.
        due = start + i * interval_ns
        now = clock()
        if due > now:
            time.sleep((due - now) / 1e9)
        head = heads[i] if heads is not None else dumps(tick(i))[:-1]
        stamp = clock()
        sent_ns[i] = stamp
        send(b'%b,"sent_ns":%d}' % (head, stamp))
    _finish(push, ctx, out, sent_ns, n_ticks, base_msc, started, interval_ns)


def _starting() -> tuple[int, float]:
    """First line on stdout: sending starts now (the bench opens its CPU window here). Returns the start
    (monotonic ns, process CPU seconds)."""
    sys.stdout.write('{"sending": true}\n')
    sys.stdout.flush()
    return time.perf_counter_ns(), time.process_time()


def _finish(
    push: zmq.Socket[bytes], ctx: zmq.Context[zmq.Socket[bytes]], out: Path, sent_ns: np.ndarray, n_ticks: int, base_msc: int, started: tuple[int, float], interval_ns: int
) -> None:
    """Summary line: seconds sending and the sender's own CPU time meanwhile (all its threads, ZeroMQ's I/O
    thread included), both taken before the socket's linger; for a paced run also its schedule (``start_ns``,
    ``interval_ns``: tick i was due at start_ns + i * interval_ns), so the bench can measure from when a tick
    was due, not only from when a late sender got round to stamping it (coordinated omission)."""
    elapsed, cpu_s = (time.perf_counter_ns() - started[0]) / 1e9, time.process_time() - started[1]
    push.close()  # lingers until every tick is on the wire
    ctx.term()
    np.save(out, sent_ns)
    summary = {"ticks": n_ticks, "send_s": elapsed, "base_msc": base_msc, "cpu_s": cpu_s, "start_ns": started[0], "interval_ns": interval_ns}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
