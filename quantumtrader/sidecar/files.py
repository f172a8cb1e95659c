"""Private files in the data directory (the JWT secret, the users file).

Created with ``os.open(..., 0o600)`` so no other local user can ever read
them, not even between creation and a later chmod. On Windows the mode only
controls the read-only bit; there the data directory's ACL (by default the
user's profile) is what protects them, so the 0600 is best-effort.

Each is written whole to a temporary file beside it and put in place in one
step, so a full disk or a crash never leaves one empty or cut.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

PRIVATE_MODE = 0o600


def _new_file(path: Path) -> int:
    """A write descriptor of a new file at ``path``, 0600. O_BINARY (Windows only): without it the descriptor is
    in text mode there, and every newline of users.json was written as CRLF."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_MODE)


def _written_beside(path: Path, data: bytes) -> Path:
    """A new temporary file beside ``path`` holding ``data``, synced; removed again if it cannot be written whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = _new_file(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600 (a crash leaves the old file or the new one)."""
    tmp = _written_beside(path, data)
    try:
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _replace(tmp: Path, path: Path) -> None:
    """``os.replace``, retried for a second on Windows, where it fails while another process has ``path`` open:
    the sidecar re-reads the users file right after each change, and a virus scanner opens every new file.
    A ``user add`` then printed a traceback."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if sys.platform != "win32" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` (0600) unless it exists. Returns whether it was created.

    Written whole to a temporary file first and then put in place in one step, as the users file is: created
    in place, a full disk left it empty, and every later start refused it ("fewer than 32 bytes") until
    someone deleted it. The step, unlike ``os.replace``, refuses a ``path`` that exists, so two processes
    starting at once (the daemon's sidecar and a CLI command) agree on one secret: the loser reads the winner's.
    """
    if path.exists():
        return False
    tmp = _written_beside(path, data)
    try:
        return _move_unless_there(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _move_unless_there(tmp: Path, path: Path) -> bool:
    """Move ``tmp`` to ``path`` in one step unless ``path`` exists; False when it does. Windows' rename refuses an
    existing target; POSIX's replaces it, so there a hard link is made (the caller removes ``tmp``)."""
    try:
        if os.name == "nt" or not _linked(tmp, path):
            os.rename(tmp, path)
    except FileExistsError:
        return False
    return True


def _linked(tmp: Path, path: Path) -> bool:
    """``os.link(tmp, path)``: FileExistsError when ``path`` exists, False on a file system without links (FAT, some
    network shares), where the caller renames after this look (a window of microseconds there alone)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if path.exists():
            raise FileExistsError(path) from None
        return False
    return True


def too_open(path: Path) -> bool:
    """True when group or others may read ``path`` (POSIX only; always False on Windows)."""
    if sys.platform == "win32":
        return False
    return bool(path.stat().st_mode & 0o077)
