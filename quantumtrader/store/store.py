"""The daemon's store: open, migrate, recover the journal, restore; then the journal on the loop, the rest on the writer.

DESIGN.md, "Storage". Only the daemon writes; readers (sidecar, CLI) use
:class:`~quantumtrader.store.signals.SignalReader`. Signals take two steps
(store/journal.py): rows (``Store.signals.rows``) appended to ``Store.journal``
before they are published, :meth:`Store.queue_signals` after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantumtrader.config import Config
from quantumtrader.log import get_logger
from quantumtrader.protocol import MS_PER_DAY
from quantumtrader.store.codec import unpack_state
from quantumtrader.store.crypto import SignalCipher, StoreKeyError, cipher_from_env
from quantumtrader.store.db import StateFileError, checkpoint_on_close, connect, opening, store_path, transaction
from quantumtrader.store.schema import migrate
from quantumtrader.store.journal import CHUNK_BYTES, Closed, Row, SignalJournal, journal_files, keep_damaged_journal, read_journal, remove_journal
from quantumtrader.store.signals import SignalLog
from quantumtrader.store.writer import RetentionJob, SignalsJob, StoreWriter, checkpoint_job, retire_journal_job, save_state_job

log = get_logger("quantumtrader.store")

#: Newest rows of the signals table the store key is checked against at a start, and the most encrypted ones of
#: them it tries (Store._check_key).
KEY_CHECK_ROWS = 10_000
KEY_CHECK_TRIES = 20


class Store:
    """Owns the signal journal, the writer thread (signal inserts, state, retention) and a connection for start-up."""

    def __init__(
        self,
        path: Path,
        *,
        queue_max: int = 10_000,
        retention_days: float = 0.0,
        cipher: SignalCipher | None = None,
        log_interval_s: float = 10.0,
        key_env: str = "QT_STORE_KEY",
    ) -> None:
        self.path = path
        with opening(path):
            self._conn = connect(path, checkpoints=False)  # start-up's; checkpoints happen on the writer
            self.migrated = migrate(self._conn)
            #: Said by health while it holds: the store has encrypted signals and no key was given to read them.
            self.key_problem = self._check_key(cipher, key_env)
            self.signals = SignalLog(self._conn, cipher)
            self.recovered = self._recover_journal()
        self.journal = SignalJournal(path)
        self._unretired: list[Closed] = []
        self._pending: list[Row] = []
        self.writer = StoreWriter(path, queue_max, log_interval_s=log_interval_s)
        self.retention_days = retention_days
        self._retention: RetentionJob | None = None  # the last one queued
        self.encrypted = cipher is not None

    def _check_key(self, cipher: SignalCipher | None, key_env: str) -> str | None:
        """Whether the key fits the signals already stored (a review, 2026-12-06: a restart with another key, or
        none, was silent; the new rows were written with it, or in clear, beside the old ones, and the app's
        filtered queries lost the whole history to the first row they could not read).

        Another key: StateFileError, the daemon does not start (its rows would be readable with neither key
        alone). No key: the daemon starts and health says so for as long as it holds, since switching
        encryption off may be meant; the old rows are left out of answers, counted.

        Only the newest :data:`KEY_CHECK_ROWS` rows are looked at (by rowid, a range of the table's own b-tree):
        a look for any encrypted row read the whole history at every start, which the default store keeps
        (0.14 s for 300,000 signals, warm), and the key is refused only when none of the newest
        :data:`KEY_CHECK_TRIES` encrypted ones decrypts: one damaged row had refused the right key."""
        newest = self._conn.execute("SELECT max(rowid) FROM signals").fetchone()[0]
        if newest is None:
            return None
        recent = newest - KEY_CHECK_ROWS
        bodies = [row[0] for row in self._conn.execute("SELECT body FROM signals WHERE rowid > ? AND encrypted = 1 ORDER BY rowid DESC LIMIT ?", (recent, KEY_CHECK_TRIES))]
        if not bodies:
            return None
        if cipher is None:
            n = int(self._conn.execute("SELECT COUNT(*) FROM signals WHERE rowid > ? AND encrypted = 1", (recent,)).fetchone()[0])
            problem = (
                f"the store holds encrypted signals ({n:,} of its newest {KEY_CHECK_ROWS:,}) and no store key is set ({key_env}):"
                " they cannot be read, and new signals are stored in clear"
            )
            log.error(problem, store=str(self.path))
            return problem
        unreadable = 0
        for body in bodies:
            try:
                cipher.decrypt(body)
            except StoreKeyError:
                unreadable += 1
            else:
                break
        if unreadable == len(bodies):
            raise StateFileError(
                f"{self.path}: the store key in {key_env} does not decrypt the signals stored there (none of the newest {len(bodies)}:"
                " they were encrypted with another key); set the key they were written with, or move the database (with its -wal and"
                " -shm files) out of the data directory to start afresh"
            )
        if unreadable:
            log.warning("newest stored signals that the store key does not decrypt (damaged?): left out of answers", unreadable=unreadable, store=str(self.path))
        return None

    @classmethod
    def from_config(cls, config: Config) -> Store:
        sc = config.store
        return cls(
            store_path(config.data_path, sc.file_name),
            queue_max=sc.queue_max,
            retention_days=sc.signal_retention_days,
            cipher=cipher_from_env(sc.encrypt_env),
            log_interval_s=config.daemon.reject_log_interval_s,
            key_env=sc.encrypt_env,
        )

    def start(self) -> None:
        """The writer thread, and the journal's helper thread with its first file: both started here,
        before the daemon raises the tick thread's priority, which a thread started later would inherit."""
        self.writer.start()
        self.journal.prepare()

    def _recover_journal(self) -> int:
        """Put the rows of journal files a dead process left into SQLite, then delete the files.

        A file with unreadable lines, or not of the size every journal file is
        made (cut: its lost rows leave no line to count), is kept beside as
        ``.damaged`` and said at warning level: its signals may exist nowhere else."""
        recovered = 0
        for path in journal_files(self.path):
            try:
                size = path.stat().st_size
                rows, damaged = read_journal(path)
            except OSError as exc:  # a directory in its place, no permission
                raise StateFileError(f"signal journal {path} cannot be read ({exc.strerror or exc}); move it out of the data directory to start") from None
            new = self.signals.commit_rows(rows)
            recovered += new
            if not rows and not damaged and size != CHUNK_BYTES and not path.read_bytes().strip(b"\0"):
                # Made but not yet filled when the process died (kill -9 while a new file is prepared): zeros
                # only, so no signal was ever in it. Kept as damaged, every such kill left one more empty file
                # and a warning that its signals "may exist nowhere else" (a soak: ten kills, ten files).
                remove_journal(path)
                log.info("unfinished signal journal file removed: it held no signal", file=path.name, size=size)
                continue
            if damaged or size != CHUNK_BYTES:
                kept = keep_damaged_journal(path)
                log.warning("signal journal damaged: its readable signals recovered, the file kept", file=kept.name, new=new, rows=len(rows), damaged_lines=damaged, size=size, expected_size=CHUNK_BYTES)
            else:
                remove_journal(path)
                log.info("signal journal recovered", file=path.name, new=new, damaged=damaged)
        return recovered

    # -- signals: journal (before publishing), then the writer ---------------------------

    def queue_signals(self, rows: list[Row]) -> None:
        """Keep journaled rows for the next :meth:`flush_signals` (one writer job for many batches)."""
        self._pending.extend(rows)

    def flush_signals(self) -> bool:
        """Hand the kept rows to the writer; if its queue is full they reach SQLite when the journal file retires."""
        if not self._pending:
            return False
        rows, self._pending = self._pending, []
        return self.writer.submit("signals", SignalsJob(rows))

    def rotate_journal(self, *, block: bool = False) -> None:
        """Start a new journal file and queue the closed one(s) for retirement (insert all, commit, delete)."""
        self.flush_signals()
        self._retire(self.journal.rotate(), block=block)

    def _retire(self, closed: list[Closed], *, block: bool) -> None:
        self._unretired.extend(closed)
        while self._unretired and self.writer.submit("journal", retire_journal_job(*self._unretired[0]), block=block):
            self._unretired.pop(0)

    def load_state(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """(saved_msc, state) of the last save under ``name``, or None. Start-up only (blocks).

        A save that cannot be unpacked (bytes flipped on disk: zipfile's Bad CRC) is None too, logged: the
        models start cold, as without one, instead of the daemon not starting. The row stays for a person
        to look at until the next save replaces it. A damaged page on the way to the row is SQLite's own
        damage, not the blob's: StateFileError, as at the open."""
        with opening(self.path):
            row = self._conn.execute("SELECT saved_msc, body FROM model_state WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        try:
            return int(row[0]), unpack_state(row[1])
        except Exception as exc:  # zipfile.BadZipFile, ValueError, KeyError, orjson's: whatever damage makes of it
            log.error("saved model state unreadable; the models start cold", name=name, error=repr(exc)[:300])
            return None

    def state_names(self, prefix: str) -> list[str]:
        """Names of the saved states that start with ``prefix``, the newest save first. Start-up only (blocks)."""
        with opening(self.path):
            rows = self._conn.execute("SELECT name FROM model_state WHERE substr(name, 1, ?) = ? ORDER BY saved_msc DESC", (len(prefix), prefix)).fetchall()
        return [str(row[0]) for row in rows]

    def keep_state(self, name: str, as_name: str) -> None:
        """A copy of the saved state ``name`` under ``as_name`` (replacing one of that name), committed when this
        returns: before the writer's next save can replace ``name``. Start-up only (blocks)."""
        with opening(self.path):
            self._conn.execute("INSERT OR REPLACE INTO model_state (name, saved_msc, body) SELECT ?, saved_msc, body FROM model_state WHERE name = ?", (as_name, name))

    def move_state(self, name: str, to: str) -> None:
        """The saved state ``name`` renamed ``to``, replacing the one of that name, in one transaction. Start-up only."""
        with opening(self.path), transaction(self._conn, "BEGIN IMMEDIATE"):
            self._conn.execute("DELETE FROM model_state WHERE name = ?", (to,))
            self._conn.execute("UPDATE model_state SET name = ? WHERE name = ?", (to, name))

    def save_state(self, name: str, saved_msc: int, state: dict[str, Any], *, final: bool = False) -> bool:
        """Enqueue a save of ``state`` (a copy the caller no longer mutates). Never blocks, except
        ``final`` (shutdown): that one waits for room, bounded, so a full queue cannot drop the last state."""
        return self.writer.submit("state", save_state_job(name, saved_msc, state), block=final)

    def checkpoint(self) -> bool:
        """Enqueue a passive WAL checkpoint (the loop's connection never runs one itself)."""
        return self.writer.submit("checkpoint", checkpoint_job)

    def apply_retention(self, now_msc: int) -> bool:
        """Queue a retention pass unless one is still queued or running: with a save interval under the pass's
        budget (2 s) and a history to work through, passes were queued faster than they ran (a review, 2026-12-06)."""
        if self.retention_days <= 0 or (self._retention is not None and not self._retention.done):
            return False
        job = RetentionJob(now_msc - int(self.retention_days * MS_PER_DAY))
        queued = self.writer.submit("retention", job)
        self._retention = job if queued else None
        return queued

    def close(self) -> bool:
        """Retire the journal and drain the writer (the final state save is in its queue), then close."""
        self.flush_signals()
        self._retire(self.journal.close(), block=True)  # the last file; the journal's helper thread stops
        finished = self.writer.close()
        checkpoint_on_close(self._conn)
        self._conn.close()
        return finished
