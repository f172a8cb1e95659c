"""Where Numba keeps its compiled kernels (``cache=True``), decided before anything compiles.

Rule: an explicit ``NUMBA_CACHE_DIR`` in the environment always wins.
Otherwise the cache goes to ``<data dir>/numba-cache``: always writable by
the daemon's user (site-packages often is not, on a VPS or in a system
Python), kept with the rest of the daemon's state, and the same directory on
every start so the second start loads instead of compiling. Numba fixes a
kernel's cache location when the kernel is decorated, i.e. when its module is
imported, so this must run before ``quantumtrader.features.kernel`` (or any
other kernel module) is imported; :func:`ensure_numba_cache_dir` is idempotent.

Inside that directory the kernels go to ``k-<hash of the kernels' sources>``.
Numba checks a cached kernel against its own file's time stamp only, so an
edit to a function it inlines from another file (the models' policy or
learners, say) left the old machine code in use: a stale kernel that passed
for the new one. Keyed by every kernel source file, any edit gets a fresh
directory (old ones are left; each is a few MB).
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


_KERNEL_PACKAGES = ("features", "models")  # every module with @njit(cache=True) lives in these


def _kernel_sources() -> Iterator[tuple[str, Path]]:
    """(package, source file) of every module that may hold a cached kernel, in a fixed order."""
    root = Path(__file__).resolve().parents[1]
    for package in _KERNEL_PACKAGES:
        for source in sorted((root / package).glob("*.py")):
            yield package, source


def sources_key() -> str:
    """``k-`` and 12 hex digits of a hash over the kernel packages' sources (names and bytes)."""
    digest = hashlib.sha256()
    for _, source in _kernel_sources():
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return "k-" + digest.hexdigest()[:12]


def numba_cache_path(data_dir: Path | str) -> Path:
    """The keyed directory the kernels compile into: inside NUMBA_CACHE_DIR if set, else the data directory."""
    key = sources_key()
    current = os.environ.get("NUMBA_CACHE_DIR")
    base = Path(current).expanduser() if current else Path(data_dir).expanduser() / "numba-cache"
    return base if base.name == key else base / key


def check_numba_cache_dir(data_dir: Path | str) -> Path:
    """Create the keyed directory and prove it writable (without importing Numba); OSError if it is not.

    The CLI calls this before a command that compiles kernels, so a bad NUMBA_CACHE_DIR or data directory
    is a clear error naming it, not a traceback from deep in the daemon's start-up."""
    path = numba_cache_path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    return path


def ensure_numba_cache_dir(data_dir: Path | str) -> Path:
    """Point NUMBA_CACHE_DIR at the keyed directory (inside an explicit one, if set) and create it. Returns it."""
    path = numba_cache_path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(path)  # child processes inherit the keyed directory
    try:  # numba itself may be imported already: its config copied the variable at import
        import numba.core.config as numba_config

        numba_config.CACHE_DIR = str(path)
    except ImportError:  # pragma: no cover
        pass
    return path


#: Written into the keyed cache directory once every kernel is in it (by the child compile or the daemon's warm-up).
COMPLETE_MARKER = "kernels-complete"


def sources_stamp() -> str:
    """Each kernel source file's modification time and size: what Numba checks a cached kernel against besides its
    types. A reinstall that rewrites the files with the same content keeps the directory's key (:func:`sources_key`)
    but not these, and Numba compiles those kernels again."""
    lines = []
    for package, source in _kernel_sources():
        stat = source.stat()
        lines.append(f"{package}/{source.name} {stat.st_mtime_ns} {stat.st_size}")
    return "\n".join(lines)


def cache_complete(path: Path) -> bool:
    """Whether the keyed cache directory holds every kernel for these very source files: a first compile cut short
    leaves some (and no marker); a reinstall that rewrote the sources leaves kernels Numba will not load (a review)."""
    try:
        return (path / COMPLETE_MARKER).read_text(encoding="utf-8") == sources_stamp()
    except (OSError, UnicodeDecodeError):
        return False


def mark_cache_complete() -> None:
    """After a warm-up that compiled or loaded every kernel into the current NUMBA_CACHE_DIR (a write that fails
    only means the next start checks again)."""
    directory = os.environ.get("NUMBA_CACHE_DIR")
    if directory:
        try:
            (Path(directory) / COMPLETE_MARKER).write_text(sources_stamp(), encoding="utf-8")
        except OSError:
            pass


def compiled_here() -> int:
    """How many kernel overloads this process compiled rather than loaded from the cache (Numba's own counts).

    Over the kernels imported so far (every ``@njit`` dispatcher in the kernel packages' loaded modules);
    the daemon logs it after its warm-up: 0 when its kernels came from the cache."""
    import sys

    from numba.core.dispatcher import Dispatcher

    prefixes = tuple(f"quantumtrader.{package}." for package in _KERNEL_PACKAGES)
    missed = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(prefixes):
            continue
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.__module__ == name:  # each kernel once, in its own module
                missed += sum(value.stats.cache_misses.values())
    return missed


def clear_numba_cache() -> int:
    """Delete damaged compiled kernels in the current keyed cache directory; how many files went.

    For a damaged cache: a file cut by a power cut during a first compile made
    every later start fail inside Numba's loader (EOFError: "Aborted.") until a
    person found and deleted the directory. An index (``*.nbi``) that does not
    unpickle goes with its code files (``*.nbc``), so only those kernels are
    compiled again; when every index reads (the damage is in a code file), all
    go. The files are derived, never data: the next compile writes them again."""
    directory = os.environ.get("NUMBA_CACHE_DIR")
    if not directory:
        return 0
    (Path(directory) / COMPLETE_MARKER).unlink(missing_ok=True)  # compiled again, by this process, next
    indexes = [p for p in Path(directory).rglob("*.nbi") if p.is_file()]
    damaged = [p for p in indexes if not _index_reads(p)]
    removed = 0
    for index in damaged or indexes:
        for path in [index, *index.parent.glob(glob.escape(index.stem) + ".*.nbc")]:
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _index_reads(index: Path) -> bool:
    """Whether Numba could read this index: its version, then (stamp, overloads), both pickled (numba.core.caching)."""
    import pickle

    try:
        with index.open("rb") as handle:
            pickle.load(handle)
            pickle.loads(handle.read())
    except Exception:  # EOFError, UnpicklingError, whatever a cut or flipped file gives
        return False
    return True
