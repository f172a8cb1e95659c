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
refused over memory. The child is run unless the cache directory says it is
complete (:func:`quantumtrader.features.cache.cache_complete`): a first
start cut short (Ctrl-C, a power cut) left some kernels, and the next start
compiled the rest in the daemon. The parent keeps the child's stdin open
while it waits; a child whose stdin ends (its parent killed: SIGTERM,
TerminateProcess) exits, and does not race the next start.

Usage (by :func:`compile_in_child` only): ``python -m quantumtrader.precompile``
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, NamedTuple

from quantumtrader.config import FeaturesConfig, SignalsConfig

#: Longest a first compile may take in the child before the daemon compiles in its own process instead
#: (~10-14 s on the project's slow 2-core host; a busy VPS may take several times that).
CHILD_COMPILE_TIMEOUT_S = 300.0


class ChildCompile(NamedTuple):
    """How the child's compile went: seconds taken, and why it failed (None when it did not)."""

    seconds: float
    error: str | None


def _popen_kwargs() -> dict[str, Any]:
    # No console window flashing up when the daemon runs without one (pythonw, a service).
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NO_WINDOW}  # type: ignore[attr-defined]
    return {}


def compile_in_child(features: FeaturesConfig, signals: SignalsConfig, *, timeout_s: float = CHILD_COMPILE_TIMEOUT_S) -> ChildCompile:
    """Compile the kernels into the Numba cache from a child process (NUMBA_CACHE_DIR already set, inherited).

    Never raises for the child's sake: a child that cannot start, fails or
    overruns ``timeout_s`` is an ``error`` (it is killed), and the caller
    compiles in its own process. An interrupt (Ctrl-C) kills the child too.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "quantumtrader.precompile"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, **_popen_kwargs()
            )
        except OSError as exc:
            return ChildCompile(time.perf_counter() - started, f"could not start it: {exc!r}"[:300])
        assert child.stdin is not None
        try:
            child.stdin.write(pickle.dumps((features, signals)))
            child.stdin.flush()  # and kept open until the child is done: its end is how the child knows we are gone
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return ChildCompile(time.perf_counter() - started, f"it took over {timeout_s:g} s")
        except OSError as exc:  # it died before it read its settings (a broken pipe)
            child.wait()
            return ChildCompile(time.perf_counter() - started, f"exit {child.returncode}: {exc!r}"[:300])
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            with contextlib.suppress(OSError):  # closing flushes what a dead child never read: a second broken pipe
                child.stdin.close()
        if child.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            return ChildCompile(time.perf_counter() - started, f"exit {child.returncode}: {tail[0]}"[:300])
    return ChildCompile(time.perf_counter() - started, None)


def _exit_when_parent_goes(fd: int) -> None:
    """Read until the parent's end of the pipe closes, then exit: it closes it only once we are done, or it died.

    From the file descriptor, not ``sys.stdin.buffer``: a thread blocked in the buffered reader holds its lock, and
    the interpreter's shutdown then aborts (SIGABRT, "could not acquire lock ... at interpreter shutdown")."""
    while os.read(fd, 4096):
        pass
    os._exit(3)


def main() -> None:
    stdin = sys.stdin.buffer
    features, signals = pickle.load(stdin)  # from the parent daemon only: see compile_in_child
    threading.Thread(target=_exit_when_parent_goes, args=(stdin.fileno(),), daemon=True).start()
    from quantumtrader.log import configure_logging

    configure_logging(level="warning")  # the parent says what happens; this child speaks only when it fails
    from quantumtrader.features.cache import mark_cache_complete
    from quantumtrader.models.pipeline import SignalPipeline

    SignalPipeline(features, signals).warm_up()
    mark_cache_complete()


if __name__ == "__main__":
    main()
