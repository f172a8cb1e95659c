"""Child processes that can be asked to stop, on Linux and on Windows alike.

Why: on Windows ``Popen.send_signal`` takes only SIGTERM (a hard
TerminateProcess, no clean-up), CTRL_C_EVENT and CTRL_BREAK_EVENT; SIGINT
raises ValueError. A console control event reaches every process of a
process group, so each child is started in a group of its own and asked
with Ctrl-Break, which :mod:`quantumtrader.shutdown` turns into the same
orderly stop as SIGINT or SIGTERM on Linux. The supervisor (``qt-daemon
run``'s children) and the benchmarks' processes both start and stop
children this way.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any


def popen_kwargs() -> dict[str, Any]:
    """What ``subprocess.Popen`` needs for :func:`ask_to_stop` to reach this child alone."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {}


def ask_to_stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """``sig`` on POSIX, Ctrl-Break on Windows; killed when there is no console to send the break through."""
    try:
        if sys.platform == "win32":
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            proc.send_signal(sig)
    except OSError:  # pythonw or a service on Windows (no console), or it exited meanwhile
        if proc.poll() is None:
            proc.kill()


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout_s: float = 15.0, kill_wait_s: float = 5.0) -> bool:
    """Ask ``proc`` to stop (:func:`ask_to_stop`), wait ``timeout_s``, kill it if it has not stopped.

    Returns False when it had to be killed: the caller says what that means (the supervisor logs it,
    the benchmarks and tests treat a stop that hangs as a bug).
    """
    if proc.poll() is not None:
        return True
    ask_to_stop(proc, sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(kill_wait_s)
        return False
    return True
