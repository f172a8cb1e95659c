"""The signal journal: an append-only file that makes a signal durable before it is published.

The durability rule (every signal a subscriber saw is in the store after a
kill -9, exactly once) used to be kept by a SQLite commit on the loop's
thread before each publication: ~80 µs per emitting batch (p99 ~270 µs),
most of the tick -> signal latency. A write-ahead journal keeps the same
rule for the price of one ``write`` system call (a few µs):

1. the loop appends the batch's store rows to the open journal file, one
   JSON array per line (a plaintext signal embedded as the JSON object the
   daemon serialized once for the feed too), in one ``os.write`` (in the OS page cache when it
   returns: it survives the process, like a WAL commit with
   ``synchronous=NORMAL``, and like it is lost only to a power loss or an OS
   crash);
2. then it publishes, and hands the same rows to the writer thread, which
   inserts them into SQLite moments later (readers see them from there);
3. every ``save_interval_s`` the loop starts a new file and queues the old
   one for *retirement*: the writer checks that SQLite holds every id written
   to it (one indexed count), inserts the file's rows if not (``INSERT OR
   IGNORE`` on the signal id, so rows of a job dropped from a full queue or a
   failed insert are not lost), commits, and only then deletes the file;
4. at start, before anything is published, files left by a process that
   died are replayed into SQLite the same way, then deleted.

A line cut short (the process died inside the write, which Linux does not
do for a regular file but another OS might) or damaged is skipped and
counted; the rest of the file is still read.
"""

from __future__ import annotations

import glob
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.log import get_logger
from quantumtrader.store.signals import insert_rows

log = get_logger("quantumtrader.store")

Row = tuple[Any, ...]
#: A closed journal file and the ids of the signals written to it (None: not known, read the file).
Closed = tuple[Path, "list[str] | None"]
#: os.O_BINARY exists on Windows only: without it Windows would translate newlines.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


def _number(path: Path) -> int | None:
    match = re.fullmatch(r".+\.signals\.(\d+)\.jnl", path.name)
    return int(match.group(1)) if match else None


def journal_files(db_path: Path) -> list[Path]:
    """The journal files of the store at ``db_path``, oldest first."""
    found = []
    for path in db_path.parent.glob(f"{glob.escape(db_path.name)}.signals.*.jnl"):
        number = _number(path)
        if number is not None:
            found.append((number, path))
    return [path for _, path in sorted(found)]


def settle_journal(conn: sqlite3.Connection, path: Path, ids: list[str] | None) -> tuple[int, int]:
    """Make sure every row of a closed journal file is in SQLite (inside the caller's transaction).

    With the ids the loop wrote to it, one indexed count says whether the
    writer's inserts already hold them all (the usual case: the file is then
    not read, which for a busy file is tens of ms of parsing on the writer
    thread, holding the GIL the tick loop needs). Otherwise, or without ids
    (recovery after a death), every row is read and inserted, ``INSERT OR
    IGNORE``. Returns (rows inserted, damaged lines skipped).
    """
    if ids is not None:
        unique = list(set(ids))
        if _count_present(conn, unique) == len(unique):
            return 0, 0
    rows, damaged = read_journal(path)
    return insert_rows(conn, rows), damaged


def remove_journal(path: Path) -> None:
    """Delete a settled file; if the OS refuses (a virus scanner holding it on Windows), leave it:
    the next start settles it again, and INSERT OR IGNORE makes that harmless."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("signal journal file left in place", file=str(path), error=repr(exc)[:200])


def _count_present(conn: sqlite3.Connection, unique: list[str]) -> int:
    """How many of ``unique`` (distinct ids) SQLite holds."""
    present = 0
    for start in range(0, len(unique), 500):  # below SQLite's bound-parameter limit
        chunk = unique[start : start + 500]
        present += conn.execute(f"SELECT COUNT(*) FROM signals WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchone()[0]
    return present


def _line(row: Row) -> bytes:
    """One journal line. A plaintext body (a JSON object in a string) goes in as the object itself
    (``orjson.Fragment``: copied, not escaped again); :func:`read_journal` turns it back into the string."""
    if row[6] == 0:
        row = (*row[:5], orjson.Fragment(row[5]), 0)
    return orjson.dumps(row) + b"\n"


def read_journal(path: Path) -> tuple[list[Row], int]:
    """(rows, damaged lines) of one journal file; a damaged line is skipped, not fatal."""
    rows: list[Row] = []
    damaged = 0
    for line in path.read_bytes().splitlines():
        if not line:
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            damaged += 1
            continue
        if not isinstance(row, list) or len(row) != 7 or not isinstance(row[0], str):
            damaged += 1
            continue
        if isinstance(row[5], dict):  # a plaintext body, written as the object: orjson gives back its exact bytes
            row[5] = orjson.dumps(row[5]).decode()
        rows.append(tuple(row))
    return rows, damaged


#: After a failed open or write the journal is not tried again for this long. On a
#: full disk every emitting batch (up to hundreds a second) would otherwise
#: start a new file, and fail again; meanwhile signals are published anyway and
#: still handed to SQLite, as after any failed write.
RETRY_AFTER_FAILURE_S = 1.0


class JournalPaused(OSError):
    """Raised without touching the disk while the journal waits out its pause after a failure."""


class SignalJournal:
    """The loop's open journal file (one at a time), numbered after the files already there."""

    def __init__(self, db_path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db_path = db_path
        existing = journal_files(db_path)
        self._number = (_number(existing[-1]) or 0) if existing else 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._ids: list[str] | None = []
        self._closed: list[Closed] = []
        self._clock = clock
        self._retry_at = 0.0
        self._failure = ""  # the error that started the pause, for what JournalPaused says

    @property
    def path(self) -> Path | None:
        """The open file, or None before the first append after a rotation."""
        return self._path

    def append(self, rows: Sequence[Row]) -> None:
        """Write ``rows`` in one system call; when this returns they survive the process.

        If the write fails (a full disk), the file is closed there and then, so
        the next batch starts a new file instead of continuing a cut line; the
        failed file is retired by reading it (its ids are no longer trusted).
        After a failed open or write, appends raise :class:`JournalPaused`
        for ``RETRY_AFTER_FAILURE_S`` without touching the disk.
        """
        if self._fd is None:
            if self._clock() < self._retry_at:
                raise JournalPaused(f"signal journal paused for {RETRY_AFTER_FAILURE_S:g} s after: {self._failure}")
            self._number += 1
            path = self._db_path.with_name(f"{self._db_path.name}.signals.{self._number:06d}.jnl")
            try:
                self._fd = os.open(path, _FLAGS, 0o600)
            except OSError as exc:
                self._pause(exc)
                raise
            self._path = path
            self._ids = []
        data = b"".join(_line(row) for row in rows)
        view = memoryview(data)
        try:
            while view:  # a regular file takes it all at once; the loop is for the rule, not the case
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._ids = None  # this file's ids are no longer trusted: it is retired by reading it
            self._pause(exc)
            self._close()
            raise
        self._ids.extend(row[0] for row in rows)  # type: ignore[union-attr]  # reset to [] with each new file

    def _pause(self, exc: OSError) -> None:
        self._retry_at = self._clock() + RETRY_AFTER_FAILURE_S
        self._failure = repr(exc)[:200]

    def rotate(self) -> list[Closed]:
        """Close the open file; every file closed since the last call, with the ids written to it."""
        self._close()
        closed, self._closed = self._closed, []
        return closed

    def _close(self) -> None:
        if self._fd is None:
            return
        try:
            os.close(self._fd)
        finally:
            assert self._path is not None
            self._closed.append((self._path, self._ids))
            self._fd = None
            self._path = None
