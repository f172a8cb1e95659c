"""The sidecar's view of the users file while it cannot be read (quantumtrader/sidecar/users.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantumtrader.sidecar.users import USERS_FILE, UserError, UserStore


def test_a_users_file_that_cannot_be_read_for_a_moment_keeps_the_users_read_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a Windows review (2026-12-05): when stat() succeeded and the read failed (a sharing violation from a
    backup or antivirus tool, or the instant of the CLI's os.replace), the store recorded the new mtime with no
    users, and every token got 401 until users.json changed again. Simulated: the read raises PermissionError."""
    sidecar = UserStore(tmp_path)
    UserStore(tmp_path).add("alice", "viewer", "a long password")  # the CLI's own store, as `user add` has
    assert sidecar.get("alice") is not None
    UserStore(tmp_path).add("bob", "viewer", "a long password")
    users = tmp_path / USERS_FILE
    os.utime(users, ns=(users.stat().st_atime_ns, users.stat().st_mtime_ns + 1_000_000))  # a new version, whatever the clock's grain
    real_read = Path.read_bytes

    def held_by_another_process(path: Path) -> bytes:
        if path.name == USERS_FILE:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", held_by_another_process)
    assert sidecar.get("alice") is not None  # the users read before, not nobody
    with pytest.raises(UserError, match="cannot be read"):  # nor is a change saved from what may be out of date
        sidecar.check()
    monkeypatch.undo()
    assert sidecar.get("bob") is not None  # read again as soon as it can be, though the file has not changed since
    sidecar.check()
