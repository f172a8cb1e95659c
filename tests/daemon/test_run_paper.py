"""Issue 2: `qt-daemon run --paper` (the README's run command) shows it is alive and stops cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil

from support import Endpoints, wait_for


def test_run_paper_prints_status_and_exits_cleanly_on_sigint(tmp_path: Path) -> None:
    eps = Endpoints()
    env = eps.env(tmp_path / "data", QT_DAEMON__STATUS_INTERVAL_S="1")
    exe = shutil.which("qt-daemon")
    assert exe, "qt-daemon is not on PATH: install the package (README) first"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([exe, "run", "--paper", "--no-sidecar"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def status_line() -> dict | None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    event = json.loads(line)
                    if event.get("event") == "status" and event.get("terminals") == 1 and event.get("ticks_per_s", 0) > 0:
                        return event
            return None

        status = wait_for(status_line, 40, "a status line with a connected terminal and ticks flowing")  # 40: a loaded host's start-up
        assert status["symbols"] >= 1
        text = log_path.read_text()
        assert eps.events in text and eps.feed in text and eps.control in text  # it says what it serves
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the paper terminal child is not running"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)
    assert code == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "paper child left running"
    assert "QuantumTrader stopped" in log_path.read_text()


def test_a_paper_child_that_refuses_its_tick_file_is_left_down_and_the_daemon_serves_on(tmp_path: Path) -> None:
    """The file's header passes the check before start; the cut comes later. The child exits 2 (bad input):
    restarting it would meet the same cut, so the supervisor logs it once and does not restart it."""
    import gzip

    from support import control

    cut = tmp_path / "EURUSD.csv.gz"
    rows = "".join(f"{1_705_314_645_000 + i},1.1,1.1002\n" for i in range(3000))  # 1 ms apart: the cut comes at once
    cut.write_bytes(gzip.compress(("time,bid,ask\n" + rows).encode())[:600])
    eps = Endpoints()
    env = eps.env(tmp_path / "data")
    exe = shutil.which("qt-daemon")
    assert exe, "qt-daemon is not on PATH: install the package (README) first"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([exe, "run", "--paper", "--no-sidecar", "--ticks", str(cut)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "not restarted" in log_path.read_text(errors="replace"), 60, "the supervisor leaving the paper child down")
        time.sleep(2)  # a restart would come within the first backoff (0.5 s)
        text = log_path.read_text(errors="replace")
        assert text.count('"child started"') == 1 and "cannot read it" in text, text[-3000:]
        assert proc.poll() is None
        assert control(eps.control)["ok"] is True  # the daemon serves on
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)
    assert code == 0
