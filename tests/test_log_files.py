"""The long-running processes write their own log files in ``log.dir``, as JSON lines, rotated by size.

Before, the log went to stderr only: a VPS console that scrolled away, or a daemon started without one
(a scheduled task), kept nothing of what it said."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from quantumtrader.log import configure_logging, open_log_file
from support import Endpoints, control, daemon_process, start, stop, wait_for


class _ListStream:
    """A console that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


def _rotated(path: Path) -> list[Path]:
    """``path``'s rotated files, oldest first: ``daemon.log.20261205-103000-123456`` (when, UTC, to the µs)."""
    return sorted(p for p in path.parent.glob(path.name + ".*") if re.fullmatch(re.escape(path.name) + r"\.\d{8}-\d{6}-\d{6}", p.name))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_daemon_sidecar_and_paper_each_write_their_own_rotated_file(tmp_path: Path) -> None:
    eps = Endpoints(spare=1)  # the sidecar's port from this worker's range: 8080, the default, may be anyone's
    data = tmp_path / "data"
    env = eps.env(data, QT_DAEMON__STATUS_INTERVAL_S="0.2", QT_LOG__ROTATE_MB="0.004", QT_LOG__KEEP="2", QT_SIDECAR__PORT=str(eps.spare_ports[0]))
    err = (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "quantumtrader", "run", "--paper", "--log-format", "console"], env=env, stdout=err, stderr=err)
    logs = data / "logs"
    try:
        # a 4 KB file holds a dozen status lines: rotated within seconds, and never more than two old files kept
        wait_for(lambda: len(_rotated(logs / "daemon.log")) >= 2 and (logs / "sidecar.log").exists(), 60, "the daemon's log rotated twice")
        wait_for(lambda: any(e["event"] == "status" and e.get("terminals") == 1 for e in _lines(logs / "daemon.log")), 30, "a status line with the terminal")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        err.close()
    assert code == 0
    names = sorted(p.name for p in logs.iterdir())
    assert len(_rotated(logs / "daemon.log")) == 2, names  # log.keep: the oldest deleted at each rotation
    assert "paper-paper-1@QuantumTrader-Paper.log" in names and "sidecar.log" in names, names
    for name in names:
        assert (logs / name).stat().st_size <= 4_000 + 2_000, name  # cut at the size (a line may end past it)
        events = _lines(logs / name)  # every line JSON, whatever the console format was
        assert events and all("timestamp" in e and "level" in e for e in events), name
    assert _lines(logs / "daemon.log")[-1]["event"] == "QuantumTrader stopped"
    assert _lines(logs / "paper-paper-1@QuantumTrader-Paper.log")[-1]["event"] == "paper terminal stopped"
    assert _lines(logs / "sidecar.log")[-1]["event"] == "sidecar stopped"
    console = (tmp_path / "stderr.log").read_text(encoding="utf-8", errors="replace")
    assert "QuantumTrader stopped" in console and '{"' not in console  # the console as asked: not the file's JSON


def test_a_log_dir_that_cannot_be_written_is_said_and_an_empty_one_writes_no_file(tmp_path: Path) -> None:
    """A log file is no reason to refuse a start (a review saw the paper terminal, which needs nothing of the data
    directory, refused over one): a warning on stderr, and the process logs there only."""
    data = tmp_path / "data"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**Endpoints().env(data), "QT_LOG__DIR": str(blocker / "logs")}
    out = subprocess.run([sys.executable, "-m", "quantumtrader", "paper", "--max-ticks", "5", "--exit-at-end", "--rate", "50"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("warning: log.dir: cannot write ") and out.stderr.count("log.dir") == 1, out.stderr
    assert "paper terminal stopped" in out.stderr  # its lines on stderr
    data = tmp_path / "data-2"
    eps = Endpoints()
    with daemon_process(eps, tmp_path, QT_LOG__DIR=""):
        assert control(eps.control)["health"]["uptime"] > 0
    assert (tmp_path / "daemon.log").read_text(encoding="utf-8").count("QuantumTrader stopped") == 1  # stderr has it all
    assert not (data / "logs").exists()


def test_a_log_file_that_fails_is_said_once_on_stderr_and_the_lines_still_reach_the_stream(tmp_path: Path, capsys) -> None:
    path = tmp_path / "logs" / "daemon.log"
    handler = open_log_file(path, 0.0002, 1)  # 200 bytes: every other line rotates
    shutil.rmtree(path.parent)  # rotation cannot rename into a directory that is gone
    stream = _ListStream()
    seen = stream.lines
    try:
        configure_logging("json", "info", stream=stream, file=handler)
        log = structlog.get_logger("t")
        for i in range(10):
            log.info("line", i=i, pad="x" * 100)
    finally:
        handler.close()
        structlog.reset_defaults()
        logging.shutdown()
    assert [json.loads(s)["i"] for s in seen] == list(range(10))
    err = capsys.readouterr().err
    assert err.count("cannot be written") == 1 and "Traceback" not in err, err


def test_threads_logging_at_once_through_rotations_lose_and_mangle_no_line(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "logs" / "daemon.log"
    handler = open_log_file(path, 0.02, 50)  # 20 KB files, enough kept for every line
    try:
        configure_logging("json", "info", stream=_ListStream(), file=handler)

        def writer(n: int) -> None:
            log = structlog.get_logger("t")
            for i in range(500):
                log.info("line", thread=n, i=i, pad="y" * 50)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        handler.close()
        structlog.reset_defaults()
    files = sorted(path.parent.iterdir())
    assert len(files) > 5  # it did rotate, many times
    seen = sorted((e["thread"], e["i"]) for f in files for e in _lines(f))
    assert seen == sorted((n, i) for n in range(4) for i in range(500))


def _log_lines(handler, n: int, start: int = 0) -> None:
    """``n`` lines of ~120 bytes through ``handler`` (JSON to a throwaway console)."""
    configure_logging("json", "info", stream=_ListStream(), file=handler)
    log = structlog.get_logger("t")
    for i in range(start, start + n):
        log.info("line", i=i, pad="z" * 60)


def test_a_rotation_the_os_refuses_keeps_every_file_appends_and_is_tried_again_later(tmp_path: Path, monkeypatch, capsys) -> None:
    """Windows refuses to rename or delete a file another program holds open (a tail tool, a viewer, an antivirus
    scan). The stdlib's rotation shifted .1...N first: a held file cost one file per rotation, a held current file
    cost the oldest at every line. Here: the current one held, then an old one."""
    import os
    from types import SimpleNamespace

    import quantumtrader.log as qlog
    from support import FakeClock

    clock = FakeClock()
    monkeypatch.setattr(qlog, "time", SimpleNamespace(monotonic=clock))
    path = tmp_path / "daemon.log"
    handler = open_log_file(path, 0.001, 3)  # 1 KB: a rotation every ~7 lines
    held: set[str] = set()
    real_rename, real_unlink = os.rename, os.unlink

    def refuse_held(name) -> None:
        if str(name) in held:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")

    monkeypatch.setattr(qlog.os, "rename", lambda src, dst: refuse_held(src) or real_rename(src, dst))
    monkeypatch.setattr(os, "unlink", lambda name, *a, **k: refuse_held(name) or real_unlink(name, *a, **k))
    try:
        _log_lines(handler, 30)
        before = {p.name: p.read_text(encoding="utf-8") for p in _rotated(path)}
        assert len(before) == 3, sorted(before)  # log.keep

        held.add(str(path))  # the current file
        _log_lines(handler, 30, start=30)
        assert {p.name: p.read_text(encoding="utf-8") for p in _rotated(path)} == before  # the history untouched
        assert [e["i"] for e in _lines(path)][-30:] == list(range(30, 60))  # appended to, nothing lost
        err = capsys.readouterr().err
        assert err.count("cannot be rotated") == 1 and "tried again every 60 s" in err, err
        held.clear()
        _log_lines(handler, 1, start=60)
        assert {p.name for p in _rotated(path)} == set(before)  # not before its time
        clock.now += qlog.ROTATION_RETRY_S
        _log_lines(handler, 1, start=61)
        assert _lines(_rotated(path)[-1])[-1]["i"] == 60 and _lines(path)[-1]["i"] == 61  # rotated now

        oldest = _rotated(path)[0]
        held.add(str(oldest))  # an old file held (a viewer): its deletion waits, nothing else is lost
        _log_lines(handler, 40, start=62)
        rotated = _rotated(path)
        assert rotated[0] == oldest and len(rotated) == 4, [p.name for p in rotated]  # keep 3, and the held one
        recent = [e["i"] for f in [*rotated[1:], path] for e in _lines(f)]
        assert recent == list(range(recent[0], 102)), recent  # the newest files hold every line, in order
        held.clear()
        _log_lines(handler, 10, start=102)
        assert oldest not in _rotated(path) and len(_rotated(path)) == 3  # deleted at a later rotation
    finally:
        handler.close()
        structlog.reset_defaults()


def test_keep_0_cuts_the_one_file_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "daemon.log"
    handler = open_log_file(path, 0.001, 0)
    try:
        _log_lines(handler, 100)
    finally:
        handler.close()
        structlog.reset_defaults()
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.log"]
    assert path.stat().st_size <= 1_000 and _lines(path)[-1]["i"] == 99


def test_a_file_rotated_after_the_clock_was_set_back_sorts_newest_and_is_kept(tmp_path: Path) -> None:
    """A hunt (2026-12-05): rotated names carry the wall clock, so after the clock was set back the newest rotated
    file sorted as the oldest and was the first deleted. A new name now sorts after every earlier one."""
    path = tmp_path / "daemon.log"
    ahead = tmp_path / "daemon.log.29991231-235959-000000"  # rotated before the clock was set back
    ahead.write_text('{"i": -1}\n')
    handler = open_log_file(path, 0.001, 2)
    try:
        _log_lines(handler, 12)  # ~1,400 bytes: one rotation
    finally:
        handler.close()
        structlog.reset_defaults()
    rotated = handler.rotated_files()
    assert len(rotated) == 2 and rotated[0] == ahead and rotated[1].name > ahead.name, rotated
    assert _lines(rotated[1])[0]["i"] == 0  # the file just rotated, kept as the newest


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes (Windows: the folder's ACL)")
def test_the_daemon_and_its_children_keep_their_files_to_their_user(tmp_path: Path) -> None:
    """A security review (2026-12-06): with the usual umask 022 the order journal, the signals, the paper book and the
    logs were 0644 in a 0755 data directory, readable by any account on the machine. A real `run --paper`: every
    file and directory it creates in the data directory is its user's alone."""
    eps = Endpoints(spare=1)
    data = tmp_path / "data"
    env = eps.env(data, QT_SIDECAR__PORT=str(eps.spare_ports[0]))
    proc = start(["run", "--paper"], env, tmp_path / "run.log")
    try:
        wait_for(lambda: (data / "paper-books").is_dir() and any((data / "paper-books").glob("*.json")), 60, "the paper book")
        wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks", 0) > 0, 30, "ticks")
    finally:
        assert stop(proc) == 0
    loose = {str(p.relative_to(data)): oct(p.stat().st_mode & 0o777) for p in [data, *data.rglob("*")] if p.stat().st_mode & 0o077}
    assert not loose, loose
    # A data directory made before (0755, its files 0644) is said at start, not changed (the review of the change).
    data.chmod(0o755)
    proc = start(["run", "--paper"], env, tmp_path / "run-2.log")
    try:
        wait_for(lambda: "open to other accounts" in (tmp_path / "run-2.log").read_text(errors="replace"), 60, "the warning")
        wait_for(lambda: control(eps.control)["health"]["counters"].get("ticks", 0) > 0, 30, "ticks")  # serving: a clean stop
    finally:
        assert stop(proc) == 0
    assert data.stat().st_mode & 0o777 == 0o755
