"""``/ws``: authenticate, say ``connection``, then stream feed envelopes and answer the app's messages.

The token comes in ``?token=`` (what the app sends) or the Authorization
header. Without a valid one the client gets ``{"type":"error",...}`` and
close code 1008 (policy violation), as PROTOCOL.md says; the connection is
accepted first only so that the error message can be delivered. Error
messages carry the text both in ``data.message`` (the contract) and at the top
level (where the seed app's WebSocketService looks for it).

Client messages are outside input: size-capped by uvicorn, rate limited per
connection, parsed defensively; a bad one is answered with an error and
counted, never allowed to close anything else. One the protocol refuses
(over the size cap, a broken frame, text that is not UTF-8) closes its own connection
(uvicorn's doing): counted and logged all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from quantumtrader.log import get_logger
from quantumtrader.protocol import ProtocolError, check_symbol, iso_from_msc, now_msc
from quantumtrader.sidecar.auth import ACCESS, Principal, bearer_token
from quantumtrader.sidecar.errors import ApiError
from quantumtrader.sidecar.frames import SCOPE_KEY, FrameCache, encoding_of
from quantumtrader.sidecar.hub import CLOSE_TOO_SLOW, Client, FastWriter, SendMany
from quantumtrader.sidecar.ratelimit import Buckets, client_ip
from quantumtrader.sidecar.runtime import Sidecar
from quantumtrader.sidecar.signals import app_signal

log = get_logger("quantumtrader.sidecar.ws")

CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001
_CLOSE_WAIT_S = 1.0
SERVER_NAME = "quantumtrader-sidecar"


def message(kind: str, data: dict[str, Any] | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"type": kind, "data": data or {}, "timestamp": iso_from_msc(now_msc()), **extra}
    return orjson.dumps(body).decode()


def error_message(text: str) -> str:
    return message("error", {"message": text}, message=text)


async def _refuse_connection(websocket: WebSocket, sidecar: Sidecar, reason: str, message: str, code: int, counter: str | None = None) -> None:
    """A connection refused before it is served: counted under ``counter`` (the IP limiter counts its own),
    logged as a refusal (once per reason and interval), then closed."""
    if counter is not None:
        sidecar.counters[counter] += 1
    sidecar.log_reject(f"ws connection {reason}", route="/ws", reason=f"connection_{reason}", error=message[:200])
    await _refuse(websocket, message, code)


async def websocket_endpoint(websocket: WebSocket) -> None:
    sidecar: Sidecar = websocket.app.state.sidecar
    wait = sidecar.per_ip.take(client_ip(websocket.scope))
    await websocket.accept()
    if wait:
        await _refuse_connection(websocket, sidecar, "rate", "rate limited; retry later", CLOSE_TOO_SLOW)
        return
    token = websocket.query_params.get("token") or bearer_token(websocket.headers.get("authorization"))
    try:
        principal = sidecar.authenticate(websocket, token)
    except ApiError as exc:
        await _refuse_connection(websocket, sidecar, "auth", exc.message, CLOSE_POLICY, "ws_auth_failures")
        return
    assert token is not None  # authenticate() refused a connection without one
    if sidecar.hub.full():
        await _refuse_connection(websocket, sidecar, "full", "server full; retry later", CLOSE_TOO_SLOW, "ws_refused_full")
        return
    # Per user, counted before any await: one token (a viewer's too) could otherwise take every slot
    # of ws_max_clients and lock the trader's own phone out.
    cap = sidecar.config.sidecar.ws_max_per_user
    if sidecar.ws_per_user[principal.name] >= cap:
        await _refuse_connection(websocket, sidecar, "per_user", f"too many connections for user {principal.name} ({cap}); close one and retry", CLOSE_TOO_SLOW, "ws_refused_per_user")
        return
    sidecar.ws_per_user[principal.name] += 1
    try:
        await _serve(websocket, sidecar, principal, token)
    finally:
        sidecar.ws_per_user[principal.name] -= 1
        if sidecar.ws_per_user[principal.name] <= 0:
            del sidecar.ws_per_user[principal.name]


async def _serve(websocket: WebSocket, sidecar: Sidecar, principal: Principal, token: str) -> None:
    """An accepted, authenticated connection, until it ends."""
    await websocket.send_text(
        message("connection", {"status": "connected", "server": SERVER_NAME, "user": principal.name, "role": principal.role, "symbols": sorted(sidecar.clone.quotes) if sidecar.clone else []})
    )
    send, writer = batch_writer(websocket, sidecar.hub.frames)
    client = sidecar.hub.add(send, writer)
    watcher = asyncio.get_running_loop().create_task(_close_when_dropped(websocket, client), name="ws-watch")
    session = Session(sidecar, client, principal, token)
    rechecker = asyncio.get_running_loop().create_task(_recheck_token(websocket, session, sidecar), name="ws-auth")
    try:
        while True:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                refused = _protocol_refusal(websocket, event)
                if refused is not None:
                    sidecar.ws_reject(refused, f"{event.get('reason') or 'frame refused'} (closed {event.get('code')})")
                break
            raw = event.get("text")
            if raw is None and event.get("bytes") is not None:
                raw = event["bytes"].decode("utf-8", "replace")
            await session.handle(raw or "")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the peer went away mid-receive; nothing to answer
    finally:
        watcher.cancel()
        rechecker.cancel()
        await asyncio.gather(watcher, rechecker, return_exceptions=True)
        await sidecar.hub.remove(client)


async def _refuse(websocket: WebSocket, text: str, code: int) -> None:
    """Say why (an ``error`` message), then close with ``code``."""
    await _close(websocket, code, text[:120], say=text)


async def _close(websocket: WebSocket, code: int, reason: str, *, say: str | None = None) -> None:
    """The one way a connection is closed: bounded, since a client that stopped reading blocks a send
    (its connection is then dropped), and never twice (a second close would abort the handshake under way)."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return

    async def say_and_close() -> None:
        if say is not None:
            await websocket.send_text(error_message(say))
        await websocket.close(code=code, reason=reason)

    with contextlib.suppress(Exception):
        await asyncio.wait_for(say_and_close(), _CLOSE_WAIT_S)
        return
    _abort(websocket)


async def _recheck_token(websocket: WebSocket, session: Session, sidecar: Sidecar) -> None:
    """Check the connection's token again every ``sidecar.ws_auth_recheck_s``; close it (1008) once it fails.

    A socket outlives its token: without this, a connection made with a
    one-hour token, or by a user since removed (``qt-daemon user remove``
    promises to revoke every token at once), kept streaming positions and
    trades for as long as the app stayed connected. A role changed in
    users.json applies to the session from the next check on. A client
    keeps its socket across a token refresh by sending the new token
    (``{"type":"auth"}``, :meth:`Session.handle_auth`).
    """
    interval = sidecar.config.sidecar.ws_auth_recheck_s
    assert sidecar.tokens is not None
    while True:
        await asyncio.sleep(interval)
        try:
            session.principal = sidecar.tokens.verify(session.token, ACCESS)  # not authenticate(): a revoked socket is no failed login
        except ApiError as exc:
            sidecar.counters["ws_auth_revoked"] += 1
            await _refuse(websocket, f"{exc.message}; connect again with a valid token", CLOSE_POLICY)
            return
        except Exception:  # a check that cannot be made must not end the checking and leave the socket open
            sidecar.counters["ws_auth_check_failed"] += 1
            await _refuse(websocket, "the token could not be checked; connect again", CLOSE_POLICY)
            return


async def _close_when_dropped(websocket: WebSocket, client: Client) -> None:
    """Close the socket once the hub has given up on the client (too slow, or its send failed)."""
    await client.closed.wait()
    await _close(websocket, CLOSE_TOO_SLOW if client.too_slow else CLOSE_GOING_AWAY, "too far behind" if client.too_slow else "")


#: Close codes with which the WebSocket protocol's parser (the websockets library's, under uvicorn) ends a
#: connection over a client's frame before the endpoint sees it, and the reason counted; any other: bad_frame.
_PROTOCOL_REFUSALS = {1009: "too_large"}


def _protocol_refusal(websocket: WebSocket, event: dict[str, Any]) -> str | None:
    """The reason, when this disconnect is the protocol refusing the client's frame (a message over
    ``sidecar.ws_max_message_bytes``, a frame breaking RFC 6455); None otherwise.

    uvicorn closes such a connection itself (1009, 1002) and only tells the endpoint it is gone: a 70 KB
    message left no count and no line (a trader's walk-through hunt, 2026-12-06). The parser's exception
    tells it from a client that closes with one of those codes itself. (Text that is not UTF-8 uvicorn refuses
    after the parser, 1007, with a log line: counted there, server.UvicornRefusalLog.)"""
    conn = getattr(_uvicorn_protocol(websocket), "conn", None)
    if getattr(conn, "parser_exc", None) is None:
        return None
    return _PROTOCOL_REFUSALS.get(event.get("code", 0), "bad_frame")


def _uvicorn_protocol(websocket: WebSocket) -> Any:
    """Our uvicorn protocol object (frames.SharedFrameProtocol puts it in the scope), or None (another server)."""
    return websocket.scope.get("extensions", {}).get(SCOPE_KEY)


def batch_writer(websocket: WebSocket, frames: FrameCache) -> tuple[SendMany, FastWriter | None]:
    """Send several messages to one client, in one socket write when the server allows it.

    Under uvicorn's websockets-sansio protocol each ASGI send is one frame
    and one ``transport.write`` (a syscall): profiled at 500 clients it was
    most of the sidecar's time. Frames are still separate WebSocket messages
    (the app parses one JSON object per message); only the write is shared.
    When the connection's encoding can be shared (see frames.py), each frame
    comes ready-made from ``frames``, built once for all clients. The
    protocol's own flow control is kept (wait while its transport is paused).
    Any other server gets the plain ASGI path, one send per message.

    Also returns the fast lane (a :class:`SharedFrameWriter`) when frames
    can be shared.
    """
    protocol = _uvicorn_protocol(websocket)
    conn = getattr(protocol, "conn", None)
    if not all(hasattr(x, a) for x, a in ((protocol, "transport"), (protocol, "writable"), (conn, "send_text"), (conn, "data_to_send"))):

        async def one_by_one(texts: list[str]) -> None:
            for text in texts:
                await websocket.send_text(text)

        return one_by_one, None

    encoding = encoding_of(list(getattr(conn, "extensions", None) or ()))

    async def coalesced(texts: list[str]) -> None:
        if not protocol.writable.is_set():
            await protocol.writable.wait()
        if fast is not None:
            fast.write(texts)  # raises ConnectionError when closed
            return
        _check_open(protocol)
        for text in texts:
            conn.send_text(text.encode())
        protocol.transport.write(b"".join(conn.data_to_send()))

    fast = None if encoding is None else SharedFrameWriter(protocol, frames, encoding)
    return coalesced, fast


class SharedFrameWriter:
    """The fast lane of one uvicorn connection: shared frames (frames.py) straight to its transport."""

    __slots__ = ("_protocol", "_frame", "_encoding")

    def __init__(self, protocol: Any, frames: FrameCache, encoding: int) -> None:
        self._protocol = protocol
        self._frame = frames.frame
        self._encoding = encoding

    def ready(self) -> bool:
        protocol = self._protocol
        return bool(protocol.writable.is_set() and not _closed(protocol))

    def write(self, texts: list[str]) -> None:
        protocol = self._protocol
        _check_open(protocol)
        frame, encoding = self._frame, self._encoding
        protocol.transport.write(frame(texts[0], encoding) if len(texts) == 1 else b"".join([frame(text, encoding) for text in texts]))


def _closed(protocol: Any) -> bool:
    return bool(protocol.disconnected or protocol.close_sent)


def _check_open(protocol: Any) -> None:
    if _closed(protocol):
        raise ConnectionError("WebSocket closed")


def _abort(websocket: WebSocket) -> None:
    """Best effort: drop the TCP connection of a client that cannot even take a close frame.

    Reaches uvicorn's protocol object through the connection's scope
    (frames.SharedFrameProtocol puts it there); when that is not possible (another server) the connection ends at the next ping
    timeout instead, with memory still bounded by the transport's buffer.
    """
    transport = getattr(_uvicorn_protocol(websocket), "transport", None)
    if transport is not None:
        transport.abort()


class Session:
    """One client's messages: handshake, ping, subscribe, unsubscribe, get_signals, auth."""

    def __init__(self, sidecar: Sidecar, client: Client, principal: Principal, token: str) -> None:
        self.sidecar = sidecar
        self.client = client
        self.principal = principal
        self.token = token  # the one the periodic re-check verifies: the connection's, or a newer one sent by "auth"
        rate = sidecar.config.sidecar.ws_messages_per_s
        self.limiter = Buckets(rate, max(1, int(rate * 2)), max_keys=1)

    def reject(self, reason: str, text: str) -> None:
        self.sidecar.ws_reject(reason, text)
        self.client.reply(error_message(text))

    async def handle(self, raw: str) -> None:
        if self.limiter.take("c"):
            self.reject("rate", "rate limited: too many messages")
            return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.reject("bad_json", "message is not valid JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.reject("bad_type", "message must be a JSON object with a string type")
            return
        kind = msg["type"]
        handler = getattr(self, f"handle_{kind}", None) if kind in _CLIENT_TYPES else None
        if handler is None:
            self.reject("unknown_type", f"unknown message type {kind[:32]!r} (known: {', '.join(_CLIENT_TYPES)})")
            return
        await handler(msg)

    async def handle_auth(self, msg: dict[str, Any]) -> None:
        """``{"type":"auth","token":T}``: a renewed access token for this connection (our addition).

        The token is checked again every ``sidecar.ws_auth_recheck_s``; a
        client that refreshes its token before expiry hands the new one over
        here and keeps its socket, instead of being closed (1008) and missing
        what comes while it reconnects. It must be a valid access token of the
        same user; otherwise the connection keeps the token it has.
        """
        token = msg.get("token")
        if not isinstance(token, str) or not token or len(token) > 4096:
            self.reject("bad_field", "auth needs token: a string")
            return
        assert self.sidecar.tokens is not None
        try:
            principal = self.sidecar.tokens.verify(token, ACCESS)
        except ApiError as exc:
            self.reject("auth", f"auth refused: {exc.message}")
            return
        if principal.name != self.principal.name:
            self.reject("auth", "auth refused: a token of another user; connect again instead")
            return
        self.token, self.principal = token, principal
        self.client.reply(message("authenticated", {"user": principal.name, "role": principal.role}))

    async def handle_handshake(self, msg: dict[str, Any]) -> None:
        clone = self.sidecar.clone
        self.client.reply(
            message(
                "handshake",
                {
                    "status": "ok",
                    "server": SERVER_NAME,
                    "protocol": 1,
                    "user": self.principal.name,
                    "role": self.principal.role,
                    "symbols": sorted(clone.quotes) if clone else [],
                    "max_updates_per_s": self.sidecar.config.sidecar.max_updates_per_s,
                },
            )
        )

    async def handle_ping(self, msg: dict[str, Any]) -> None:
        echo = msg.get("timestamp")
        self.client.reply(message("pong", {"timestamp": echo} if isinstance(echo, (int, str)) else {}))

    def _symbol(self, msg: dict[str, Any]) -> str | None:
        try:
            return check_symbol(msg.get("symbol"))
        except ProtocolError:
            self.reject("bad_symbol", "symbol must be 1-32 characters of A-Z a-z 0-9 . _ # + -")
            return None

    async def handle_subscribe(self, msg: dict[str, Any]) -> None:
        symbol = self._symbol(msg)
        if symbol is None:
            return
        symbol = self.sidecar.names.app_name(symbol)  # the feed reaches clients under the apps' names (sidecar.symbol_suffix)
        if self.client.symbols is not None and len(self.client.symbols) >= 1024 and symbol not in self.client.symbols:
            self.reject("too_many_symbols", "at most 1024 subscribed symbols")
            return
        self.sidecar.hub.subscribe(self.client, symbol)
        self.client.reply(message("subscribed", {"symbol": symbol, "symbols": sorted(self.client.symbols or ())}))
        clone = self.sidecar.clone
        quote = clone.quotes.get(symbol) if clone else None
        if quote is not None:  # the current quote at once, instead of waiting for the next tick
            self.client.offer_price(symbol, message("price_update", quote), 0)

    async def handle_unsubscribe(self, msg: dict[str, Any]) -> None:
        symbol = self._symbol(msg)
        if symbol is None:
            return
        symbol = self.sidecar.names.app_name(symbol)
        self.sidecar.hub.unsubscribe(self.client, symbol)
        self.client.reply(message("unsubscribed", {"symbol": symbol, "symbols": sorted(self.client.symbols or ())}))

    async def handle_get_signals(self, msg: dict[str, Any]) -> None:
        min_conf = msg.get("min_confidence", self.sidecar.config.sidecar.signals_min_confidence)
        if isinstance(min_conf, bool) or not isinstance(min_conf, (int, float)) or not 0.0 <= min_conf <= 1.0:
            self.reject("bad_value", "min_confidence must be a number from 0 to 1")
            return
        limit = msg.get("limit", 50)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
            self.reject("bad_value", "limit must be an integer from 1 to 500")
            return
        # Charged by what it asks for: 60 bytes asking for 500 signals cost a ping's token, and 20 sockets of
        # one viewer so delayed every phone's prices by a third of a second (review, 2026-12-05).
        if self.limiter.take("c", cost=limit / 25):
            self.reject("rate", "rate limited: get_signals asks for many signals; ask for fewer or less often")
            return
        symbol = None
        if msg.get("symbol") is not None:
            symbol = self._symbol(msg)
            if symbol is None:
                return
        try:
            rows, _, _ = await self.sidecar.query_signals(symbol=symbol, min_confidence=float(min_conf), limit=limit, since_msc=None)
        except ApiError as exc:  # the store's queue is full (runtime.BUSY): already counted and logged there
            self.client.reply(error_message(exc.message))
            return
        for sig in reversed(rows):  # oldest first, as if they had streamed live
            self.client.reply(message("signal", app_signal(sig)))


_CLIENT_TYPES = ("handshake", "ping", "subscribe", "unsubscribe", "get_signals", "auth")
