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
   one for *retirement*: the writer inserts every row of the file (``INSERT OR
   IGNORE`` on the signal id, so rows already inserted cost nothing and rows
   whose job was dropped from a full queue are not lost), commits, and only
   then deletes the file;
4. at start, before anything is published, files left by a process that
   died are replayed into SQLite the same way, then deleted.

A line cut short (the process died inside the write, which Linux does not
do for a regular file but another OS might) or damaged is skipped and
counted; the rest of the file is still read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from quantumtrader.log import get_logger

log = get_logger("quantumtrader.store")

Row = tuple[Any, ...]
#: os.O_BINARY exists on Windows only: without it Windows would translate newlines.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)


def journal_files(db_path: Path) -> list[Path]:
    """The journal files of the store at ``db_path``, oldest first."""
    pattern = re.compile(re.escape(db_path.name) + r"\.signals\.(\d+)\.jnl")
    found = []
    for path in db_path.parent.glob(f"{db_path.name}.signals.*.jnl"):
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


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


class SignalJournal:
    """The loop's open journal file (one at a time), numbered after the files already there."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        existing = journal_files(db_path)
        self._number = int(existing[-1].name.rsplit(".", 2)[-2]) if existing else 0
        self._fd: int | None = None
        self._path: Path | None = None

    @property
    def path(self) -> Path | None:
        """The open file, or None before the first append after a rotation."""
        return self._path

    def append(self, rows: Sequence[Row]) -> None:
        """Write ``rows`` in one system call; when this returns they survive the process."""
        if self._fd is None:
            self._number += 1
            self._path = self._db_path.with_name(f"{self._db_path.name}.signals.{self._number:06d}.jnl")
            self._fd = os.open(self._path, _FLAGS, 0o600)
        data = b"".join(_line(row) for row in rows)
        view = memoryview(data)
        while view:  # a regular file takes it all at once; the loop is for the rule, not the case
            view = view[os.write(self._fd, view) :]

    def rotate(self) -> Path | None:
        """Close the open file and return it (None if nothing was written since the last rotation)."""
        if self._fd is None:
            return None
        os.close(self._fd)
        path = self._path
        self._fd = None
        self._path = None
        return path
