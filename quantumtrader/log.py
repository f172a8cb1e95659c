"""structlog, configured once per process.

Console rendering on a TTY, JSON lines otherwise (or as ``--log-format``
says). Levels are filtered by structlog's filtering bound logger, so a
disabled ``debug`` call is a bare ``return``. Nothing logs per tick: the tick
path counts, and the periodic status line reports the counts.

The long-running processes (daemon, sidecar, paper terminal) also write
their lines to a file of their own in ``log.dir`` (default ``logs`` in the
data directory), always as JSON lines, rotated by size: a trader whose VPS
console scrolled away, or who started the daemon without one, still has
what it said. One file per process, because Windows cannot rename a file
another process has open: two writers of one file could never rotate it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: Characters kept in a log file's name (a paper terminal's id is ``login@server``).
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@-]+")


class LogFileError(Exception):
    """The log file cannot be opened: the CLI says so on stderr and the process logs there only."""


def safe_file_stem(name: str) -> str:
    """``name`` with anything a file system may refuse replaced, at most 100 characters: a file name's stem."""
    return _UNSAFE_NAME.sub("_", name)[:100]


def log_file_name(process: str) -> str:
    """``<process>.log`` with anything a file system may refuse replaced."""
    return safe_file_stem(process) + ".log"


#: After a rotation failed (Windows: another program has the file open without sharing its deletion, a tail
#: tool, an antivirus scan), the file is appended to and the rotation tried again this much later.
ROTATION_RETRY_S = 60.0

#: A rotated file's suffix: when it was rotated, UTC, to the microsecond: names of one length, which sort as
#: the rotations came.
_ROTATED = re.compile(r"\.\d{8}-\d{6}-\d{6}$")


class _QuietRotatingFile(logging.handlers.RotatingFileHandler):
    """stdlib's size rotation, except where its failures cost the history or a traceback per line.

    - Each rotation is one rename of the current file to a name of its own, ``daemon.log.20261205-103000-123456``
      (UTC, to the microsecond), and the oldest beyond ``keep`` are deleted after. The stdlib shifts ``.1``...``.N`` up first:
      on Windows a rename refused because another program holds a file (a tail tool, a viewer, an antivirus
      scan) lost one file per rotation, or every line's retry deleted the oldest while the current file
      was never rotated (a Windows audit and a review simulated both, 2026-12-05). Here a held old file
      only outlives its deletion until a later rotation.
    - The current file's rename refused: appended to, tried again ``ROTATION_RETRY_S`` later.
    - A failing write (a full disk) is said once on stderr, not as a traceback per line (logging's default).
    - ``keep`` 0 cuts the file and begins it afresh; the stdlib reopened it for appending, never cut it.
    """

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
        self._said: set[str] = set()
        self._retry_at = 0.0

    def _say_once(self, what: str, error: BaseException | None) -> None:
        if what in self._said:
            return
        self._said.add(what)
        try:
            sys.stderr.write(f"log file {self.baseFilename} cannot be {what} ({error}); {_AFTER[what]}\n")
        except (OSError, ValueError):
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        self._say_once("written", sys.exc_info()[1])

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802
        return time.monotonic() >= self._retry_at and bool(super().shouldRollover(record))

    def doRollover(self) -> None:  # noqa: N802
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        try:
            if self.backupCount:
                os.rename(self.baseFilename, self._rotated_name())  # rename, not replace: never over another file
            else:
                self.mode, mode = "w", self.mode  # cut: the one file begins afresh
                try:
                    self.stream = self._open()
                finally:
                    self.mode = mode
                return
        except OSError as exc:
            self._retry_at = time.monotonic() + ROTATION_RETRY_S
            self._say_once("rotated", exc)
            self.stream = self._open()
            return
        self.stream = self._open()
        self._delete_beyond_keep()

    def rotated_files(self) -> list[Path]:
        """This file's rotated ones, oldest first (their names sort by when they were rotated)."""
        base = Path(self.baseFilename)
        prefix = base.name + "."
        return sorted(p for p in base.parent.glob(prefix + "*") if _ROTATED.search(p.name))  # names of log_file_name's characters

    def _rotated_name(self) -> str:
        """A name that sorts after every rotated file before it: the clock set back (NTP, a VM restored) named the
        newest as if oldest, and it was the first deleted (a hunt, 2026-12-05)."""
        when = datetime.now(timezone.utc)
        earlier = self.rotated_files()
        if earlier:
            last = datetime.strptime(earlier[-1].name[-22:], "%Y%m%d-%H%M%S-%f").replace(tzinfo=timezone.utc)
            when = max(when, last + timedelta(microseconds=1))
        while os.path.exists(name := f"{self.baseFilename}.{when:%Y%m%d-%H%M%S-%f}"):
            when += timedelta(microseconds=1)
        return name

    def _delete_beyond_keep(self) -> None:
        for old in self.rotated_files()[: -self.backupCount]:
            try:
                old.unlink()
            except OSError:  # held open by another program: deleted at a later rotation
                pass


_AFTER = {
    "written": "lines go to stderr only",
    "rotated": f"it is appended to and the rotation tried again every {ROTATION_RETRY_S:.0f} s",
}


class _StreamAndFile:
    """structlog's logger when there is a log file: each event rendered for the stream and as JSON for the file."""

    def __init__(self, stream: Any, render_stream: Any, handler: _QuietRotatingFile) -> None:
        self._stream = stream
        self._render_stream = render_stream
        # JSON on the stream too (not a console): its line serves the file, rendered once
        self._render_file = None if isinstance(render_stream, structlog.processors.JSONRenderer) else structlog.processors.JSONRenderer()
        self._handler = handler
        self._lock = threading.Lock()

    def msg(self, **event: Any) -> None:
        line = self._render_stream(None, "", dict(event))  # renderers may pop keys: each gets its own copy
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # stderr gone (a closed console): the file still has it
                pass
        # handle(), not emit(): it takes the handler's lock, so two threads' lines never meet a rotation half done
        file_line = line if self._render_file is None else self._render_file(None, "", dict(event))
        self._handler.handle(logging.makeLogRecord({"msg": file_line, "args": None}))

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


def open_log_file(path: Path, rotate_mb: float, keep: int) -> _QuietRotatingFile:
    """The rotating file, its directory made. Raises :class:`LogFileError` naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _QuietRotatingFile(path, max(1, int(rotate_mb * 1_000_000)), keep)
    except OSError as exc:
        raise LogFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def configure_logging(fmt: str = "auto", level: str = "info", stream: Any = None, file: _QuietRotatingFile | None = None) -> None:
    """Set up structlog for this process. ``fmt``: auto, console or json; ``file``: from :func:`open_log_file`."""
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
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if file is None:
        processors.append(renderer)
        factory: Any = structlog.PrintLoggerFactory(file=stream)
    else:  # the last processor hands the event over as keywords; the logger renders it twice
        both = _StreamAndFile(stream, renderer, file)
        factory = lambda *args: both  # noqa: E731
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
