"""The signal journal: durable before publication, in SQLite after the writer, recovered after a death."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from quantumtrader.store import SignalCipher, SignalReader, Store
from quantumtrader.store.journal import SignalJournal, journal_files, read_journal
from tests.store.test_store import make_signal
from support import FakeClock



def _journal(store: Store, signals: list[dict], bodies: list[bytes] | None = None) -> list[tuple]:
    """What the daemon does before publishing: the rows, appended to the journal."""
    rows = store.signals.rows(signals, bodies)
    store.journal.append(rows)
    return rows


def _die(store: Store) -> None:
    """A process that dies closes its files (Windows will not delete an open one); nothing else happens."""
    store.journal.rotate()


def _stored_ids(db: Path) -> list[str]:
    with SignalReader(db) as reader:
        return sorted(reader.ids())


def test_a_journaled_signal_survives_a_process_that_never_closed_the_store(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)  # its writer never starts: as if killed before it inserted anything
    _journal(dead, [make_signal(0), make_signal(1)])
    _journal(dead, [make_signal(2)])
    assert [p.name for p in journal_files(db)] == ["qt.db.signals.000001.jnl"]
    assert _stored_ids(db) == []

    _die(dead)  # no flush of ours: the bytes are the OS's once os.write returned
    restarted = Store(db)
    assert restarted.recovered == 3
    assert journal_files(db) == []
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1", "s-test-2"]


def test_recovery_ignores_rows_already_inserted_and_skips_damaged_lines(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)
    rows = _journal(dead, [make_signal(0), make_signal(1)])
    dead.signals.commit_rows(rows[:1])  # the writer got to the first one before the death
    path = dead.journal.path
    assert path is not None
    with path.open("ab") as f:
        f.write(b'["s-test-9", "EURUSD", 1, "BU')  # a line cut short
    assert len(read_journal(path)[0]) == 2 and read_journal(path)[1] == 1

    _die(dead)
    restarted = Store(db)
    assert restarted.recovered == 1  # only s-test-1 was new
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1"]


def test_rows_reach_sqlite_through_the_writer_and_the_retired_file_is_deleted(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    store = Store(db)
    store.start()
    store.queue_signals(_journal(store, [make_signal(0)]))
    assert store.flush_signals()
    assert not store.flush_signals()  # nothing new kept
    store.rotate_journal()
    _journal(store, [make_signal(1)])  # goes to the next file
    assert [p.name for p in journal_files(db)][-1] == "qt.db.signals.000002.jnl"
    assert store.close()
    assert store.writer.counters["done_signals"] == 1 and store.writer.counters["done_journal"] == 2
    assert journal_files(db) == []
    assert _stored_ids(db) == ["s-test-0", "s-test-1"]


def test_signals_dropped_from_a_full_writer_queue_still_reach_the_store(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    store = Store(db, queue_max=1)  # writer not started yet: the queue fills at once
    accepted = []
    for n in range(4):
        store.queue_signals(_journal(store, [make_signal(n)]))
        accepted.append(store.flush_signals())
    assert accepted == [True, False, False, False]
    assert store.writer.counters["dropped_signals"] == 3
    store.rotate_journal()  # the queue is still full: the file waits for the next chance
    assert len(journal_files(db)) == 1
    store.start()
    assert store.close()  # retires it (blocking) before stopping the writer
    assert _stored_ids(db) == [f"s-test-{n}" for n in range(4)]
    assert journal_files(db) == []


def test_new_files_are_numbered_after_the_ones_left_behind(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)
    _journal(dead, [make_signal(0)])
    dead.journal.rotate()
    _journal(dead, [make_signal(1)])
    _die(dead)
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl"]
    # a journal opened on files not yet recovered never writes into one of them
    other = SignalJournal(db)
    other.append([("s-x", "EURUSD", 1, "BUY", 0.9, "{}", 0)])
    other.rotate()
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl", "000003.jnl"]


def test_an_encrypted_store_journals_no_plaintext_prediction(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    db = tmp_path / "qt.db"
    dead = Store(db, cipher=SignalCipher(key))
    _journal(dead, [make_signal(0, p=0.9)])
    path = dead.journal.path
    assert path is not None
    text = path.read_bytes()
    assert b"BUY" not in text and b"0.9" not in text
    _die(dead)
    restarted = Store(db, cipher=SignalCipher(key))
    restarted.close()
    raw = sqlite3.connect(db).execute("SELECT prediction, encrypted FROM signals").fetchall()
    assert raw == [(None, 1)]
    with SignalReader(db, SignalCipher(key)) as reader:
        assert reader.signals()[0]["prediction"] == "BUY"


def test_a_plaintext_signal_is_journaled_as_its_json_and_read_back_byte_for_byte(tmp_path: Path) -> None:
    import orjson

    db = tmp_path / "qt.db"
    sig = make_signal(0)
    body = orjson.dumps(sig)  # what the daemon publishes on the feed too
    dead = Store(db)
    rows = _journal(dead, [sig], [body])
    path = dead.journal.path
    assert path is not None
    line = path.read_bytes()
    assert body in line and b'\\"' not in line  # embedded as the object, not escaped into a string
    back, damaged = read_journal(path)
    assert damaged == 0 and back == rows and back[0][5].encode() == body
    _die(dead)
    Store(db).close()
    with SignalReader(db) as reader:
        assert orjson.dumps(reader.signals()[0]) == body


def test_a_failed_write_closes_the_file_so_the_next_batch_is_not_glued_to_a_cut_line(tmp_path: Path, monkeypatch) -> None:
    import errno
    import os

    from quantumtrader.store import journal as journal_module

    db = tmp_path / "qt.db"
    dead = Store(db)
    clock = FakeClock()
    dead.journal = SignalJournal(db, clock=clock)
    _journal(dead, [make_signal(0)])
    real_write = os.write

    def half_then_full_disk(fd: int, data: memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "write", half_then_full_disk)
    try:
        _journal(dead, [make_signal(1)])
        raise AssertionError("the failed write must raise")
    except OSError:
        pass
    monkeypatch.setattr(journal_module.os, "write", real_write)
    clock.now += journal_module.RETRY_AFTER_FAILURE_S
    _journal(dead, [make_signal(2)])  # published after the failure: must survive
    names = [p.name[-10:] for p in journal_files(db)]
    assert names == ["000001.jnl", "000002.jnl"]
    _die(dead)
    restarted = Store(db)
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-2"]  # s-test-1 was never durable (and never published)


def test_after_a_failure_the_journal_pauses_instead_of_starting_a_file_per_batch(tmp_path: Path, monkeypatch) -> None:
    import errno

    from quantumtrader.store import journal as journal_module

    db = tmp_path / "qt.db"
    clock = FakeClock()
    journal = SignalJournal(db, clock=clock)
    store = Store(db)
    rows = store.signals.rows([make_signal(0)])

    def full_disk(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "write", full_disk)
    try:
        journal.append(rows)
        raise AssertionError("the failed write must raise")
    except OSError as exc:
        assert not isinstance(exc, journal_module.JournalPaused)
    for _ in range(100):  # an emitting batch after another, within the pause
        clock.now += journal_module.RETRY_AFTER_FAILURE_S / 200
        try:
            journal.append(rows)
            raise AssertionError("a paused journal must raise")
        except journal_module.JournalPaused:
            pass
    assert len(journal_files(db)) == 1  # no new file while paused
    clock.now += journal_module.RETRY_AFTER_FAILURE_S / 2 + 0.01
    try:
        journal.append(rows)  # the pause is over: tried again, fails again
        raise AssertionError("the failed write must raise")
    except OSError as exc:
        assert not isinstance(exc, journal_module.JournalPaused)
    assert len(journal_files(db)) == 2
    monkeypatch.undo()
    clock.now += journal_module.RETRY_AFTER_FAILURE_S
    journal.append(rows)  # the disk has room again
    assert journal.path is not None and journal.path.stat().st_size > 0
    journal.rotate()
    store.close()


def test_retirement_does_not_read_a_file_whose_rows_the_writer_already_inserted(tmp_path: Path, monkeypatch) -> None:
    from quantumtrader.store import journal as journal_module

    db = tmp_path / "qt.db"
    store = Store(db)
    store.start()
    store.queue_signals(_journal(store, [make_signal(n) for n in range(50)]))
    reads: list[Path] = []
    real_read = journal_module.read_journal
    monkeypatch.setattr(journal_module, "read_journal", lambda path: reads.append(path) or real_read(path))
    store.rotate_journal()  # flushes the rows to the writer first, then retires the file
    assert store.close()
    assert reads == [] and journal_files(db) == []
    assert len(_stored_ids(db)) == 50


def test_close_does_not_hang_when_the_writer_is_not_running(tmp_path: Path) -> None:
    import time

    store = Store(tmp_path / "qt.db", queue_max=1)  # never started
    store.queue_signals(_journal(store, [make_signal(0)]))
    store.flush_signals()  # fills the queue
    _journal(store, [make_signal(1)])
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 2.0
    assert len(journal_files(tmp_path / "qt.db")) == 1  # left for the next start, which recovers it
    restarted = Store(tmp_path / "qt.db")
    restarted.close()
    assert _stored_ids(tmp_path / "qt.db") == ["s-test-0", "s-test-1"]
