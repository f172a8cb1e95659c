"""The Starlette application: routes, middleware and the lifespan that owns the runtime.

``create_app`` does no I/O (tests and uvicorn build it freely); the lifespan
starts the clone and the hub when the server starts and stops them, in
order, when it stops.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from quantumtrader.config import Config, sidecar_tls
from quantumtrader.log import get_logger
from quantumtrader.sidecar.errors import EXCEPTION_HANDLERS
from quantumtrader.sidecar.ratelimit import RateLimitMiddleware
from quantumtrader.sidecar.routes import api_routes
from quantumtrader.sidecar.runtime import Sidecar
from quantumtrader.sidecar.ws import websocket_endpoint

log = get_logger("quantumtrader.sidecar")

_SCHEMAS = SchemaGenerator(
    {
        "openapi": "3.0.3",
        "info": {"title": "QuantumTrader sidecar (App API)", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
    }
)


async def openapi(request: Request) -> Response:
    """The OpenAPI document, generated from the routes' docstrings.
    ---
    summary: This document
    tags: [meta]
    security: []
    responses:
      200: {description: OpenAPI 3 JSON}
    """
    schema: dict[str, Any] = _SCHEMAS.get_schema(routes=request.app.routes)
    # YAML reads the status codes as integers; OpenAPI (and orjson by default) want string keys.
    return Response(orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


STATIC_DIR = Path(__file__).resolve().parent / "static"
# ES modules need a JavaScript MIME type; some Windows registries map .js to text/plain.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")

# The dashboard loads nothing but its own files and talks only to this origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def dashboard(request: Request) -> Response:
    """The live dashboard (static page; it logs in through /api/auth/login, so it needs no token itself)."""
    return FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)


class _DashboardFiles(StaticFiles):
    """The dashboard's files with the page's headers: /static/index.html is the same working page as /,
    so it must not be framable or outside the CSP either, and the scripts want nosniff."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_PAGE_HEADERS)
        return response


def routes() -> list[BaseRoute]:
    return [
        *api_routes(),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        WebSocketRoute("/ws", websocket_endpoint),
        Route("/", dashboard, methods=["GET"], include_in_schema=False),
        Mount("/static", _DashboardFiles(directory=STATIC_DIR), name="static"),
    ]


def create_app(config: Config) -> Starlette:
    """The sidecar's ASGI app for ``config``. Nothing is opened until the server starts it."""
    sidecar = Sidecar(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sidecar.start()
        log.info(
            "sidecar serving",
            url=f"{'http' if sidecar_tls(config.sidecar) is None else 'https'}://{config.sidecar.host}:{config.sidecar.port}",
            feed=config.endpoints.feed,
            control=config.endpoints.control,
            users=len(sidecar.users.list()),
        )
        try:
            yield
        finally:
            await sidecar.stop()
            log.info("sidecar stopped")

    middleware = [
        Middleware(
            RateLimitMiddleware,  # type: ignore[arg-type]
            per_ip=sidecar.per_ip,
            per_token=sidecar.per_token,
            on_deny=sidecar.rate_limited,
        )
    ]
    if config.sidecar.cors_origins:
        # Before the limiter, so even a 429 carries the CORS headers a browser needs to read it.
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,  # type: ignore[arg-type]
                allow_origins=list(config.sidecar.cors_origins),
                allow_methods=["GET", "POST", "PUT"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                max_age=600,
            ),
        )
    app = Starlette(
        routes=routes(),
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.sidecar = sidecar
    return app
