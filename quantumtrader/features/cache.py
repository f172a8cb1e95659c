"""Where Numba keeps its compiled kernels (``cache=True``), decided before anything compiles.

Rule: an explicit ``NUMBA_CACHE_DIR`` in the environment always wins.
Otherwise the cache goes to ``<data dir>/numba-cache``: always writable by
the daemon's user (site-packages often is not, on a VPS or in a system
Python), kept with the rest of the daemon's state, and the same directory on
every start so the second start loads instead of compiling. Numba fixes a
kernel's cache location when the kernel is decorated, i.e. when its module is
imported, so this must run before ``quantumtrader.features.kernel`` (or any
other kernel module) is imported; :func:`ensure_numba_cache_dir` is idempotent.
"""

from __future__ import annotations

import os
from pathlib import Path


def ensure_numba_cache_dir(data_dir: Path | str) -> Path:
    """Set NUMBA_CACHE_DIR (unless already set) and make sure the directory exists. Returns it."""
    current = os.environ.get("NUMBA_CACHE_DIR")
    path = Path(current) if current else Path(data_dir).expanduser() / "numba-cache"
    path.mkdir(parents=True, exist_ok=True)
    if not current:
        os.environ["NUMBA_CACHE_DIR"] = str(path)
        try:  # numba itself may be imported already: its config copied the variable at import
            import numba.core.config as numba_config

            numba_config.CACHE_DIR = str(path)
        except ImportError:  # pragma: no cover
            pass
    return path
