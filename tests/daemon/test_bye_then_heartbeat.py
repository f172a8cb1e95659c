"""A terminal that said bye but keeps beating is alive: its heartbeat (which repeats the hello fields) registers it
again. Found by a read-only audit of the EAs (2026-12-03): a second copy of the EA on another chart of the same
terminal, whose command port was taken, failed to start and said bye under the working copy's id; the daemon then
counted the working terminal as gone for good (heartbeats re-registered only a terminal never met), so every order
to it was refused while its ticks kept flowing. The EA no longer says bye after a failed start (the harness test
shows it); this is the daemon's half, for any bye whose terminal is still there.
"""

from __future__ import annotations

from pathlib import Path

from support import event_frame, events_push, inproc_daemon, serving, terminal_status, wait_for

TERMINAL = "beating-1@Test"
HELLO = {"platform": "MT5", "command_endpoint": "tcp://127.0.0.1:1", "symbols": ["EURUSD"]}


def test_a_heartbeat_after_a_bye_brings_the_terminal_back(tmp_path: Path) -> None:
    d, eps = inproc_daemon(tmp_path / "data")
    push = events_push(eps.events)
    try:
        with serving(d):
            push.send(event_frame(TERMINAL, {"type": "hello", "seq": 0, **HELLO}))
            wait_for(lambda: (terminal_status(eps.control, TERMINAL) or {}).get("connected"), 10, "the hello")
            push.send(event_frame(TERMINAL, {"type": "bye", "seq": 0, "reason": "initialization failed"}))  # another copy's
            gone = wait_for(lambda: (s := terminal_status(eps.control, TERMINAL)) and s["gone"] and s, 10, "the bye")
            assert not gone["connected"]
            push.send(event_frame(TERMINAL, {"type": "heartbeat", "seq": 5, "dropped": 0, **HELLO}))
            back = wait_for(lambda: (s := terminal_status(eps.control, TERMINAL)) and s["connected"] and s, 10, "the heartbeat to bring it back")
            assert not back["gone"] and back["bye_reason"] == ""
    finally:
        push.close()
        d.close()
