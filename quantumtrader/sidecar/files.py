"""Private files in the data directory (the JWT secret, the users file).

Created with ``os.open(..., 0o600)`` so no other local user can ever read
them, not even between creation and a later chmod. On Windows the mode only
controls the read-only bit; there the data directory's ACL (by default the
user's profile) is what protects them, so the 0600 is best-effort.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600 (a crash leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
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

    ``O_EXCL`` makes two processes starting at once (daemon's sidecar and a CLI
    command) agree on one secret: the loser reads the winner's file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def too_open(path: Path) -> bool:
    """True when group or others may read ``path`` (POSIX only; always False on Windows)."""
    if sys.platform == "win32":
        return False
    return bool(path.stat().st_mode & 0o077)
