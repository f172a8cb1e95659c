"""The signal journal: durable before publication, in SQLite after the writer, recovered after a death."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from quantumtrader.store import SignalCipher, SignalReader, Store
from quantumtrader.store.journal import SignalJournal, journal_files, read_journal
from tests.store.test_store import make_signal


def _stored_ids(db: Path) -> list[str]:
    with SignalReader(db) as reader:
        return sorted(reader.ids())


def test_a_journaled_signal_survives_a_process_that_never_closed_the_store(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)  # its writer never starts: as if killed before it inserted anything
    dead.journal_signals([make_signal(0), make_signal(1)])
    dead.journal_signals([make_signal(2)])
    assert [p.name for p in journal_files(db)] == ["qt.db.signals.000001.jnl"]
    assert _stored_ids(db) == []

    # the file's bytes are what the next process reads: no close, no flush of ours needed
    restarted = Store(db)
    assert restarted.recovered == 3
    assert journal_files(db) == []
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1", "s-test-2"]


def test_recovery_ignores_rows_already_inserted_and_skips_damaged_lines(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)
    rows = dead.journal_signals([make_signal(0), make_signal(1)])
    dead.signals.commit_rows(rows[:1])  # the writer got to the first one before the death
    path = dead.journal.path
    assert path is not None
    with path.open("ab") as f:
        f.write(b'["s-test-9", "EURUSD", 1, "BU')  # a line cut short
    assert len(read_journal(path)[0]) == 2 and read_journal(path)[1] == 1

    restarted = Store(db)
    assert restarted.recovered == 1  # only s-test-1 was new
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1"]


def test_rows_reach_sqlite_through_the_writer_and_the_retired_file_is_deleted(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    store = Store(db)
    store.start()
    store.queue_signals(store.journal_signals([make_signal(0)]))
    assert store.flush_signals()
    assert not store.flush_signals()  # nothing new kept
    store.rotate_journal()
    store.journal_signals([make_signal(1)])  # goes to the next file
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
        store.queue_signals(store.journal_signals([make_signal(n)]))
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
    dead.journal_signals([make_signal(0)])
    dead.journal.rotate()
    dead.journal_signals([make_signal(1)])
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl"]
    # a journal opened on files not yet recovered never writes into one of them
    SignalJournal(db).append([("s-x", "EURUSD", 1, "BUY", 0.9, "{}", 0)])
    assert [p.name[-10:] for p in journal_files(db)] == ["000001.jnl", "000002.jnl", "000003.jnl"]


def test_an_encrypted_store_journals_no_plaintext_prediction(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    db = tmp_path / "qt.db"
    dead = Store(db, cipher=SignalCipher(key))
    dead.journal_signals([make_signal(0, p=0.9)])
    path = dead.journal.path
    assert path is not None
    text = path.read_bytes()
    assert b"BUY" not in text and b"0.9" not in text
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
    rows = dead.journal_signals([sig], [body])
    path = dead.journal.path
    assert path is not None
    line = path.read_bytes()
    assert body in line and b'\\"' not in line  # embedded as the object, not escaped into a string
    back, damaged = read_journal(path)
    assert damaged == 0 and back == rows and back[0][5].encode() == body
    Store(db).close()
    with SignalReader(db) as reader:
        assert orjson.dumps(reader.signals()[0]) == body
