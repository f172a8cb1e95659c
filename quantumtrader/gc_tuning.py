"""Keep CPython's cyclic garbage collector off the tail latency of a long-running process.

The hot paths (the daemon's ticks, the sidecar's fan-out) allocate short-lived
dicts and frames that reference counting frees at once; what triggers the
collector is the count of allocations, so under load the default gen-0
threshold (700) ran a collection every few ms, and a full collection walks
every live object (hundreds of WebSocket connections' worth in the sidecar):
pauses from tens of microseconds to tens of milliseconds. Freezing moves the
start-up objects (modules, kernels, config) out of the collector's sight, and
a higher gen-0 threshold makes collections rare; cycles are still collected.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Call once, after start-up and before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
