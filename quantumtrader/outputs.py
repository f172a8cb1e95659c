"""Output files a command promises (``--json``, ``--plot``, ``--out``): checked before its work, not after.

Why: ``qt-daemon evaluate`` and the benchmarks run for minutes; an output
path that is a directory, lies under a regular file or names a format the
plot cannot write used to fail only when the result was written, with a
traceback and the result lost. Both CLIs call these before anything runs and
turn a problem into a usage error (exit 2) naming the option.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

#: What the plots can be written as (matplotlib's backends without extras).
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _writable_dir_problem(directory: Path) -> str | None:
    if directory.exists() and not directory.is_dir():
        return f"cannot write in {directory}: it is not a directory"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):  # os.access says little on Windows or under root
            pass
    except OSError as exc:
        return f"cannot write in {directory}: {exc.strerror or exc}"
    return None


def output_file_problem(path: Path, suffixes: tuple[str, ...] = ()) -> str | None:
    """Why ``path`` cannot take the file a command will write there (None: it can); makes its directory."""
    if path.is_dir():
        return f"{path} is a directory; give a file name"
    if suffixes and path.suffix.lower() not in suffixes:
        return f"{path}: the name must end in {', '.join(suffixes)} (the format is taken from it)"
    return _writable_dir_problem(path.parent)


def output_dir_problem(path: Path) -> str | None:
    """Why files cannot be written under ``path`` (None: they can); makes it."""
    return _writable_dir_problem(path)
