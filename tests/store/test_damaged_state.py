"""The daemon's own state files, damaged (a full disk, a power cut, a bad copy, a person): nothing in them is
lost or rewritten without a word, and nothing a halted trader relies on is taken for "all clear".

Each case was found by a review on 2026-12-04 that damaged every file of a data directory and restarted."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from quantumtrader.execution.journal import OrderJournal
from quantumtrader.store import Store
from quantumtrader.store.db import StateFileError
from quantumtrader.store.journal import journal_files
from support import Endpoints, control, daemon_process
from tests.store.test_journal import _die, _journal, _stored_ids
from tests.store.test_store import make_signal

#: The daemon's two databases in its data directory.
DATABASES = ("quantumtrader.db", "orders.sqlite")


def test_an_empty_or_foreign_database_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """SQLite takes an empty file for a new database: a cut orders.sqlite came back with no orders to
    reconcile and the kill switch off, a cut store with no signals, both without a word."""
    for make in (Store, OrderJournal):
        empty = tmp_path / f"empty-{make.__name__}.sqlite"
        empty.write_bytes(b"")
        with pytest.raises(StateFileError, match="is empty"):
            make(empty)
        assert empty.stat().st_size == 0  # not made into a fresh database
        foreign = tmp_path / f"foreign-{make.__name__}.sqlite"
        foreign.write_bytes(b"not a database, " * 1000)
        with pytest.raises(StateFileError, match="cannot be used"):
            make(foreign)
        assert foreign.read_bytes() == b"not a database, " * 1000
    # tables there but their schema version gone (a hand edit): refused, not "table orders already exists"
    path = tmp_path / "orders.sqlite"
    OrderJournal(path).close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM schema_version")
    db.commit()
    db.close()
    with pytest.raises(StateFileError, match="orders.sqlite cannot be used"):
        OrderJournal(path)


def test_run_refuses_a_cut_order_journal_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    OrderJournal(data / "orders.sqlite").close()
    (data / "orders.sqlite").write_bytes(b"")
    assert "orders.sqlite is empty" in refused_start(data)
    assert (data / "orders.sqlite").stat().st_size == 0


def stopped_data_dir(data: Path) -> dict[str, bytes]:
    """Both databases as a stopped daemon leaves them (a saved model state, a saved kill switch) and its lock file
    (a read-only directory must not fail at the lock file first); the databases' bytes by name."""
    import numpy as np

    from quantumtrader.store.lock import DataDirLock

    store = Store(data / "quantumtrader.db")
    store.start()
    store.save_state("pipeline", 1, {"w": np.arange(1000, dtype=np.float64)}, final=True)
    assert store.close()
    journal = OrderJournal(data / "orders.sqlite")
    journal.save_risk({"kill_switch": True, "day": 0, "day_start_equity": {}})
    journal.close()
    lock = DataDirLock(data)
    lock.acquire()
    lock.release()
    return {name: (data / name).read_bytes() for name in DATABASES}


def refused_start(data: Path, *prefix: str, **env: str) -> str:
    """``qt-daemon run`` on ``data`` (after ``prefix``: a command it runs under), which must refuse to start as a
    StateFileError does: exit 2, "cannot start", no traceback. What it said."""
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "quantumtrader", "run", "--no-sidecar"], env=Endpoints().env(data, **env), capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    assert "cannot start" in output and "Traceback" not in output, output[-2000:]
    return output


def _overwrite_root_page(db: Path, table: str) -> bytes:
    """``table``'s first page overwritten with 0xFF bytes (SQLite: "database disk image is malformed"), as a bad
    sector or a bad copy leaves it: the schema and its version still read, so the open and the migration pass and
    the first read of ``table`` meets the damage. The file's bytes after."""
    conn = sqlite3.connect(db)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    return db.read_bytes()


@pytest.mark.parametrize(
    ("file_name", "table"),
    [
        ("quantumtrader.db", "model_state"),  # the store's load_state
        ("orders.sqlite", "orders"),  # the order journal's unsettled orders
        ("orders.sqlite", "risk_state"),  # the order journal's saved kill switch
    ],
)
def test_run_refuses_a_damaged_page_its_first_reads_meet_naming_the_file(tmp_path: Path, file_name: str, table: str) -> None:
    """Only the open and the migration were covered: a damaged page met by the first reads was a traceback and exit 1,
    which a service manager restarts forever (a review, 2026-12-05)."""
    data = tmp_path / "data"
    stopped_data_dir(data)
    damaged = _overwrite_root_page(data / file_name, table)
    output = refused_start(data)
    assert f"{file_name} cannot be used (database disk image is malformed)" in output, output[-2000:]
    assert (data / file_name).read_bytes() == damaged  # nothing in it touched


def test_a_damaged_risk_state_halts_trading_until_an_operator_lifts_it(tmp_path: Path) -> None:
    """Read as "never saved", a damaged row resumed trading an operator had halted, then was overwritten."""
    data = tmp_path / "data"
    journal = OrderJournal(data / "orders.sqlite")
    journal.save_risk({"kill_switch": True, "day": 0, "day_start_equity": {}})
    journal.close()
    db = sqlite3.connect(data / "orders.sqlite")
    db.execute("UPDATE risk_state SET value = substr(value, 1, 10)")
    db.commit()
    db.close()
    eps = Endpoints()
    with daemon_process(eps, tmp_path):
        risk = control(eps.control, "risk")
        assert risk["kill_switch"] is True and risk["state"] == "halted", risk
        lifted = control(eps.control, "risk", kill_switch=False, source="test")
        assert lifted["kill_switch"] is False
    assert "saved risk state unreadable" in (tmp_path / "daemon.log").read_text()


def test_a_damaged_journal_file_gives_up_its_readable_signals_and_is_kept_beside(tmp_path: Path) -> None:
    db = tmp_path / "qt.db"
    dead = Store(db)
    _journal(dead, [make_signal(0), make_signal(1)])
    journal = dead.journal
    # a line that parses but would not bind (a dict as the symbol): every start failed on it
    bad = b'["x-1",{"a":1},1,null,null,"{}",0]\n'
    journal._map[journal._end : journal._end + len(bad)] = bad
    first = journal.path
    _die(dead)
    restarted = Store(db)
    assert restarted.recovered == 2
    restarted.close()
    assert _stored_ids(db) == ["s-test-0", "s-test-1"]
    assert journal_files(db) == [] and first is not None and first.with_name(first.name + ".damaged").is_file()

    # cut short (a bad copy): the rows past the cut leave no line to count, so the size tells
    db2 = tmp_path / "qt2.db"
    dead = Store(db2)
    rows = _journal(dead, [make_signal(i) for i in range(3)])
    path = dead.journal.path
    assert path is not None
    _die(dead)
    whole = path.read_bytes()
    path.write_bytes(whole[: whole.index(rows[1][0].encode()) + 10])  # inside the second row
    restarted = Store(db2)
    assert restarted.recovered == 1
    restarted.close()
    assert path.with_name(path.name + ".damaged").read_bytes() == whole[: whole.index(rows[1][0].encode()) + 10]


def test_a_journal_file_made_but_not_yet_filled_when_the_process_died_is_removed_not_kept(tmp_path: Path) -> None:
    """A kill -9 soak (2026-12-05): a process killed while a new file was being made (created, then filled with
    zeros) left it short and empty; kept as .damaged with a warning that its signals may exist nowhere else, one
    more file at every such kill. Zeros hold no signal: removed. A short file with a row in it is still kept."""
    db = tmp_path / "qt.db"
    dead = Store(db)
    _journal(dead, [make_signal(0)])
    path = dead.journal.path
    assert path is not None
    _die(dead)
    whole = path.read_bytes()
    empty = path.with_name(path.name.replace(".000001.", ".000002."))
    empty.write_bytes(b"\0" * 4096)  # created and partly zero-filled: no row ever written
    zero = path.with_name(path.name.replace(".000001.", ".000003."))
    zero.write_bytes(b"")  # created, killed before the first byte
    path.write_bytes(whole[: len(whole) // 2])  # a short file that holds a row: damage, kept
    restarted = Store(db)
    restarted.close()
    assert _stored_ids(db) == ["s-test-0"]
    leftovers = sorted(p.name for p in db.parent.iterdir() if ".jnl" in p.name)
    assert leftovers == [path.name + ".damaged"], leftovers


def test_a_second_damaged_journal_file_of_the_same_name_never_replaces_the_first(tmp_path: Path) -> None:
    """A kept file no longer counts when files are numbered, so the next process's first file has the kept one's
    name: cut too, it was renamed over the first's evidence (signals that may exist nowhere else)."""
    db = tmp_path / "qt.db"
    kept = []
    for n in range(2):
        dead = Store(db)
        rows = _journal(dead, [make_signal(10 * n + i) for i in range(3)])
        path = dead.journal.path
        assert path is not None
        _die(dead)
        whole = path.read_bytes()
        kept.append(whole[: whole.index(rows[1][0].encode()) + 10])
        path.write_bytes(kept[-1])
        Store(db).close()
    assert kept[0] != kept[1]
    assert path.with_name(path.name + ".damaged").read_bytes() == kept[0]
    assert path.with_name(path.name + ".damaged.2").read_bytes() == kept[1]


def test_a_clean_close_leaves_everything_in_the_database_file(tmp_path: Path) -> None:
    """The last signals and the final model save stayed in -wal: a copy of the database file alone lacked them."""
    db = tmp_path / "qt.db"
    store = Store(db)
    store.start()
    _journal(store, [make_signal(i) for i in range(5)])
    store.queue_signals(store.signals.rows([make_signal(i) for i in range(5)]))
    sidecar = sqlite3.connect(db)  # the sidecar's reader stays open: SQLite's own checkpoint at the last close never came
    sidecar.execute("SELECT count(*) FROM signals").fetchone()
    copy = tmp_path / "copy.db"
    try:
        assert store.close()
        copy.write_bytes(db.read_bytes())  # the database file alone, as it is once the daemon has stopped
    finally:
        sidecar.close()
    assert _stored_ids(copy) == [f"s-test-{i}" for i in range(5)]


def test_a_saved_model_state_that_cannot_be_unpacked_means_a_cold_start_not_no_start(tmp_path: Path) -> None:
    """Flipped bytes in the saved state raised zipfile.BadZipFile (Bad CRC-32) from the daemon's start-up."""
    import numpy as np

    db = tmp_path / "qt.db"
    store = Store(db)
    store.start()
    store.save_state("pipeline", 1, {"w": np.arange(1000, dtype=np.float64)}, final=True)
    assert store.close()
    conn = sqlite3.connect(db)
    (body,) = conn.execute("SELECT body FROM model_state WHERE name = 'pipeline'").fetchone()
    flipped = bytearray(body)
    for i in range(200, len(flipped) - 200, 50):
        flipped[i] ^= 0xFF
    conn.execute("UPDATE model_state SET body = ? WHERE name = 'pipeline'", (bytes(flipped),))
    conn.commit()
    conn.close()
    restarted = Store(db)
    try:
        assert restarted.load_state("pipeline") is None
    finally:
        restarted.close()
