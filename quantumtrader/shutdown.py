"""Turn Ctrl-C / SIGTERM (and Ctrl-Break on Windows), or the parent's end, into a stop flag.

Handlers only call ``stop()`` (which sets a flag): the loops notice within one
poll timeout and shut down in order. A second Ctrl-C while stopping raises
KeyboardInterrupt, so an operator can always get out; it says so on stderr
first (:data:`CUT_SHORT_LINE`), else all that showed was an exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

#: Set by a parent that hands its child the read end of a pipe as stdin and never writes to it (the
#: supervisor, for ``qt-daemon run``'s children): see :func:`stop_with_parent`.
PARENT_PIPE_ENV = "QUANTUMTRADER_PARENT_PIPE"


_first_signal: str | None = None
#: What a second Ctrl-C during a stop writes to stderr before it ends the process.
CUT_SHORT_LINE = (
    b"second Ctrl-C: the orderly stop is cut short; what it had not done yet (an order's reply, the last model"
    b" save, the signals' move to SQLite) is left to the next start's recovery\n"
)


def stop_signal() -> str | None:
    """The name of the first signal that asked this process to stop, if one did (for the stop's log line: a soak
    saw a daemon stop 3 s after it started with nothing in its log to say why). Not logged in the handler itself:
    it runs between two bytecodes of the main thread, which may be holding the log's lock."""
    return _first_signal


def install_stop_handlers(stop: Callable[[], None]) -> None:
    requested = False

    def handler(signum: int, frame: FrameType | None) -> None:
        global _first_signal
        nonlocal requested
        if requested and signum == signal.SIGINT:
            # Said before the way out, or the operator sees only an exit code; os.write, not the log: this
            # runs between two bytecodes of the main thread, which may hold the log's lock.
            try:
                os.write(2, CUT_SHORT_LINE)
            except OSError:  # no stderr (pythonw), or a pipe whose reader the first Ctrl-C ended (| tee): an
                pass  # OSError raised here would be caught by the stop's own handlers, and no Ctrl-C would get out
            raise KeyboardInterrupt
        requested = True
        if _first_signal is None:
            _first_signal = signal.Signals(signum).name
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if hasattr(signal, "SIGBREAK"):  # Windows console Ctrl-Break
        signal.signal(signal.SIGBREAK, handler)


def stop_with_parent(stop: Callable[[], None]) -> bool:
    """Call ``stop()`` once the parent that set :data:`PARENT_PIPE_ENV` is gone, however it went.

    Why: a parent killed outright (kill -9; on Windows Stop-Process, ``taskkill /F``, a scheduled task ended,
    all TerminateProcess, which runs no handler) left its sidecar and paper terminal running and holding
    their ports, so the next ``qt-daemon run``'s children could not bind and were restarted with backoff
    for ever. The OS closes a dead process's handles, so the pipe's read end then sees end-of-file: on
    Linux and Windows alike, with no polling and no platform code. Returns whether it watches.
    """
    if os.environ.get(PARENT_PIPE_ENV) != "1" or sys.stdin is None:
        return False
    try:
        fd = sys.stdin.fileno()
    except (OSError, ValueError):
        return False

    def watch() -> None:
        # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the buffered reader
        # holds its lock, and the interpreter's exit then aborts ("could not acquire lock for <stdin> at
        # interpreter shutdown"), which turned the paper terminal's exit 2 (bad input) into a crash.
        try:
            while os.read(fd, 4096):  # the parent never writes: this returns b"" at its end
                pass
        except OSError:  # a broken pipe is the same news
            pass
        from quantumtrader.log import get_logger

        get_logger("quantumtrader.shutdown").warning("parent process gone; stopping")
        stop()

    threading.Thread(target=watch, name="qt-parent-watch", daemon=True).start()
    return True
