"""Refused input at the sidecar, over real sockets: answered, counted, and logged once per reason and interval.

What a fuzz of the sidecar found (2026-12-05): a client that declared a body
longer than it sent and hung up raised out of the route (a 500 and a
45-line traceback per request); one that stayed connected held its request
for ever; uvicorn wrote one line per connection that did not speak HTTP;
and the sidecar's own refusals were counted but never logged.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from sidecar_stack import Stack, jwt_secret, running_stack, token_claims


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One log line per reason for the whole module (an interval longer than it runs), bodies given 1 s.
    yield from running_stack(tmp_path_factory.mktemp("refusals"), QT_SIDECAR__BODY_TIMEOUT_S="1", QT_DAEMON__REJECT_LOG_INTERVAL_S="600")


def _raw(stack: Stack, request: bytes, *, keep_open: bool = False, timeout: float = 5.0) -> bytes:
    """Send ``request`` on a fresh TCP connection; with ``keep_open``, read the answer; else hang up at once."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as sock:
        sock.sendall(request)
        if not keep_open:
            return b""
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"}" in answer:
                break
        return answer


def _cut_body(stack: Stack) -> bytes:
    """A trade request that declares 100 bytes of body and sends 5."""
    return (
        f"POST /api/trade HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {stack.tokens['alice']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sym"
    ).encode()


def _counter(stack: Stack, name: str) -> float:
    return stack.counter(name)


def _log(stack: Stack) -> str:
    time.sleep(0.3)  # the sidecar's last lines written
    return (stack.tmp / "sidecar.log").read_text(errors="replace")


def _refused_lines(stack: Stack, needle: str) -> list[str]:
    return [line for line in _log(stack).splitlines() if "request refused" in line and needle in line]


def test_a_client_that_hangs_up_mid_body_is_refused_counted_and_logged_once_without_a_traceback(stack: Stack) -> None:
    for _ in range(10):
        _raw(stack, _cut_body(stack))
    deadline = time.monotonic() + 10
    while _counter(stack, "body_incomplete") < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _counter(stack, "body_incomplete") == 10
    assert _counter(stack, "internal_errors") == 0
    log = _log(stack)
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-3000:]
    lines = _refused_lines(stack, "went away before its body ended")
    assert len(lines) == 1 and "/api/trade" in lines[0], lines
    # and the sidecar still takes a whole request
    assert httpx.get(f"{stack.url}/api/positions", headers=stack.headers(), timeout=10).status_code == 200


def test_a_body_that_stops_arriving_is_answered_400_when_its_time_is_up(stack: Stack) -> None:
    started = time.monotonic()
    answer = _raw(stack, _cut_body(stack), keep_open=True, timeout=10)
    waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert json.loads(body) == {"success": False, "error": "the body did not arrive within 1 s"}
    assert 0.9 < waited < 8, waited  # the setting's 1 s, not never
    assert _counter(stack, "body_timeout") >= 1


def test_connections_that_do_not_speak_http_are_counted_and_logged_once(stack: Stack) -> None:
    before = _counter(stack, "http_invalid_requests")
    for _ in range(200):
        _raw(stack, b"GARBAGE\r\n\r\n", keep_open=True)
    deadline = time.monotonic() + 10
    while _counter(stack, "http_invalid_requests") < before + 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _counter(stack, "http_invalid_requests") == before + 200
    lines = [line for line in _log(stack).splitlines() if "Invalid HTTP request" in line]
    assert len(lines) == 1, lines[:5]


def test_refused_requests_and_websocket_messages_are_logged_once_per_reason(stack: Stack, tmp_path: Path) -> None:
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        for _ in range(5):
            assert http.post("/api/trade", headers=stack.headers(), content=b"{not json").status_code == 400
            assert http.get("/api/signals", params={"limit": "many"}, headers=stack.headers()).status_code == 422
            assert http.get("/api/positions", headers={"Authorization": "Bearer nope"}).status_code == 401
    with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as ws:
        ws.recv(timeout=5)  # connection
        for _ in range(5):
            ws.send("not json")
        errors = 0
        while errors < 5:
            if json.loads(ws.recv(timeout=5))["type"] == "error":
                errors += 1
    assert len(_refused_lines(stack, "body is not valid JSON")) == 1
    (signals,) = _refused_lines(stack, "/api/signals")
    assert "422" in signals and "limit" in signals
    assert len(_refused_lines(stack, '"status": 401')) == 1
    assert len([line for line in _refused_lines(stack, '"route": "/ws"') if '"reason": "bad_json"' in line]) == 1
    log = _log(stack)
    assert stack.tokens["alice"] not in log and "Bearer" not in log


def _frame_the_protocol_refuses(ws: ClientConnection, kind: str) -> None:
    """Send, on an open connection, a frame that uvicorn's WebSocket protocol itself refuses (the endpoint never sees it)."""
    if kind == "too_large":  # 70,000 bytes once inflated: over sidecar.ws_max_message_bytes (64 KiB)
        ws.send('{"type":"ping","pad":"' + "x" * 70_000 + '"}')
    elif kind == "bad_utf8":
        ws.send(b'{"type":"ping","pad":"\xff"}', text=True)
    else:  # an unmasked frame: a client must mask every frame (RFC 6455 5.1)
        ws.socket.sendall(b"\x81\x05hello")


@pytest.mark.parametrize(("kind", "code"), [("too_large", 1009), ("bad_frame", 1002), ("bad_utf8", 1007)])
def test_a_websocket_frame_the_protocol_refuses_is_counted_and_logged_once(stack: Stack, kind: str, code: int) -> None:
    """uvicorn closed such a connection (1009 for a message over 64 KiB) and nothing was counted or logged: only
    ws_connections_total moved; text that is not UTF-8 (1007) was a traceback per message instead (a trader's
    walk-through hunt, 2026-12-06)."""
    before = _counter(stack, f"ws_reject_{kind}")
    with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as ws:
        ws.recv(timeout=5)
        ws.close(code)  # a client's own close with that code: nothing refused, nothing counted (checked below)
    for _ in range(3):
        with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as ws:
            ws.recv(timeout=5)  # connection
            _frame_the_protocol_refuses(ws, kind)
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=5)
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == code
    deadline = time.monotonic() + 10
    while _counter(stack, f"ws_reject_{kind}") < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _counter(stack, f"ws_reject_{kind}") == before + 3
    (line,) = [line for line in _refused_lines(stack, '"route": "/ws"') if f'"reason": "{kind}"' in line]
    assert f"(closed {code})" in line, line
    log = _log(stack)
    assert "Traceback" not in log and "Invalid UTF-8" not in log, log[-3000:]


def _answer_then_end(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it ends the connection (EOF or reset), and how long that took."""
    started = time.monotonic()
    sock.settimeout(within_s)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:  # the server closed with the rest of the body unread: the kernel resets
        pass
    except TimeoutError:  # still open: the time says so
        pass
    return answer, time.monotonic() - started


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server has answered and closed: the rest is refused
        sock.sendall(data)


def _trade_head(stack: Stack, framing: str) -> bytes:
    return (
        f"POST /api/trade HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {stack.tokens['alice']}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("sent", ["declared 99999999999, sent 6", "declared and sent 20 MB", "chunked, 100 KB"])
def test_a_body_over_64_KiB_is_answered_413_and_the_connection_closed(stack: Stack, sent: str) -> None:
    """It was a 400 on a connection kept alive: a client still sending its 20 MB was left hanging, the server taking
    and dropping the rest; one that had declared 99999999999 bytes and sent 6 was never told the connection was
    done with (a trader's walk-through hunt, 2026-12-06)."""
    before = _counter(stack, "body_too_large")
    big = b'{"symbol":"EURUSD","type":"BUY","comment":"' + b"x" * (20 * 1024 * 1024) + b'"}'
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        if sent.startswith("declared 9"):
            sock.sendall(_trade_head(stack, "Content-Length: 99999999999") + b'{"a":1')
        elif sent.startswith("chunked"):
            sock.sendall(_trade_head(stack, "Transfer-Encoding: chunked") + b"%x\r\n" % 100_000 + b"x" * 100_000 + b"\r\n")
        else:  # the whole body, from a thread: the server answers (and closes) long before it is sent
            sock.sendall(_trade_head(stack, f"Content-Length: {len(big)}"))
            threading.Thread(target=_send_quietly, args=(sock, big), daemon=True).start()
        answer, took = _answer_then_end(sock, within_s=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"\r\nconnection: close" in head.lower(), head
    assert json.loads(body) == {"success": False, "error": "body larger than 65536 bytes"}
    assert took < 5, took  # the server ended the connection: the client is not left waiting
    assert _counter(stack, "body_too_large") == before + 1
    assert len(_refused_lines(stack, '"reason": "body_too_large"')) == 1


def test_every_refusal_line_names_its_reason_and_each_reason_gets_its_own_line(stack: Stack) -> None:
    """401, 403, 404 and 405 lines said "reason": null, and their key was status and route alone: a "token expired"
    within the interval was folded into an earlier "missing token" line of the route, although the counters tell
    auth_missing from auth_invalid (a trader's walk-through hunt, 2026-12-06)."""
    now = int(time.time())
    expired = jwt.encode(token_claims(stack, exp=now - 60, iat=now - 120), jwt_secret(stack), algorithm="HS256")
    bob = stack.headers("bob")
    asks: list[tuple[str, str, dict[str, str], dict[str, object] | None, int, str, str]] = [
        # method, path, headers, body, status, route (as logged), reason
        ("GET", "/api/market", {}, None, 401, "/api/market", "auth_missing"),
        ("GET", "/api/market", {"Authorization": f"Bearer {expired}"}, None, 401, "/api/market", "auth_invalid"),
        ("POST", "/api/auth/refresh", {}, {"refreshToken": expired}, 401, "/api/auth/refresh", "auth_invalid"),
        ("POST", "/api/auth/login", {}, {"username": "alice", "password": "not-alices"}, 401, "/api/auth/login", "login_failures"),
        ("POST", "/api/trade", bob, {"symbol": "EURUSD", "type": "BUY", "lots": 0.01}, 403, "/api/trade", "auth_forbidden"),
        ("GET", "/api/no-such-route", {}, None, 404, "(no route)", "http_404"),
        ("DELETE", "/api/market", stack.headers(), None, 405, "/api/market", "http_405"),
        ("GET", "/api/account?terminal=no-such-terminal", stack.headers(), None, 404, "/api/account", "unknown_terminal"),
        ("POST", "/api/broker/connect", stack.headers(), {"login": 42}, 404, "/api/broker/connect", "login_not_connected"),
        ("POST", "/api/broker/connect", stack.headers(), {"login": 1000001, "server": "Other-Live"}, 404, "/api/broker/connect", "login_on_other_server"),
        ("POST", "/api/trade/close/424242", stack.headers(), None, 404, "/api/trade/close/{ticket}", "daemon_refused"),
    ]
    with httpx.Client(base_url=stack.url, timeout=20) as http:
        for method, path, headers, body, status, _, _ in asks:
            response = http.request(method, path, headers=headers, content=json.dumps(body) if body is not None else None)
            assert response.status_code == status, (method, path, response.text)
    for method, _, _, _, status, route, reason in asks:
        lines = [line for line in _refused_lines(stack, f'"reason": "{reason}"') if f'"status": {status},' in line and f'"route": "{route}"' in line]
        assert len(lines) == 1, (method, route, reason, lines)
    (expired_line,) = [line for line in _refused_lines(stack, '"route": "/api/market"') if '"auth_invalid"' in line]
    assert '"error": "token expired"' in expired_line
    nameless = [line for line in _refused_lines(stack, "") if '"reason": null' in line]
    assert not nameless, nameless
