"""Turn Ctrl-C / SIGTERM (and Ctrl-Break on Windows) into a stop flag.

Handlers only call ``stop()`` (which sets a flag): the loops notice within one
poll timeout and shut down in order. A second Ctrl-C while stopping raises
KeyboardInterrupt, so an operator can always get out.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType


def install_stop_handlers(stop: Callable[[], None]) -> None:
    requested = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal requested
        if requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested = True
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if hasattr(signal, "SIGBREAK"):  # Windows console Ctrl-Break
        signal.signal(signal.SIGBREAK, handler)
