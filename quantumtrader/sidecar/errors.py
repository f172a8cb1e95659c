"""Errors as the apps read them: ``{"success": false, "error": "<reason>"}``.

One exception type carries the HTTP status, so handlers raise and never build
error bodies by hand; Starlette's own HTTPExceptions (unknown route, wrong
method) are rendered in the same shape, so the app never sees an HTML page or
``{"detail": ...}``; nor, since the API fuzz (tests/sidecar/test_api_fuzz.py)
showed it, the plain-text "Internal Server Error" of a handler that raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from quantumtrader.sidecar.jsonresp import JSONResponse


class ApiError(Exception):
    """A refusal with its HTTP status (PROTOCOL.md, "App API": 400 401 403 404 422 429 503 504; and 413, a body
    over the sidecar's limit)."""

    def __init__(
        self, status: int, message: str, headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # Why, as the counter it is counted under (validate.refuse; a limiter's own for a login's 429): the refusal's
        # log line is keyed by it, so each reason of a route gets its line. None: a 5xx, or an outcome, not a refusal.
        self.reason = reason
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # fields the body adds after success and error (the order a 504 left pending)


def order_fields(order: Any) -> dict[str, Any]:
    """What an error body adds when an order stands behind it (a refusal, an unknown outcome): its id,
    status and object, so the app can follow it instead of taking a retry for safe."""
    if not isinstance(order, dict):
        return {}
    return {"id": str(order.get("id", "")), "status": order.get("status"), "order": order}


class Unreachable(ApiError):
    """503: no reply and the feed silent too (the daemon is down or stalled). A trade's request may still sit in
    the sockets: the trade routes answer it as an unknown outcome, not as "nothing happened"."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


class NoAnswer(ApiError):
    """504 because the daemon did not answer in time (it is up, waiting for a terminal), as opposed to
    a 504 the daemon itself gave (an order whose outcome is unknown)."""

    def __init__(self, message: str) -> None:
        super().__init__(504, message)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> Response:
    return JSONResponse({"success": False, "error": message, **(extra or {})}, status_code=status, headers=dict(headers or {}))


def _log_refusal(request: Request, status: int, message: str, reason: str | None, *, count: bool = False) -> None:
    """A client's request refused (4xx): counted under ``reason`` when ``count`` (validation has not counted it
    already), logged once per status, route and reason per interval (Sidecar.log_reject). The route's template,
    not the path, keys it: paths are the client's to invent."""
    sidecar = getattr(request.app.state, "sidecar", None)
    if sidecar is None or not 400 <= status < 500:
        return
    if count and reason is not None:
        sidecar.counters[reason] += 1
    route = getattr(request.scope.get("route"), "path", None) or "(no route)"
    sidecar.log_reject(f"{status} {route} {reason}", status=status, route=route, reason=reason, method=request.scope.get("method", "WS"), error=message[:200])


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    _log_refusal(request, exc.status, exc.message, exc.reason)
    return error_response(exc.status, exc.message, exc.headers, exc.extra)


#: The app's legacy ``MT4Service`` (lib/services/mt4_service.dart, which its published screens import) and what
#: serves the same need here. Not served: it sends no token, and orders without one are not taken (docs/sidecar.md).
LEGACY_ROUTES = {
    "/api/trades": "GET /api/positions",
    "/api/order": "POST /api/trade",
    "/api/connect": "POST /api/broker/connect",
    "/api/predictions": "GET /api/signals",
}


def _legacy_hint(path: str) -> str:
    instead = LEGACY_ROUTES.get(path) or ("POST /api/trade/close/{ticket}" if path.startswith("/api/close/") else None)
    return f" (the app's legacy MT4Service route, not served: it sends no token; use {instead}, with a token)" if instead else ""


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "error"
    if exc.status_code == 404:
        message = f"not found: {request.url.path}{_legacy_hint(request.url.path)}"
    _log_refusal(request, exc.status_code, message, f"http_{exc.status_code}", count=True)  # an unknown route, a wrong method
    return error_response(exc.status_code, message, exc.headers)


async def handle_internal_error(request: Request, exc: Exception) -> Response:
    """A handler raised (a bug): the app still gets its JSON shape, with a 500.

    Starlette calls this from its outermost middleware and then re-raises, so
    the server logs the traceback as before; counted for /api/metrics.
    """
    sidecar = getattr(request.app.state, "sidecar", None)
    if sidecar is not None:
        sidecar.counters["internal_errors"] += 1
    return error_response(500, f"internal error: {type(exc).__name__}")


#: The app's exception handlers, in one place (the app and its test use this mapping).
EXCEPTION_HANDLERS: dict[Any, Any] = {ApiError: handle_api_error, HTTPException: handle_http_exception, Exception: handle_internal_error}
