"""Busy polling after a batch (``daemon.busy_poll_us``): it catches the next event without sleeping, and an idle daemon sleeps."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import zmq

from quantumtrader.daemon.server import Daemon
from support import Endpoints, daemon_process, event_frame, inproc_daemon

TERMINAL = "spin-1@Test"


def _hello(seq: int = 0) -> bytes:
    return event_frame(TERMINAL, {"type": "hello", "seq": seq, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]})


def _tick(seq: int) -> bytes:
    return event_frame(TERMINAL, {"type": "tick", "seq": seq, "symbol": "EURUSD", "bid": 1.1 + seq / 100_000, "ask": 1.1002 + seq / 100_000, "volume": 1.0})


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, zmq.Socket]]:
    d, eps = inproc_daemon(tmp_path / "data")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(eps.events)
    try:
        yield d, push
    finally:
        push.close(linger=0)
        d.close()


def test_the_spin_returns_as_soon_as_an_event_arrives_and_gives_up_at_its_deadline(daemon: tuple[Daemon, zmq.Socket]) -> None:
    d, push = daemon
    started = time.monotonic()
    assert d._busy_poll(time.perf_counter_ns() + 50_000_000) is False  # nothing sent: spins out its 50 ms
    assert time.monotonic() - started >= 0.05

    timer = threading.Timer(0.1, lambda: push.send(_hello()))
    started = time.monotonic()
    timer.start()
    try:
        found = d._busy_poll(time.perf_counter_ns() + 5_000_000_000)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert found is True
    assert 0.1 <= elapsed < 2.0  # the event ended the spin, not the 5 s deadline
    assert d.drain_events() == 1  # and it is there to drain, not consumed by the check


def test_the_spin_leaves_the_gil_to_the_store_writer(daemon: tuple[Daemon, zmq.Socket]) -> None:
    """SQLite gives up the GIL for every row; a spin that never let go of it left such a thread ~1 % of its rate."""
    d, _ = daemon
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE t (body TEXT)")

    def rows_inserted_while(hold: Callable[[], object]) -> int:
        inserted = [0]
        stop = threading.Event()

        def writer() -> None:
            while not stop.is_set():
                conn.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 10)
                inserted[0] += 10

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            hold()
        finally:
            stop.set()
            thread.join()
        return inserted[0]

    sleeping = rows_inserted_while(lambda: time.sleep(0.5))
    spinning = rows_inserted_while(lambda: d._busy_poll(time.perf_counter_ns() + 500_000_000))
    conn.close()
    assert spinning > sleeping * 0.05, f"{spinning} rows while the loop spun, {sleeping} while it slept"


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _cpu_for_ten_ticks(push: zmq.Socket, process: psutil.Process) -> float:
    """CPU seconds the daemon spends over ten ticks sent 0.2 s apart."""
    before = _cpu_s(process)
    for seq in range(1, 11):
        push.send(_tick(seq))
        time.sleep(0.2)
    return _cpu_s(process) - before


def test_the_daemon_spins_after_each_batch_and_sleeps_when_no_event_comes(tmp_path: Path) -> None:
    """With a 100 ms spin (the maximum, to be measurable), ten ticks cost ~1 s of CPU; 1.5 s idle, almost none."""
    eps = Endpoints()
    with daemon_process(eps, tmp_path, QT_DAEMON__BUSY_POLL_US="100000") as proc:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.connect(eps.events)
        try:
            push.send(_hello())
            time.sleep(1.0)  # the hello's own spin is over
            process = psutil.Process(proc.pid)

            before = _cpu_s(process)
            time.sleep(1.5)
            idle = _cpu_s(process) - before

            ticking = _cpu_for_ten_ticks(push, process)
        finally:
            push.close(linger=0)
    assert idle < 0.15, f"an idle daemon used {idle:.3f} s of CPU in 1.5 s: it spins without events"
    # ~1 s expected; a busy machine (or a host stealing a third of it) takes some: judged against the idle figure
    assert ticking > max(0.2, 5 * idle), f"ten ticks cost only {ticking:.3f} s of CPU ({idle:.3f} idle): the loop did not spin after them"


def test_busy_polling_is_off_on_one_cpu() -> None:
    from quantumtrader.daemon.server import busy_poll_us

    assert busy_poll_us(200, 2) == 200 and busy_poll_us(0, 1) == 0
    assert busy_poll_us(200, 1) == 0  # the spin would hold the one CPU the I/O thread needs to deliver the next tick


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins the daemon with Linux's affinity call")
def test_a_daemon_allowed_one_cpu_does_not_spin(tmp_path: Path) -> None:
    """The same ten ticks as above, the daemon pinned to one CPU (its affinity inherited): no spin after them."""
    eps = Endpoints()
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mine)})
    try:
        context = daemon_process(eps, tmp_path, QT_DAEMON__BUSY_POLL_US="100000")
        proc = context.__enter__()  # started while this process is pinned: the daemon inherits it
    finally:
        os.sched_setaffinity(0, mine)
    try:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.connect(eps.events)
        try:
            push.send(_hello())
            time.sleep(0.5)
            process = psutil.Process(proc.pid)
            ticking = _cpu_for_ten_ticks(push, process)
        finally:
            push.close(linger=0)
    finally:
        context.__exit__(None, None, None)
    assert ticking < 0.3, f"ten ticks cost {ticking:.3f} s of CPU on one CPU: the loop spun after them (~1 s)"
    log = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    assert log.count("busy polling off: this process may run on one CPU only") == 1, log[-2000:]
