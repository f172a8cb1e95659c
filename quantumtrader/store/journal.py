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
   only to a power loss or an OS crash). An ``os.write`` per batch, as
   before 2026-12-03, cost ~1.6 times as much at the median and ~2.6-2.8
   times at p99 on a busy VM (``qt-bench journal``), and the whole journal step
   (with serializing and the rows) about twice as much in the daemon; each
   write also updates the file's times: work for the file system's journal;
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
Linux), and its pages are in the OS cache. Between batches the loop moves
to that file when the open one has less than ``TOUCH_AHEAD_BYTES`` left,
and touches the pages just past the end, so neither the file system nor a
page fault sits between a signal and its publication; a burst that fills a
file anyway goes on in the next within the same ``append``. A closed file keeps its zeros after the last row
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
from quantumtrader.outputs import set_aside
from quantumtrader.store.signals import insert_rows

log = get_logger("quantumtrader.store")

Row = tuple[Any, ...]
#: A closed journal file and the ids of the signals written to it.
Closed = tuple[Path, list[str]]
#: os.O_BINARY exists on Windows only: without it Windows would translate newlines. O_EXCL: a file
#: is zero-filled from its start, so an existing one (another journal's) must never be opened.
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
#: A journal file's size: ~1,000 plaintext signals (a row is ~1 KB). Each file used is this many
#: bytes written to disk however few rows it gets: at one rotation per ``store.save_interval_s``
#: (30 s) ~35 KB/s while signals flow, nothing while none do.
CHUNK_BYTES = 1 << 20
#: How far ahead of the end :meth:`SignalJournal.prepare` keeps pages touched, and how little room
#: left makes it move to the next file between batches rather than inside an append: a burst's worth.
TOUCH_AHEAD_BYTES = 64 << 10
_PAGE = mmap.PAGESIZE


def _zero_fill(fd: int, size: int) -> None:
    """Write ``size`` zeros: the file's blocks are allocated (a full disk fails here, not in a mapped
    page, which would kill the process) and its pages are in the OS cache, so writing into them
    later costs a minor page fault (~0.3 µs) instead of the file system's ~4 µs, ~2 ms for the first.
    A copy-on-write file system (btrfs, ZFS) allocates again when a page is rewritten: there a full
    disk can still fault in the mapping."""
    zeros = memoryview(bytes(size))
    while zeros:
        zeros = zeros[os.write(fd, zeros) :]


def _prepare_file(path: Path, size: int) -> tuple[int, mmap.mmap, int]:
    """A new journal file of ``size`` zeros, mapped, its first pages touched (the offset below which they
    all are is returned with it). Runs on a helper thread (the system calls release the GIL): ~3 ms of
    file system work a file that the loop does not wait for."""
    fd = os.open(path, _FLAGS, 0o600)
    try:
        _zero_fill(fd, size)
        mapped = mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        remove_journal(path)  # holds no row: nothing to retire
        raise
    offset = 0
    while offset < min(TOUCH_AHEAD_BYTES, size):
        mapped[offset] = 0  # the page tables are the process's: the loop's first rows fault nothing
        offset += _PAGE
    return fd, mapped, min(offset, size)


def _as_os_error(exc: BaseException) -> OSError:
    """What an append raises for a journal file not made: the OSError itself, or one naming the cause
    (no thread, no memory), so the daemon counts and logs it as a failed write either way."""
    if isinstance(exc, OSError):
        return exc
    error = OSError(f"signal journal file not made: {exc!r}")
    error.__cause__ = exc
    return error


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


def keep_damaged_journal(path: Path) -> Path:
    """Rename a journal file that held damage beside it as ``<name>.damaged`` (never read again, never deleted):
    what could not be read is evidence, and may be mended by hand.

    Never over another kept file: a kept file no longer counts when journal files are numbered, so a
    second damaged file of the same name (two cut files in a row) replaced the first's evidence.
    The later ones are ``<name>.damaged.2``, ``.3``...; the data directory's lock makes this process the
    only one naming them."""
    try:
        return set_aside(path, ".damaged")
    except OSError as exc:
        log.warning("damaged signal journal file left in place", file=str(path), error=repr(exc)[:200])
        return path


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


def _row_ok(row: Any) -> bool:
    """The shape SignalLog.rows writes: id, symbol, time_msc, prediction, confidence (None when encrypted),
    the body (the signal object, or the cipher's text) and the encrypted flag."""
    return (
        isinstance(row, list)
        and len(row) == 7
        and type(row[0]) is str
        and type(row[1]) is str
        and type(row[2]) is int
        and (row[3] is None or type(row[3]) is str)
        and (row[4] is None or type(row[4]) in (int, float))
        and (type(row[5]) is str if row[6] == 1 else type(row[5]) is dict and row[5].get("id") == row[0])
        and row[6] in (0, 1)
    )


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
        if not _row_ok(row):  # a line that parses but would not bind (a dict as time_msc) stopped every start
            damaged += 1
            continue
        if isinstance(row[5], dict):  # a plaintext body, written as the object: orjson gives back its exact bytes
            row[5] = orjson.dumps(row[5]).decode()
        rows.append(tuple(row))
    return rows, damaged


#: After a file could not be made (a full disk) no new one is tried for this long. Every
#: emitting batch (up to hundreds a second) would otherwise try the disk again, and fail;
#: meanwhile signals are published anyway and still handed to SQLite.
RETRY_AFTER_FAILURE_S = 1.0


class JournalPaused(OSError):
    """Raised without touching the disk while the journal waits out its pause after a failure."""


class SignalJournal:
    """The loop's open journal file (one at a time, memory-mapped), numbered after the files already there.

    The next file is made on a helper thread and the loop moves to it
    between batches (:meth:`prepare`), so a rotation or a full file costs an
    append a hand-over at most, not the file system's work. The helper
    thread starts at the first :meth:`prepare` (``Store.start``).
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
        self._spare: tuple[Path, Future[tuple[int, mmap.mmap, int]]] | None = None
        self._spare_ready = False  # the spare is made and sound: prepare()'s usual pass does nothing
        self._unreported: BaseException | None = None  # see _fail
        self._shut = False
        self._clock = clock
        self._retry_at = 0.0
        self._failure = ""  # the error that started the pause, for what JournalPaused says

    @property
    def path(self) -> Path | None:
        """The open file, or None before the first append after a rotation."""
        return self._path

    def append(self, rows: Sequence[Row]) -> None:
        """Copy ``rows`` into the journal; when this returns they survive the process.

        Takes the next file if none is open or the open one is full (a batch
        that does not fit goes on in the next file, row by row). If that fails
        (a full disk), the error is raised, and then :class:`JournalPaused`
        for ``RETRY_AFTER_FAILURE_S`` without touching the disk.
        """
        lines = [journal_line(row) for row in rows]
        data = b"".join(lines)
        if self._map is not None and self._end + len(data) <= len(self._map):
            self._copy(data)
            self._ids.extend(row[0] for row in rows)
            return
        for row, line in zip(rows, lines, strict=True):
            if len(line) > CHUNK_BYTES:  # not a signal of ours (~1 KB): refused like a failed write, not a crash
                raise OSError(f"a journal row of {len(line)} bytes does not fit in a journal file")
            if self._map is None or self._end + len(line) > len(self._map):
                self._close()
                self._next_file()
            self._copy(line)
            self._ids.append(row[0])

    def _copy(self, data: bytes) -> None:
        assert self._map is not None
        end = self._end
        self._map[end : end + len(data)] = data
        self._end = end + len(data)

    def prepare(self) -> None:
        """Between batches (never raises): one more page past the end touched, the open file left
        for the spare when nearly full, and the next spare asked for.

        Runs after every batch (most emit nothing), so it does little each
        time: one page fault at most (5-15 µs on a VM, so a 64 KB refill at
        once would put ~100 µs before some next tick), and with a sound spare
        ready and room left nothing else (a Future's ``done()`` takes a lock).
        """
        mapped = self._map
        if mapped is not None and self._spare_ready and len(mapped) - self._end >= TOUCH_AHEAD_BYTES:
            self._touch_one(mapped)
            return
        if self._shut:
            return
        spare = self._spare
        if spare is not None and not self._spare_ready and spare[1].done():
            exc = spare[1].exception()
            if exc is not None:  # dropped, made again after the pause
                self._fail(exc, unreported=True)
                self._spare = None
            else:
                self._spare_ready = True
                self._unreported = None  # a failure that cost no batch: the disk has room again
        if mapped is not None and self._spare_ready and len(mapped) - self._end < TOUCH_AHEAD_BYTES:
            try:
                self._close()  # its unmapping here, between batches, not in an append
                self._next_file()  # the sound spare, ready (its first pages touched on the helper thread)
            except OSError:
                pass  # not seen; if it were, the next append would say it
        elif mapped is not None:
            self._touch_one(mapped)
        if self._spare is None and self._clock() >= self._retry_at:
            try:
                self._spare = self._submit()
            except Exception as exc:  # no thread to be had: as a full disk, tried again after the pause
                self._fail(exc, unreported=True)

    def _touch_one(self, mapped: mmap.mmap) -> None:
        """Touch the next page past the end, unless the pages ahead are touched already."""
        touched, end = self._touched, self._end
        if touched >= end + TOUCH_AHEAD_BYTES:
            return
        if touched < end:  # the rows went past it: their pages were faulted by the copy
            touched = end + (-end % _PAGE)  # the next page boundary: zeros there, never a row's bytes
        if touched < len(mapped):
            mapped[touched] = 0
            touched += _PAGE
        self._touched = min(touched, len(mapped))

    def _submit(self) -> tuple[Path, Future[tuple[int, mmap.mmap, int]]]:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qt-journal")
        while True:  # a number no file has (O_EXCL refuses one all the same)
            self._number += 1
            path = self._db_path.with_name(f"{self._db_path.name}.signals.{self._number:06d}.jnl")
            if not path.exists():
                return path, self._helper.submit(_prepare_file, path, CHUNK_BYTES)

    def _fail(self, exc: BaseException, *, unreported: bool = False) -> None:
        """Start the pause. ``unreported``: a failure between batches, which the next append that needs a
        file raises as itself (an error, counted as one) rather than as the pause it started."""
        self._retry_at = self._clock() + RETRY_AFTER_FAILURE_S
        self._failure = repr(exc)[:200]
        if unreported:
            self._unreported = exc

    def _next_file(self) -> None:
        """Open the spare file (waited for if not ready yet, asked for now if there is none)."""
        if self._shut:
            raise OSError("the signal journal is closed")
        if self._unreported is not None:
            exc, self._unreported = self._unreported, None
            raise _as_os_error(exc)
        if self._clock() < self._retry_at:
            raise JournalPaused(f"signal journal paused for {RETRY_AFTER_FAILURE_S:g} s after: {self._failure}")
        self._spare_ready = False
        try:
            spare, self._spare = self._spare or self._submit(), None
            fd, mapped, touched = spare[1].result()
        except Exception as exc:  # a full disk; or no thread, no memory: as good as a failed write
            self._fail(exc)
            raise _as_os_error(exc)
        self._fd, self._map, self._path = fd, mapped, spare[0]
        self._end = 0
        self._touched = touched
        self._ids = []

    def rotate(self) -> list[Closed]:
        """Close the open file; every file closed since the last call, with the ids written to it."""
        self._close()
        closed, self._closed = self._closed, []
        return closed

    def close(self) -> list[Closed]:
        """:meth:`rotate` for the last time: the spare file (no rows) deleted, the helper thread stopped."""
        self._shut = True
        closed = self.rotate()
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                fd, mapped, _ = spare[1].result()
            except Exception:
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
        fd, mapped = self._fd, self._map
        self._closed.append((self._path, self._ids))  # detached first: whatever the OS says, the journal moves on
        self._fd = self._map = self._path = None
        try:
            mapped.close()
        finally:
            os.close(fd)
