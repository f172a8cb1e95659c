"""One wake-up of the loop, in process over real sockets: what a drain takes and in which order it publishes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from quantumtrader.daemon.server import Daemon
from quantumtrader.protocol import decode_feed, now_msc
from support import event_frame, inproc_daemon

TERMINAL = "drain-1@Test"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, zmq.Socket, zmq.Socket]]:
    d, eps = inproc_daemon(tmp_path / "data")
    ctx = zmq.Context.instance()
    push, sub = ctx.socket(zmq.PUSH), ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(eps.feed)
    push.connect(eps.events)
    try:
        _send(push, {"type": "hello", "seq": 0, "platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD", "GBPUSD"]})
        _wait_drained(d)
        time.sleep(1.0)  # the SUB's subscription reaches the PUB (ms on loopback; a loaded host can stall a process)
        yield d, push, sub
    finally:
        push.close(linger=0)
        sub.close(linger=0)
        d.close()


def _send(push: zmq.Socket, fields: dict) -> None:
    push.send(event_frame(TERMINAL, fields))


def _tick(seq: int, symbol: str, bid: float) -> dict:
    return {"type": "tick", "seq": seq, "symbol": symbol, "bid": bid, "ask": bid + 0.0002, "volume": 1.0}


def _wait_drained(d: Daemon) -> int:
    """One drain, once the events just sent have had time to arrive (loopback, a few small frames: well under 0.5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and d.events.poll(50) == 0:
        pass
    time.sleep(0.5)
    return d.drain_events()


def _feed(sub: zmq.Socket) -> list[tuple[str, dict]]:
    out = []
    while sub.poll(300):
        out.append(decode_feed(sub.recv_multipart()))
    return out


def test_one_drain_takes_every_waiting_event_one_or_many(daemon: tuple[Daemon, zmq.Socket, zmq.Socket]) -> None:
    d, push, sub = daemon
    for seq in range(1, 8):
        _send(push, _tick(seq, "EURUSD", 1.1 + seq / 10_000))
    assert _wait_drained(d) == 7
    _send(push, _tick(8, "EURUSD", 1.1009))
    assert _wait_drained(d) == 1
    assert d.drain_events() == 0  # nothing waiting: an empty drain, no error
    feed = _feed(sub)
    prices = [env["data"]["bid"] for topic, env in feed if topic.startswith("price.")]
    assert prices == [1.1 + seq / 10_000 for seq in range(1, 8)] + [1.1009]
    assert {env.get("v") for _, env in feed} == {1}  # every daemon message carries "v": 1, the feed's too


def test_a_batch_publishes_in_arrival_order_each_price_before_the_next_event(daemon: tuple[Daemon, zmq.Socket, zmq.Socket]) -> None:
    d, push, sub = daemon
    position = {"ticket": 7, "symbol": "EURUSD", "side": "buy", "lots": 0.1, "open_price": 1.1, "sl": 0.0, "tp": 0.0, "profit": 0.0, "swap": 0.0, "commission": 0.0, "magic": 0, "comment": "", "open_time_msc": now_msc()}
    _send(push, _tick(1, "EURUSD", 1.1001))
    _send(push, {"type": "positions", "seq": 2, "positions": [position]})
    _send(push, _tick(3, "GBPUSD", 1.2701))
    assert _wait_drained(d) == 3  # one batch
    published = [topic for topic, _ in _feed(sub) if topic.startswith(("price.", "position"))]
    assert published == ["price.EURUSD", "position", "price.GBPUSD"]  # the previous loop published the position first
