"""A database the daemon may not read or write is said to be a permissions problem, with no advice to move it.

Found by a review on 2026-12-05: a database under ``chmod 000`` or in a read-only data directory was reported
"damaged, or not this program's; move it out of the data directory to start afresh", advice that, followed,
throws away the order journal and the kill switch for a problem that a ``chown`` fixes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from quantumtrader.execution.journal import OrderJournal
from quantumtrader.store.db import StateFileError, opening
from tests.store.test_damaged_state import DATABASES, refused_start, stopped_data_dir


def _bound_by_file_modes(tmp_path: Path) -> list[str]:
    """The command prefix under which file modes bind a child process. Root ignores them (CAP_DAC_OVERRIDE), so as
    root ``setpriv`` drops that capability and CAP_DAC_READ_SEARCH from the child's bounding set: it stays root,
    the owner of every file here, and is refused what the owner's mode bits refuse. Skips where that cannot be had."""
    if sys.platform == "win32":
        pytest.skip("file modes do not refuse the owner on Windows")
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, without setpriv (util-linux) to give up CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        if subprocess.run([*prefix, sys.executable, "-c", f"open({str(probe)!r}).read()"], capture_output=True).returncode == 0:
            pytest.skip("cannot make file modes bind here (setpriv refused to drop the capability?)")
    finally:
        probe.chmod(0o644)
    return prefix


@pytest.mark.parametrize(
    ("what", "chmod", "named"),
    [
        ("orders.sqlite", 0o000, "orders.sqlite cannot be opened: permission denied (this process may not read and write it)"),
        # read-only, the store opened read-only without a word: the daemon ran, every save failing
        ("quantumtrader.db", 0o444, "quantumtrader.db cannot be opened: permission denied (this process may not read and write it)"),
        (".", 0o555, "orders.sqlite cannot be opened: permission denied (this process may not create files in its directory"),
    ],
)
def test_run_says_a_database_it_may_not_use_is_a_permissions_problem_and_keeps_it(tmp_path: Path, what: str, chmod: int, named: str) -> None:
    prefix = _bound_by_file_modes(tmp_path)
    data = tmp_path / "data"
    before = stopped_data_dir(data)
    target = data / what
    mode = target.stat().st_mode & 0o777
    target.chmod(chmod)
    try:
        output = refused_start(data, *prefix, QT_LOG__DIR="")  # no log files: a read-only directory would refuse them first
    finally:
        target.chmod(mode)
    assert named in output and "check the owner and mode" in output, output[-2000:]
    assert "move it" not in output and "damaged" not in output
    assert {name: (data / name).read_bytes() for name in DATABASES} == before  # both kept as they were


def test_sqlites_own_refusals_are_told_apart_and_only_damage_is_told_to_move_the_file(tmp_path: Path) -> None:
    """Where os.access cannot see the refusal (Windows' ACLs, a security module), SQLite's error kind tells: a
    write refused is a permissions problem, a lock another program holds past the busy timeout is neither."""
    path = tmp_path / "orders.sqlite"
    OrderJournal(path).close()
    read_only = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(StateFileError, match=r"permission denied \(this process was refused it or its directory: attempt to write a readonly database\)") as refused:
            with opening(path):
                read_only.execute("INSERT INTO risk_state (name, value) VALUES ('x', '{}')")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateFileError, match=r"orders.sqlite cannot be used now \(database is locked\)") as busy:
            with opening(path):
                waiter.execute("BEGIN IMMEDIATE")
        holder.execute("ROLLBACK")
    finally:
        for conn in (read_only, holder, waiter):
            conn.close()
    for said in (refused.value, busy.value):
        assert "move it" not in str(said) and "damaged" not in str(said)
