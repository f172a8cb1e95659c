"""Benchmarks measure the process that runs Python, not a Windows venv's launcher (a Windows audit, 2026-12-05).

In a Windows virtual environment ``sys.executable`` starts the base interpreter as its only child and waits:
psutil on the launcher's pid read a few MB and no CPU for the daemon. Simulated here with a parent that
does the same (the platform check is set to answer as on Windows)."""

from __future__ import annotations

import subprocess
import sys

import psutil

import quantumtrader.bench.procs as procs
from support import wait_for

LAUNCHER = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; x = bytearray(60_000_000); time.sleep(30)'])"


def test_the_interpreter_behind_a_launcher_is_measured(monkeypatch) -> None:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER])
    try:
        child = wait_for(lambda: (kids := psutil.Process(launcher.pid).children()) and kids[0], 10, "the interpreter started")
        wait_for(lambda: child.memory_info().rss > 60_000_000, 10, "its 60 MB")
        assert procs.interpreter(launcher.pid).pid == launcher.pid  # elsewhere: the process itself
        monkeypatch.setattr(procs, "_venv_launcher_starts_children", lambda: True)
        measured = procs.interpreter(launcher.pid)
        assert measured.pid == child.pid and measured.memory_info().rss > 60_000_000
        assert procs.interpreter(None).pid == psutil.Process().pid  # this process: no launcher in between
    finally:
        for proc in psutil.Process(launcher.pid).children() + [psutil.Process(launcher.pid)]:
            proc.kill()
        launcher.wait(10)
