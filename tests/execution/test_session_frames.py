"""A command session over a real REQ/REP pair: a reply in two frames is refused and the session stays usable.

Before, the session read one frame; the REQ socket, with a frame left unread,
refused the next send (EFSM) and the error went up into the daemon's loop.
"""

from __future__ import annotations

import time

import orjson
import zmq

from quantumtrader.execution.sessions import CommandSession
from quantumtrader.protocol import reply_ok, snapshot_command


def test_a_reply_in_two_frames_is_refused_and_the_queued_command_still_goes_out() -> None:
    ctx = zmq.Context.instance()
    ea = ctx.socket(zmq.REP)
    ea.setsockopt(zmq.LINGER, 0)
    port = ea.bind_to_random_port("tcp://127.0.0.1")
    watched: dict[zmq.Socket, object] = {}
    rejects: list[str] = []
    done: list[tuple[str, dict | None]] = []
    session = CommandSession(
        "frames-1@Test",
        f"tcp://127.0.0.1:{port}",
        context=ctx,
        timeout_ms=2000,  # a retry must not race a slow reply on a loaded machine
        retries=2,
        queue_max=10,
        watch=lambda sock, callback: watched.__setitem__(sock, callback),
        unwatch=lambda sock: watched.pop(sock, None),
        on_reject=lambda reason, detail: rejects.append(reason),
    )
    try:
        assert session.submit(snapshot_command("AAAA1"), lambda reply, attempts, rtt: done.append(("A", reply)))
        assert session.submit(snapshot_command("BBBB1"), lambda reply, attempts, rtt: done.append(("B", reply)))
        answered: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(done) < 2:
            if ea.poll(20):
                command = orjson.loads(ea.recv())
                answered.append(command["id"])
                reply = orjson.dumps(reply_ok(command["id"]))
                if answered.count("AAAA1") == 1 and command["id"] == "AAAA1":
                    ea.send_multipart([reply, b"trailing frame"])  # the broken answer, once
                else:
                    ea.send(reply)
            for sock, callback in list(watched.items()):
                if sock.poll(0):
                    callback()  # type: ignore[operator]
            session.check(time.monotonic())
        assert rejects == ["bad_type"], rejects
        assert [name for name, _ in done] == ["A", "B"], done
        assert all(reply is not None and reply["ok"] for _, reply in done), done
        assert answered.count("AAAA1") >= 2 and answered[-1] == "BBBB1", answered  # A retried after the refusal, then B
    finally:
        session.close()
        ea.close()
