"""Everything one sidecar process holds, built once from the config and shared by the endpoints.

Built in :func:`create_app` (no I/O), started and stopped by the app's
lifespan: the ZeroMQ context, the control client, the clone and the hub live
exactly as long as the server does.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import anyio
import psutil
import zmq.asyncio
from starlette.requests import HTTPConnection

from quantumtrader.config import Config
from quantumtrader.log import get_logger
from quantumtrader.metrics import LogLimiter
from quantumtrader.protocol import connect_address
from quantumtrader.sidecar.auth import ACCESS, Principal, TokenService, bearer_token, load_or_create_secret
from quantumtrader.sidecar.control import AsyncControl, ControlTimeout
from quantumtrader.sidecar.errors import ApiError, NoAnswer, Unreachable, order_fields
from quantumtrader.sidecar.hub import Hub
from quantumtrader.sidecar.ratelimit import Buckets
from quantumtrader.sidecar.signals import SignalReader, filter_recent
from quantumtrader.sidecar.state import Clone
from quantumtrader.sidecar.store_reader import open_signal_reader
from quantumtrader.sidecar.symbols import AppSymbols
from quantumtrader.sidecar.users import UserStore
from quantumtrader.sidecar.validate import refuse

#: HTTP statuses of the App API that a daemon refusal may carry through unchanged.
#: Logins whose scrypt may run at once (the rest wait their turn).
LOGIN_SCRYPTS_AT_ONCE = 2
#: Store queries running at once: one, as the store's one read-only connection runs them one at a time anyway
#: (store_reader.LockedReader); the others wait on the event loop, holding no thread (see query_signals).
STORE_QUERIES_AT_ONCE = 1
_PASS_THROUGH = {400, 401, 403, 404, 409, 422, 429, 503, 504}
#: The refusal of a signal query when too many wait for the store (counter and log key).
BUSY = "signal_history_busy"


log = get_logger("quantumtrader.sidecar")


class Sidecar:
    def __init__(self, config: Config) -> None:
        sc = config.sidecar
        self.config = config
        self.started_at = time.monotonic()
        self.counters: Counter[str] = Counter()
        self.users = UserStore(config.data_path)
        self.tokens: TokenService | None = None  # needs the secret file: made in start()
        self.ws_per_user: Counter[str] = Counter()  # open WebSocket connections per user name
        self.per_ip = Buckets(sc.rate_per_ip_per_s, sc.rate_per_ip_burst)
        self.per_token = Buckets(sc.rate_per_token_per_s, sc.rate_per_token_burst)
        self.login_per_ip = Buckets(sc.login_per_min / 60.0, sc.login_burst)
        self.login_failures_per_name = Buckets(sc.login_failures_per_name_per_min / 60.0, sc.login_failures_per_name_burst)
        # Logins' scrypts at once, whatever the limits above let through (~16 MB and a core's worth each): a
        # security review (2026-12-05) ran 294 in 6 s from one client, 830 MB, the daemon's cores. Made in start().
        self.scrypt_limiter: anyio.CapacityLimiter | None = None
        # Signal queries' own threads, apart from anyio's shared pool (40) that Starlette serves the static files
        # from too: each query that waited for the store's lock held a thread of it, and one viewer's slow queries
        # (min_confidence=1 on a big store, each its whole budget) stalled the dashboard for a minute (review,
        # 2026-12-06). Made in start(); ``store_queries`` counts those running and waiting, to refuse beyond.
        self.store_limiter: anyio.CapacityLimiter | None = None
        self.store_queries = 0
        self.names = AppSymbols(sc.symbol_suffix)  # what apps call each symbol (sidecar.symbol_suffix)
        self._store_log = LogLimiter(config.daemon.reject_log_interval_s)
        self._reject_log = LogLimiter(config.daemon.reject_log_interval_s)
        self.hub = Hub(max_updates_per_s=sc.max_updates_per_s, queue_size=sc.ws_queue_size, max_clients=sc.ws_max_clients)
        ex = config.execution
        # A trade waits for the daemon's own Lazy Pirate to the terminal (timeout x tries) plus a margin.
        self.trade_timeout_ms = ex.command_timeout_ms * (ex.command_retries + 1) + 2000
        self._context: zmq.asyncio.Context | None = None
        self.control: AsyncControl | None = None
        self.clone: Clone | None = None
        self.signal_reader: SignalReader | None = None
        self._process = psutil.Process()
        self._summary: dict[str, float] = {}
        self._summary_at = float("-inf")

    def log_reject(self, key: str, **fields: Any) -> None:
        """A refused request or message, logged at most once per ``daemon.reject_log_interval_s`` per ``key`` (a
        bounded set: a status and a route, a WebSocket reason), as the daemon's rejects are; the counters say how
        many. Before, the sidecar's refusals were counted only, so a broken client or a scan left no line to read."""
        self._reject_log.log(key, log.warning, "request refused", **fields)

    def ws_reject(self, reason: str, text: str) -> None:
        """A WebSocket client's message refused (by the endpoint or, before it, by uvicorn): counted as
        ``ws_reject_<reason>``, logged once per reason and interval."""
        self.counters[f"ws_reject_{reason}"] += 1
        self.log_reject(f"ws {reason}", route="/ws", reason=reason, error=text[:200])

    def rate_limited(self, kind: str) -> None:
        """A 429 the rate limiter answered (``kind``: ip, token, login...): counted and logged as a refusal."""
        self.counters[f"rate_limited_{kind}_responses"] += 1
        self.log_reject(f"429 {kind}", status=429, limit=kind)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        sc = self.config.sidecar
        self.scrypt_limiter = anyio.CapacityLimiter(LOGIN_SCRYPTS_AT_ONCE)
        self.store_limiter = anyio.CapacityLimiter(STORE_QUERIES_AT_ONCE)
        self.config.data_path.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenService(load_or_create_secret(self.config.data_path), self.users)
        self._context = zmq.asyncio.Context()
        self.control = AsyncControl(
            connect_address(self.config.endpoints.control), self._context, timeout_ms=sc.control_timeout_ms, retries=sc.control_retries
        )
        self.clone = Clone(
            connect_address(self.config.endpoints.feed),
            self._context,
            self.control,
            self.hub,
            hwm=sc.feed_hwm,
            recent_signals=sc.recent_signals,
            silence_s=sc.daemon_silence_s,
            names=self.names,
        )
        self.clone.start()

    async def stop(self) -> None:
        for client in list(self.hub.clients):
            await self.hub.remove(client)
        self.hub.close()
        if self.clone is not None:
            await self.clone.stop()
        if self.control is not None:
            await self.control.close()
        if self._context is not None:
            self._context.term()

    # -- auth ------------------------------------------------------------------------------

    def authenticate(self, conn: HTTPConnection, token: str | None = None) -> Principal:
        """The caller of a request (Bearer header) or WebSocket (``?token=`` or header); 401 otherwise."""
        token = token or bearer_token(conn.headers.get("authorization"))
        if not token:
            raise refuse(self.counters, "auth_missing", 401, "missing token: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        return self.verify(token, ACCESS)

    def verify(self, token: str, kind: str) -> Principal:
        """The principal of a valid token of type ``kind`` (an access token, or the refresh route's); else a 401
        refused as auth_invalid: counted, and logged apart from auth_missing (before, both were one line per
        route and interval, "reason": null: a trader's walk-through hunt, 2026-12-06)."""
        assert self.tokens is not None
        try:
            return self.tokens.verify(token, kind)
        except ApiError as exc:
            raise refuse(self.counters, "auth_invalid", exc.status, exc.message, exc.headers) from None

    def require_trader(self, principal: Principal) -> None:
        if principal.role != "trader":
            raise refuse(self.counters, "auth_forbidden", 403, f"role {principal.role!r} may not trade (needs trader)")

    # -- daemon ------------------------------------------------------------------------------

    async def call(self, kind: str, *, timeout_ms: int | None = None, retries: int | None = None, **fields: Any) -> dict[str, Any]:
        """A control request whose refusal becomes the matching ApiError.

        No reply: 503 when the feed has been silent too (the daemon is down or
        unreachable), 504 when the daemon is alive but did not answer in time
        (it is waiting for a terminal).
        """
        assert self.control is not None and self.clone is not None
        try:
            reply = await self.control.request(kind, timeout_ms=timeout_ms, retries=retries, **fields)
        except ControlTimeout:
            if self.clone.daemon_alive():
                self.counters["daemon_timeouts"] += 1
                raise NoAnswer(f"the daemon did not answer {kind!r} in time") from None
            self.counters["daemon_unreachable"] += 1
            raise Unreachable("the daemon is not reachable") from None
        if reply.get("ok") is True:
            return reply
        error = str(reply.get("error") or "refused by the daemon")
        status = reply.get("status")
        if error.startswith("unknown request type"):
            raise ApiError(503, f"this daemon does not support {kind!r} yet ({error})")
        if not isinstance(status, int) or status not in _PASS_THROUGH:
            status = 502 if isinstance(status, int) and status >= 500 else 400
        # Counted here too (the daemon counts it by its own reasons): the app's requests the daemon refused.
        raise refuse(self.counters, "daemon_refused", status, error, extra=order_fields(reply.get("order")))

    async def query_signals(self, *, symbol: str | None, min_confidence: float, limit: int, since_msc: int | None) -> tuple[list[dict[str, Any]], str, bool]:
        """Newest-first signals, where they came from ("store" or "feed") and whether the store's query
        looked at every row it could match (``sidecar.signal_query_budget_ms``), under the apps' symbol names."""
        assert self.clone is not None
        reader = self.signal_reader
        if reader is None:
            reader = self.signal_reader = open_signal_reader(self.config)
        if reader is not None:
            names = self.names
            stored = names.to_broker(symbol) if symbol is not None else None  # the store has the broker's names
            self._admit_store_query()
            self.store_queries += 1
            try:
                rows, complete = await anyio.to_thread.run_sync(
                    lambda: reader.signals(symbol=stored, min_confidence=min_confidence, limit=limit, since_msc=since_msc), limiter=self.store_limiter
                )
                unreadable = getattr(rows, "unreadable", 0)
                if unreadable:  # another store key, none, or damage: left out, counted, said once per interval
                    self.counters["stored_signals_unreadable"] += unreadable
                    self._store_log.log(
                        "unreadable",
                        log.error,
                        "stored signals that cannot be read (encrypted with another store key, or without one set here, or damaged) left out of an answer",
                        unreadable=unreadable,
                        total=self.counters["stored_signals_unreadable"],
                    )
                if getattr(rows, "timed_out", not complete):  # both can happen to one query
                    self.counters["signal_queries_cut_short"] += 1
                return self._with_unstored([names.data(row) for row in rows], symbol, min_confidence, limit, since_msc), "store", complete
            except Exception as exc:  # a locked, half-migrated or damaged store must not take the endpoint down
                self.counters["store_errors"] += 1
                self.signal_reader = None
                # ... nor hide the history silently: said (once per interval), and the answer marked incomplete
                self._store_log.log("query", log.error, "signal store unreadable; answering from the signals seen on the feed since start", error=repr(exc)[:300], store_errors=self.counters["store_errors"])
                return self._recent(symbol, min_confidence, limit, since_msc), "feed", False
            finally:
                self.store_queries -= 1
        return self._recent(symbol, min_confidence, limit, since_msc), "feed", True

    def _admit_store_query(self) -> None:
        """Room for one more store query, else a 503 at once (counted as ``signal_history_busy``, logged once per
        interval): queued without bound, each waiting its turn of up to ``sidecar.signal_query_budget_ms``, one
        client's queries delayed everyone's history by minutes, and answers came long after their clients had gone."""
        sc = self.config.sidecar
        if self.store_queries < STORE_QUERIES_AT_ONCE + sc.signal_queries_waiting:
            return
        # When the queue ahead should have drained: each query runs within its budget.
        retry_s = max(1, math.ceil(self.store_queries * sc.signal_query_budget_ms / 1000 / STORE_QUERIES_AT_ONCE))
        # Logged here: a 5xx is not logged as a client's refusal (errors.py), nor is the WebSocket's answer to it.
        self.log_reject("503 signal_history_busy", status=503, reason=BUSY, waiting=self.store_queries)
        raise refuse(self.counters, BUSY, 503, f"signal history busy, retry in {retry_s} s", {"Retry-After": str(retry_s)})

    def _with_unstored(self, stored: list[dict[str, Any]], symbol: str | None, min_confidence: float, limit: int, since_msc: int | None) -> list[dict[str, Any]]:
        """The store's answer with the signals seen on the feed that are newer than its newest and not in it yet.

        The daemon's writer puts signals in SQLite up to ~200 ms after it publishes them (the journal holds them
        meanwhile): a kill in that window left the ones an app had just received out of the history until the
        daemon came back, with ``complete`` true (a hunt, 2026-12-05); every answer lagged the same way."""
        newest = stored[0]["time_msc"] if stored else None
        have = {row.get("id") for row in stored}
        seen = [
            s for s in self._recent(symbol, min_confidence, limit, since_msc)
            if s.get("id") not in have and isinstance(s.get("time_msc"), int) and (newest is None or s["time_msc"] >= newest)
        ]
        if not seen:
            return stored
        return sorted(seen + stored, key=lambda row: row["time_msc"], reverse=True)[:limit]

    def _recent(self, symbol: str | None, min_confidence: float, limit: int, since_msc: int | None) -> list[dict[str, Any]]:
        """The signals the clone has seen on the feed (a store-less daemon's only history)."""
        assert self.clone is not None
        if symbol is not None:  # the clone keeps the apps' names; an app may ask by the broker's
            symbol = self.names.app_name(symbol)
        return filter_recent(self.clone.signals, symbol=symbol, min_confidence=min_confidence, limit=limit, since_msc=since_msc)

    # -- observability ----------------------------------------------------------------------------

    def rss_mb(self) -> float:
        return round(self._process.memory_info().rss / 1e6, 1)

    def own_counters(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for source in (self.counters, self.hub.counters, self.clone.counters if self.clone else Counter()):
            out.update({k: float(v) for k, v in source.items()})
        out["rate_limited_ip"] = float(self.per_ip.denied)
        out["rate_limited_token"] = float(self.per_token.denied)
        out["login_rate_limited"] = float(self.login_per_ip.denied + self.login_failures_per_name.denied)
        out["symbol_suffix_collisions"] = float(len(self.names.collided))
        return out

    def feed_to_ws(self) -> dict[str, float]:
        """The hub's latency summary, recomputed at most once a second (health may be polled often)."""
        now = time.monotonic()
        if now - self._summary_at >= 1.0:
            self._summary = self.hub.latency_summary()
            self._summary_at = now
        return self._summary
