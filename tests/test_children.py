"""Children are asked to stop with what each OS can deliver: a signal on POSIX, Ctrl-Break to their own group on Windows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantumtrader import children
from quantumtrader.bench.procs import Endpoints, start, stop


class FakeProc:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[int] = []
        self.killed = False
        self.refuse = refuse

    def send_signal(self, sig: int) -> None:
        if self.refuse:
            raise OSError("no console")
        self.sent.append(sig)

    def poll(self) -> None:
        return None

    def kill(self) -> None:
        self.killed = True


def test_on_windows_a_child_gets_its_own_group_and_ctrl_break(monkeypatch: pytest.MonkeyPatch) -> None:
    """Popen.send_signal(SIGINT) raises ValueError on Windows: every benchmark stopped its processes that way."""
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(signal, "CTRL_BREAK_EVENT", 1, raising=False)
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200, raising=False)
    assert children.popen_kwargs() == {"creationflags": 0x200}
    proc = FakeProc()
    children.ask_to_stop(proc, signal.SIGINT)  # type: ignore[arg-type]
    assert proc.sent == [1] and not proc.killed
    headless = FakeProc(refuse=True)  # pythonw or a service: no console for the break
    children.ask_to_stop(headless)  # type: ignore[arg-type]
    assert headless.killed


def test_on_posix_the_signal_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    assert children.popen_kwargs() == {}
    proc = FakeProc()
    children.ask_to_stop(proc, signal.SIGINT)  # type: ignore[arg-type]
    assert proc.sent == [signal.SIGINT]


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX path; Windows is the case above")
def test_a_real_child_stops_in_order(tmp_path: Path) -> None:
    """The transport floor's relay (a bench child) stops on the signal and exits 0, not killed."""
    eps = Endpoints()
    proc = start([eps.events, eps.feed], dict(os.environ), tmp_path / "floor.log", module="quantumtrader.bench.floor")
    time.sleep(1.0)  # its handlers installed
    assert stop(proc, timeout=10) == 0
