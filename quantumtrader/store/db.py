"""Opening the SQLite store: WAL, the pragmas, and where the file lives.

WAL lets the sidecar read while the daemon writes. ``synchronous=NORMAL`` in
WAL mode means a commit is written to the WAL file (the OS page cache) without
an fsync: it survives the daemon being killed (kill -9, a crash), which is
the durability the signal rule needs, and may lose the last commits only on
a power loss or OS crash, which no signal published to subscribers a moment
earlier could survive either. Each thread opens its own connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: How long a writer waits for the other writer's lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000
#: Bytes of WAL a writer's connection leaves on disk after a checkpoint has reset it (SQLite's default: all of
#: it, for good): a burst of writes (a retention pass, a recovery) otherwise kept its size until a clean stop.
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024


class StateFileError(RuntimeError):
    """A file of the daemon's own state (a database, the lock) cannot be used as it is.

    The daemon refuses to start rather than start afresh beside it: SQLite
    takes an empty file for a new database, so a cut ``orders.sqlite`` came back
    with no orders to reconcile and the kill switch off, without a word. The
    message names the file and what to do; nothing is deleted or rewritten.
    """


#: For a file that is damaged, or not this program's: only then is moving it away the way out.
_ADVICE = "move it (with its -wal and -shm files) out of the data directory to start afresh, or put a backup in its place"
#: For a file this process may not use: nothing is wrong with it, and moving it away would throw away the
#: order journal and the kill switch (which the damage advice above once told a permissions problem to do).
_ACCESS_ADVICE = "the daemon must read and write its databases and create files beside them: check the owner and mode of the file and its directory, or run qt-daemon as the user that owns them"
#: SQLite's result codes (the primary code, the low byte) that mean this process may not open or write the
#: file, not that the file is damaged: a refusal os.access cannot see (Windows' ACLs, a security module).
_ACCESS_CODES = frozenset({sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN})
#: ... and those that mean damage, or a file that is not this program's (SQLITE_ERROR: a schema that
#: contradicts itself, such as tables without their schema version).
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _no_access(path: Path) -> str | None:
    """What this process may not do with database ``path`` and its directory (to go after "this process"),
    or None when nothing.

    SQLite needs to read and write the file and its -wal and -shm files, and
    to create those in the directory (as the signal journal does its files);
    a file it may only read opens read-only without a word, and every write
    failed later: orders the journal could not record, no model save."""
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):  # os.path: False, not a raise, in a directory it may not search
        return "may not read and write it"
    for suffix in ("-wal", "-shm"):
        beside = path.with_name(path.name + suffix)
        if os.path.exists(beside) and not os.access(beside, os.R_OK | os.W_OK):
            return f"may not read and write its {suffix} file {beside}"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"may not create files in its directory {path.parent}"
    return None


def _access_denied(path: Path, refused: str) -> str:
    return f"{path} cannot be opened: permission denied (this process {refused}); {_ACCESS_ADVICE}"


def check_state_file(path: Path) -> None:
    """StateFileError unless ``path`` is absent (a first start) or a non-empty regular file, and this process
    may read and write it (and its directory).

    Once a database has been opened here it is never empty (WAL mode writes its
    header at once), so an empty one was cut: by a full disk, a bad copy, a person."""
    refused = _no_access(path)
    if refused is not None:
        raise StateFileError(_access_denied(path, refused))
    if not path.exists():
        return
    if not path.is_file():
        raise StateFileError(f"{path} is not a file; {_ADVICE}")
    if path.stat().st_size == 0:
        raise StateFileError(f"{path} is empty (0 bytes): it was cut, and starting afresh would forget what it held; {_ADVICE}")


def _describe(path: Path, exc: sqlite3.Error) -> str:
    """The one-line "cannot start" reason for SQLite's ``exc`` on ``path``, with advice that fits its kind:
    move a damaged file away, or fix a permission; anything else (a lock another program holds past the busy
    timeout, a full disk, an I/O error) says nothing about the file, so it gets no advice to move it."""
    code = getattr(exc, "sqlite_errorcode", None)
    kind = None if code is None else code & 0xFF
    if kind in _ACCESS_CODES:
        return _access_denied(path, f"{_no_access(path) or 'was refused it or its directory'}: {exc}")
    if kind is None or kind in _DAMAGE_CODES:
        return f"{path} cannot be used ({exc}): damaged, or not this program's; {_ADVICE}"
    return f"{path} cannot be used now ({exc}); start again once that is resolved"


@contextlib.contextmanager
def opening(path: Path) -> Iterator[None]:
    """Around a state database's start-up work (opening, migrating, the first reads and writes): SQLite's
    "malformed", "not a database", a table that exists though its schema version is gone, become a
    StateFileError naming the file, and so does a refusal of access, said as one (:func:`_describe`).
    The first reads belong here too: a damaged page shows only when it is read, which for a table the open
    does not touch (the saved models, the unsettled orders) is after it."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StateFileError(_describe(path, exc)) from None


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """``begin`` ... COMMIT, or ROLLBACK and the error raised on (the connections run in autocommit mode)."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def store_path(data_dir: Path, file_name: str) -> Path:
    return Path(data_dir).expanduser() / file_name


def checkpoint_on_close(conn: sqlite3.Connection) -> None:
    """At a clean stop, everything in the WAL into the database file, and the WAL emptied (best effort).

    Without it the last signals and the final model save stayed in ``-wal``
    (the sidecar's open reader keeps SQLite from doing it at close), and a copy
    of the database file alone, the obvious backup, silently lacked them."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # waits at most busy_timeout for a reader's snapshot
    except sqlite3.Error:
        pass  # the data is safe in the WAL either way; a backup then needs both files


def connect(path: Path, *, readonly: bool = False, checkpoints: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit ``BEGIN``/``COMMIT``).

    ``checkpoints=False`` turns off WAL auto-checkpointing on this connection:
    SQLite runs it inside whichever commit crosses the threshold, a
    multi-millisecond stall that must land on the writer thread, never on
    another connection's commit (the writer checkpoints; see writer.py).
    """
    if readonly:
        # as_uri() percent-encodes: a '#', '?' or '%' in the data directory stays part of the path
        # (an f"file:{path}" URI cut it there and opened another file); file:///C:/... on Windows.
        # absolute(), not resolve(): on Windows resolve() turns a mapped drive into \\server\share,
        # whose file://server/... URI SQLite refuses.
        conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_state_file(path)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        if not checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn
