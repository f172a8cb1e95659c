from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# One Numba cache for the whole run: the in-process tests compile the kernels
# once and every daemon process a test starts (which inherits this variable)
# loads them instead of compiling again. Set before anything imports numba.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba-cache"))
# ... keyed by the kernels' sources (see quantumtrader/features/cache.py), so an edited kernel is never
# served from an older build.
from quantumtrader.features.cache import ensure_numba_cache_dir  # noqa: E402  (imports no kernel)

ensure_numba_cache_dir(os.environ["NUMBA_CACHE_DIR"])


def pytest_sessionstart(session: object) -> None:
    """Compile the kernels into the run's cache once, before any test, in a child process as the daemon does.

    On a fresh clone the cache is empty, and a daemon a test started compiled them itself (7-36 s on two loaded
    cores, a helper's hunt of 2026-12-06) inside a wait of 30 s: safe only as long as each worker's first test
    happened to allow 60 s. Now every daemon loads them. Under xdist each worker (and the controller) comes here:
    one compiles, the others wait on the lock and find the cache complete. A failed compile is only a warning:
    the tests then compile as before."""
    import fcntl  # the suite runs on Linux (the EA harness and the browser tests need it too)
    import warnings

    from quantumtrader.config import load_config
    from quantumtrader.features.cache import cache_complete
    from quantumtrader.precompile import compile_in_child

    cache_dir = ensure_numba_cache_dir(os.environ["NUMBA_CACHE_DIR"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir.parent / ".compile.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cache_complete(cache_dir):
            config = load_config(environ={})
            child = compile_in_child(config.features, config.signals)
            if child.error is not None:
                warnings.warn(f"compiling the kernels before the tests failed ({child.error}); each test compiles them", stacklevel=1)
