"""A full disk under the signal journal, in process over real sockets: signals still go out, the failure is
counted for every batch but logged once per interval, and the journal does not start a file per batch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import zmq

from quantumtrader.daemon import pipeline as pipeline_module
from quantumtrader.daemon.pipeline import PipelineStage
from quantumtrader.protocol import decode_feed
from quantumtrader.store import journal as journal_module
from quantumtrader.store.journal import journal_files
from support import event_frame, inproc_daemon
from tests.store.test_journal import _full_disk as full_disk

TERMINAL = "disk-1@Test"


class _Log:
    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.errors.append({"event": event, **fields})

    def __getattr__(self, name: str) -> Any:  # info, warning: not what this test is about
        return lambda *args, **kwargs: None


def _send(push: zmq.Socket, fields: dict) -> None:
    push.send(event_frame(TERMINAL, fields))


def test_signals_go_out_and_the_failure_is_logged_once_per_interval(tmp_path: Path, monkeypatch) -> None:
    # before the daemon starts: its store asks the journal's helper thread for the first file at once
    monkeypatch.setattr(journal_module, "_zero_fill", full_disk)  # a journal file cannot be given its blocks
    d, eps = inproc_daemon(tmp_path / "data", QT_SIGNALS__INTERVAL_S="0.01", QT_DAEMON__REJECT_LOG_INTERVAL_S="0.5")
    stage = next(hook.__self__ for hook in d._tick_hooks if isinstance(getattr(hook, "__self__", None), PipelineStage))
    ctx = zmq.Context.instance()
    push, sub = ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"signal.")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(eps.feed)
    push.connect(eps.events)
    fake_log = _Log()
    monkeypatch.setattr(pipeline_module, "log", fake_log)
    try:
        _send(push, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]})
        time.sleep(1.0)  # the SUB's subscription reaches the PUB (ms on loopback; a loaded host can stall a process)
        d.drain_events()
        started = time.monotonic()
        for seq in range(1, 61):
            _send(push, {"type": "tick", "seq": seq, "symbol": "EURUSD", "bid": 1.1 + seq / 10_000, "ask": 1.1002 + seq / 10_000, "volume": 1.0})
            deadline = time.monotonic() + 5
            while d.drain_events() == 0 and time.monotonic() < deadline:
                time.sleep(0.001)
            stage.on_pass(time.monotonic())  # as the loop does after each batch: the journal finds failures there too
            time.sleep(0.02)  # past the 10 ms signal interval: every tick emits
        elapsed = time.monotonic() - started
        published = 0
        while sub.poll(300):
            topic, _ = decode_feed(sub.recv_multipart())
            published += topic.startswith("signal.")
        files = journal_files(stage.store.path)
    finally:
        push.close(linger=0)
        sub.close(linger=0)
        d.close()

    signals = stage.counters["signals"]
    assert signals >= 30, signals  # a signal per tick, give or take the model's own timing
    assert published == signals  # the full disk silenced none of them
    failed, paused = stage.counters["store_errors"], stage.counters["store_journal_paused"]
    assert failed + paused == signals  # every emitting batch: a failed write, or refused during the pause after one
    assert 1 <= failed <= 1 + elapsed / journal_module.RETRY_AFTER_FAILURE_S  # the disk is tried once a second
    assert files == [], files  # no file per batch, none left behind
    assert 1 <= len(fake_log.errors) <= 1 + elapsed / 0.5, fake_log.errors  # not one line per batch
    assert sum(e["count_since_last_log"] for e in fake_log.errors) <= signals
    assert all("No space left on device" in e["error"] for e in fake_log.errors)  # the cause, also while paused
    assert stage.store_journal_hist.summary()["count"] == 0  # refused writes are not journal latencies
