"""The CLI on bad files and paths: a clear message and a non-zero exit, never a traceback (each case found by a review)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(
    *args: str,
    timeout: float = 120,
    module: str = "quantumtrader",
    input: str | None = None,
    stdin: int | None = None,
    full_disk: bool = False,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> args`` without this shell's QT_ settings, with ``env`` added. typer's usage errors are
    drawn in a box as wide as the terminal: wide enough (COLUMNS) that no message wraps. ``stdin``: without
    ``input``, e.g. subprocess.DEVNULL. ``full_disk``: every write to a file fails (:func:`_as_on_a_full_disk`)."""
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "1000", **env}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=input, stdin=stdin, capture_output=True, text=True, env=environ, timeout=timeout, preexec_fn=_as_on_a_full_disk if full_disk else None,
        start_new_session=True,  # no controlling terminal: a password prompt must not wait on the developer's
    )


#: The tests that fill the disk: a file size limit of 0 (RLIMIT_FSIZE) is one, for the child process alone.
full_disk_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="simulates a full disk with RLIMIT_FSIZE (Linux)")


def _as_on_a_full_disk() -> None:
    """In the child before it runs: every write to a regular file fails (EFBIG) as on a full disk, even as root
    (a read-only directory is not one for root). SIGXFSZ ignored, so the write fails instead of killing it."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return _cli(*args, module="quantumtrader.bench.cli")


def _refused(result: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for text in says:
        assert text in result.stderr, (text, result.stderr[-2000:])


def _good_csv(path: Path, rows: int = 5) -> Path:
    path.write_text("time,bid,ask,volume\n" + "".join(f"2024-01-15T10:30:{i:02d}.000Z,1.1,1.1002,1\n" for i in range(rows)))
    return path


def test_tick_files_that_cannot_be_read_are_named_before_anything_runs(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    truncated = tmp_path / "EURUSD.csv.gz"
    truncated.write_bytes(gzip.compress(b"time,bid,ask\n" + b"2024-01-15T10:30:00.000Z,1.1,1.1002\n" * 2000)[:200])
    # its header and first rows read: refused when the replay reaches the cut
    _refused(_cli("evaluate", str(truncated), "--no-progress", "--data-dir", data), 1, "EURUSD.csv.gz", "cannot read", "EOFError")
    _refused(_cli("evaluate", str(tmp_path / "nope.csv"), "--data-dir", data), 2, "FILE:", "no such file")
    _refused(_cli("evaluate", str(tmp_path), "--data-dir", data), 2, "not a file")  # a directory
    headerless = tmp_path / "GBPUSD.csv"
    headerless.write_text("1,2,3\n")
    _refused(_cli("evaluate", str(headerless), "--data-dir", data), 2, "header must start with time,bid,ask")
    # run --paper: before, the check was only that the file existed; the paper child then failed and was restarted forever
    _refused(_cli("run", "--paper", "--no-sidecar", "--ticks", str(headerless), "--data-dir", data), 2, "--ticks:", "header")


def test_a_file_with_no_tick_in_it_is_refused_alike_by_every_command_that_replays_it(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): a header alone, or only unreadable rows, passed `run --paper --ticks` and
    `paper --ticks` (the paper terminal logged "tick source finished ticks=0" and sat idle) while evaluate (after
    reading it, exit 1) and qt-bench (at once, exit 2) refused it. Now one refusal, before anything starts."""
    from support import free_port

    data = str(tmp_path / "data")
    header_only = tmp_path / "GBPUSD.csv"
    header_only.write_text("time,bid,ask\n")
    naive = tmp_path / "EURUSD.csv"
    naive.write_text("time,bid,ask\n2024-01-15T10:30:00,1.1,1.1002\n2024-01-15T10:30:01,1.1,1.1002\n")  # no timezone
    endpoints = ("--events", f"tcp://127.0.0.1:{free_port()}", "--command-endpoint", f"tcp://127.0.0.1:{free_port()}")
    for path, why in ((header_only, "only its header"), (naive, "2 unreadable rows; first: ")):
        says = (f"{path}: no tick in it", why)
        _refused(_cli("evaluate", str(path), "--no-progress", "--data-dir", data, timeout=60), 2, "FILE:", *says)
        _refused(_cli("run", "--paper", "--no-sidecar", "--ticks", str(path), "--data-dir", data, timeout=60), 2, "--ticks:", *says)
        _refused(_cli("paper", "--ticks", str(path), *endpoints, "--data-dir", data, timeout=60), 2, "--ticks:", *says)
        _refused(_bench("features", "--ticks", str(path)), 2, "--ticks", *says)
    assert "time has no timezone" in _cli("paper", "--ticks", str(naive), *endpoints, "--data-dir", data, timeout=60).stderr


def test_config_and_output_paths_that_cannot_be_used_are_clear_errors(tmp_path: Path) -> None:
    _refused(_cli("config", "show", "--config", str(tmp_path)), 2, "--config", "cannot read")
    _refused(_cli("config", "init", str(tmp_path / "missing" / "dir" / "q.toml")), 1, "cannot write")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _refused(_cli("token", "--user", "nobody", "--data-dir", str(blocker / "data")), 2, "data_dir: cannot create")
    fresh = tmp_path / "fresh-data"  # a refused token leaves no signing secret behind (it made one before the check)
    _refused(_cli("token", "--user", "nobody", "--data-dir", str(fresh)), 1, "no user 'nobody'")
    assert not (fresh / "jwt_secret").exists()
    good = _good_csv(tmp_path / "EURUSD.csv")
    _refused(_cli("evaluate", str(good), "--plot", str(blocker / "out.png"), "--data-dir", str(tmp_path / "data")), 2, "cannot write")


def test_a_numba_cache_dir_that_cannot_be_made_is_named_not_a_traceback(tmp_path: Path) -> None:
    """Found by a fresh-machine audit: NUMBA_CACHE_DIR set by hand to a place that cannot be created raised
    PermissionError from the daemon's start-up (a traceback, exit 1) instead of the usual exit 2 naming it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    numba = str(blocker / "numba")
    result = _cli("run", "--no-sidecar", "--data-dir", str(tmp_path / "data"), NUMBA_CACHE_DIR=numba)
    _refused(result, 2, "NUMBA_CACHE_DIR", "cannot write the Numba cache")
    # commands that compile nothing are not held up by it (a lost phone's tokens must be revocable)
    listed = _cli("user", "list", "--data-dir", str(tmp_path / "data"), timeout=60, NUMBA_CACHE_DIR=numba)
    assert listed.returncode == 0, listed.stderr


def test_output_paths_are_checked_before_the_work_not_after_it(tmp_path: Path) -> None:
    """Found by a review (2026-12-04): a --json that is a directory, or a --plot named .csv, failed with a
    traceback once evaluate or a benchmark had run (minutes), and the result was lost."""
    data = str(tmp_path / "data")
    good = _good_csv(tmp_path / "EURUSD.csv")
    _refused(_cli("evaluate", str(good), "--json", str(tmp_path), "--data-dir", data), 2, "--json:", "is a directory")
    _refused(_cli("evaluate", str(good), "--plot", str(tmp_path / "out.csv"), "--data-dir", data), 2, "--plot:", ".png")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    # the journal scenario takes seconds to run: refused at once, nothing written
    _refused(_bench("journal", "--json", str(tmp_path)), 2, "--json", "is a directory")
    _refused(_bench("journal", "--json", str(blocker / "x.json")), 2, "--json", "not a directory")
    _refused(_bench("pipeline", "--plot", str(tmp_path / "p.csv")), 2, "--plot", ".png")
    _refused(_bench("all", "--out", str(blocker)), 2, "--out", "not a directory")


def test_a_gzip_with_garbage_past_its_header_is_a_tick_file_error(tmp_path: Path) -> None:
    """zlib.error is neither OSError nor EOFError: a corrupt (not truncated) gzip was a traceback."""
    compressed = bytearray(gzip.compress(b"time,bid,ask\n" + b"2024-01-15T10:30:00.000Z,1.1,1.1002\n" * 5000))
    for i in range(40, len(compressed) - 20, 7):
        compressed[i] ^= 0x5A
    bad = tmp_path / "EURUSD.csv.gz"
    bad.write_bytes(bytes(compressed))
    _refused(_cli("evaluate", str(bad), "--no-progress", "--data-dir", str(tmp_path / "data")), 2, "EURUSD.csv.gz", "cannot read", "decompressing")
    _refused(_bench("features", "--ticks", str(bad)), 2, "--ticks", "cannot read")


def test_order_sizes_and_timeouts_that_are_no_numbers_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """NaN and infinity go out as JSON null, which the daemon reads as "not given": `trade buy EURUSD nan`
    filled a risk-sized order. A negative timeout waited forever. Refused here with no daemon running:
    the command must stop before it sends (it would otherwise wait its timeout and say nobody answered)."""
    for args, says in (
        (("buy", "EURUSD", "nan"), "lots must be a finite number above 0, got nan"),
        (("buy", "EURUSD", "inf"), "got inf"),
        (("sell", "EURUSD", "0.1", "--sl", "nan"), "--sl must be a finite number"),
        (("sell", "EURUSD", "0.1", "--tp", "-1"), "--tp must be a finite number above 0"),
        (("buy", "EURUSD", "-1"), "lots must be a finite number above 0, got -1"),  # was "No such option: -1" (2026-12-06)
        (("buy", "EURUSD", "0.1", "--sll", "1.09"), "Got unexpected extra argument"),  # a typo of an option is still said
    ):
        _refused(_cli("trade", *args, "--timeout-ms", "50"), 2, says)
    _refused(_cli("status", "--timeout-ms", "-1", timeout=20), 2, "--timeout-ms")
    _refused(_cli("orders", "--limit", "100000000000000000000", timeout=20), 2, "--limit")


def test_a_timeout_beyond_an_hour_is_refused_before_anything_is_sent() -> None:
    """Found by a review (2026-12-05): --timeout-ms 2147483648 was an OverflowError traceback from pyzmq's poll,
    and `trade` had sent its order by then. A control socket listens here: nothing may reach it."""
    import zmq

    from support import free_port

    control = zmq.Context.instance().socket(zmq.ROUTER)
    control.bind(f"tcp://127.0.0.1:{free_port()}")
    endpoint = control.getsockopt_string(zmq.LAST_ENDPOINT)
    try:
        for command in (("trade", "buy", "EURUSD", "0.1"), ("status",), ("stop",)):
            for timeout_ms in ("2147483648", "3600001"):
                result = _cli(*command, "--timeout-ms", timeout_ms, timeout=30, QT_ENDPOINTS__CONTROL=endpoint)
                _refused(result, 2, "--timeout-ms", "3600000")
        assert not control.poll(200), "a request reached the daemon's control socket"
    finally:
        control.close(linger=0)


def test_a_trade_the_daemon_does_not_answer_expires_and_names_its_request_to_look_up() -> None:
    """A hunt (2026-12-05): `trade` said "no answer" and exited 1 while a slow daemon still read the request later and
    filled it; an operator who tried again got a second position. The request now expires when the command stops
    waiting (the daemon does nothing with it after) and the message names the request id and how to look it up.
    A control socket that reads and never answers (a stalled daemon) takes all three tries here."""
    import orjson
    import zmq

    from quantumtrader.protocol import now_msc
    from support import free_port

    control = zmq.Context.instance().socket(zmq.ROUTER)
    control.bind(f"tcp://127.0.0.1:{free_port()}")
    endpoint = control.getsockopt_string(zmq.LAST_ENDPOINT)
    try:
        sent_msc = now_msc()
        result = _cli("trade", "buy", "EURUSD", "0.1", "--timeout-ms", "300", timeout=30, QT_ENDPOINTS__CONTROL=endpoint)
        requests = []
        while control.poll(100):
            requests.append(orjson.loads(control.recv_multipart()[-1]))
    finally:
        control.close(linger=0)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(requests) == 3 and len({r["id"] for r in requests}) == 1, requests  # Lazy Pirate: one request, three tries
    request = requests[0]
    assert sent_msc + 900 <= request["expires_msc"] <= now_msc() + 900, request  # when the command stops waiting
    assert "3 tries of 300 ms" in result.stderr and f"qt-daemon orders --request-id {request['id']}" in result.stderr, result.stderr


def test_paper_settings_that_would_crash_loop_the_paper_terminal_are_config_errors(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    for env, says in ((",", "must name at least one symbol"), ("EURUSD,bad sym!", "bad sym!")):
        _refused(_cli("config", "show", "--data-dir", data, timeout=60, QT_PAPER__SYMBOLS=env), 2, "paper.symbols", says)
    _refused(_cli("paper", "--terminal", "", "--max-ticks", "1", "--data-dir", data), 2, "paper.terminal", "1-64")
    _refused(_cli("paper", "--max-ticks", "-1", "--data-dir", data), 2, "--max-ticks")


def test_a_damaged_users_file_is_named_and_never_rewritten(tmp_path: Path) -> None:
    """Found by a review (2026-12-04): one stray comma in users.json and `user list` printed nothing (exit 0),
    `token` said there was no such user, and the next `user add` rewrote the file with only the new user."""
    data = str(tmp_path / "data")
    for name in ("alice", "carol"):
        added = _cli("user", "add", name, "--role", "viewer", "--password-stdin", "--data-dir", data, input="a long password\n", timeout=60)
        assert added.returncode == 0, added.stderr
    users = tmp_path / "data" / "users.json"
    damaged = users.read_bytes().replace(b'"users": {', b'"users": {,', 1)
    users.write_bytes(damaged)
    _refused(_cli("user", "list", "--data-dir", data), 1, "users.json is not valid JSON", "left as it is")
    _refused(_cli("token", "--user", "alice", "--data-dir", data), 1, "users.json is not valid JSON")
    _refused(_cli("user", "remove", "carol", "--data-dir", data), 1, "users.json is not valid JSON")
    dave = _cli("user", "add", "dave", "--role", "viewer", "--password-stdin", "--data-dir", data, input="a long password\n", timeout=60)
    _refused(dave, 1, "users.json is not valid JSON")
    assert users.read_bytes() == damaged  # alice and carol are still in it, for a person to mend
    # a hand-edited role: that entry is named; the others still log in (the sidecar), but nothing is rewritten
    users.write_bytes(damaged.replace(b'"users": {,', b'"users": {', 1).replace(b'"viewer"', b'"Viewer"', 1))
    _refused(_cli("user", "list", "--data-dir", data), 1, "entries without a known role", "'alice'")


@full_disk_only
def test_a_users_file_that_cannot_be_written_is_an_error_and_stays_as_it_was(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): on a full disk or in a read-only data directory `user add`, `revoke` and
    `remove` ended in an OSError traceback from the save. Now exit 1 saying so; the file is as it was."""
    data = tmp_path / "data"
    added = _cli("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60)
    assert added.returncode == 0, added.stderr
    users = data / "users.json"
    before, names = users.read_bytes(), sorted(p.name for p in data.iterdir())
    for change in (("add", "bob", "--password-stdin"), ("add", "alice", "--replace", "--password-stdin"), ("revoke", "alice"), ("remove", "alice")):
        result = _cli("user", *change, "--data-dir", str(data), input="another long password\n", timeout=60, full_disk=True)
        _refused(result, 1, f"cannot write {users}", "nothing was changed")
    assert users.read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == names  # no temporary file left behind


@full_disk_only
def test_a_signing_secret_that_cannot_be_written_is_not_left_empty(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): a full disk while jwt_secret was created left it empty, and every later
    command said it held fewer than 32 bytes until someone deleted it. Now it is there whole or not at all."""
    data = tmp_path / "data"
    # `user add`, which makes the secret before it saves the user (`token` asks for an existing user first, 2026-12-06)
    full = _cli("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60, full_disk=True)
    _refused(full, 2, "cannot use", "jwt_secret")
    assert list(data.iterdir()) == []  # neither the secret nor its temporary file, nor the user
    added = _cli("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60)
    assert added.returncode == 0, added.stderr
    assert len((data / "jwt_secret").read_bytes()) == 128


def test_user_add_checks_the_name_first_and_says_when_there_is_no_terminal_for_the_password(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): the name and role were checked only after the password had been typed
    twice, and a password piped without --password-stdin, or stdin from /dev/null, printed only "Aborted."."""
    data = tmp_path / "data"
    added = _cli("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60)
    assert added.returncode == 0, added.stderr
    for args, code, says in (  # bad input exit 2, as any bad option (was 1: a walk-through, 2026-12-06); a user that exists 1
        (("bad name!",), 2, "user name must be"),
        (("carol", "--role", "admin"), 2, "role must be one of viewer, trader"),
        (("alice",), 1, "user 'alice' exists (use --replace"),
    ):
        _refused(_cli("user", "add", *args, "--data-dir", str(data), stdin=subprocess.DEVNULL, timeout=60), code, says)
    _refused(_cli("user", "add", "carol", "--password-stdin", "--data-dir", str(data), input="short\n", timeout=60), 2, "password must be 8-")
    no_terminal = "no password read (no terminal to ask on, or it was cancelled): pipe the password in with --password-stdin"
    _refused(_cli("user", "add", "dave", "--data-dir", str(data), input="a long password\n", timeout=60), 2, no_terminal)
    _refused(_cli("user", "add", "dave", "--data-dir", str(data), stdin=subprocess.DEVNULL, timeout=60), 2, no_terminal)
    assert "dave" not in (data / "users.json").read_text()


def test_password_stdin_without_any_standard_input_is_said_not_a_traceback(tmp_path: Path) -> None:
    """pythonw or a service has no stdin at all (sys.stdin is None): an AttributeError traceback (the hunt, 2026-12-05)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    result = subprocess.run(
        [sys.executable, "-m", "quantumtrader", "user", "add", "erin", "--password-stdin", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, env=environ, timeout=60, preexec_fn=lambda: os.close(0),  # no fd 0: sys.stdin is None
    )
    _refused(result, 2, "--password-stdin: this process has no standard input to read the password from")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="a pseudo-terminal (POSIX)")
def test_user_add_asks_on_the_terminal_when_stdin_is_redirected(tmp_path: Path) -> None:
    """The prompt reads the terminal, not stdin: `user add bob < /dev/null` typed at a terminal worked, and a check
    of stdin alone refused it (a later review, 2026-12-05). A pseudo-terminal is the child's controlling one."""
    import fcntl
    import time
    import select
    import termios

    master, slave = os.openpty()

    def own_terminal() -> None:  # in the child: a session of its own, the pty (its stdout) its controlling terminal
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)

    environ = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantumtrader", "user", "add", "bob", "--data-dir", str(tmp_path / "data")],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=environ, start_new_session=True, preexec_fn=own_terminal,
    )
    os.close(slave)
    seen = b""
    try:
        for prompt in (b"Password", b"Repeat"):
            deadline = time.monotonic() + 60
            while prompt not in seen:
                assert time.monotonic() < deadline and proc.poll() is None, seen
                if select.select([master], [], [], 0.2)[0]:
                    seen += os.read(master, 1024)
            while termios.tcgetattr(master)[3] & termios.ECHO:  # getpass turns echo off, flushing input, after its prompt
                assert time.monotonic() < deadline and proc.poll() is None, seen
                time.sleep(0.01)
            os.write(master, b"a long password\n")
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # read on: a full pty would block its writes
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 1024)
                except OSError:  # EIO: the child closed its side
                    break
        assert proc.wait(10) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert '"bob"' in (tmp_path / "data" / "users.json").read_text()


def test_a_signing_secret_that_cannot_be_used_is_named_and_left_alone(tmp_path: Path) -> None:
    """A short secret raised RuntimeError (a traceback) from `token` and `user add`, a directory in its place
    IsADirectoryError; the sidecar failed at start-up and `run` restarted it forever."""
    data = tmp_path / "data"
    added = _cli("user", "add", "alice", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60)
    assert added.returncode == 0, added.stderr  # an existing user: `token` looks at the secret only for one
    secret = data / "jwt_secret"
    secret.write_text("short")
    _refused(_cli("token", "--user", "alice", "--data-dir", str(data)), 2, "jwt_secret holds fewer than 32 bytes")
    _refused(_cli("sidecar", "--data-dir", str(data), timeout=60), 2, "jwt_secret holds fewer than 32 bytes")
    assert secret.read_text() == "short"  # never replaced: that would log every phone out
    secret.unlink()
    secret.mkdir()
    added = _cli("user", "add", "bob", "--password-stdin", "--data-dir", str(data), input="a long password\n", timeout=60)
    _refused(added, 2, "jwt_secret as the token signing secret: it is not a file")
    assert '"bob"' not in (data / "users.json").read_text() and '"alice"' in (data / "users.json").read_text()  # refused before the user was saved
    _refused(_cli("run", "--data-dir", str(data), timeout=60), 2, "it is not a file")


def test_a_data_dir_with_a_nul_in_it_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text('data_dir = "/tmp/a\\u0000b"\n')
    _refused(_cli("config", "show", "--config", str(config)), 2, "data_dir", "NUL")


def test_a_store_name_or_key_that_cannot_work_is_refused_before_the_daemon_starts(tmp_path: Path) -> None:
    """A path as the store's file name put it elsewhere or failed inside SQLite; another file's name (the
    order journal's) made two subsystems share one database; a key Fernet refuses was a StoreKeyError
    traceback after the kernels had warmed up."""
    data = str(tmp_path / "data")
    for name, says in (
        ("../../x.db", "plain file name"),
        ("orders.sqlite", "another file of the data directory"),
        ("Orders.sqlite", "another file of the data directory"),  # the same file on Windows
        ("NUL.db", "a device on Windows"),
        ("", "plain file name"),
    ):
        _refused(_cli("config", "show", "--data-dir", data, timeout=60, QT_STORE__FILE_NAME=name), 2, "store.file_name", says)
    _refused(_cli("run", "--no-sidecar", "--data-dir", data, QT_STORE_KEY="garbage"), 2, "QT_STORE_KEY", "not a valid Fernet key")


def test_rows_out_of_time_order_are_counted_and_said_not_passed_over(tmp_path: Path) -> None:
    """Found by a review (2026-12-04): a file with rows out of time order was replayed as it stood without a
    word (and a merge of several files assumes each is in order). Counted where evaluate and the paper
    terminal read files; evaluate's table says it (quantumtrader/evaluate/run.py)."""
    from quantumtrader.evaluate.replay import load_ticks

    rows = [f"2024-01-15T10:30:{i:02d}.000Z,1.1{i % 7},1.1{i % 7}2,1\n" for i in range(40)]
    rows[20], rows[25] = rows[25], rows[20]  # 25 before 20: two steps back in time
    path = tmp_path / "EURUSD.csv"
    path.write_text("time,bid,ask,volume\n" + "".join(rows))
    ticks = load_ticks([path])
    assert ticks.sym.shape[0] == 40 and ticks.out_of_order == 2
    assert ticks.first_out_of_order.endswith("EURUSD.csv:23: 2024-01-15T10:30:21.000Z is earlier than the row before it")
    in_order = tmp_path / "GBPUSD.csv"
    in_order.write_text("time,bid,ask,volume\n" + "".join(sorted(rows)))
    assert load_ticks([in_order]).out_of_order == 0


def test_ports_already_taken_are_named_with_what_to_do(tmp_path: Path) -> None:
    """A newcomer's review (2026-12-04): the sidecar logged "sidecar serving" and then uvicorn's bare bind error
    (exit 3), the paper terminal a 40-line traceback, both at every restart under `qt-daemon run`; the daemon named
    the address but not what to do. Each now says it in one line, with the setting to change."""
    import socket

    from support import free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        data = str(tmp_path / "data")
        sidecar = _cli("sidecar", "--data-dir", data, "--port", str(port))
        assert sidecar.returncode == 1, sidecar.stderr[-2000:]
        assert "Traceback" not in sidecar.stderr and "sidecar serving" not in sidecar.stderr, sidecar.stderr[-2000:]
        assert "cannot listen for the app" in sidecar.stderr and "QT_SIDECAR__PORT" in sidecar.stderr, sidecar.stderr[-2000:]
        paper = _cli("paper", "--data-dir", data, "--command-endpoint", f"tcp://127.0.0.1:{port}", "--events", f"tcp://127.0.0.1:{free_port()}")
        _refused(paper, 1, f"cannot bind the command socket at tcp://127.0.0.1:{port}", "--command-endpoint")
        daemon = _cli("run", "--no-sidecar", "--data-dir", data, QT_ENDPOINTS__EVENTS=f"tcp://127.0.0.1:{port}")
        assert daemon.returncode == 1 and "Traceback" not in daemon.stderr, daemon.stderr[-2000:]
        assert "cannot bind" in daemon.stderr and "QT_ENDPOINTS__EVENTS" in daemon.stderr, daemon.stderr[-2000:]


def test_settings_that_would_be_ignored_are_refused(tmp_path: Path) -> None:
    """`run --ticks F` without --paper served with no terminal and said nothing of F; QT_SIDECAR_PORT (one
    underscore) was ignored and the sidecar took 8080. Qt's own variables still pass."""
    data = str(tmp_path / "data")
    _refused(_cli("run", "--data-dir", data, "--ticks", str(_good_csv(tmp_path / "EURUSD.csv"))), 2, "--ticks needs --paper")
    _refused(_cli("config", "show", QT_SIDECAR_PORT="9999"), 2, "QT_SIDECAR_PORT", "QT_SIDECAR__PORT")
    shown = _cli("config", "show", QT_QPA_PLATFORM="offscreen", QT_LOGGING_RULES="*.debug=false", QT_SIDECAR__PORT="9999")
    assert shown.returncode == 0 and "port = 9999" in shown.stdout, shown.stderr[-2000:]


@pytest.mark.parametrize("ttl", ["²", "1²h", "٣", "-5m", "0", "h"])
def test_token_ttl_refuses_what_is_not_ascii_digits_with_its_own_message(ttl: str) -> None:
    """``str.isdigit`` took "²" and int() then raised its own message ("invalid literal for int()")."""
    from quantumtrader.sidecar.auth import parse_ttl

    with pytest.raises(ValueError, match="expected seconds|from 1 second"):
        parse_ttl(ttl)
    assert parse_ttl("90m") == 5400 and parse_ttl("3600") == 3600


@pytest.mark.timeout(300)
def test_the_same_tick_file_given_twice_is_refused_not_merged_with_itself(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): `evaluate X X` (or ./t/../t/X and t/X) merged the file with itself, every tick
    twice, and scored that (base rate 0.14 -> 0.57, skill -0.29 -> +0.55) with only the "merged by time" note."""
    data = str(tmp_path / "data")
    (tmp_path / "t").mkdir()
    good = _good_csv(tmp_path / "t" / "EURUSD.csv", rows=30)
    detour = f"{tmp_path}/t/../t/EURUSD.csv"
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "EURUSD.csv").symlink_to(good)  # os.path.samefile: another name of the same file
    for twice in ((str(good), str(good)), (detour, str(good)), (str(tmp_path / "linked" / "EURUSD.csv"), str(good))):
        _refused(_cli("evaluate", *twice, "--no-progress", "--data-dir", data), 2, "FILE:", "the same file", "given twice")
    _refused(_cli("run", "--paper", "--no-sidecar", "--ticks", detour, "--ticks", str(good), "--data-dir", data, timeout=60), 2, "--ticks:", "the same file")
    _refused(_cli("paper", "--ticks", str(good), "--ticks", detour, "--data-dir", data, timeout=60), 2, "--ticks:", "the same file")
    # two files of one symbol that are not the same file are still merged by time (consecutive periods of one feed), and said
    (tmp_path / "later").mkdir()
    later = tmp_path / "later" / "EURUSD.csv"
    later.write_text("time,bid,ask,volume\n" + "".join(f"2024-01-15T10:31:{i:02d}.000Z,1.1,1.1002,1\n" for i in range(30)))
    merged = _cli("evaluate", str(good), str(later), "--no-progress", "--data-dir", data, timeout=280)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert "merged by time" in merged.stderr and "60 of 60 ticks accepted" in merged.stdout, (merged.stdout, merged.stderr[-2000:])


def _bound_by_file_modes() -> list[str]:
    """A command prefix under which a file's mode binds the CLI: root writes a read-only file, unless it runs without
    CAP_DAC_OVERRIDE (util-linux's setpriv); anyone else is bound already."""
    import shutil

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): a read-only file binds nobody here")
    return ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override"]


@pytest.mark.timeout(300)
def test_an_existing_output_file_that_cannot_be_replaced_is_refused_before_the_work(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): --json or --plot naming a file its user may not write passed the check (its
    directory took a temporary file), and the write failed after the whole replay: a PermissionError traceback,
    the table lost. Refused at once now, the file left as it was (evaluate and qt-bench share the check)."""
    good = _good_csv(tmp_path / "EURUSD.csv", rows=30)
    kept = tmp_path / "kept.json"
    kept.write_text("an earlier result")
    kept.chmod(0o444)
    picture = tmp_path / "kept.png"
    picture.write_bytes(b"an earlier plot")
    picture.chmod(0o444)
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "1000"}
    prefix = _bound_by_file_modes()

    def cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", module, *args], capture_output=True, text=True, env=environ, timeout=280)

    evaluate = ("quantumtrader", "evaluate", str(good), "--no-progress", "--data-dir", str(tmp_path / "data"))
    _refused(cli(*evaluate, "--json", str(kept)), 2, "--json:", f"cannot replace {kept}", "Permission denied")
    _refused(cli(*evaluate, "--plot", str(picture)), 2, "--plot:", f"cannot replace {picture}")
    _refused(cli("quantumtrader.bench.cli", "journal", "--json", str(kept)), 2, "--json", "cannot replace")
    assert kept.read_text() == "an earlier result" and picture.read_bytes() == b"an earlier plot"
    if Path("/dev/null").exists():  # it would have been replaced by a regular file
        _refused(_cli("evaluate", str(good), "--json", "/dev/null", "--data-dir", str(tmp_path / "data")), 2, "--json:", "not a regular file")


@pytest.mark.timeout(300)
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE: POSIX")
def test_an_output_file_that_cannot_be_written_after_the_replay_costs_neither_the_table_nor_the_old_file(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): a disk that filled during the replay was an ENOSPC traceback, the table lost,
    and an empty or partial file left where the result should be. A file size limit fails the writes half way
    as a full disk does (EFBIG instead of ENOSPC): the table is printed, each file named with the reason, exit 1,
    and the files of the run before are still there, whole; nothing partial is left."""
    import resource

    data, out = str(tmp_path / "data"), tmp_path / "out"
    out.mkdir()
    good = _good_csv(tmp_path / "EURUSD.csv", rows=60)
    report, picture = out / "report.json", out / "report.png"
    warm = _cli("evaluate", str(good), "--json", str(report), "--plot", str(picture), "--no-progress", "--data-dir", data, timeout=280)
    assert warm.returncode == 0 and report.stat().st_size > 2048 and picture.stat().st_size > 2048, warm.stderr[-2000:]
    earlier, earlier_plot = report.read_bytes(), picture.read_bytes()  # and the kernels cached: nothing but ours is written below

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # Python ignores SIGXFSZ: the write fails with EFBIG

    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "COLUMNS": "1000"}
    args = ["evaluate", str(good), "--json", str(report), "--plot", str(picture), "--no-progress", "--data-dir", data]
    failed = subprocess.run([sys.executable, "-m", "quantumtrader", *args], capture_output=True, text=True, env=environ, timeout=280, preexec_fn=small_files)

    _refused(failed, 1, f"--json: cannot write {report}: File too large", f"--plot: cannot write {picture}: File too large")
    assert "ensemble" in failed.stdout and "coin_flip" in failed.stdout, failed.stdout  # the table, not lost
    assert report.read_bytes() == earlier and picture.read_bytes() == earlier_plot  # the earlier results, whole
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.png"]  # no temporary file left


def test_numbers_and_times_that_python_alone_would_bend_are_refused_saying_what_is_accepted(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): `1_1,1_1002` was scored as a quote of 11 / 11002 (float takes digit-group
    underscores); a time of `1705314600000.5` was "month must be in 1..12"; integer seconds were read as
    milliseconds in 1970 and counted only as `bad_time`, no hint."""
    data = str(tmp_path / "data")
    cases = (
        ("EURUSD.csv", "1705314600000,1_1,1_1002", "bid '1_1' is not a decimal number"),
        ("GBPUSD.csv", "1705314600000.5,1.1,1.1002", "time 1705314600000.5 is not integer milliseconds; a time is integer milliseconds since 1970"),
        ("USDJPY.csv", "1705314600,150.1,150.12", "time 1705314600 is before 2000-01-01 (seconds? times 1000 it is 2024-01-15T10:30:00.000Z)"),
    )
    for name, row, says in cases:
        path = tmp_path / name
        path.write_text("time,bid,ask\n" + (row + "\n") * 30)
        _refused(_cli("evaluate", str(path), "--no-progress", "--data-dir", data), 2, f"{path}: no tick in it (30 unreadable rows; first: {path}:2: ", says)


@pytest.mark.timeout(300)
def test_too_few_ticks_to_score_are_said_not_a_table_of_nan(tmp_path: Path) -> None:
    """Found by a review (2026-12-05): a file no longer than the horizon (20 ticks) printed a table of `nan`
    and exited 0. No tick of such a symbol has an outcome to be scored against: it is named, not scored, and
    a run where no symbol can be scored is an error."""
    data = str(tmp_path / "data")
    short = _good_csv(tmp_path / "GBPUSD.csv", rows=10)
    alone = _cli("evaluate", str(short), "--no-progress", "--data-dir", data, timeout=280)
    _refused(alone, 1, "too few ticks to score: GBPUSD 10 accepted", "horizon of 20 ticks (signals.horizon_ticks)", "at least 21")
    assert alone.stdout == ""

    longer = tmp_path / "EURUSD.csv"
    longer.write_text("time,bid,ask\n" + "".join(f"{1_705_314_600_000 + 1000 * i},1.1000{i % 7},1.1002{i % 7}\n" for i in range(60)))
    both = _cli("evaluate", str(longer), str(short), "--no-progress", "--json", str(tmp_path / "out.json"), "--data-dir", data, timeout=280)
    assert both.returncode == 0, both.stderr[-2000:]
    assert "GBPUSD: 10 ticks accepted, too few to score" in both.stdout and "EURUSD: 60 ticks" in both.stdout, both.stdout
    assert "nan" not in both.stdout, both.stdout
    import orjson

    report = orjson.loads((tmp_path / "out.json").read_bytes())
    assert [sym["symbol"] for sym in report["symbols"]] == ["EURUSD"]
    assert report["symbols_not_scored"] == ["GBPUSD"] and report["too_few_ticks"] == {"GBPUSD": 10}


def test_an_output_that_is_an_input_or_the_other_output_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A hunt (2026-12-05): `evaluate V.csv --json V.csv` replaced the recorded ticks with the report, and
    `--json X.png --plot X.png` the report with the plot, each with exit 0; qt-bench's --json could replace its
    --ticks file the same way."""
    ticks = _good_csv(tmp_path / "EURUSD.csv")
    before = ticks.read_bytes()
    data = str(tmp_path / "data")
    link = tmp_path / "link.csv"
    link.symlink_to(ticks)
    (tmp_path / "sub").mkdir()
    for out in (str(ticks), str(link), str(tmp_path / "sub" / ".." / "EURUSD.csv")):
        _refused(_cli("evaluate", str(ticks), "--no-progress", "--data-dir", data, "--json", out), 2, "--json", "is an input file")
    _refused(_cli("evaluate", str(ticks), "--no-progress", "--data-dir", data, "--json", str(tmp_path / "r.png"), "--plot", str(tmp_path / "r.png")), 2, "--json and --plot name one file")
    _refused(_cli("evaluate", str(ticks), "--no-progress", "--data-dir", data, "--signals", str(link)), 2, "--signals", "is an input file")
    _refused(_cli("evaluate", str(ticks), "--no-progress", "--data-dir", data, "--signals", str(tmp_path / "s"), "--json", str(tmp_path / "s")), 2, "name one file")
    _refused(_bench("features", "--ticks", str(ticks), "--json", str(ticks)), 2, "is an input file")
    assert ticks.read_bytes() == before


def test_a_trade_with_a_side_or_symbol_no_order_can_have_is_refused_before_it_is_sent() -> None:
    """A hunt (2026-12-05): `trade hold EURUSD` with no daemon waited out every try (45 s), then said a daemon that
    read it "may still fill it"; the daemon refuses it at once. Checked here as lots are, exit 2."""
    _refused(_cli("trade", "hold", "EURUSD", "--timeout-ms", "50", timeout=20), 2, "side must be buy or sell, got 'hold'")
    _refused(_cli("trade", "buy", "EUR USD", "--timeout-ms", "50", timeout=20), 2, "symbol must be 1-32 chars")


def test_a_huge_bad_value_in_a_tick_file_is_named_cut_short(tmp_path: Path) -> None:
    """A hunt (2026-12-05): a 1,000,000-character time was echoed twice (2 MB on the terminal and in the JSON's
    first_bad_row), and a 200,000-character header once."""
    rows = tmp_path / "EURUSD.csv"
    rows.write_text("time,bid,ask\n" + "x" * 1_000_000 + ",1.1,1.1002\n" + "".join(f"2024-01-15T10:30:{i:02d}.000Z,1.1,1.1002\n" for i in range(50)))
    header = tmp_path / "GBPUSD.csv"
    header.write_text("z" * 200_000 + "\n2024-01-15T10:30:00.000Z,1.1,1.1002\n")
    data = str(tmp_path / "data")
    result = _cli("evaluate", str(rows), "--no-progress", "--data-dir", data)
    assert "Traceback" not in result.stderr and "xxxxxxxx" in result.stdout + result.stderr, result.stderr[-500:]
    assert len(result.stdout) + len(result.stderr) < 50_000, (len(result.stdout), len(result.stderr))
    refused = _cli("evaluate", str(header), "--no-progress", "--data-dir", data)
    _refused(refused, 2, "header must start with time,bid,ask")
    assert len(refused.stderr) < 2_000, len(refused.stderr)


def test_a_tick_dated_in_the_future_is_rejected_by_evaluate_as_the_daemon_would(tmp_path: Path) -> None:
    """A hunt (2026-12-05): evaluate judged "too far ahead" against each tick's own time, so it never fired; one row
    dated 2099 was accepted and moved the signal policy's clock on by 75 years. Judged against the machine's clock now,
    as the daemon's is: rejected, counted under the daemon's reason, the other rows replayed."""
    rows = [f"2024-01-15T10:{i // 60:02d}:{i % 60:02d}.000Z,1.1,1.1002" for i in range(100)]
    rows.insert(50, "2099-01-15T10:30:00.000Z,1.1,1.1002")
    ticks = tmp_path / "EURUSD.csv"
    ticks.write_text("time,bid,ask\n" + "\n".join(rows) + "\n")
    result = _cli("evaluate", str(ticks), "--no-progress", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "100 of 101 ticks accepted (rejected as the daemon would: bad_time 1)" in result.stdout, result.stdout[:500]


def test_config_init_on_a_directory_and_status_with_no_daemon_say_what_is_wrong(tmp_path: Path) -> None:
    """A trader's walk-through (2026-12-06): ``config init DIR`` said "exists; use --force", then ``--force`` failed
    with "Is a directory"; ``status`` with no daemon said only "no answer", as for a stuck one."""
    for force in ((), ("--force",)):
        _refused(_cli("config", "init", str(tmp_path), *force), 2, f"{tmp_path} is a directory: give the file's path")
    from quantumtrader.bench.procs import free_port
    from quantumtrader.store.lock import DataDirLock

    data = tmp_path / "data"
    data.mkdir()
    env = {"QT_DATA_DIR": str(data), "QT_ENDPOINTS__CONTROL": f"tcp://127.0.0.1:{free_port()}"}
    _refused(_cli("status", "--timeout-ms", "200", **env), 1, "no answer from the daemon", f"no daemon is running on data directory {data}")
    held = DataDirLock(data)  # this process holds it, as a daemon stuck or listening elsewhere would
    held.acquire()
    try:
        _refused(_cli("stop", "--timeout-ms", "200", **env), 1, f"process {os.getpid()} holds data directory {data}")
    finally:
        held.release()


def test_two_feeds_of_one_symbol_over_one_period_are_refused_and_consecutive_periods_merged(tmp_path: Path) -> None:
    """A hunt of evaluate (2026-12-06): an OANDA and an FXCM file of one period were merged into one EURUSD series and
    scored, a trade opened on one feed's ask and closed on the other's bid, with only a note on stderr (the mix read
    a positive Brier skill neither feed had). Files of one symbol whose ticks interleave are refused before the
    replay, naming them; consecutive periods of one feed are merged as before."""

    def feed(path: Path, start_s: int, rows: int, step_s: int, mid: float) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(rows):
            t = start_s + i * step_s
            m = mid + 0.0001 * ((i * 7919) % 13 - 6)
            lines.append(f"2024-01-15T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}.000Z,{m:.5f},{m + 0.0002:.5f},1\n")
        path.write_text("time,bid,ask,volume\n" + "".join(lines))
        return path

    data = str(tmp_path / "data")
    a = feed(tmp_path / "oanda" / "EURUSD.csv", 36_000, 400, 2, 1.1000)
    b = feed(tmp_path / "fxcm" / "EURUSD.csv", 36_001, 400, 2, 1.1001)  # the same period, a second apart
    _refused(_cli("evaluate", str(a), str(b), "--no-progress", "--data-dir", data), 1, "overlap in time", str(a), str(b), "evaluate each on its own")
    later = feed(tmp_path / "later" / "EURUSD.csv", 36_000 + 800, 400, 2, 1.1000)  # after a's last tick
    merged = _cli("evaluate", str(a), str(later), "--no-progress", "--data-dir", data)
    assert merged.returncode == 0 and "overlap" not in merged.stderr, merged.stderr[-2000:]
