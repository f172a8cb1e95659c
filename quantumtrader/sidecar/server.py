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

import logging
import os
import socket
import sys
import warnings

import uvicorn

from quantumtrader.config import Config, is_loopback, sidecar_tls
from quantumtrader.gc_tuning import tune_gc
from quantumtrader.log import get_logger
from quantumtrader.shutdown import stop_with_parent
from quantumtrader.sidecar.app import create_app
from quantumtrader.sidecar.frames import SharedFrameProtocol
from quantumtrader.sidecar.runtime import Sidecar

log = get_logger("quantumtrader.sidecar")


class UvicornRefusalLog(logging.Filter):
    """uvicorn's own lines for input it refused before the app saw it, counted and logged as the sidecar's other
    refusals are (once per interval), uvicorn's own line dropped:

    - "Invalid HTTP request received." (a warning per malformed request: 2,000 garbage connections were 2,000
      log lines in 1.6 s, counted nowhere): ``http_invalid_requests``;
    - "Invalid UTF-8 sequence received from client." (a WebSocket text message that is not UTF-8, closed 1007:
      an error with a traceback per message, counted nowhere; a trader's walk-through hunt, 2026-12-06):
      ``ws_reject_bad_utf8``.
    """

    def __init__(self, sidecar: Sidecar) -> None:
        super().__init__()
        self._sidecar = sidecar

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("Invalid HTTP request"):
            self._sidecar.counters["http_invalid_requests"] += 1
            self._sidecar.log_reject("invalid_http", reason="invalid_http", error=record.getMessage()[:200])
            return False
        if text.startswith("Invalid UTF-8 sequence received from client"):
            self._sidecar.ws_reject("bad_utf8", "a text message that is not UTF-8 (closed 1007)")
            return False
        return True


def uvicorn_config(config: Config) -> uvicorn.Config:
    sc = config.sidecar
    tls = sidecar_tls(sc)  # checked when the config loaded (config._check_tls)
    app = create_app(config)
    uvicorn_log = logging.getLogger("uvicorn.error")
    for old in [f for f in uvicorn_log.filters if isinstance(f, UvicornRefusalLog)]:  # one per process's app
        uvicorn_log.removeFilter(old)
    uvicorn_log.addFilter(UvicornRefusalLog(app.state.sidecar))
    return uvicorn.Config(
        app,
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
        # Not X-Forwarded-For: uvicorn trusts it from loopback by default, and a local proxy or tunnel that
        # passes a client's header on (or any local process) then chose the address every per-IP limit keys
        # on: rotating it bypassed the login limit, locked a user out, ran unlimited scrypts (review, 2026-12-05).
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=None if tls is None else str(tls[0]),
        ssl_keyfile=None if tls is None else str(tls[1]),
    )


def run_sidecar(config: Config) -> int:
    """Serve until stopped. Returns the process exit code (1 when the port cannot be bound)."""
    if sys.platform == "win32":  # the selector thread is expected there (pyproject.toml, tornado): not a warning
        from zmq.asyncio import ProactorSelectorThreadWarning

        warnings.simplefilter("ignore", ProactorSelectorThreadWarning)
    try:
        listener = listen(config.sidecar.host, config.sidecar.port)
    except OSError as exc:
        unresolved = isinstance(exc, socket.gaierror)  # a host name that does not resolve here: not the port's fault
        log.error(
            "cannot listen for the app",
            address=f"{config.sidecar.host}:{config.sidecar.port}",
            error=exc.strerror or str(exc),
            hint="sidecar.host is no address of this machine (QT_SIDECAR__HOST, --host)"
            if unresolved
            else "another sidecar or program has this port? give this one another: sidecar.port (QT_SIDECAR__PORT, --port)",
        )
        return 1
    warn_plain_http(config)
    server = uvicorn.Server(uvicorn_config(config))
    stop_with_parent(lambda: setattr(server, "should_exit", True))  # uvicorn's own orderly stop, as on a signal
    tune_gc()  # hundreds of connections' objects made a full collection a pause of milliseconds
    with listener:
        server.run(sockets=[listener])
    return 0 if server.started else 1


def warn_plain_http(config: Config) -> None:
    """Said once at start when the sidecar serves beyond this machine without TLS: logins' passwords and every
    token crossed the network readable, and nothing said so (a security review, 2026-12-06)."""
    sc = config.sidecar
    if sidecar_tls(sc) is None and not is_loopback(sc.host):
        log.warning(
            "serving plain HTTP beyond this machine: passwords and tokens cross the network readable by anyone on its path",
            host=sc.host,
            hint="set sidecar.tls_certfile and sidecar.tls_keyfile (docs/sidecar.md, TLS), or keep sidecar.host on loopback behind a TLS reverse proxy",
        )


def listen(host: str, port: int) -> socket.socket:
    """The sidecar's listening socket, bound before the server starts. Why here: uvicorn binds after the app's
    start-up (which logged "sidecar serving" first), then answers a port in use with a bare OSError text and
    exit 3, and under ``qt-daemon run`` that repeated at every restart with nothing saying what to do.

    SO_REUSEADDR on POSIX only (a restart must not wait out TIME_WAIT); on Windows it would let a second
    process bind the same port and take its connections, which is why asyncio does not set it there either.
    """
    # IPv4 unless the host is an IPv6 literal, as uvicorn decides: getaddrinfo's first answer for "localhost"
    # is ::1 on Windows and on many Linux hosts, which would leave 127.0.0.1 unanswered.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    family, kind, proto, _, address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's default backlog
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock
