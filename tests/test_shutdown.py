"""The stop handlers in a real process: the first Ctrl-C asks for an orderly stop, a second cuts it short and says so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from quantumtrader.shutdown import CUT_SHORT_LINE

#: A process whose stop takes long (as a daemon's does with an order in flight): stop() only sets the flag.
SLOW_STOP = """
import sys, time
from quantumtrader.shutdown import install_stop_handlers
asked = []
install_stop_handlers(lambda: asked.append(1))
print("ready", flush=True)
while not asked:
    time.sleep(0.01)
print("stopping", flush=True)
while True:  # a stop's work guards itself against failures, as the daemon's shutdown hooks do
    try:
        time.sleep(60)
        break
    except Exception as exc:
        print("swallowed", repr(exc), flush=True)
print("stopped", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child; Windows has no such signal to send")
def test_a_second_ctrl_c_cuts_the_stop_short_and_says_so() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == b"stopping\n"  # the first one: an orderly stop begins, nothing said
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert time.monotonic() - started < 30 and b"stopped" not in out
    assert proc.returncode != 0
    assert err.startswith(CUT_SHORT_LINE), err  # the line comes before the way out (KeyboardInterrupt)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child; Windows has no such signal to send")
def test_a_second_ctrl_c_gets_out_when_stderr_is_gone() -> None:
    """The review of the change: with stderr a pipe whose reader the first Ctrl-C ended (`qt-daemon run 2>&1 | tee`),
    the line's write raised BrokenPipeError, which the stop's own guards caught: no Ctrl-C got out any more."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == b"stopping\n"
        proc.stderr.close()  # the reader of its stderr is gone
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert b"swallowed" not in out and b"stopped" not in out and proc.returncode != 0, out
