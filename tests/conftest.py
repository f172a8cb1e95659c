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
