"""The control client's wait for a reply, over real sockets (quantumtrader/control_client.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
import zmq

from quantumtrader.control_client import POLL_SLICE_MS, ControlClient, ControlTimeout
from support import free_port


class _RecordingSocket(zmq.Socket):  # type: ignore[type-arg]
    """A real socket that notes the timeout of every poll."""

    polls: list[int | None] = []

    def poll(self, timeout: int | None = None, flags: int = zmq.POLLIN) -> int:
        self.polls.append(timeout)
        return super().poll(timeout, flags)


class _RecordingContext(zmq.Context):  # type: ignore[type-arg]
    _socket_class = _RecordingSocket


@pytest.fixture
def context() -> Any:
    _RecordingSocket.polls = []
    ctx = _RecordingContext()
    yield ctx
    ctx.destroy(linger=0)


def test_a_silent_daemon_is_waited_for_in_short_polls_up_to_the_timeout(context: Any) -> None:
    """Found by a review (2026-12-05): on Windows Ctrl-C does not interrupt pyzmq's poll, and the wait was one
    poll of the whole timeout: `qt-daemon trade` ignored Ctrl-C for up to 15 s x 3 tries. Python can raise the
    KeyboardInterrupt only between polls, so none may be longer than POLL_SLICE_MS. (The Windows behaviour
    itself is not reproduced here: on Linux a signal interrupts the poll anyway.)"""
    silent = context.socket(zmq.ROUTER)
    silent.bind(f"tcp://127.0.0.1:{free_port()}")
    client = ControlClient(silent.getsockopt_string(zmq.LAST_ENDPOINT), timeout_ms=1000, retries=0, context=context)
    began = time.monotonic()
    with client, pytest.raises(ControlTimeout):
        client.request("status")
    waited = time.monotonic() - began
    client_polls = _RecordingSocket.polls
    # Not "five polls within 1.5 s": a test process held up 0.25 s (CI's two workers on two cores) polled fewer
    # slices and woke later (a helper's hunt, 8 of 9 failed so). What is asserted is what Ctrl-C needs: every
    # poll one short slice, several of them, none longer, and the whole timeout waited out.
    assert 1.0 <= waited < 5.0, waited
    assert len(client_polls) >= 2 and all(0 < t <= POLL_SLICE_MS for t in client_polls), client_polls
    # and no more than the timeout asked for in all (a held-up process asks for less, never more; +1 ms a poll for rounding)
    assert sum(client_polls) <= 1000 + len(client_polls), client_polls


def test_a_reply_that_comes_after_several_slices_is_taken(context: Any) -> None:
    """The slices add up to one wait: a reply 0.7 s late (several slices) is the request's answer."""
    daemon = context.socket(zmq.ROUTER)
    daemon.bind(f"tcp://127.0.0.1:{free_port()}")

    def answer_late() -> None:
        if daemon.poll(5000):
            frames = daemon.recv_multipart()
            time.sleep(0.7)
            request = orjson.loads(frames[-1])
            daemon.send_multipart([*frames[:-1], orjson.dumps({"v": 1, "type": "reply", "id": request["id"], "ok": True})])

    server = threading.Thread(target=answer_late)
    server.start()
    try:
        with ControlClient(daemon.getsockopt_string(zmq.LAST_ENDPOINT), timeout_ms=3000, retries=0, context=context) as client:
            assert client.request("status")["ok"] is True
    finally:
        server.join(10)
