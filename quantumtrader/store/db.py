"""Opening the SQLite store: WAL, the pragmas, and where the file lives.

WAL lets the sidecar read while the daemon writes. ``synchronous=NORMAL`` in
WAL mode means a commit is written to the WAL file (the OS page cache) without
an fsync: it survives the daemon being killed (kill -9, a crash), which is
the durability the signal rule needs, and may lose the last commits only on
a power loss or OS crash, which no signal published to subscribers a moment
earlier could survive either. Each thread opens its own connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: How long a writer waits for the other writer's lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000


def store_path(data_dir: Path, file_name: str) -> Path:
    return Path(data_dir).expanduser() / file_name


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
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:
            conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn
