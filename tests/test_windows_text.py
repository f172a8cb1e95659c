"""Text in and out of the CLI as Windows hands it over (a review for Windows VPSs, 2026-12-04).

Windows tools write a byte-order mark or UTF-16, and Python on Windows encodes a piped stdin/stdout with the
ANSI code page, strictly. Here the same conditions are made on Linux: the files as those tools write them,
``PYTHONIOENCODING=cp1252`` for the code page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import zmq

from quantumtrader.config import load_config
from quantumtrader.paper.ticks import open_text
from quantumtrader.sidecar.users import UserStore
from support import free_port
from test_cli_bad_input import _cli

CONFIG = '# latency in µs\n[sidecar]\nport = 8123\n'


def test_a_config_file_saved_by_notepad_or_powershell_is_read(tmp_path: Path) -> None:
    """Notepad's "UTF-8" begins with a byte-order mark (tomllib refused it at line 1, column 1); PowerShell 5's
    ``qt-daemon config show > qt.toml`` writes UTF-16 ("not valid TOML")."""
    for name, raw in (("bom.toml", b"\xef\xbb\xbf" + CONFIG.encode()), ("utf16.toml", CONFIG.encode("utf-16")), ("plain.toml", CONFIG.encode())):
        path = tmp_path / name
        path.write_bytes(raw)
        assert load_config(path, environ={}).sidecar.port == 8123, name


def test_a_tick_file_saved_as_excel_csv_utf8_is_read(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" begins with a byte-order mark: the header read ``\\ufefftime,bid,ask`` and was refused."""
    path = tmp_path / "EURUSD.csv"
    rows = b"".join(b"2024-01-15T10:30:%02d.000Z,1.1,1.1002\r\n" % i for i in range(30))  # more than the horizon: scored
    path.write_bytes(b"\xef\xbb\xbftime,bid,ask\r\n" + rows)
    with open_text(path) as handle:
        assert handle.readline().rstrip("\r\n") == "time,bid,ask"
    result = _cli("evaluate", str(path), "--no-progress", "--data-dir", str(tmp_path / "data"), timeout=300)
    assert "header" not in result.stderr, result.stderr[-2000:]
    assert "30 of 30 ticks accepted" in result.stdout + result.stderr, (result.stdout[-2000:], result.stderr[-2000:])


def test_a_reply_in_a_language_the_code_page_lacks_is_printed_not_a_traceback(tmp_path: Path) -> None:
    """A broker's message in Russian (a trade's reply names it) raised UnicodeEncodeError on a cp1252 stdout,
    after the order had gone out: it read as a failure worth retrying. A real control socket answers here."""
    port = free_port()
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.bind(f"tcp://127.0.0.1:{port}")

    def answer() -> None:
        if router.poll(60_000):
            frames = router.recv_multipart()
            request = orjson.loads(frames[-1])
            reply = {"v": 1, "type": "reply", "id": request["id"], "ok": True, "orders": [{"error": "Недостаточно денег (10019)"}]}
            router.send_multipart([*frames[:-1], orjson.dumps(reply)])

    server = threading.Thread(target=answer)
    server.start()
    try:
        result = _cli("orders", PYTHONIOENCODING="cp1252", QT_ENDPOINTS__CONTROL=f"tcp://127.0.0.1:{port}")
    finally:
        server.join(70)
        router.close(linger=0)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["orders"][0]["error"] == "Недостаточно денег (10019)"


def test_a_password_piped_in_is_read_as_utf8_whatever_the_code_page(tmp_path: Path) -> None:
    """Windows decodes a piped stdin with the ANSI code page: a non-ASCII password was hashed as other
    characters than the app sends (UTF-8 JSON), and every login failed without a word."""
    data = tmp_path / "data"
    password = "Grüße-€uro-密码"
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run(
        [sys.executable, "-m", "quantumtrader", "user", "add", "ana", "--password-stdin", "--data-dir", str(data)],
        input=password.encode() + b"\r\n", capture_output=True, env=environ, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert UserStore(data).authenticate("ana", password) is not None


def _cli_cp1252(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The CLI with stdout and stderr redirected as Windows hands them over: the ANSI code page, strictly."""
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "PYTHONIOENCODING": "cp1252"}
    return subprocess.run([sys.executable, "-m", "quantumtrader", *args], input=stdin, capture_output=True, env=environ, timeout=120)


def test_the_cli_writes_utf8_to_a_redirected_stdout_and_stderr_whatever_the_code_page(tmp_path: Path) -> None:
    """Found by a Windows review (2026-12-05): `config show > qt.toml` with a non-ASCII data directory wrote cp1252
    (then refused on load as not UTF-8), or raised UnicodeEncodeError for what cp1252 lacks; `user add` raised it
    after the user was saved; an error naming such a path came out as backslash escapes."""
    for name in ("Grüße", "данные"):
        data = tmp_path / name
        shown = _cli_cp1252("config", "show", "--data-dir", str(data))
        assert shown.returncode == 0, shown.stderr.decode(errors="replace")[-2000:]
        config_file = tmp_path / f"{name}.toml"
        config_file.write_bytes(shown.stdout)
        assert load_config(config_file, environ={}).data_dir == str(data)
        added = _cli_cp1252("user", "add", "ana", "--password-stdin", "--data-dir", str(data), stdin=b"a long password\n")
        assert added.returncode == 0 and b"Traceback" not in added.stderr, added.stderr.decode(errors="replace")[-2000:]
        assert f"user ana (viewer) saved in {data}" in added.stdout.decode("utf-8")
        missing = tmp_path / f"{name}-missing.toml"
        refused = _cli_cp1252("config", "show", "--config", str(missing))
        assert refused.returncode == 2 and f"file not found: {missing}" in refused.stderr.decode("utf-8"), refused.stderr[-2000:]

