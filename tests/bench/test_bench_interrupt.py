"""qt-bench interrupted or told to stop: the processes it started stop with it and its temporary directories go.

A review (2026-12-06) found the daemon, paper terminal and sidecar left running with their ports after Ctrl-C
while a daemon started (startup) or while the sidecar came up (ws), and after SIGTERM at any time (pipeline):
SIGTERM ended qt-bench at once, with no ``finally`` run. Each case here is the real CLI in its own process,
interrupted once the child named appears.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from support import wait_for

#: qt-bench with Ctrl-C's handler put back: a test run in the background may have inherited SIGINT ignored,
#: and a terminal's Ctrl-C is what is being played.
_BENCH = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'qt-bench'; from quantumtrader.bench.cli import main; main()"


def _command(proc: psutil.Process) -> str:
    """Its command line; "" for one gone or a zombie (a sender that has just exited)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


@pytest.mark.parametrize(
    ("args", "child", "sig"),
    [
        (["startup", "--symbols", "1"], "run --no-sidecar", signal.SIGINT),  # while the daemon starts
        (["ws", "--clients", "1", "--duration", "2", "--tick-rate", "50", "--symbols", "1"], "quantumtrader sidecar", signal.SIGINT),  # while the stack comes up
        (["pipeline", "--duration", "1", "--rate", "1000", "--symbols", "2", "--throughput-ticks", "1000", "--sustain", "0.5"], "run --no-sidecar", signal.SIGTERM),
    ],
    ids=["startup-ctrl-c", "ws-ctrl-c", "pipeline-sigterm"],
)
def test_an_interrupted_bench_stops_what_it_started(tmp_path: Path, args: list[str], child: str, sig: int) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "TMPDIR": str(tmp_path)}  # its temporary directories here
    bench = subprocess.Popen([sys.executable, "-c", _BENCH, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: dict[int, psutil.Process] = {}
    try:

        def started() -> bool:
            for proc in _children(bench.pid):
                seen.setdefault(proc.pid, proc)
            assert bench.poll() is None, bench.communicate()[0][-2000:]
            return any(child in _command(p) for p in seen.values())

        wait_for(started, 60, f"qt-bench {args[0]} to start {child!r}", interval=0.05)
        for proc in _children(bench.pid):  # and whatever it started meanwhile
            seen.setdefault(proc.pid, proc)
        bench.send_signal(sig)
        out = bench.communicate(timeout=60)[0].decode(errors="replace")
        assert bench.returncode != 0 and "Traceback" not in out, out[-2000:]
        gone, left = psutil.wait_procs(list(seen.values()), timeout=5)  # children of children (precompile) too
        assert not left, [_command(p) for p in left]
        assert not list(tmp_path.glob("qt-bench-*")), list(tmp_path.iterdir())
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for proc in seen.values():  # before the fix they outlived qt-bench: never leave them to the next test
            if proc.is_running():
                proc.kill()
