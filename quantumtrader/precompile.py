"""The first compile of the signal kernels, in a child process, so the daemon never holds the compiler.

Numba compiles through LLVM, and a process that has compiled keeps that
memory for the rest of its life: with 100 symbols streaming, a daemon that
compiled its kernels at start held 295-303 MiB over two minutes, the same
daemon that loaded the same kernels from the cache 206-211 MiB (2026-12-05,
`qt-daemon run --paper`). The first start of every install and of every
upgrade compiles, so without this the daemon a trader meets first is the
big one, for as long as it runs. Here a child process compiles the kernels
into the cache and exits; the daemon then loads them as on any later start.
The child costs its interpreter's start-up (~1 s) on top of the compile.

The child gets the exact feature and signal settings (pickled on stdin),
because the compiled overloads are keyed by the Numba types of what the
daemon passes, which come from those settings. Should it fail, the daemon
compiles in its own process as before, with a warning: a start is never
refused over memory.

Usage (by :func:`compile_in_child` only): ``python -m quantumtrader.precompile``
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from typing import NamedTuple

from quantumtrader.config import FeaturesConfig, SignalsConfig

#: Longest a first compile may take in the child before the daemon compiles in its own process instead
#: (~10-14 s on the project's slow 2-core host; a busy VPS may take several times that).
CHILD_COMPILE_TIMEOUT_S = 600.0


class ChildCompile(NamedTuple):
    """How the child's compile went: seconds taken, and why it failed (None when it did not)."""

    seconds: float
    error: str | None


def compile_in_child(features: FeaturesConfig, signals: SignalsConfig, *, timeout_s: float = CHILD_COMPILE_TIMEOUT_S) -> ChildCompile:
    """Compile the kernels into the Numba cache from a child process (NUMBA_CACHE_DIR already set, inherited).

    Never raises for the child's sake: a child that cannot start, fails or
    overruns ``timeout_s`` is an ``error`` (it is killed), and the caller
    compiles in its own process. An interrupt (Ctrl-C) kills the child too.
    """
    started = time.perf_counter()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "quantumtrader.precompile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        return ChildCompile(time.perf_counter() - started, f"could not start it: {exc!r}"[:300])
    try:
        _, stderr = child.communicate(pickle.dumps((features, signals)), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ChildCompile(time.perf_counter() - started, f"it took over {timeout_s:g} s")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return ChildCompile(time.perf_counter() - started, f"exit {child.returncode}: {tail[0]}"[:300])
    return ChildCompile(time.perf_counter() - started, None)


def main() -> None:
    features, signals = pickle.load(sys.stdin.buffer)  # from the parent daemon only: see compile_in_child
    from quantumtrader.log import configure_logging

    configure_logging(level="warning")  # the parent says what happens; this child speaks only when it fails
    from quantumtrader.models.pipeline import SignalPipeline

    SignalPipeline(features, signals).warm_up()


if __name__ == "__main__":
    main()
