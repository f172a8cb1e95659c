"""The REST endpoints of PROTOCOL.md, "App API", with the exact names and types the app reads.

Each handler's docstring says why it does what it does; the YAML after
``---`` is its OpenAPI operation (``/api/openapi.json`` is generated from it).
Reads come from the clone (no round trip to the daemon); trades go to the
daemon's control socket with the caller recorded as ``source``.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from quantumtrader.metrics import prometheus_text
from quantumtrader.protocol import close_price, iso_from_msc, msc_from_text, new_command_id, now_msc, positive_int
from quantumtrader.sidecar.auth import ACCESS, REFRESH, Principal, bearer_token
from quantumtrader.sidecar.errors import ApiError, NoAnswer, Unreachable, order_fields
from quantumtrader.sidecar.jsonresp import JSONResponse
from quantumtrader.sidecar.ratelimit import client_ip, retry_after
from quantumtrader.sidecar.runtime import Sidecar
from quantumtrader.sidecar.signals import app_signal
from quantumtrader.sidecar.validate import field_error, json_body, number, query_float, query_int, refuse, symbol, text, ticket


def _sidecar(request: Request) -> Sidecar:
    sidecar: Sidecar = request.app.state.sidecar
    return sidecar


def _now_iso() -> str:
    return iso_from_msc(now_msc())


def _user(request: Request) -> tuple[Sidecar, Principal]:
    sidecar = _sidecar(request)
    return sidecar, sidecar.authenticate(request)


# -- auth -------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """Username and password for an access and a refresh token.

    Rate limited per IP, and by the user name's recent failures from all IPs,
    before the password is even checked (each check is an scrypt, and each
    attempt a guess; ratelimit.py says why failures only); the scrypt
    runs in a worker thread so the event loop keeps serving.
    ---
    summary: Log in
    tags: [auth]
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [username, password], properties: {username: {type: string}, password: {type: string}}}
    responses:
      200: {description: "{success, accessToken, refreshToken, expiresIn, user{username, role}}"}
      401: {description: wrong user name or password}
      429: {description: too many attempts}
    """
    sidecar = _sidecar(request)
    rejects = sidecar.counters
    body = await json_body(request, rejects)
    username = text(body, "username", rejects, max_len=64)
    password = text(body, "password", rejects, max_len=1024)
    assert username is not None and password is not None
    wait = sidecar.login_per_ip.take(client_ip(request.scope)) or sidecar.login_failures_per_name.wait(username)
    if wait:  # counted by the limiters themselves (login_rate_limited in the metrics)
        raise ApiError(429, "too many login attempts; retry later", retry_after(wait), reason="login_rate_limited")
    user = await anyio.to_thread.run_sync(sidecar.users.authenticate, username, password, limiter=sidecar.scrypt_limiter)
    if user is None:
        sidecar.login_failures_per_name.charge(username)
        raise refuse(rejects, "login_failures", 401, "wrong user name or password")
    assert sidecar.tokens is not None
    sc = sidecar.config.sidecar
    sidecar.counters["logins"] += 1
    return JSONResponse(
        {
            "success": True,
            "accessToken": sidecar.tokens.issue(user, "access", sc.access_ttl_s),
            "refreshToken": sidecar.tokens.issue(user, REFRESH, sc.refresh_ttl_s),
            "tokenType": "Bearer",
            "expiresIn": sc.access_ttl_s,
            "user": {"username": user.name, "role": user.role},
        }
    )


async def refresh(request: Request) -> Response:
    """A refresh token for a new access token (the refresh token itself is not renewed).
    ---
    summary: Refresh the access token
    tags: [auth]
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [refreshToken], properties: {refreshToken: {type: string}}}
    responses:
      200: {description: "{success, accessToken, expiresIn}"}
      401: {description: invalid, expired or not a refresh token}
    """
    sidecar = _sidecar(request)
    body = await json_body(request, sidecar.counters)
    token = text(body, "refreshToken", sidecar.counters, max_len=4096)
    assert token is not None and sidecar.tokens is not None
    principal = sidecar.verify(token, REFRESH)
    ttl = sidecar.config.sidecar.access_ttl_s
    return JSONResponse({"success": True, "accessToken": sidecar.tokens.issue(principal.user, "access", ttl), "tokenType": "Bearer", "expiresIn": ttl})


# -- observability -------------------------------------------------------------------------

#: In its first seconds, before the first snapshot, ``/api/health`` waits at most this long for it.
STARTUP_SYNC_WAIT_S = 2.0


async def _first_snapshot(sidecar: Sidecar) -> None:
    """Just started: wait for the clone's first snapshot (ms away), at most until the sidecar is STARTUP_SYNC_WAIT_S old.

    Answered before it, health said "unreachable" of a healthy daemon (an operations review), and an app or page
    that reconnected at once got /api/account's 503 "no terminal connected" and empty positions and quotes (a CI
    run, 2026-12-05): the feed's health can come before the snapshot's accounts."""
    clone = sidecar.clone
    assert clone is not None
    young_for = STARTUP_SYNC_WAIT_S - (time.monotonic() - sidecar.started_at)
    if clone.snapshot_seq is None and young_for > 0:
        with anyio.move_on_after(young_for):
            await clone.synced.wait()


async def health(request: Request) -> Response:
    """Is the whole chain up: daemon reachable, terminals connected and fresh. No auth, nothing secret.

    ``healthy`` needs the daemon's feed to be alive and the daemon to report
    healthy (a terminal connected, none stale); the app's connection test
    checks exactly ``status == "healthy"``.
    ---
    summary: Health (no auth)
    tags: [observability]
    security: []
    responses:
      200: {description: "{status, uptime, daemon, trading{state, kill_switch}, connections{terminals, websocket_clients}, data_flow, latency, memory, timestamp}"}
    """
    sidecar = _sidecar(request)
    clone = sidecar.clone
    assert clone is not None
    await _first_snapshot(sidecar)
    daemon = clone.daemon_health if clone.daemon_alive() else {}
    alive = bool(daemon)
    signed_in = _signed_in(request, sidecar)  # once: both the terminals and the problems are shown by it
    latency = dict(daemon.get("latency", {})) if alive else {}
    latency["feed_to_websocket"] = sidecar.feed_to_ws()
    data_flow = daemon.get("data_flow") or {"last_market_update": None, "last_signal": None, "pending_trades": 0}
    return JSONResponse(
        {
            "status": "healthy" if alive and daemon.get("status") == "healthy" else "degraded",
            "uptime": round(time.monotonic() - sidecar.started_at, 3),
            # unreachable: the reason, as the WebSocket's health says it (the list was empty: a hunt, 2026-12-05)
            "daemon": {"reachable": alive, "status": daemon.get("status", "unreachable"), "uptime": daemon.get("uptime"), "problems": _problems_for(signed_in, daemon.get("problems", []), clone.terminals) if alive else [clone.unreachable_problem()]},
            # active / reducing (the daily loss) / halted (the kill switch); null while the daemon is unreachable
            "trading": daemon.get("trading"),
            "connections": {"terminals": _terminals_for(signed_in, clone.terminals if alive else []), "websocket_clients": len(sidecar.hub.clients)},
            "data_flow": data_flow,
            "latency": latency,
            "memory": {"rss_mb": daemon.get("memory", {}).get("rss_mb"), "sidecar_rss_mb": sidecar.rss_mb()},
            "feed": {"last_seq": clone.last_seq, "gaps": clone.counters["feed_gaps"], "snapshots": clone.counters["snapshots"]},
            "timestamp": _now_iso(),
        }
    )


#: What /api/health says of a terminal to a caller without a token: whether the chain is up, not whose
#: account it is (the id is <login>@<server>) nor where its unauthenticated command socket listens.
_PUBLIC_TERMINAL_FIELDS = ("platform", "registered", "connected", "stale", "retired", "gone", "last_seen")


def _signed_in(request: Request, sidecar: Sidecar) -> bool:
    token = bearer_token(request.headers.get("authorization"))
    if token and sidecar.tokens is not None:
        try:
            sidecar.tokens.verify(token, ACCESS)
            return True
        except ApiError:
            pass  # health answers anyone: a bad token gets the public view, not a 401
    return False


def _terminals_for(signed_in: bool, terminals: list[Any]) -> list[Any]:
    if signed_in:
        return terminals
    return [{k: t.get(k) for k in _PUBLIC_TERMINAL_FIELDS} for t in terminals if isinstance(t, dict)]


#: File paths in a problem's text (an OSError's str() and the store's own errors name the file): first a quoted
#: string holding a slash or backslash, whole (a path may have spaces: C:\Users\John Smith), then a bare one
#: (POSIX, a drive, a UNC share) not inside a URL or endpoint (tcp://127.0.0.1:5555 stays).
_QUOTED_PATH_RE = re.compile(r"""(['"])[^'"]*[/\\][^'"]*\1""")
_PATH_RE = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:\\|\\\\|/)[^\s'\",()]+")


def _problems_for(signed_in: bool, problems: list[Any], terminals: list[Any]) -> list[str]:
    """The daemon's problems; to a caller without a token, with terminal ids (``<login>@<server>``, which the
    public terminal list leaves out) and file paths replaced: a clock or store problem named them."""
    texts = [str(problem) for problem in problems]
    if signed_in:
        return texts
    ids = [t["terminal"] for t in terminals if isinstance(t, dict) and isinstance(t.get("terminal"), str) and t["terminal"]]
    return [public_problem(problem, ids) for problem in texts]


def public_problem(problem: str, terminal_ids: list[str]) -> str:
    """``problem`` with each of ``terminal_ids`` (the longest first) and every file path replaced."""
    for terminal in sorted(set(terminal_ids), key=len, reverse=True):
        problem = problem.replace(terminal, "<terminal>")
    return _PATH_RE.sub("<path>", _QUOTED_PATH_RE.sub(r"\1<path>\1", problem))


async def metrics(request: Request) -> Response:
    """Prometheus text: the daemon's counters and latency (from its last health) and the sidecar's own.

    Needs a token like every other read (counters reveal trading activity);
    point Prometheus at it with ``authorization: {credentials_file: ...}``.
    ---
    summary: Prometheus metrics
    tags: [observability]
    responses:
      200: {description: Prometheus text exposition format 0.0.4}
    """
    sidecar, _ = _user(request)
    clone = sidecar.clone
    assert clone is not None
    daemon = clone.daemon_health if clone.daemon_alive() else {}
    d_counters = {k: float(v) for k, v in daemon.get("counters", {}).items() if isinstance(v, (int, float))}
    d_counters.update({f"rejects_{k}": float(v) for k, v in daemon.get("rejects", {}).items() if isinstance(v, (int, float))})
    d_gauges = {"up": 1.0 if daemon else 0.0, "uptime_seconds": float(daemon.get("uptime") or 0.0), "rss_megabytes": float(daemon.get("memory", {}).get("rss_mb") or 0.0)}
    # Connected as the daemon says (registered, heard lately, no bye), and none while the daemon itself is silent:
    # "not stale" counted one that said bye, and the clone's last list while the daemon was down (a hunt, 2026-12-05).
    d_gauges["terminals_connected"] = float(sum(1 for t in clone.terminals if isinstance(t, dict) and t.get("connected") is True)) if daemon else 0.0
    d_gauges["pending_trades"] = float((daemon.get("data_flow") or {}).get("pending_trades") or 0)  # a level, not a counter
    free_mb = (daemon.get("disk") or {}).get("free_mb")
    if isinstance(free_mb, int):  # absent (not read, or an older daemon) is not 0 MB free
        d_gauges["data_dir_free_megabytes"] = float(free_mb)
    s_gauges = {
        "websocket_clients": float(len(sidecar.hub.clients)),
        "quotes": float(len(clone.quotes)),
        "positions": float(len(clone.positions)),
        "rss_megabytes": sidecar.rss_mb(),
        "uptime_seconds": time.monotonic() - sidecar.started_at,
        "feed_last_seq": float(clone.last_seq or 0),
    }
    body = prometheus_text(d_counters, d_gauges, daemon.get("latency", {}), prefix="qt_daemon")
    body += prometheus_text(sidecar.own_counters(), s_gauges, {"feed_to_websocket": sidecar.feed_to_ws()}, prefix="qt_sidecar")
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# -- market data -------------------------------------------------------------------------------


async def market(request: Request) -> Response:
    """Latest quote per symbol, from the clone.
    ---
    summary: Latest quotes
    tags: [market]
    responses:
      200: {description: "{quotes: [{symbol, bid, ask, spread, time_msc, timestamp}], timestamp, daemon_reachable}"}
    """
    sidecar, _ = _user(request)
    await _first_snapshot(sidecar)
    assert sidecar.clone is not None
    quotes = [
        {k: q.get(k) for k in ("symbol", "bid", "ask", "spread", "time_msc", "timestamp", "terminal")}
        for _, q in sorted(sidecar.clone.quotes.items())
    ]
    return JSONResponse({"quotes": quotes, "count": len(quotes), "timestamp": _now_iso(), "daemon_reachable": sidecar.clone.daemon_alive()})


#: The latest moment ``since`` may name: the end of year 9999 (datetime's range), in ms.
_MAX_SINCE_MSC = 253_402_300_799_999


def _since_msc(request: Request, sidecar: Sidecar) -> int | None:
    """``since`` as ms since 1970: integer ms, or an ISO-8601 time read as UTC unless it states an offset
    (never the server's local time: every time we serve is UTC)."""
    raw = request.query_params.get("since")
    if not raw:
        return None
    try:
        value: int | None = msc_from_text(raw, naive_is_utc=True)
    except (ValueError, OverflowError):
        value = None
    if value is None or not 0 <= value <= _MAX_SINCE_MSC:
        raise field_error(sidecar.counters, "since must be integer milliseconds since 1970 or an ISO-8601 time (UTC unless it has an offset)")
    return value


async def signals(request: Request) -> Response:
    """Signal history, newest first: the store when the daemon has one, else those seen on the feed.
    ---
    summary: Signals
    tags: [signals]
    parameters:
      - {name: symbol, in: query, schema: {type: string}}
      - {name: min_confidence, in: query, schema: {type: number, minimum: 0, maximum: 1, default: 0.7}, description: "default: sidecar.signals_min_confidence"}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
      - {name: since, in: query, schema: {type: string}, description: ISO-8601 time or integer ms}
    responses:
      200: {description: "{signals: [signal], count, timestamp, source, complete} (complete false: the query's time budget ran out, older ones may match; or stored signals that cannot be read were left out)"}
    """
    sidecar, _ = _user(request)
    rejects = sidecar.counters
    sym = request.query_params.get("symbol") or None
    if sym is not None:
        sym = symbol(sym, rejects)
    # The app's fetchSignals sends no filter and lists what it gets: the seed bridge's 0.7, not every HOLD.
    min_conf = query_float(request, "min_confidence", sidecar.config.sidecar.signals_min_confidence, rejects, low=0.0, high=1.0)
    limit = query_int(request, "limit", 100, rejects, low=1, high=1000)
    rows, source, complete = await sidecar.query_signals(symbol=sym, min_confidence=min_conf, limit=limit, since_msc=_since_msc(request, sidecar))
    out = [app_signal(s) for s in rows]
    return JSONResponse({"signals": out, "count": len(out), "timestamp": _now_iso(), "source": source, "complete": complete})


async def features(request: Request) -> Response:
    """The symbol's latest feature vector: from the feed when seen, else asked of the daemon.
    ---
    summary: Latest features of a symbol
    tags: [market]
    parameters:
      - {name: symbol, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "{symbol, time_msc, features{...}}"}
      404: {description: no features for that symbol}
    """
    sidecar, _ = _user(request)
    sym = symbol(request.path_params["symbol"], sidecar.counters)
    assert sidecar.clone is not None
    raw = sidecar.clone.features.get(sym)
    if raw is not None:
        data = orjson.loads(raw).get("data", {})
        return JSONResponse({"symbol": sym, "time_msc": data.get("time_msc"), "features": data.get("features", {})})
    # Not on the feed yet (a sidecar started since the symbol's last tick): the daemon's latest, keyed by symbol.
    broker = sidecar.names.to_broker(sym)
    reply = await sidecar.call("features", symbol=broker)
    latest = reply.get("features")
    data = latest.get(broker) if isinstance(latest, dict) else None
    if not isinstance(data, dict):
        raise refuse(sidecar.counters, "no_features", 404, f"no features for {sym} yet")
    return JSONResponse({"symbol": sym, "time_msc": data.get("time_msc"), "features": data.get("features", {})})


# -- account and positions ------------------------------------------------------------------------


async def positions(request: Request) -> Response:
    """Open positions with ``current_price`` refreshed from the latest quote (bid for BUY, ask for SELL).
    ---
    summary: Open positions
    tags: [account]
    responses:
      200: {description: "{positions: [position], count, timestamp, daemon_reachable}"}
    """
    sidecar, _ = _user(request)
    await _first_snapshot(sidecar)
    clone = sidecar.clone
    assert clone is not None
    out = []
    for pos in clone.positions.values():
        # Its own terminal's quote first, as the daemon prices it: another broker's is the fallback.
        symbol_name = str(pos.get("symbol"))
        price = close_price(pos.get("type") == "BUY", clone.terminal_quotes.get((str(pos.get("terminal", "")), symbol_name)), clone.quotes.get(symbol_name))
        item = dict(pos)
        if price is not None:
            item["current_price"] = price
        out.append(item)
    out.sort(key=lambda p: (str(p.get("open_time")), str(p.get("ticket"))))
    return JSONResponse({"positions": out, "count": len(out), "timestamp": _now_iso(), "daemon_reachable": clone.daemon_alive()})


async def account(request: Request) -> Response:
    """The account object (of ``?terminal=`` when several terminals are connected; else a connected one's, see Clone.default_account).
    ---
    summary: Account
    tags: [account]
    parameters:
      - {name: terminal, in: query, schema: {type: string}}
    responses:
      200: {description: "{login, name, server, currency, balance, equity, margin, free_margin, margin_level, profit, terminal, daemon_reachable}"}
      503: {description: no terminal connected}
    """
    sidecar, _ = _user(request)
    await _first_snapshot(sidecar)
    assert sidecar.clone is not None
    accounts = sidecar.clone.accounts
    wanted = request.query_params.get("terminal")
    if wanted:
        if wanted not in accounts:
            raise refuse(sidecar.counters, "unknown_terminal", 404, f"no account from terminal {wanted!r}")
        chosen = accounts[wanted]
    else:
        chosen = sidecar.clone.default_account()
        if chosen is None:
            raise ApiError(503, "no terminal connected")
    # daemon_reachable (added): false while the daemon is silent, when these are its last figures (a hunt, 2026-12-05)
    return JSONResponse({**chosen, "daemon_reachable": sidecar.clone.daemon_alive()})


async def orders(request: Request) -> Response:
    """Recent orders from the daemon's journal (newest first), for the dashboard and tools.
    ---
    summary: Recent orders
    tags: [trading]
    parameters:
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
      - {name: request_id, in: query, schema: {type: string, minLength: 1, maxLength: 64}, description: "the order a trade request made (its 504 names the id); none: an empty list"}
    responses:
      200: {description: "{orders: [order], count, timestamp}"}
    """
    sidecar, _ = _user(request)
    # request_id: the id a trade's 504 tells the app to look for here; this route took only limit, and the answer,
    # the newest orders, read as though the request had made none of them (a hunt, 2026-12-05). Empty is refused:
    # it was an empty list, the same "your request made no order" (a trader's walk-through hunt, 2026-12-06).
    request_id = text(dict(request.query_params), "request_id", sidecar.counters, max_len=64, min_len=1, required=False)
    if request_id is not None:
        reply = await sidecar.call("orders", request_id=request_id)
    else:
        reply = await sidecar.call("orders", limit=query_int(request, "limit", 100, sidecar.counters, low=1, high=1000))
    found = [sidecar.names.data(order) if isinstance(order, dict) else order for order in reply.get("orders", [])]
    return JSONResponse({"orders": found, "count": len(found), "timestamp": _now_iso()})


# -- trading ----------------------------------------------------------------------------------------


def _source(principal: Principal) -> str:
    return f"app:{principal.name}"


def _request_id(http: Request, principal: Principal, rejects: Any) -> str:
    """The control request's id: fresh, or from the client's ``Idempotency-Key`` (per user), so that a client
    repeating a trade it got no answer to finds the order the first made (the daemon answers a known id with
    its order) instead of placing a second. Without one, every POST is a new order."""
    key = http.headers.get("idempotency-key")
    if key is None:
        return new_command_id()
    if not 1 <= len(key) <= 128:
        raise field_error(rejects, "Idempotency-Key must be 1-128 characters")
    return hashlib.sha256(f"{principal.name}\0{key}".encode()).hexdigest()[:20]  # a command id: 20 of [0-9a-f]


async def _submit(http: Request, sidecar: Sidecar, principal: Principal, body: dict[str, Any], kind: str, fields: dict[str, Any], message: str) -> Response:
    """Send a trade operation (absent fields left out) and answer with its order.

    A refusal comes back as the daemon's ApiError: 422 with a risk rule's or
    the terminal's reason, 404 unknown ticket, 503 no terminal, 504 no answer.
    The request expires when this wait ends (``expires_msc``): a daemon that reads it later does nothing.
    """
    fields["terminal"] = text(body, "terminal", sidecar.counters, max_len=64, required=False)
    fields["source"] = _source(principal)
    sidecar.counters[f"{kind}_requests"] += 1
    request = {k: v for k, v in fields.items() if v is not None}
    request_id = _request_id(http, principal, sidecar.counters)
    expires_msc = now_msc() + sidecar.trade_timeout_ms
    try:
        reply = await sidecar.call(kind, timeout_ms=sidecar.trade_timeout_ms, retries=0, req_id=request_id, expires_msc=expires_msc, **request)
    except Unreachable as exc:
        # The request may sit in the sockets of a stalled daemon: a plain 503 read as "nothing happened", and
        # the order filled when the daemon woke. The daemon does nothing with it after expires_msc (now).
        sidecar.counters["trade_answered_unreachable"] += 1
        raise ApiError(
            504,
            f"the daemon did not answer: if it read the request before {iso_from_msc(expires_msc)} its order may still fill"
            f" (request id {request_id}, GET /api/orders); after that it does nothing with it",
            extra={"request_id": request_id},
        ) from exc
    except NoAnswer as exc:
        # The order may be waiting its turn behind others at a slow terminal and still fill: a bare 504
        # made a retry (a second order) look safe. Still a 504 (the terminal did not answer in time), but
        # with the order as it stands. An older daemon ignores request_id: its answer does not echo it.
        found = await sidecar.call("orders", request_id=request_id)
        orders = found.get("orders")
        if found.get("request_id") != request_id or not orders or not isinstance(orders[0], dict):
            raise  # the daemon made no order for this request: nothing will execute
        order = orders[0]
        sidecar.counters["trade_answered_pending"] += 1
        status = order.get("status")
        if status == "filled":  # it settled between the wait's end and the lookup
            return _trade_response(sidecar, order, message)
        if status == "rejected":
            raise ApiError(422, str(order.get("error") or "rejected"), extra=order_fields(order)) from exc
        raise ApiError(
            504, f"the terminal has not answered yet: order {order.get('id')} is {status} and may still fill (GET /api/orders, trade_update)", extra=order_fields(order)
        ) from exc
    order = reply.get("order")
    return _trade_response(sidecar, order if isinstance(order, dict) else {}, message)


def _trade_response(sidecar: Sidecar, order: dict[str, Any], message: str) -> Response:
    order = sidecar.names.data(order)  # under the apps' symbol names (sidecar.symbol_suffix)
    status = order.get("status")
    body = {
        "success": status in ("filled", "pending"),
        "ticket": str(order["ticket"]) if order.get("ticket") is not None else None,
        "price": order.get("price"),
        "id": str(order.get("id", "")),
        "status": status,
        "message": message if status == "filled" else f"order {status}",
        "order": order,
    }
    return JSONResponse(body)


async def trade(request: Request) -> Response:
    """Open a position. Traders only; risk rules size and place what is missing.

    ``stop_loss``/``stopLoss`` and ``take_profit``/``takeProfit`` are one
    field each (the app sends the first spelling, others the second); a null
    means "let the risk rules choose". The request waits for the terminal's
    answer (the daemon's Lazy Pirate: timeout x tries), never resent from here.
    ---
    summary: Open a position
    tags: [trading]
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [symbol, type]
            properties:
              symbol: {type: string}
              type: {type: string, enum: [BUY, SELL]}
              lots: {type: number}
              stop_loss: {type: number}
              stopLoss: {type: number}
              take_profit: {type: number}
              takeProfit: {type: number}
              comment: {type: string}
              terminal: {type: string}
    responses:
      200: {description: "{success: true, ticket, price, id, message}"}
      403: {description: viewer}
      422: {description: invalid field or refused by a risk rule (the rule's reason in error)}
      503: {description: no terminal connected}
      504: {description: the terminal did not answer in time}
    """
    sidecar, principal = _user(request)
    sidecar.require_trader(principal)
    rejects = sidecar.counters
    body = await json_body(request, rejects)
    sym = symbol(body.get("symbol"), rejects)
    side = body.get("type", body.get("side"))
    if not isinstance(side, str) or side.upper() not in ("BUY", "SELL"):
        raise field_error(rejects, "type must be BUY or SELL")
    other = body.get("side") if "type" in body else None
    if other is not None and (not isinstance(other, str) or other.upper() != side.upper()):  # one field, two names: as lots/volume
        raise field_error(rejects, "type and side are the same field and disagree")
    fields: dict[str, Any] = {
        "symbol": sidecar.names.to_broker(sym),  # the daemon would map a short suffix itself; sidecar.symbol_suffix may be longer
        "side": side.lower(),
        "lots": number(body, ("lots", "volume"), rejects, minimum=0.0, strictly=True),
        "sl": number(body, ("stop_loss", "stopLoss", "sl"), rejects),
        "tp": number(body, ("take_profit", "takeProfit", "tp"), rejects),
        "comment": text(body, "comment", rejects, max_len=64, required=False),
    }
    return await _submit(request, sidecar, principal, body, "trade", fields, "Trade executed successfully")


async def close(request: Request) -> Response:
    """Close a position (all of it, or ``{"lots": x}`` of it). The app sends no body: that is fine.
    ---
    summary: Close a position
    tags: [trading]
    parameters:
      - {name: ticket, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "{success: true, ticket, price, id, message}"}
      404: {description: no open position with that ticket}
    """
    sidecar, principal = _user(request)
    sidecar.require_trader(principal)
    rejects = sidecar.counters
    tkt = ticket(request.path_params["ticket"], rejects)
    body = await json_body(request, rejects, allow_empty=True)
    # > 0 when given: 0 (or a "volume" read as absent) closed the whole position where a part was asked
    fields = {"ticket": tkt, "lots": number(body, ("lots", "volume"), rejects, minimum=0.0, strictly=True)}
    return await _submit(request, sidecar, principal, body, "close", fields, "Position closed successfully")


async def modify(request: Request) -> Response:
    """Move a position's stop-loss and take-profit; a null or absent one is left as it is.
    ---
    summary: Modify stop-loss / take-profit
    tags: [trading]
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [ticket]
            properties:
              ticket: {type: [string, integer]}
              stop_loss: {type: number}
              stopLoss: {type: number}
              take_profit: {type: number}
              takeProfit: {type: number}
    responses:
      200: {description: "{success: true, ticket, id, message}"}
      404: {description: no open position with that ticket}
      422: {description: invalid field or refused by a risk rule}
    """
    sidecar, principal = _user(request)
    sidecar.require_trader(principal)
    rejects = sidecar.counters
    body = await json_body(request, rejects)
    if body.get("ticket") is None:
        raise field_error(rejects, "ticket is required")
    fields = {
        "ticket": ticket(body["ticket"], rejects),
        "sl": number(body, ("stop_loss", "stopLoss", "sl"), rejects),
        "tp": number(body, ("take_profit", "takeProfit", "tp"), rejects),
    }
    if fields["sl"] is None and fields["tp"] is None:
        raise field_error(rejects, "give stop_loss and/or take_profit")
    return await _submit(request, sidecar, principal, body, "modify", fields, "Position modified successfully")


async def broker_connect(request: Request) -> Response:
    """Whether a terminal with this login is connected to the daemon.

    A terminal logs itself in to its broker; the sidecar cannot and must not
    do it, so the password is validated as a field and then forgotten: never
    stored, never logged, never forwarded.
    ---
    summary: Is this broker login connected?
    tags: [account]
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [login], properties: {platform: {type: string}, server: {type: string}, login: {type: integer}, password: {type: string}}}
    responses:
      200: {description: "{success: true, terminal}"}
      404: {description: "no connected terminal has that login (or only on another server: the error names it)"}
      503: {description: no terminal connected}
    """
    sidecar, _ = _user(request)
    rejects = sidecar.counters
    body = await json_body(request, rejects)
    login_value = positive_int(body.get("login"), 2**63 - 1)
    if login_value is None:
        raise field_error(rejects, "login must be a positive integer")
    text(body, "platform", rejects, max_len=16, required=False)
    server = text(body, "server", rejects, max_len=128, required=False)
    text(body, "password", rejects, max_len=1024, required=False)
    body.pop("password", None)
    clone = sidecar.clone
    assert clone is not None
    if not clone.accounts:
        raise ApiError(503, "no terminal connected")
    stale = {t.get("terminal") for t in clone.terminals if isinstance(t, dict) and t.get("stale")}
    logged_in = [(terminal, acc) for terminal, acc in sorted(clone.accounts.items()) if acc.get("login") == login_value and terminal not in stale]
    for terminal, acc in logged_in:
        if not server or not acc.get("server") or acc.get("server") == server:
            return JSONResponse({"success": True, "terminal": terminal, "login": login_value, "server": acc.get("server", ""), "message": "terminal connected"})
    if logged_in:  # the login is right, the server is not: "no terminal is logged in as" read as a wrong login (a hunt, 2026-12-06)
        servers = ", ".join(sorted({repr(acc.get("server")) for _, acc in logged_in}))
        raise refuse(rejects, "login_on_other_server", 404, f"login {login_value} is connected on server {servers}, not {server!r}")
    raise refuse(rejects, "login_not_connected", 404, f"no connected terminal is logged in as {login_value}")


def api_routes() -> list[BaseRoute]:
    return [
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/api/auth/refresh", refresh, methods=["POST"]),
        Route("/api/health", health, methods=["GET"]),
        Route("/api/metrics", metrics, methods=["GET"]),
        Route("/api/market", market, methods=["GET"]),
        Route("/api/signals", signals, methods=["GET"]),
        Route("/api/features/{symbol}", features, methods=["GET"]),
        Route("/api/positions", positions, methods=["GET"]),
        Route("/api/account", account, methods=["GET"]),
        Route("/api/orders", orders, methods=["GET"]),
        Route("/api/trade", trade, methods=["POST"]),
        Route("/api/trade/close/{ticket}", close, methods=["POST"]),
        Route("/api/trade/modify", modify, methods=["PUT"]),
        Route("/api/broker/connect", broker_connect, methods=["POST"]),
    ]
