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
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: How long a writer waits for the other writer's lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000


class StateFileError(RuntimeError):
    """A file of the daemon's own state (a database, the lock) cannot be used as it is.

    The daemon refuses to start rather than start afresh beside it: SQLite
    takes an empty file for a new database, so a cut ``orders.sqlite`` came back
    with no orders to reconcile and the kill switch off, without a word. The
    message names the file and what to do; nothing is deleted or rewritten.
    """


_ADVICE = "move it (with its -wal and -shm files) out of the data directory to start afresh, or put a backup in its place"


def check_state_file(path: Path) -> None:
    """StateFileError unless ``path`` is absent (a first start) or a non-empty regular file.

    Once a database has been opened here it is never empty (WAL mode writes its
    header at once), so an empty one was cut: by a full disk, a bad copy, a person."""
    if not path.exists():
        return
    if not path.is_file():
        raise StateFileError(f"{path} is not a file; {_ADVICE}")
    if path.stat().st_size == 0:
        raise StateFileError(f"{path} is empty (0 bytes): it was cut, and starting afresh would forget what it held; {_ADVICE}")


@contextlib.contextmanager
def opening(path: Path) -> Iterator[None]:
    """Around a state database's start-up work (opening, migrating, the first reads and writes): SQLite's
    "malformed", "not a database", a table that exists though its schema version is gone, become a
    StateFileError naming the file. The first reads belong here too: a damaged page shows only when it is
    read, which for a table the open does not touch (the saved models, the unsettled orders) is after it."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StateFileError(f"{path} cannot be used ({exc}): damaged, or not this program's; {_ADVICE}") from None


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
        if not checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn
