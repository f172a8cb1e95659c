"""The signal journal: durable before publication, in SQLite after the writer, recovered after a death."""

from __future__ import annotations

import errno
import sqlite3
import sys
import threading
from pathlib import Path

import orjson
import pytest

from quantumtrader.store import SignalCipher, SignalReader, Store
from quantumtrader.store import journal as journal_module
from quantumtrader.store.journal import SignalJournal, journal_files, read_journal
from tests.store.test_store import make_signal
from support import FakeClock


def _journal(store: Store, signals: list[dict], bodies: list[bytes] | None = None) -> list[tuple]:
    """What the daemon does before publishing: the rows, appended to the journal."""
    rows = store.signals.rows(signals, bodies)
    store.journal.append(rows)
    return rows


def _die(store: Store) -> None:
    """What a kill -9 leaves: the OS unmaps and closes the open journal file (Windows will not delete an
    open one), which keeps its size and the zeros after the last row; nothing else happens."""
    journal = store.journal
    journal.rotate()  # closing is all the OS does; the file keeps its size, as a kill -9 leaves it
    if journal._helper is not None:  # its spare file, if any, is left as a dead process leaves it
        journal._helper.shutdown(wait=True)


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

    assert journal_files(db)[0].stat().st_size == journal_module.CHUNK_BYTES  # zeros after the rows
    _die(dead)  # no flush, no msync: the bytes are the OS's once the copy into the mapping is done
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
    cut = b'["s-test-9", "EURUSD", 1, "BU'  # a line cut short: the process died inside the copy
    dead.journal._map[dead.journal._end : dead.journal._end + len(cut)] = cut
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
    other.close()
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl", "000003.jnl"]


def test_an_encrypted_store_journals_no_plaintext_prediction(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    db = tmp_path / "qt.db"
    dead = Store(db, cipher=SignalCipher(key))
    _journal(dead, [make_signal(0, p=0.9)])
    path = dead.journal.path
    assert path is not None
    # No plaintext prediction: asked as "no BUY in the file", this failed 0.2 % of the time (a helper's 20,000 runs),
    # the Fernet token being random base64 that holds any three letters by chance. A quote cannot be in a token.
    text = path.read_bytes()
    assert b'"BUY"' not in text and b"0.9" not in text
    (row,) = read_journal(path)[0]
    assert row[3] is None and row[4] is None and row[6] == 1
    assert orjson.loads(Fernet(key.encode()).decrypt(row[5].encode()))["prediction"] == "BUY"
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


def _full_disk(fd: int, size: int) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_file_goes_on_in_the_next_and_a_full_disk_loses_only_what_was_never_published(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)
    clock = FakeClock()
    dead.journal = SignalJournal(db, clock=clock)
    line = len(journal_module.journal_line(dead.signals.rows([make_signal(0)])[0]))
    monkeypatch.setattr(journal_module, "CHUNK_BYTES", 2 * line + line // 2)  # two rows a file
    for n in range(3):
        _journal(dead, [make_signal(n)])
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl"]  # the third opened the second

    _journal(dead, [make_signal(3)])  # the second file's second row: no allocation
    with monkeypatch.context() as full:
        full.setattr(journal_module, "_zero_fill", _full_disk)
        with pytest.raises(OSError) as failed:
            _journal(dead, [make_signal(4)])  # needs a third file: the disk is full
    assert not isinstance(failed.value, journal_module.JournalPaused)
    assert len(journal_files(db)) == 2  # the file that could not be made is not left behind
    clock.now += journal_module.RETRY_AFTER_FAILURE_S
    _journal(dead, [make_signal(5)])  # published after the failure: must survive
    _journal(dead, [make_signal(n) for n in range(6, 12)])  # more than a file holds: goes on in the next files
    assert len(journal_files(db)) == 6  # 0-1, 2-3, then 5-6, 7-8, 9-10, 11
    _die(dead)
    restarted = Store(db)
    restarted.close()
    assert _stored_ids(db) == sorted(f"s-test-{n}" for n in (0, 1, 2, 3, 5, *range(6, 12)))  # s-test-4 was never published


def test_after_a_failure_the_journal_pauses_instead_of_trying_the_disk_every_batch(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "qt.db"
    clock = FakeClock()
    journal = SignalJournal(db, clock=clock)
    store = Store(db)
    rows = store.signals.rows([make_signal(0)])
    tries: list[int] = []

    def full_disk(fd: int, size: int) -> None:
        tries.append(size)
        _full_disk(fd, size)

    monkeypatch.setattr(journal_module, "_zero_fill", full_disk)
    with pytest.raises(OSError) as failed:
        journal.append(rows)
    assert not isinstance(failed.value, journal_module.JournalPaused)
    for _ in range(100):  # an emitting batch after another, within the pause
        clock.now += journal_module.RETRY_AFTER_FAILURE_S / 200
        with pytest.raises(journal_module.JournalPaused, match="No space left on device"):
            journal.append(rows)
    assert len(tries) == 1 and journal_files(db) == []  # the disk not tried again, no file left
    clock.now += journal_module.RETRY_AFTER_FAILURE_S / 2 + 0.01
    with pytest.raises(OSError) as failed:
        journal.append(rows)  # the pause is over: tried again, fails again
    assert not isinstance(failed.value, journal_module.JournalPaused)
    assert len(tries) == 2
    monkeypatch.undo()
    clock.now += journal_module.RETRY_AFTER_FAILURE_S
    journal.append(rows)  # the disk has room again
    assert journal.path is not None
    journal.rotate()
    assert read_journal(journal_files(db)[0]) == (rows, 0)
    store.close()


@pytest.mark.parametrize(("chunk_pages", "ahead_pages", "batches", "per_batch"), [(None, None, 30, 1), (16, 4, 400, 1), (16, 4, 60, 20)])
def test_between_batches_the_loop_moves_to_a_file_made_on_the_helper_thread(tmp_path: Path, monkeypatch, chunk_pages, ahead_pages, batches, per_batch) -> None:
    """As the daemon's loop does: prepare() after each batch, time between batches. Every file is made
    off the loop's thread, and after the first no append has to open one: prepare() moved to the next
    file when the open one was nearly full."""
    db = tmp_path / "qt.db"
    store = Store(db)
    line = len(journal_module.journal_line(store.signals.rows([make_signal(0)])[0]))
    page = journal_module._PAGE
    chunk = 8 * line if chunk_pages is None else chunk_pages * page  # files of a page or less, or of 16 pages
    monkeypatch.setattr(journal_module, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(journal_module, "TOUCH_AHEAD_BYTES", 3 * line if ahead_pages is None else ahead_pages * page)
    made_on: list[str] = []
    opened_by: list[str] = []
    real_prepare, real_next = journal_module._prepare_file, SignalJournal._next_file

    def prepare_file(path: Path, size: int):
        made_on.append(threading.current_thread().name)
        return real_prepare(path, size)

    def next_file(self: SignalJournal) -> None:
        opened_by.append(sys._getframe(1).f_code.co_name)
        real_next(self)

    monkeypatch.setattr(journal_module, "_prepare_file", prepare_file)
    monkeypatch.setattr(SignalJournal, "_next_file", next_file)
    journal = store.journal
    journal.prepare()  # long before the first signal
    written = []
    for n in range(batches):  # per_batch 20: bursts of ~9 KB, more than the page a pass touches
        written += _journal(store, [make_signal(n * per_batch + k) for k in range(per_batch)])
        journal.prepare()
        assert journal._spare is not None
        journal._spare[1].result()  # the time between batches, in which the helper makes the next file
    journal.rotate()
    files = journal_files(db)
    counts = [len(read_journal(p)[0]) for p in files]
    assert len(files) >= 3 and counts[-1] == 0, counts  # the last: the spare, all zeros
    assert opened_by == ["append"] + ["prepare"] * (len(files) - 2), opened_by
    assert made_on and all(name.startswith("qt-journal") for name in made_on), made_on
    assert all(p.stat().st_size == chunk for p in files)  # not cut: zeros after the rows
    assert [row for p in files for row in read_journal(p)[0]] == written  # no touch ever wrote over a row
    store.close()
    assert len(journal_files(db)) == len(files) - 1  # the spare deleted at close
    journal.prepare()  # after close: nothing, no new file
    with pytest.raises(OSError, match="closed"):
        journal.append(written[:1])
    assert len(journal_files(db)) == len(files) - 1


def test_a_spare_that_failed_in_the_background_is_made_again_after_the_pause(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "qt.db"
    store = Store(db)
    clock = FakeClock()
    store.journal = journal = SignalJournal(db, clock=clock)
    _journal(store, [make_signal(0)])  # the first file, made at the first append
    with monkeypatch.context() as full:
        full.setattr(journal_module, "_zero_fill", _full_disk)
        journal.prepare()  # asks for the spare: the disk is full
        assert journal._spare is not None
        with pytest.raises(OSError):
            journal._spare[1].result()
    journal.prepare()  # sees the failure: dropped, no new try during the pause
    assert journal._spare is None
    _journal(store, [make_signal(1)])  # the open file still takes rows meanwhile
    journal.prepare()
    assert journal._spare is None
    clock.now += journal_module.RETRY_AFTER_FAILURE_S
    journal.prepare()  # after the pause: made again
    assert journal._spare is not None
    journal._spare[1].result()
    journal.prepare()  # sound: the earlier failure cost no batch and is not raised later
    journal.rotate()
    _journal(store, [make_signal(2)])
    store.close()  # its writer never ran: the files are left for the next start
    Store(db).close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1", "s-test-2"]


def test_a_failure_between_batches_is_raised_as_itself_by_the_append_that_needed_the_file(tmp_path: Path, monkeypatch) -> None:
    """The daemon counts an append's OSError as an error and JournalPaused as a batch refused during the
    pause: a full disk found by prepare() must still show as an error, once, then as the pause."""
    db = tmp_path / "qt.db"
    clock = FakeClock()
    journal = SignalJournal(db, clock=clock)
    rows = Store(db).signals.rows([make_signal(0)])
    with monkeypatch.context() as full:
        full.setattr(journal_module, "_zero_fill", _full_disk)
        journal.prepare()  # as Store.start does: the first file asked for, and it fails
        assert journal._spare is not None
        with pytest.raises(OSError):
            journal._spare[1].result()
        journal.prepare()  # the loop's next pass finds the failure first
    with pytest.raises(OSError, match="No space left") as first:
        journal.append(rows)
    assert not isinstance(first.value, journal_module.JournalPaused)
    with pytest.raises(journal_module.JournalPaused):
        journal.append(rows)
    journal.close()


def test_retirement_does_not_read_a_file_whose_rows_the_writer_already_inserted(tmp_path: Path, monkeypatch) -> None:
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
