"""``qt-daemon sidecar``: serve the app with uvicorn, in this process, until Ctrl-C/SIGTERM.

uvicorn's ``websockets-sansio`` protocol (the websockets library's Sans-I/O
core): permessage-deflate with 12-bit windows and memLevel 5, so compression
costs ~tens of KiB per connection instead of ~300 KiB, which matters with
hundreds of phones, and without server context takeover, so one compressed
frame serves every client (frames.py); server pings find dead peers. uvicorn installs its own
signal handlers and shuts down in order (stop accepting, close connections,
run the lifespan's exit).
"""

from __future__ import annotations

import sys
import warnings

import uvicorn

from quantumtrader.config import Config
from quantumtrader.gc_tuning import tune_gc
from quantumtrader.shutdown import stop_with_parent
from quantumtrader.sidecar.app import create_app
from quantumtrader.sidecar.frames import SharedFrameProtocol


def uvicorn_config(config: Config) -> uvicorn.Config:
    sc = config.sidecar
    return uvicorn.Config(
        create_app(config),
        host=sc.host,
        port=sc.port,
        ws=SharedFrameProtocol,  # uvicorn's websockets-sansio, negotiating server_no_context_takeover (frames.py)
        ws_per_message_deflate=True,
        ws_ping_interval=sc.ws_ping_interval_s,
        ws_ping_timeout=sc.ws_ping_timeout_s,
        ws_max_size=sc.ws_max_message_bytes,
        lifespan="on",
        log_config=None,  # structlog owns logging; uvicorn's access log per request is too chatty for polling apps
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def run_sidecar(config: Config) -> int:
    """Serve until stopped. Returns the process exit code (1 when the port cannot be bound)."""
    if sys.platform == "win32":  # the selector thread is expected there (pyproject.toml, tornado): not a warning
        from zmq.asyncio import ProactorSelectorThreadWarning

        warnings.simplefilter("ignore", ProactorSelectorThreadWarning)
    server = uvicorn.Server(uvicorn_config(config))
    stop_with_parent(lambda: setattr(server, "should_exit", True))  # uvicorn's own orderly stop, as on a signal
    tune_gc()  # hundreds of connections' objects made a full collection a pause of milliseconds
    server.run()
    return 0 if server.started else 1
