"""The data directory's private files (quantumtrader/sidecar/files.py) as Windows would open them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from quantumtrader.sidecar.files import create_private, write_private

#: A stand-in for Windows' O_BINARY, which Linux does not have: a bit no Linux open flag uses.
FAKE_O_BINARY = 1 << 30


def test_private_files_are_opened_in_binary_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a Windows review (2026-12-05): os.open without O_BINARY gives a text-mode descriptor there, and
    users.json was written with CRLF. Linux has no text mode, so a stand-in O_BINARY is set and every open of
    these files must carry it (the CRLF itself is not reproduced here)."""
    flags_seen: list[int] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        flags_seen.append(flags)
        return real_open(path, flags & ~FAKE_O_BINARY, mode, **kwargs)

    monkeypatch.setattr(os, "O_BINARY", FAKE_O_BINARY, raising=False)
    monkeypatch.setattr(os, "open", recording_open)
    write_private(tmp_path / "users.json", b'{\n  "users": {}\n}\n')
    assert create_private(tmp_path / "jwt_secret", b"ab" * 64)
    assert len(flags_seen) == 2 and all(flags & FAKE_O_BINARY for flags in flags_seen), flags_seen
    assert (tmp_path / "users.json").read_bytes() == b'{\n  "users": {}\n}\n'
