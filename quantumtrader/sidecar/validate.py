"""Request bodies and query parameters are outside input: every field checked, every refusal counted.

400 when the body is not a JSON object at all (413 when it is over 64 KiB); 422 when a field is missing,
of the wrong type or out of range (PROTOCOL.md, "App API"). The messages name
the field, so an app developer can fix the request from the error alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request

from quantumtrader.protocol import MAX_TICKET, ProtocolError, check_symbol, decimal, positive_int
from quantumtrader.sidecar.errors import ApiError

MAX_BODY_BYTES = 64 * 1024


async def json_body(request: Request, rejects: Counter[str], *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object. An empty body is ``{}`` when allowed (the app's close sends none)."""
    raw = await _read_limited(request, rejects)
    if not raw.strip():
        if allow_empty:
            return {}
        raise refuse(rejects, "body_missing", 400, "a JSON object body is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise refuse(rejects, "body_bad_json", 400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise refuse(rejects, "body_not_object", 400, "body must be a JSON object")
    return body


async def _read_limited(request: Request, rejects: Counter[str]) -> bytes:
    """The body, at most MAX_BODY_BYTES, within ``sidecar.body_timeout_s``.

    A client that declared more than it sent and hung up raised Starlette's ClientDisconnect out of the route:
    a 500 and a traceback per request (a fuzz, 2026-12-05); one that stays connected held the request for ever.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (decimal(declared) or 0) > MAX_BODY_BYTES:
        raise _too_large(rejects)
    chunks: list[bytes] = []
    size = 0
    timeout_s = request.app.state.sidecar.config.sidecar.body_timeout_s
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large(rejects)
                chunks.append(chunk)
    except ClientDisconnect:
        raise refuse(rejects, "body_incomplete", 400, "the client went away before its body ended") from None
    except TimeoutError:  # 400, bad input: PROTOCOL.md's statuses have no 408
        raise refuse(rejects, "body_timeout", 400, f"the body did not arrive within {timeout_s:g} s") from None
    return b"".join(chunks)


def _too_large(rejects: Counter[str]) -> ApiError:
    """413, and the connection closed after it: the rest of the body is still coming (or never will, when the
    declared length is a lie), and the server would otherwise read and drop it all on a connection kept alive,
    the client left waiting with its upload unfinished. It was a 400 on an open connection (a trader's
    walk-through hunt, 2026-12-06)."""
    return refuse(rejects, "body_too_large", 413, f"body larger than {MAX_BODY_BYTES} bytes", {"Connection": "close"})


def refuse(
    rejects: Counter[str], reason: str, status: int, message: str, headers: Mapping[str, str] | None = None, *, extra: Mapping[str, Any] | None = None
) -> ApiError:
    """Count a refusal under ``reason`` and make its error (the reason goes along: the refusal's log line is
    keyed by it, errors.py)."""
    rejects[reason] += 1
    return ApiError(status, message, headers, extra, reason=reason)


def field_error(rejects: Counter[str], message: str) -> ApiError:
    return refuse(rejects, "invalid_field", 422, message)


def text(body: dict[str, Any], name: str, rejects: Counter[str], *, max_len: int = 256, min_len: int = 0, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise field_error(rejects, f"{name} is required")
        return None
    if not isinstance(value, str) or not min_len <= len(value) <= max_len:
        raise field_error(rejects, f"{name} must be a string of {f'{min_len} to' if min_len else 'at most'} {max_len} characters")
    return value


def symbol(value: Any, rejects: Counter[str], name: str = "symbol") -> str:
    try:
        return check_symbol(value)
    except ProtocolError:
        raise field_error(rejects, f"{name} must be 1-32 characters of A-Z a-z 0-9 . _ # + -") from None


def number(body: dict[str, Any], names: tuple[str, ...], rejects: Counter[str], *, minimum: float = 0.0, strictly: bool = False) -> float | None:
    """The first non-null of ``names`` (two spellings of one field); both given and different is an error."""
    found: float | None = None
    found_name = ""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise field_error(rejects, f"{name} must be a number")
        if value < minimum or (strictly and value == minimum):
            raise field_error(rejects, f"{name} must be {'>' if strictly else '>='} {minimum:g}")
        if found is not None and float(value) != found:
            raise field_error(rejects, f"{found_name} and {name} are the same field and disagree")
        found, found_name = float(value), name
    return found


def ticket(value: Any, rejects: Counter[str]) -> int:
    """A ticket as the apps send it: an integer (the Dart app) or its string (what we serve)."""
    ticket_value = positive_int(value, MAX_TICKET)
    if ticket_value is None:
        raise field_error(rejects, "ticket must be a positive integer (at most 2^64-1) or a string of its digits")
    return ticket_value


def query_float(request: Request, name: str, default: float, rejects: Counter[str], *, low: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise field_error(rejects, f"{name} must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise field_error(rejects, f"{name} must be between {low:g} and {high:g}")
    return value


def query_int(request: Request, name: str, default: int, rejects: Counter[str], *, low: int, high: int) -> int:
    """One message for every bad value: decimal() takes 20 digits at most, so a 23-digit limit was "must be an
    integer" and a 20-digit one "must be between 1 and 1000" (a trader's walk-through hunt, 2026-12-06)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = decimal(raw)
    if value is None or not low <= value <= high:
        raise field_error(rejects, f"{name} must be an integer from {low} to {high}")
    return value
