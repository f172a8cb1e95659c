"""The signal journal: an append-only file that makes a signal durable before it is published.

The durability rule (every signal a subscriber saw is in the store after a
kill -9, exactly once) used to be kept by a SQLite commit on the loop's
thread before each publication: ~80 µs per emitting batch (p99 ~270 µs),
most of the tick -> signal latency. A write-ahead journal keeps the same
rule for the price of one copy into memory:

1. the loop copies the batch's store rows into the open journal file, one
   JSON array per line (a plaintext signal embedded as the JSON object the
   daemon serialized once for the feed too). The file is memory-mapped, so
   the copy is a ``memcpy`` into the OS page cache, not a system call: when
   it returns the rows survive the process (the kernel owns those pages,
   like a WAL commit with ``synchronous=NORMAL``, and like it they are lost
   only to a power loss or an OS crash). A ``write`` per batch cost 2-3
   times as much at the median and at p99 on a busy VM (each one also
   updates the file's times: work for the file system's journal);
2. then it publishes, and hands the same rows to the writer thread, which
   inserts them into SQLite moments later (readers see them from there);
3. every ``save_interval_s`` the loop starts a new file and queues the old
   one for *retirement*: the writer checks that SQLite holds every id written
   to it (one indexed count), inserts the file's rows if not (``INSERT OR
   IGNORE`` on the signal id, so rows of a job dropped from a full queue or a
   failed insert are not lost), commits, and only then deletes the file;
4. at start, before anything is published, files left by a process that
   died are replayed into SQLite the same way, then deleted.

A file is ``CHUNK_BYTES`` of zeros, written and mapped on a helper thread
before the loop needs it (:meth:`SignalJournal.prepare`): its blocks are
allocated, so a full disk is an error when a file is prepared (the journal
then pauses, see ``append``) and never a fault while copying (writing into a
mapped page whose block cannot be allocated kills the process: SIGBUS on
Linux), and its pages are in the OS cache. A full file is closed and the
next one taken within the same ``append``. The pages just past the end are
touched between batches, so not even a minor page fault sits between a
signal and its publication. A closed file keeps its zeros after the last row
(the reader ignores them) until it retires. A line cut short (the process
died inside the copy: that signal was never published) or damaged is
skipped and counted; the rest of the file is still read.
"""

from __future__ import annotations

import glob
import mmap
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.log import get_logger
from quantumtrader.store.signals import insert_rows

log = get_logger("quantumtrader.store")

Row = tuple[Any, ...]
#: A closed journal file and the ids of the signals written to it.
Closed = tuple[Path, list[str]]
#: os.O_BINARY exists on Windows only: without it Windows would translate newlines.
_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
#: A journal file's size: ~3,500 plaintext signals (a row is ~1.2 KB), so a busy daemon opens a
#: file every few minutes besides the rotation's every ``store.save_interval_s``.
CHUNK_BYTES = 4 << 20
#: How far ahead of the end :meth:`SignalJournal.prepare` keeps pages mapped: a burst's worth.
TOUCH_AHEAD_BYTES = 64 << 10
_PAGE = mmap.PAGESIZE


def _zero_fill(fd: int, size: int) -> None:
    """Write ``size`` zeros: the file's blocks are allocated (a full disk fails here, not in a mapped
    page, which would kill the process) and its pages are in the OS cache, so writing into them
    later costs a minor page fault (~0.3 µs) instead of the file system's ~4 µs, ~2 ms for the first."""
    zeros = memoryview(bytes(size))
    while zeros:
        zeros = zeros[os.write(fd, zeros) :]


def _prepare_file(path: Path, size: int) -> tuple[int, mmap.mmap]:
    """A new journal file of ``size`` zeros, mapped. Runs on a helper thread (the system calls release
    the GIL): ~10 ms of file system work for 4 MB that the tick loop does not wait for."""
    fd = os.open(path, _FLAGS, 0o600)
    try:
        _zero_fill(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        remove_journal(path)  # holds no row: nothing to retire
        raise


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


def settle_journal(conn: sqlite3.Connection, path: Path, ids: list[str]) -> tuple[int, int]:
    """Make sure every row of a closed journal file is in SQLite (inside the caller's transaction).

    With the ids the loop wrote to it, one indexed count says whether the
    writer's inserts already hold them all (the usual case: the file is then
    not read, which for a busy file is tens of ms of parsing on the writer
    thread, holding the GIL the tick loop needs). Otherwise every row is
    read and inserted, ``INSERT OR IGNORE`` (recovery after a death reads
    every file: :func:`read_journal`). Returns (rows inserted, damaged lines skipped).
    """
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


def journal_line(row: Row) -> bytes:
    """One journal line. A plaintext body (a JSON object in a string) goes in as the object itself
    (``orjson.Fragment``: copied, not escaped again); :func:`read_journal` turns it back into the string."""
    if row[6] == 0:
        row = (*row[:5], orjson.Fragment(row[5]), 0)
    return orjson.dumps(row) + b"\n"


def read_journal(path: Path) -> tuple[list[Row], int]:
    """(rows, damaged lines) of one journal file; a damaged line is skipped, not fatal."""
    rows: list[Row] = []
    damaged = 0
    # A file left by a dead process keeps its zeros after the last row; a JSON line never holds a zero byte.
    for line in path.read_bytes().rstrip(b"\0").splitlines():
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
    """The loop's open journal file (one at a time, memory-mapped), numbered after the files already there.

    The next file is prepared on a helper thread (:meth:`prepare`, called
    by the loop between batches) so that opening one, at a rotation or when
    one is full, costs the loop a hand-over, not the file system's work.
    """

    def __init__(self, db_path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db_path = db_path
        existing = journal_files(db_path)
        self._number = (_number(existing[-1]) or 0) if existing else 0
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._end = 0  # bytes written to the open file
        self._touched = 0  # the pages below this offset have been touched
        self._path: Path | None = None
        self._ids: list[str] = []
        self._closed: list[Closed] = []
        self._helper: ThreadPoolExecutor | None = None
        self._spare: tuple[Path, Future[tuple[int, mmap.mmap]]] | None = None
        self._clock = clock
        self._retry_at = 0.0
        self._failure = ""  # the error that started the pause, for what JournalPaused says

    @property
    def path(self) -> Path | None:
        """The open file, or None before the first append after a rotation."""
        return self._path

    def append(self, rows: Sequence[Row]) -> None:
        """Copy ``rows`` into the journal; when this returns they survive the process.

        Takes the next file first if none is open or the open one is full.
        If that fails (a full disk), appends raise :class:`JournalPaused`
        for ``RETRY_AFTER_FAILURE_S`` without touching the disk.
        """
        data = b"".join(journal_line(row) for row in rows)
        size = len(data)
        if self._map is None or self._end + size > len(self._map):
            self._close()
            self._next_file(size)
        assert self._map is not None
        end = self._end
        self._map[end : end + size] = data
        self._end = end + size
        self._ids.extend(row[0] for row in rows)

    def prepare(self) -> None:
        """Between batches: fault in the pages just past the end, and have the next file prepared."""
        if self._spare is None and self._clock() >= self._retry_at:
            self._spare = self._submit(CHUNK_BYTES)
        mapped = self._map
        if mapped is None:
            return
        limit = min(self._end + TOUCH_AHEAD_BYTES, len(mapped))
        if self._touched >= limit:
            return
        offset = max(self._touched, self._end)
        offset += -offset % _PAGE  # the next page boundary: zeros there, never a row's bytes
        while offset < limit:
            mapped[offset] = 0
            offset += _PAGE
        self._touched = limit

    def _submit(self, size: int) -> tuple[Path, Future[tuple[int, mmap.mmap]]]:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qt-journal")
        self._number += 1
        path = self._db_path.with_name(f"{self._db_path.name}.signals.{self._number:06d}.jnl")
        return path, self._helper.submit(_prepare_file, path, size)

    def _next_file(self, size: int) -> None:
        """The spare file (waited for if not ready yet, or made now for a batch larger than a file)."""
        if self._clock() < self._retry_at:
            raise JournalPaused(f"signal journal paused for {RETRY_AFTER_FAILURE_S:g} s after: {self._failure}")
        spare, self._spare = self._spare, None
        if spare is None or size > CHUNK_BYTES:
            if spare is not None:
                self._spare = spare  # kept for the next time
            spare = self._submit(max(CHUNK_BYTES, size))
        path, future = spare
        try:
            fd, mapped = future.result()
        except OSError as exc:
            self._retry_at = self._clock() + RETRY_AFTER_FAILURE_S
            self._failure = repr(exc)[:200]
            raise
        self._fd, self._map, self._path = fd, mapped, path
        self._end = self._touched = 0
        self._ids = []

    def rotate(self) -> list[Closed]:
        """Close the open file; every file closed since the last call, with the ids written to it."""
        self._close()
        closed, self._closed = self._closed, []
        return closed

    def close(self) -> list[Closed]:
        """:meth:`rotate`, and the spare file (no rows) deleted and the helper thread stopped."""
        closed = self.rotate()
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                fd, mapped = spare[1].result()
            except OSError:
                pass  # it removed its file itself
            else:
                mapped.close()
                os.close(fd)
                remove_journal(spare[0])
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None
        return closed

    def _close(self) -> None:
        """Unmap and close the open file, not cut to its rows: the zeros after them stay (the reader
        ignores them) until it retires and is deleted; cutting it would cost the loop ~1 ms."""
        if self._fd is None:
            return
        assert self._map is not None and self._path is not None
        try:
            self._map.close()
        finally:
            os.close(self._fd)
            self._closed.append((self._path, self._ids))
            self._fd = None
            self._map = None
            self._path = None
