"""Random requests at the edges of what the app API takes, to the real stack (daemon, paper terminal, sidecar).

tests/sidecar/test_contract.py checks the app's own requests and named bad
inputs one by one. This sends what no app sends: every route with path
parameters, query parameters and JSON bodies drawn from values at and past
the edges (integers past 64 bits, 1e308, -0.0, empty and overlong strings,
NUL, lists where numbers go, bodies that are not JSON or not objects), as
a trader's token, and WebSocket frames of the same kind. Whatever comes,
the answer is a JSON refusal or a result: never a 500 (a handler that
raised), never a dropped connection, and the stack still serves the app
afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from sidecar_stack import Stack, recv_until, running_stack

ROUTES = (
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("GET", "/api/health"),
    ("GET", "/api/market"),
    ("GET", "/api/signals"),
    ("GET", "/api/features/{symbol}"),
    ("GET", "/api/positions"),
    ("GET", "/api/account"),
    ("GET", "/api/orders"),
    ("POST", "/api/trade"),
    ("POST", "/api/trade/close/{ticket}"),
    ("PUT", "/api/trade/modify"),
    ("POST", "/api/broker/connect"),
)
#: Every field name a route reads, so that the drawn values reach the checks behind the first one.
KEYS = ("username", "password", "refresh_token", "token", "symbol", "type", "side", "lots", "volume", "stopLoss", "takeProfit", "sl", "tp",
        "ticket", "positionId", "terminal", "login", "server", "platform", "request_id", "id", "min_confidence", "limit", "since", "comment")
EDGE_TEXT = ("", " ", "EURUSD", "eurusd", "EURUSDm", "BUY", "sell", "0", "-1", "1e309", "nan", "Infinity", "18446744073709551616", "a" * 300, "\x00", "ü€😀",
             "2024-01-15T10:30:45Z", "2024-13-45T99:99:99Z", "../../etc/passwd", "%00", "null", "true")
EDGE_NUMBERS = (0, -0.0, 1, -1, 0.01, 1e-320, 1e308, -1e308, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1)

scalars = st.none() | st.booleans() | st.sampled_from(EDGE_NUMBERS) | st.sampled_from(EDGE_TEXT) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3), max_leaves=6)
objects = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
bodies = objects.map(json.dumps) | values.map(json.dumps) | st.sampled_from(("", "{", "[]", "null", '{"symbol": NaN}', "\x00", '{"lots": 1e999}'))
queries = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(EDGE_TEXT) | st.integers().map(str), max_size=3)
path_values = st.sampled_from(EDGE_TEXT + ("1", "7", "99999999999999999999999")).filter(lambda v: v not in ("", " "))
#: Per route, bodies shaped like the app's own with their values at the edges, so that they reach past
#: the first check (a random object is refused for its missing symbol long before any sizing or risk check).
numbers = st.none() | st.sampled_from(EDGE_NUMBERS) | st.sampled_from(("0.1", "", "abc"))
SHAPED = {
    "/api/trade": st.fixed_dictionaries(
        {"symbol": st.sampled_from(("EURUSD", "XAUUSD", "BTCUSD", "USDJPY", "GBPUSD")), "type": st.sampled_from(("BUY", "SELL", "buy"))},
        optional={"lots": numbers, "stopLoss": numbers, "takeProfit": numbers, "terminal": st.sampled_from(EDGE_TEXT)},
    ),
    "/api/trade/close/{ticket}": st.fixed_dictionaries({}, optional={"lots": numbers, "terminal": st.sampled_from(EDGE_TEXT)}),
    "/api/trade/modify": st.fixed_dictionaries({"ticket": numbers | st.sampled_from(("1", "7"))}, optional={"stopLoss": numbers, "takeProfit": numbers, "positionId": numbers}),
    "/api/broker/connect": st.fixed_dictionaries({"login": numbers}, optional={"password": st.sampled_from(EDGE_TEXT), "server": st.sampled_from(EDGE_TEXT), "platform": st.sampled_from(EDGE_TEXT)}),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # the per-token and per-IP limits raised: a 429 would end most examples before their checks
    yield from running_stack(
        tmp_path_factory.mktemp("api-fuzz"),
        QT_SIGNALS__INTERVAL_S="1",
        QT_SIDECAR__RATE_PER_TOKEN_PER_S="10000",
        QT_SIDECAR__RATE_PER_TOKEN_BURST="10000",
        QT_SIDECAR__RATE_PER_IP_PER_S="10000",
        QT_SIDECAR__RATE_PER_IP_BURST="10000",
    )


def _no_server_error(response: httpx.Response, what: Any) -> None:
    # 502-504: the daemon or a terminal did not answer in time, which a trade at a busy terminal may meet; 500: a handler raised
    assert response.status_code < 500 or response.status_code in (502, 503, 504), (what, response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        json.loads(response.text)
    else:
        assert response.status_code in (404, 405), (what, response.status_code, response.headers.get("content-type"), response.text[:200])


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path_value=path_values, query=queries, data=st.data())
def test_edge_requests_are_answered_and_never_with_a_500(stack: Stack, route: tuple[str, str], path_value: str, query: dict[str, str], data: st.DataObject) -> None:
    method, template = route
    shaped = SHAPED.get(template)
    body = data.draw(bodies if shaped is None else (shaped.map(json.dumps) | bodies), label="body")
    path = template.replace("{symbol}", quote(path_value, safe="")).replace("{ticket}", quote(path_value, safe=""))
    response = httpx.request(method, f"{stack.url}{path}", params=query, content=body.encode(), headers=stack.headers("alice"), timeout=30)
    _no_server_error(response, (method, path, query, body))


ws_frames = st.one_of(
    objects.map(lambda o: json.dumps(o)),
    st.fixed_dictionaries({"type": st.sampled_from(("subscribe", "unsubscribe", "ping", "get_signals", "auth", "trade", "", "SUBSCRIBE"))}, optional={k: values for k in ("symbol", "timestamp", "min_confidence", "limit", "token")}).map(json.dumps),
    st.sampled_from(("", "{", "[]", "null", "1", '"subscribe"', "\x00")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(ws_frames, min_size=1, max_size=8))
def test_edge_websocket_frames_get_answers_and_the_connection_stays(stack: Stack, frames: list[str]) -> None:
    with connect(f"{stack.ws_url}?token={stack.tokens['alice']}", open_timeout=5) as ws:
        recv_until(ws, lambda m: m["type"] == "connection", 5, "connection")
        for frame in frames:
            ws.send(frame)
        # still served after all of them: a ping is answered (after whatever the frames were answered with)
        ws.send(json.dumps({"type": "ping", "timestamp": "fuzz-done"}))
        recv_until(ws, lambda m: m["type"] == "pong" and m["data"].get("timestamp") == "fuzz-done", 10, "the pong after the fuzzed frames")


def test_after_the_fuzz_the_app_is_still_served(stack: Stack) -> None:
    health = httpx.get(f"{stack.url}/api/health", headers=stack.headers("bob"), timeout=5)
    assert health.status_code == 200, health.text
    market = httpx.get(f"{stack.url}/api/market", headers=stack.headers("bob"), timeout=5)
    assert market.status_code == 200 and market.json(), market.text
    for name, proc in stack.procs.items():
        assert proc.poll() is None, f"{name} ended"


def test_a_handler_that_raises_answers_the_apps_json_shape_with_a_500() -> None:
    """What the fuzz would meet if a route raised: the app's JSON error, not Starlette's plain-text page (in process, the app's own handler mapping)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.routing import Route

    from quantumtrader.sidecar.errors import EXCEPTION_HANDLERS

    async def broken(request: Any) -> Any:
        raise ZeroDivisionError("a bug")

    app = Starlette(routes=[Route("/api/broken", broken)], exception_handlers=EXCEPTION_HANDLERS)

    async def ask() -> httpx.Response:
        # httpx's own ASGI transport, not starlette.testclient: Starlette 1.10 deprecates that client over httpx
        # (a CI warning, 2026-12-05), and the suite installs the newest Starlette on every fresh machine
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            return await client.get("/api/broken")

    response = asyncio.run(ask())
    assert response.status_code == 500 and response.headers["content-type"].startswith("application/json")
    assert response.json() == {"success": False, "error": "internal error: ZeroDivisionError"}
