"""Auth against a real sidecar process: 401 / 403 / 1008 as PROTOCOL.md says, files private, no clear passwords.

The sidecar runs without a daemon here: auth is decided before anything is
asked of the daemon, and a sidecar must refuse bad tokens even while the
daemon is down.
"""

from __future__ import annotations

import contextlib
import json
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from sidecar_stack import PASSWORDS, Stack, cli, jwt_secret, make_stack, recv_until, running_stack, token_claims
from support import start, wait_for

PROTECTED = [
    ("GET", "/api/market"),
    ("GET", "/api/signals"),
    ("GET", "/api/features/EURUSD"),
    ("GET", "/api/positions"),
    ("GET", "/api/account"),
    ("GET", "/api/orders"),
    ("GET", "/api/metrics"),
    ("POST", "/api/trade"),
    ("POST", "/api/trade/close/123"),
    ("PUT", "/api/trade/modify"),
    ("POST", "/api/broker/connect"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(tmp_path_factory.mktemp("auth"), QT_SIDECAR__RATE_PER_TOKEN_BURST="30", QT_SIDECAR__RATE_PER_TOKEN_PER_S="1", QT_SIDECAR__WS_AUTH_RECHECK_S="0.3", QT_SIDECAR__WS_MAX_PER_USER="3",
        # a token comes back after a minute: the login counts below are exact; per name as fast as per IP, so one IP cannot lock a name
        QT_SIDECAR__LOGIN_PER_MIN="1",
        QT_SIDECAR__LOGIN_FAILURES_PER_NAME_PER_MIN="1",
    )
    stack.procs["sidecar"] = start(["sidecar"], stack.env, stack.tmp / "sidecar.log")
    wait_for(lambda: _up(stack), 30, "the sidecar to answer", interval=0.2)
    try:
        yield stack
    finally:
        stack.stop_all()


def _up(stack: Stack) -> bool:
    try:
        return httpx.get(f"{stack.url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _request(stack: Stack, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{stack.url}{path}", headers=headers, content=b"{}", timeout=5)


def _assert_401(response: httpx.Response, words: str = "") -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["success"] is False and words in body["error"]


def test_every_protected_endpoint_refuses_a_missing_token(stack: Stack) -> None:
    for method, path in PROTECTED:
        response = _request(stack, method, path, None)
        _assert_401(response, "missing token")
        assert response.headers["www-authenticate"] == "Bearer"


def test_bad_signature_alg_none_expired_and_refresh_as_access_are_401(stack: Stack) -> None:
    secret = jwt_secret(stack)
    forged = jwt.encode(token_claims(stack), b"x" * 64, algorithm="HS256")
    unsigned = jwt.encode(token_claims(stack), None, algorithm="none")  # type: ignore[arg-type]
    expired = jwt.encode(token_claims(stack, exp=int(time.time()) - 60, iat=int(time.time()) - 120), secret, algorithm="HS256")
    refresh = jwt.encode(token_claims(stack, type="refresh"), secret, algorithm="HS256")
    no_role = jwt.encode({k: v for k, v in token_claims(stack).items() if k != "role"}, secret, algorithm="HS256")
    stranger = jwt.encode(token_claims(stack, sub="mallory"), secret, algorithm="HS256")
    hs512 = jwt.encode(token_claims(stack), secret, algorithm="HS512")
    for token, words in [
        (forged, "invalid token"),
        (unsigned, "invalid token"),
        (expired, "expired"),
        (refresh, "refresh token cannot be used"),
        (no_role, "invalid token"),
        (stranger, "unknown user"),
        (hs512, "invalid token"),
        ("not-a-jwt", "invalid token"),
    ]:
        for method, path in (("GET", "/api/positions"), ("POST", "/api/trade")):
            _assert_401(_request(stack, method, path, token), words)
    good = jwt.encode(token_claims(stack), secret, algorithm="HS256")
    assert _request(stack, "GET", "/api/positions", good).status_code == 200
    # issued before this machine's clock stepped back an hour: still good until it expires (a hunt, 2026-12-05)
    later = jwt.encode(token_claims(stack, iat=int(time.time()) + 3600, exp=int(time.time()) + 7200), secret, algorithm="HS256")
    assert _request(stack, "GET", "/api/positions", later).status_code == 200


def test_a_viewer_cannot_trade(stack: Stack) -> None:
    viewer = stack.tokens["bob"]
    for method, path in (("POST", "/api/trade"), ("POST", "/api/trade/close/123"), ("PUT", "/api/trade/modify")):
        response = _request(stack, method, path, viewer)
        assert response.status_code == 403, response.text
        assert response.json() == {"success": False, "error": "role 'viewer' may not trade (needs trader)"}
    assert _request(stack, "GET", "/api/positions", viewer).status_code == 200


def test_websocket_without_a_valid_token_gets_an_error_then_1008(stack: Stack) -> None:
    secret = jwt_secret(stack)
    expired = jwt.encode(token_claims(stack, exp=int(time.time()) - 60, iat=int(time.time()) - 120), secret, algorithm="HS256")
    refresh = jwt.encode(token_claims(stack, type="refresh"), secret, algorithm="HS256")
    for query in ("", "?token=", "?token=garbage", f"?token={expired}", f"?token={refresh}"):
        with connect(f"{stack.ws_url}{query}", open_timeout=5) as ws:
            error = _next(ws)
            assert error["type"] == "error" and error["data"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    # The Authorization header works as well as ?token=.
    with connect(stack.ws_url, additional_headers={"Authorization": f"Bearer {stack.tokens['bob']}"}, open_timeout=5) as ws:
        assert _next(ws)["type"] == "connection"


def _closed_for_policy_within(ws: object, seconds: float) -> str:
    """The error text the server sent before closing with 1008, within ``seconds`` (other messages skipped)."""
    deadline = time.monotonic() + seconds
    error = ""
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))  # type: ignore[attr-defined]
            if msg["type"] == "error":
                error = msg["data"]["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    return error


def _next(ws: Any) -> dict[str, Any]:
    """The next message but the sidecar's own health: no daemon runs here, and every daemon_silence_s it tells its
    clients the daemon is unreachable."""
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=5))
        if msg["type"] != "health":
            return msg


def test_an_open_websocket_is_closed_when_its_token_expires_or_its_user_is_removed(stack: Stack) -> None:
    """A socket outlives its token: it used to stream on after the expiry and after `user remove`."""
    secret = jwt_secret(stack)
    short = jwt.encode(token_claims(stack, sub="bob", role="viewer", exp=int(time.time()) + 1), secret, algorithm="HS256")  # + the 5 s leeway
    with connect(f"{stack.ws_url}?token={short}", open_timeout=5) as ws:
        assert _next(ws)["type"] == "connection"
        started = time.monotonic()
        assert "expired" in _closed_for_policy_within(ws, 10)
        assert time.monotonic() - started > 0.5  # open while the token was valid
    done = cli(["user", "add", "temp", "--role", "viewer", "--password-stdin"], stack.env, "temp-password-1\n")
    assert done.returncode == 0, done.stderr
    token = cli(["token", "--user", "temp", "--ttl", "1h"], stack.env).stdout.strip()
    with connect(f"{stack.ws_url}?token={token}", open_timeout=5) as ws:
        assert _next(ws)["type"] == "connection"
        time.sleep(1.0)
        ws.send(json.dumps({"type": "ping", "timestamp": 1}))  # still served before the removal
        assert _next(ws)["type"] == "pong"
        assert cli(["user", "remove", "temp"], stack.env).returncode == 0
        assert _closed_for_policy_within(ws, 5)


def test_a_socket_handed_a_renewed_token_outlives_the_one_it_connected_with(stack: Stack) -> None:
    """The dashboard refreshes its token before expiry and sends it ({"type":"auth"}) instead of reconnecting."""
    secret = jwt_secret(stack)
    short = jwt.encode(token_claims(stack, sub="bob", role="viewer", exp=int(time.time()) + 1), secret, algorithm="HS256")
    with connect(f"{stack.ws_url}?token={short}", open_timeout=5) as ws:
        assert _next(ws)["type"] == "connection"
        ws.send(json.dumps({"type": "auth", "token": stack.tokens["alice"]}))  # another user's: refused, the old token stays
        assert "another user" in _next(ws)["data"]["message"]
        ws.send(json.dumps({"type": "auth", "token": "garbage"}))
        assert "auth refused" in _next(ws)["data"]["message"]
        ws.send(json.dumps({"type": "auth", "token": stack.tokens["bob"]}))
        reply = _next(ws)
        assert reply["type"] == "authenticated" and reply["data"]["user"] == "bob", reply
        deadline = time.monotonic() + 9  # past the short token's expiry and leeway (~6 s) and a few re-checks
        while time.monotonic() < deadline:
            ws.send(json.dumps({"type": "ping", "timestamp": 1}))
            assert _next(ws)["type"] == "pong"  # still open: a 1008 close would raise here
            time.sleep(1)


def test_one_user_cannot_take_every_websocket_slot(stack: Stack) -> None:
    """Each connection of a user counts until it ends; beyond ws_max_per_user (3 here) refused with 1013."""
    url = f"{stack.ws_url}?token={stack.tokens['bob']}"
    with contextlib.ExitStack() as opened:  # each connect() as a context manager, as websockets now asks
        held = [opened.enter_context(connect(url, open_timeout=5)) for _ in range(3)]
        for ws in held:
            assert _next(ws)["type"] == "connection"
        with connect(url, open_timeout=5) as extra:
            assert "too many connections" in json.loads(extra.recv(timeout=5))["data"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                extra.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as other:  # another user is not affected
            assert json.loads(other.recv(timeout=5))["type"] == "connection"
        held.pop().close()
        deadline = time.monotonic() + 5  # the server counts the closed one down once it sees the close
        while True:
            with connect(url, open_timeout=5) as again:
                if json.loads(again.recv(timeout=5))["type"] == "connection":
                    break
            assert time.monotonic() < deadline, "a slot freed by a close was never given back"
            time.sleep(0.1)


def test_secret_and_users_files_are_private_and_hold_no_clear_password(stack: Stack) -> None:
    for name in ("jwt_secret", "users.json"):
        mode = stat.S_IMODE((stack.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert len(jwt_secret(stack)) >= 64
    for path in stack.tmp.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for password in PASSWORDS.values():
                assert password.encode() not in data, f"a clear-text password is in {path}"
    users = json.loads((stack.data_dir / "users.json").read_text())["users"]
    assert set(users["alice"]) >= {"role", "salt", "hash", "scrypt"} and users["alice"]["role"] == "trader"
    # Tokens are never logged: each used here first, over HTTP and on a WebSocket (?token=, as the app sends it), so
    # the check does not depend on other tests having used them before on this worker.
    for token in stack.tokens.values():
        assert _request(stack, "GET", "/api/positions", token).status_code in (200, 403)
        with connect(f"{stack.ws_url}?token={token}", open_timeout=5) as ws:
            assert _next(ws)["type"] == "connection"
    time.sleep(0.5)  # any log line of those requests written
    log_text = (stack.tmp / "sidecar.log").read_text()
    for token in stack.tokens.values():
        assert token not in log_text


def test_cli_lists_users_and_removing_one_revokes_its_tokens(stack: Stack) -> None:
    done = cli(["user", "add", "carol", "--role", "viewer", "--password-stdin"], stack.env, "carol-secret-pw\n")
    assert done.returncode == 0, done.stderr
    listing = cli(["user", "list"], stack.env).stdout
    assert "alice\ttrader" in listing and "carol\tviewer" in listing and "hash" not in listing
    token = cli(["token", "--user", "carol", "--ttl", "5m"], stack.env).stdout
    assert token.count(".") == 2 and token.strip() == token.rstrip("\n") and len(token.splitlines()) == 1  # only the token
    assert _request(stack, "GET", "/api/positions", token.strip()).status_code == 200
    assert cli(["user", "remove", "carol"], stack.env).returncode == 0
    _assert_401(_request(stack, "GET", "/api/positions", token.strip()), "unknown user")
    assert cli(["token", "--user", "nobody"], stack.env).returncode != 0
    assert cli(["user", "add", "x y", "--password-stdin"], stack.env, "long-enough-pw\n").returncode != 0
    assert cli(["user", "add", "dave", "--role", "admin", "--password-stdin"], stack.env, "long-enough-pw\n").returncode != 0


def test_a_password_change_a_revoke_or_a_remove_and_add_again_retires_old_tokens(stack: Stack) -> None:
    """Found by an audit of the sidecar: tokens named only their user, so a password changed after a leak left
    every issued token working (up to the CLI's 10-year TTL), and removing then adding the name again revived
    them, with the new role. Tokens now carry the user's epoch, which each of these starts afresh."""

    def add(role: str, password: str, *extra: str) -> None:
        done = cli(["user", "add", "erin", "--role", role, "--password-stdin", *extra], stack.env, password + "\n")
        assert done.returncode == 0, done.stderr

    def token() -> str:
        return cli(["token", "--user", "erin", "--ttl", "5m"], stack.env).stdout.strip()

    add("viewer", "erin-first-password")
    first = token()
    assert _request(stack, "GET", "/api/positions", first).status_code == 200
    add("trader", "erin-first-password", "--replace")  # a role change alone keeps the tokens (the role applies to them)
    assert _request(stack, "GET", "/api/positions", first).status_code == 200
    add("viewer", "erin-second-password", "--replace")
    _assert_401(_request(stack, "GET", "/api/positions", first), "token revoked")
    second = token()
    assert _request(stack, "GET", "/api/positions", second).status_code == 200
    assert cli(["user", "revoke", "erin"], stack.env).returncode == 0
    _assert_401(_request(stack, "GET", "/api/positions", second), "token revoked")
    third = token()
    assert cli(["user", "remove", "erin"], stack.env).returncode == 0
    add("trader", "erin-third-password")  # the same name again, now a trader
    _assert_401(_request(stack, "GET", "/api/positions", third), "token revoked")
    assert _request(stack, "GET", "/api/positions", token()).status_code == 200
    assert cli(["user", "revoke", "nobody"], stack.env).returncode != 0


def test_login_refresh_and_per_token_rate_limit(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        login = http.post("/api/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]})
        assert login.status_code == 200, login.text
        body = login.json()
        assert body["success"] is True and body["user"] == {"username": "alice", "role": "trader"}
        assert type(body["expiresIn"]) is int and body["expiresIn"] > 0
        access, refresh = body["accessToken"], body["refreshToken"]
        assert http.get("/api/positions", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        _assert_401(http.get("/api/positions", headers={"Authorization": f"Bearer {refresh}"}), "refresh token cannot be used")
        renewed = http.post("/api/auth/refresh", json={"refreshToken": refresh})
        assert renewed.status_code == 200 and renewed.json()["accessToken"].count(".") == 2
        _assert_401(http.post("/api/auth/refresh", json={"refreshToken": access}), "access token cannot be used")
        assert http.post("/api/auth/login", json={"username": "alice"}).status_code == 422
        # Per-token bucket of this stack: 30 at once, 1/s after: a burst of 40 is cut with 429 + Retry-After.
        statuses = [http.get("/api/market", headers={"Authorization": f"Bearer {access}"}) for _ in range(40)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["success"] is False


def _login_from(stack: Stack, ip: str, username: str, password: str) -> int:
    """One login attempt from a given loopback address (Linux answers on all of 127.0.0.0/8)."""
    with httpx.Client(base_url=stack.url, timeout=10, transport=httpx.HTTPTransport(local_address=ip)) as http:
        return http.post("/api/auth/login", json={"username": username, "password": password}).status_code


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="source addresses across 127.0.0.0/8 are Linux's loopback")
def test_one_guessing_client_cannot_lock_a_user_out_but_many_are_capped(stack: Stack) -> None:
    done = cli(["user", "add", "dave", "--role", "viewer", "--password-stdin"], stack.env, "dave-secret-pw\n")
    assert done.returncode == 0, done.stderr
    # one client guessing dave's password: cut at its IP's burst (5), and dave logs in from elsewhere
    guesses = [_login_from(stack, "127.0.0.2", "dave", f"guess-{i}") for i in range(8)]
    assert guesses[:5] == [401] * 5 and guesses[5:] == [429] * 3, guesses
    assert _login_from(stack, "127.0.0.3", "dave", "dave-secret-pw") == 200
    # many clients together: failures per name are capped (burst 10: 5 left), then even the right password waits
    spread = [_login_from(stack, f"127.0.1.{i}", "dave", "wrong") for i in range(1, 13)]
    assert spread == [401] * 5 + [429] * 7, spread
    assert _login_from(stack, "127.0.0.4", "dave", "dave-secret-pw") == 429


def test_login_attempts_are_rate_limited(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        codes = [http.post("/api/auth/login", json={"username": "bob", "password": f"guess-{i}"}).status_code for i in range(8)]
    assert codes[0] == 401 and 429 in codes, codes
    assert codes.index(429) <= 5  # five attempts at once (login_burst), then one every 10 s


@pytest.mark.parametrize("content", ['{"users": []}', '{"users": "alice"}', "[1, 2]", '{"users": {"alice": 3}}', "not json"])
def test_a_garbled_users_file_means_nobody_not_a_crash(tmp_path, content: str) -> None:
    """Found by the sidecar audit: {"users": []} raised AttributeError on every request (a plain-text 500) and
    killed each WebSocket's token re-check, which then never closed a revoked socket."""
    from quantumtrader.sidecar.users import UserStore

    (tmp_path / "users.json").write_text(content)
    store = UserStore(tmp_path)
    assert store.get("alice") is None and store.list() == [] and store.authenticate("alice", "any password at all") is None


def test_a_secret_another_process_is_still_writing_is_waited_for(tmp_path) -> None:
    """Found by the sidecar audit: the loser of the O_EXCL race (the sidecar starting beside `user add`) read the
    winner's file before it was written and refused it as 'fewer than 32 bytes; delete it'."""
    import threading

    from quantumtrader.sidecar.auth import SECRET_FILE, load_or_create_secret

    path = tmp_path / SECRET_FILE
    path.write_bytes(b"")  # created, not yet written
    writer = threading.Timer(0.3, lambda: path.write_bytes(b"ab" * 64))
    writer.start()
    try:
        assert load_or_create_secret(tmp_path) == b"ab" * 64
    finally:
        writer.join()


def test_a_forwarded_for_header_does_not_pick_the_address_the_limits_key_on(tmp_path) -> None:
    """uvicorn trusts X-Forwarded-For from loopback by default: behind a local proxy or tunnel that passes the
    client's header on (or from any local process), rotating it bypassed the per-IP login limit, locked a user
    out and ran unlimited scrypts (a security review, 2026-12-05). And a WebSocket get_signals asking for 500
    signals cost what a ping does: 20 sockets of one viewer delayed every phone's prices by a third of a second."""
    for stack in running_stack(tmp_path, QT_SIDECAR__LOGIN_PER_MIN="1"):
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            codes = [
                http.post("/api/auth/login", json={"username": "bob", "password": f"guess-{i}"}, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
                for i in range(8)
            ]
        assert codes == [401] * 5 + [429] * 3, codes
        with connect(f"{stack.ws_url}?token={stack.tokens['bob']}", open_timeout=10) as ws:
            recv_until(ws, lambda m: m["type"] == "connection", 10, "the connection message")
            for _ in range(5):  # two fit the bucket (40); five leave no room for a stall's refill
                ws.send(json.dumps({"type": "get_signals", "limit": 500, "min_confidence": 0}))
            refused = recv_until(ws, lambda m: m["type"] == "error", 10, "a refusal of the third get_signals")
            assert "get_signals asks for many signals" in refused["message"], refused
