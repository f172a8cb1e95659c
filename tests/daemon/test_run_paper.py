"""Issue 2: `qt-daemon run --paper` (the README's run command) shows it is alive and stops cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from support import Endpoints, control, wait_for, wait_ready


def test_run_paper_prints_status_and_exits_cleanly_on_sigint(tmp_path: Path) -> None:
    eps = Endpoints()
    env = eps.env(tmp_path / "data", QT_DAEMON__STATUS_INTERVAL_S="1")
    proc, log_path = _qt_daemon(tmp_path, env, "run", "--paper", "--no-sidecar")
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

    cut = tmp_path / "EURUSD.csv.gz"
    rows = "".join(f"{1_705_314_645_000 + i},1.1,1.1002\n" for i in range(3000))  # 1 ms apart: the cut comes at once
    cut.write_bytes(gzip.compress(("time,bid,ask\n" + rows).encode())[:600])
    eps = Endpoints()
    env = eps.env(tmp_path / "data")
    proc, log_path = _qt_daemon(tmp_path, env, "run", "--paper", "--no-sidecar", "--ticks", str(cut))
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


def test_children_of_a_daemon_killed_outright_stop_and_free_their_ports(tmp_path: Path) -> None:
    """kill -9 (on Windows: Stop-Process, taskkill /F, an ended scheduled task, all TerminateProcess) runs no
    handler: the paper terminal and the sidecar ran on, holding their ports, and the next `qt-daemon run`'s
    children could not bind and were restarted with backoff for ever. They now stop when the pipe the daemon
    holds closes, which the OS does for a dead process."""
    eps = Endpoints(spare=1)
    sidecar_port = eps.spare_ports[0]
    env = eps.env(tmp_path / "data", QT_SIDECAR__PORT=str(sidecar_port))
    proc, log_path = _qt_daemon(tmp_path, env, "run", "--paper")
    children: list[psutil.Process] = []
    try:
        children = wait_for(lambda: (c := psutil.Process(proc.pid).children()) and len(c) == 2 and c, 40, "the paper and sidecar children")
        wait_for(lambda: _answers(f"http://127.0.0.1:{sidecar_port}/api/health"), 40, "the sidecar to serve")
        proc.kill()
        proc.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, f"children left running after the daemon was killed: {[c.cmdline()[-6:] for c in alive]}"
        log_text = log_path.read_text(errors="replace")
        assert log_text.count("parent process gone; stopping") == 2, log_text[-3000:]
        # the ports are free for the next run: the sidecar's and the paper terminal's command port
        for port in (sidecar_port, int(eps.command.rsplit(":", 1)[1])):
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in children:
            if child.is_running():
                child.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_qt_daemon_stop_stops_a_daemon_that_has_no_console_in_order(tmp_path: Path) -> None:
    """On Windows a daemon started without a console (a scheduled task, a service wrapper) gets no Ctrl-C, and
    ending it is TerminateProcess: no final save. `qt-daemon stop` asks over the control socket instead."""
    eps = Endpoints()
    env = eps.env(tmp_path / "data")
    proc, log_path = _qt_daemon(tmp_path, env, "run", "--paper", "--no-sidecar")
    try:
        # ready first: a request sent while the kernels compile waits past control()'s 5 s (a CI run, 2026-12-05)
        wait_ready(eps.control, proc, log_path, 60)
        wait_for(lambda: control(eps.control)["health"]["status"] == "healthy", 40, "the daemon healthy with its paper terminal")
        children = psutil.Process(proc.pid).children()
        done = subprocess.run([str(shutil.which("qt-daemon")), "stop"], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and json.loads(done.stdout)["stopping"] is True, (done.stdout, done.stderr)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_path.read_text(errors="replace")
    assert "stop asked over the control socket" in text and "QuantumTrader stopped" in text, text[-3000:]
    closed = next(json.loads(line) for line in text.splitlines() if line.startswith("{") and '"signal store closed"' in line)
    assert closed["writer_finished"] is True and closed["writer"].get("done_state", 0) >= 1, closed  # the final save made
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _qt_daemon(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """The installed `qt-daemon` (the README's command) with ``args``, its output in ``run.log``."""
    exe = shutil.which("qt-daemon")
    assert exe, "qt-daemon is not on PATH: install the package (README) first"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([exe, *args], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    return proc, log_path
