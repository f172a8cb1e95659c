"""Token buckets per token, per IP and per login name; 429 with ``Retry-After``.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; a request
takes one. Defaults are generous (20/s per token, 50/s per IP): the app polls
signals and positions every 5 s (0.4 requests/s), and the seed bridge's
100-per-15-minutes limit was exhausted by exactly that polling. Login attempts
get their own, strict buckets, because each costs an scrypt and is a password
guess: every attempt per IP, and failed ones per user name from all IPs
together. The name's bucket is checked before the password and charged only
by a failure from an IP its own bucket let through, at a higher rate than one
IP's: one guessing client can never lock the user out (it did when both were
6/min and every attempt counted); many can, for as long as they keep guessing,
which is the price of capping guesses per account.

Memory is bounded: at most ``max_keys`` buckets per limiter; beyond that the
full (idle) ones are forgotten first, as they would allow a request anyway.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from quantumtrader.sidecar.auth import bearer_token
from quantumtrader.sidecar.errors import error_response


class Buckets:
    """Token buckets by key. ``take(key)`` -> 0.0 if allowed, else seconds until it would be."""

    __slots__ = ("rate_per_s", "burst", "max_keys", "_clock", "_state", "denied")

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.denied = 0

    def take(self, key: str, cost: float = 1.0) -> float:
        now = self._clock()
        tokens = self._level(key, now)
        self._remember(key, tokens - cost if tokens >= cost else tokens, now)
        return self._refusal(tokens, cost)

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Like :meth:`take`, without taking: 0.0 if ``cost`` is there now, else seconds until it would be."""
        return self._refusal(self._level(key, self._clock()), cost)

    def charge(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` whatever is left, down below zero if need be: for what is paid after the fact (a failed
        login, known only after the scrypt), so attempts that passed :meth:`wait` together are all paid for."""
        now = self._clock()
        self._remember(key, self._level(key, now) - cost, now)

    def _refusal(self, tokens: float, cost: float) -> float:
        if tokens >= cost:
            return 0.0
        self.denied += 1
        return (cost - tokens) / self.rate_per_s

    def _level(self, key: str, now: float) -> float:
        return self._refilled(*self._state.get(key, (self.burst, now)), now)

    def _refilled(self, tokens: float, at: float, now: float) -> float:
        """A bucket left at ``tokens`` at time ``at``, as it stands ``now``."""
        return min(self.burst, tokens + (now - at) * self.rate_per_s)

    def _remember(self, key: str, tokens: float, now: float) -> None:
        state = self._state
        if key not in state and len(state) >= self.max_keys:
            self._prune(now)
        state[key] = (tokens, now)

    def _prune(self, now: float) -> None:
        full = [k for k, (t, at) in self._state.items() if self._refilled(t, at, now) >= self.burst]
        for key in full:
            del self._state[key]
        while len(self._state) >= self.max_keys:  # everyone busy: forget the oldest
            del self._state[next(iter(self._state))]

    def __len__(self) -> int:
        return len(self._state)


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header: whole seconds, at least 1 (RFC 9110 has no fractions)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def token_key(token: str) -> str:
    """The bucket key of a token: its signature (unique per token), never logged."""
    return "t:" + token.rpartition(".")[2][-32:]


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitMiddleware:
    """Plain ASGI: every HTTP request under ``/api/`` takes one token per IP and one per bearer token.

    Counted before authentication, so a flood of bad tokens is limited too.
    WebSocket connections are limited by the WebSocket endpoint itself, which
    must answer in its own protocol (an error message and a close code).
    """

    def __init__(self, app: ASGIApp, per_ip: Buckets, per_token: Buckets, on_deny: Callable[[str], None]) -> None:
        self.app = app
        self.per_ip = per_ip
        self.per_token = per_token
        self.on_deny = on_deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        wait = self.per_ip.take(client_ip(scope))
        kind = "ip"
        if not wait:
            token = bearer_token(_header(scope, b"authorization"))
            if token is not None:
                wait = self.per_token.take(token_key(token))
                kind = "token"
        if wait:
            self.on_deny(kind)
            response = error_response(429, f"rate limited (per {kind}); retry later", retry_after(wait))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None
