"""structlog, configured once per process.

Console rendering on a TTY, JSON lines otherwise (or as ``--log-format``
says). Levels are filtered by structlog's filtering bound logger, so a
disabled ``debug`` call is a bare ``return``. Nothing logs per tick: the tick
path counts, and the periodic status line reports the counts.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    """Set up structlog for this process. ``fmt``: auto, console or json."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        # sort_keys=False: fields in the order the code gives them (a status line reads ticks_per_s first, not
        # latest_signals={...}), as README's "What you see" shows them.
        structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)(), sort_keys=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
