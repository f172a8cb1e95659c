"""Real processes and sockets for tests: free ports, daemon and paper processes, a feed subscriber."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from quantumtrader.bench.procs import Endpoints, control, daemon_process, free_port, start, stop, wait_for, wait_ready
from quantumtrader.protocol import decode_feed

__all__ = ["Endpoints", "FakeClock", "FeedSubscriber", "event_frame", "inproc_daemon", "serving", "control", "daemon_process", "free_port", "shared_ticks", "start", "terminal_status", "stop", "wait_for", "wait_ready"]

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def inproc_daemon(data_dir: Path, **env: str) -> tuple[Any, Endpoints]:
    """The real ``build_daemon`` in this process, bound on free ports (quiet logging; ``env``: more QT_ settings)."""
    from quantumtrader.config import load_config
    from quantumtrader.daemon.app import build_daemon

    eps = Endpoints()
    return build_daemon(load_config(environ=eps.env(data_dir, QT_LOG__LEVEL="warning", **env))), eps


@contextlib.contextmanager
def serving(daemon: Any) -> Iterator[threading.Thread]:
    """Run an in-process daemon's loop on a thread for the block; stopped and joined after it."""
    loop = threading.Thread(target=daemon.run, name="daemon-loop", daemon=True)
    loop.start()
    try:
        yield loop
    finally:
        daemon.stop()
        loop.join(10)


def terminal_status(control_endpoint: str, name: str) -> dict[str, Any] | None:
    """The daemon's health entry of terminal ``name``, or None before it is known."""
    return next((t for t in control(control_endpoint)["health"]["terminals"] if t["terminal"] == name), None)


def events_push(endpoint: str) -> Any:
    """A PUSH socket to the daemon's events endpoint, as an EA has (linger 0); the caller closes it."""
    import zmq

    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    return push


def event_frame(terminal: str, fields: dict[str, Any]) -> bytes:
    """An EA event as it goes on the wire: v1, the terminal, the current time, then ``fields``."""
    import orjson

    from quantumtrader.protocol import now_msc

    return orjson.dumps({"v": 1, "terminal": terminal, "time_msc": now_msc(), **fields})


class FakeClock:
    """A monotonic clock the test moves by hand (``clock.now += seconds``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shared_ticks(name: str = "EURUSD.csv.gz") -> Path:
    """A file of ../shared/data/ticks; fails (never skips) when it is not there."""
    path = SHARED_DATA / "ticks" / name
    if not path.is_file():
        raise AssertionError(f"test data not found: looked for {path} (../shared/data beside the repo)")
    return path


class FeedSubscriber:
    """A SUB socket on the daemon's feed with an unbounded queue (the test must see every message)."""

    def __init__(self, endpoint: str, topics: tuple[bytes, ...] = (b"",)) -> None:
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.connect(endpoint)

    def wait_joined(self, timeout: float = 10.0) -> None:
        """Block until the first health message arrives: the subscription is in place (slow joiner)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(100):
                topic, _ = decode_feed(self.sock.recv_multipart())
                if topic == "health":
                    return
        raise AssertionError("no health message on the feed: subscriber never joined")

    def recv(self, timeout_ms: int) -> tuple[str, dict[str, Any]] | None:
        if not self.sock.poll(timeout_ms):
            return None
        return decode_feed(self.sock.recv_multipart())

    def close(self) -> None:
        self.sock.close(linger=0)
