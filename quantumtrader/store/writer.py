"""The store's writer thread: everything that may be slow goes through its queue.

Signal inserts, journal retirements, model/feature state saves and retention
deletes are enqueued by the loop
(without waiting: a full queue drops the job and counts it, it never blocks the
loop) and executed here on a connection of this thread's own. The loop only
pays for copying the state arrays, which it must do anyway so the kernel can
keep mutating them while the copy is serialized here.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from quantumtrader.log import get_logger
from quantumtrader.metrics import LogLimiter
from quantumtrader.store.codec import pack_state
from quantumtrader.store.db import connect
from quantumtrader.store.journal import remove_journal, settle_journal
from quantumtrader.store.signals import insert_rows

log = get_logger("quantumtrader.store")

#: A job runs inside its own transaction; it may return a step to run once that
#: transaction is committed (deleting a journal file only after its rows are in).
Job = Callable[[sqlite3.Connection], "Callable[[], None] | None"]
_STOP = object()
_BLOCK_S = 10.0
#: Signal rows whose insert failed (a full disk) that the writer keeps and retries, at most: ~1 KB each,
#: ~5 hours of 50 symbols signalling every 10 s. Beyond it the oldest are let go, counted and logged.
UNSAVED_ROWS_MAX = 100_000
#: Seconds between two tries of the kept rows (also the queue's wait while rows are kept and nothing comes).
RETRY_UNSAVED_S = 1.0
#: Kept rows per retry transaction.
RETRY_CHUNK_ROWS = 1_000
#: Signals one retention transaction deletes (~1 MB of WAL), with a checkpoint after each, and the most time one
#: retention job takes before it leaves the rest to the next (store.save_interval_s later): the writer inserts
#: signals and saves state too. One DELETE of the whole history before it grew the WAL by as much as it deleted
#: (a review, 2026-12-06: 28 MB for 20,000 signals), and on a nearly full disk, which health advises retention
#: for, it failed every time after taking the last free space; a kill -9 then lost the signals held in memory.
RETENTION_CHUNK_ROWS = 1_000
RETENTION_BUDGET_S = 2.0


def save_state_job(name: str, saved_msc: int, state: dict[str, Any]) -> Job:
    """A job that serializes ``state`` (already a copy) and upserts it under ``name``."""

    def job(conn: sqlite3.Connection) -> None:
        blob = pack_state(state)
        conn.execute(
            "INSERT INTO model_state (name, saved_msc, body) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET saved_msc = excluded.saved_msc, body = excluded.body",
            (name, saved_msc, blob),
        )

    return job


class SignalsJob:
    """A job that inserts store rows the loop has already journaled.

    A class, not a closure, so that the writer can keep the rows of one that
    failed (see :meth:`StoreWriter._keep_unsaved`): while the journal is
    paused by a full disk, this job is the only copy of its signals.
    """

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = rows

    def __call__(self, conn: sqlite3.Connection) -> None:
        insert_rows(conn, self.rows)


def retire_journal_job(path: Path, ids: list[str]) -> Job:
    """A job that makes sure a closed journal file's rows are all in SQLite, then (after the commit) deletes it."""

    def job(conn: sqlite3.Connection) -> Callable[[], None]:
        _, damaged = settle_journal(conn, path, ids)
        if damaged:
            log.warning("signal journal: damaged lines skipped", file=str(path), damaged=damaged)
        return lambda: remove_journal(path)

    return job


class RetentionJob:
    """Delete the signals older than ``cutoff_msc``, :data:`RETENTION_CHUNK_ROWS` a transaction, each followed by a
    passive checkpoint, so the WAL (kept to ``db.JOURNAL_SIZE_LIMIT``) reuses its pages instead of growing
    by the whole history; deleted pages are reused by later inserts. Run by the writer outside a transaction."""

    def __init__(self, cutoff_msc: int) -> None:
        self.cutoff_msc = cutoff_msc
        #: Set by the writer when the job has run (whatever it deleted): the store queues no other meanwhile.
        self.done = False

    def chunk(self, conn: sqlite3.Connection) -> None:
        """One transaction's worth (the caller counts what it deleted from ``conn.total_changes``)."""
        conn.execute(
            "DELETE FROM signals WHERE rowid IN (SELECT rowid FROM signals WHERE time_msc < ? LIMIT ?)",
            (self.cutoff_msc, RETENTION_CHUNK_ROWS),
        )



def checkpoint_job(conn: sqlite3.Connection) -> None:
    """Marker job: the writer runs a PASSIVE checkpoint outside any transaction (see _run)."""


class StoreWriter:
    """One thread, one connection, one queue of jobs; each job is its own transaction."""

    def __init__(self, path: Path, queue_max: int, *, log_interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self.counters: Counter[str] = Counter()
        self.failing: dict[str, str] = {}  # kind -> the error of its last job, until one of that kind succeeds
        # A full disk fails every job, several a second: one line per kind and interval, with the count.
        self._failure_log = LogLimiter(log_interval_s, clock)
        self._clock = clock
        self._unsaved: list[Sequence[Any]] = []  # rows of failed signal inserts, oldest first: retried, not dropped
        self._retry_at = 0.0
        self._died = False  # the thread ended on an error of its own: nothing queued runs any more
        self._thread = threading.Thread(target=self._run_guarded, name="qt-store-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, kind: str, job: Job | RetentionJob, *, block: bool = False) -> bool:
        """Enqueue without blocking; False, counted as ``dropped_<kind>``, when full.

        ``block`` (shutdown only) waits for room, but never for a writer that
        is not running, and at most ``_BLOCK_S``: a stop must not hang; what is
        not written is recovered from the journal at the next start.
        """
        try:
            if self._died or (block and not self._thread.is_alive()):
                raise queue.Full
            self._queue.put((kind, job), block=block, timeout=_BLOCK_S if block else None)
        except queue.Full:
            self.counters[f"dropped_{kind}"] += 1
            return False
        return True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Finish every queued job, then stop. Blocks (shutdown only); True when it finished in time."""
        if not self._thread.is_alive() or self._died:
            return not self._died
        try:
            self._queue.put(_STOP, timeout=_BLOCK_S)  # a writer stuck with a full queue must not hang the stop
        except queue.Full:
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive() and not self._died  # died while draining: the final jobs did not run

    def _run_guarded(self) -> None:
        """The thread's body. If the writer itself fails (its connection cannot be opened, a ROLLBACK
        raises), health must say so: the thread used to end in silence, health stayed "ok", every
        later save was queued for nobody and the shutdown's final save was lost."""
        try:
            self._run()
        except Exception as exc:
            self._died = True
            self.failing["writer"] = f"the writer thread stopped: {exc!r}"[:200]
            # rows held after failed inserts, and those still queued, may exist nowhere else (a paused journal)
            held = len(self._unsaved) + self._queued_signal_rows()
            self.counters["lost_signals"] += held
            log.error(
                "store writer stopped; signals not yet in SQLite stay in their journal files until a restart, except those held after failed inserts",
                error=repr(exc)[:300],
                signals_lost=held,
            )

    def _queued_signal_rows(self) -> int:
        """Take what is left in the queue (the thread is dead: nothing will run it); how many signal rows it held."""
        rows = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rows
            if item is not _STOP and isinstance(item[1], SignalsJob):
                rows += len(item[1].rows)

    @property
    def unsaved_signals(self) -> int:
        """Signal rows the writer holds because their insert failed (while there are any, ``failing`` keeps the
        signals' failure, so health stays degraded)."""
        return len(self._unsaved)

    def _keep_unsaved(self, rows: Sequence[Sequence[Any]]) -> None:
        """Keep a failed insert's rows for the next try; the oldest go beyond ``UNSAVED_ROWS_MAX``.

        Before, a failed signals job was dropped like any other: with the
        journal paused by the same full disk its rows were nowhere else, and a
        150-second full disk lost every signal of those seconds for good.
        """
        self._unsaved.extend(rows)
        over = len(self._unsaved) - UNSAVED_ROWS_MAX
        if over > 0:
            del self._unsaved[:over]
            self.counters["lost_signals"] += over
            self._failure_log.log("lost", log.error, "signals lost: the store kept failing and its retry buffer is full", lost=over, kept=len(self._unsaved))

    def _retry_unsaved(self, conn: sqlite3.Connection, *, final: bool = False) -> None:
        """Insert the kept rows, oldest first, ``RETRY_CHUNK_ROWS`` a transaction, at most once per
        ``RETRY_UNSAVED_S`` (and once more at the end). A row leaves the list only once it is committed; chunks,
        so that a nearly full disk that takes a new batch takes the held rows too, not all or nothing."""
        if not self._unsaved or (not final and self._clock() < self._retry_at):
            return
        self._retry_at = self._clock() + RETRY_UNSAVED_S
        stored = 0
        while self._unsaved:
            chunk = self._unsaved[:RETRY_CHUNK_ROWS]
            if not self._transaction(conn, "signals", SignalsJob(chunk), keep=False):
                break
            del self._unsaved[: len(chunk)]
            stored += len(chunk)
        if not self._unsaved:
            self.failing.pop("signals", None)
        if stored:
            self.counters["retried_signals"] += stored
            log.warning("signals stored after failed inserts", signals=stored, still_held=len(self._unsaved))
        if final and self._unsaved:
            self.counters["lost_signals"] += len(self._unsaved)
            log.error("signals not stored: the store still fails at the stop", signals=len(self._unsaved), error=self.failing.get("signals", ""))

    def _transaction(self, conn: sqlite3.Connection, kind: str, job: Job, *, keep: bool = True) -> bool:
        """Run ``job`` in its own transaction; on failure count, log (rate-limited) and keep a signals job's rows.

        ``failing`` names a kind until one of its jobs succeeds, and for signals until no row is held either:
        a new batch that fits does not mean the held ones went in."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            after_commit = job(conn)
            conn.execute("COMMIT")
            if after_commit is not None:
                after_commit()
        except Exception as exc:  # a failed save must not kill the writer; the next one retries
            if keep and isinstance(job, SignalsJob):  # first: a ROLLBACK that raises ends the thread, which counts them
                self._keep_unsaved(job.rows)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.counters[f"failed_{kind}"] += 1
            self.failing[kind] = repr(exc)[:200]
            self._failure_log.log(kind, log.error, "store job failed", kind=kind, error=repr(exc)[:300], failed=self.counters[f"failed_{kind}"])
            return False
        self.counters[f"done_{kind}"] += 1
        if not (kind == "signals" and self._unsaved):
            self.failing.pop(kind, None)
        return True

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.counters["done_checkpoint"] += 1
        except sqlite3.Error as exc:  # the writer outlives a failed checkpoint: the next one retries
            self.counters["failed_checkpoint"] += 1
            self._failure_log.log("checkpoint", log.error, "store checkpoint failed", error=repr(exc)[:300], failed=self.counters["failed_checkpoint"])

    def _retention(self, conn: sqlite3.Connection, job: RetentionJob) -> None:
        """Chunks until none is full or the budget is spent; the first failure ends the job (a full disk: the next
        job, a save interval later, tries again), its failure counted and said like any job's."""
        deadline = time.monotonic() + RETENTION_BUDGET_S
        try:
            while True:
                before = conn.total_changes
                if not self._transaction(conn, "retention", job.chunk):
                    return
                deleted = conn.total_changes - before
                self.counters["retention_deleted"] += deleted
                self._checkpoint(conn)
                if deleted < RETENTION_CHUNK_ROWS or time.monotonic() > deadline:
                    return
        finally:
            job.done = True

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while True:
                try:  # while rows are kept, wake to retry them even if nothing is queued
                    item = self._queue.get(timeout=RETRY_UNSAVED_S if self._unsaved else None)
                except queue.Empty:
                    self._retry_unsaved(conn)
                    continue
                if item is _STOP:
                    self._retry_unsaved(conn, final=True)
                    return
                kind, job = item
                started = time.perf_counter()
                if job is checkpoint_job:  # must run outside a transaction; PASSIVE never blocks readers or the loop's writes
                    self._checkpoint(conn)
                elif isinstance(job, RetentionJob):
                    self._retention(conn, job)
                else:
                    self._transaction(conn, kind, job)
                self.counters[f"ms_{kind}"] = round((time.perf_counter() - started) * 1000, 3)
                # after the job, not before: a job taken from the queue is then committed or held before anything
                # (a ROLLBACK raising in a retry) can end the thread, which counts what is held as lost
                self._retry_unsaved(conn)
        finally:
            conn.close()
