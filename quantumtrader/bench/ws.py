"""``qt-bench ws``: the sidecar's WebSocket fan-out under load (issue 6, "What must be shown").

Real processes on loopback: a daemon, a paper terminal streaming
``ticks_per_s`` over ``symbols`` symbols, the sidecar; N WebSocket clients
(permessage-deflate like the app's Dart client) spread over ``client_procs``
child processes (2 by default: see :class:`Fleet`), and in this process one
client that stalls. Most clients behave like the app (subscribe to its five symbols); a few
subscribe to nothing and so get every symbol, like a dashboard.

Phases, each measured separately:
1. ``baseline``: daemon + paper + sidecar, no clients: the daemon's tick-path
   latency (ea_to_receive, receive_to_publish) without fan-out load.
2. ``clients``: the N clients connected: tick -> client receive latency,
   staleness (how long a client shows a quote after a newer tick exists,
   against every tick the daemon published: :class:`FeedTicks`,
   :mod:`~quantumtrader.bench.staleness`) and updates per client.
3. ``stalled``: one more client connects and then never reads: do the others
   slow down, does the sidecar's memory stay bounded?

Clock: the paper terminal stamps each tick's ``sent_ns`` with
``time.perf_counter_ns()`` as it sends it, and the price update carries it
to the clients; a client stamps receipt with the same clock, which every
process of the machine shares (CLOCK_MONOTONIC on Linux, the performance
counter on Windows), so the difference is the end-to-end latency (tick sent
-> daemon -> feed -> sidecar -> client). (It used to be the tick's
``time_msc`` against ``time.time_ns()``: whole milliseconds, 0-1 ms too
much on every sample, and ~15.6 ms steps on Windows before Python 3.13.) A
price update that is conflated away is never received and so never measured:
what is measured is the age of each quote when a client gets it. What a
phone shows is measured apart: the staleness (above).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import numpy as np
import psutil
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.uri import WebSocketURI, parse_uri

from quantumtrader.bench.common import GENERATOR, machine, paper_source, percentile_plot, progress, table, tick_file_per_symbol, tick_source, write_json
from quantumtrader.bench.procs import Endpoints, control, interpreter, start, stop_quietly, wait_for, wait_ready
from quantumtrader.bench.staleness import OVER_MS, summarize_staleness
from quantumtrader.config import SidecarConfig
from quantumtrader.gc_tuning import tune_gc
from quantumtrader.metrics import add_values, new_histogram, summarize
from quantumtrader.outputs import replacing

#: The app's five (TradingPlatformService._subscribeToAllSymbols) first, then other liquid names.
SYMBOLS = (
    "EURUSD", "GBPUSD", "XAUUSD", "BTCUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD", "NZDUSD", "EURGBP",
    "EURJPY", "GBPJPY", "EURCHF", "AUDJPY", "CADJPY", "CHFJPY", "EURAUD", "GBPAUD", "XAGUSD", "ETHUSD",
)
#: A symbol's index in SYMBOLS: how the clients and the feed recorder name it to the staleness (-1: not ours).
_SYMBOL_INDEX = {name: i for i, name in enumerate(SYMBOLS)}
_WARMUP_S = 3.0
_CONNECT_CONCURRENCY = 50
_STARVED_FRACTION = 0.5  # a client with fewer than half the median updates is starving


class Phase:
    """What all clients saw during one phase."""

    def __init__(self, name: str, clients: int, dashboards: int = 0) -> None:
        self.name = name
        self.clients = clients
        self.dashboards = dashboards  # clients 0..dashboards-1 subscribe to nothing (every symbol); the rest like the app
        self.started_ns = 0  # perf_counter_ns, the clock of the quotes' stamps
        self.ended_ns = 0
        # every price update a client got, [n, 4] int64 per client process: client, symbol index, tick sent_ns,
        # received ns; the counts per client, the latencies and the staleness are all read from these
        self.quotes: list[np.ndarray] = []


class _Client(asyncio.Protocol):
    """One WebSocket client: websockets' Sans-I/O protocol (the core its asyncio client runs on) over a socket.

    Each message is stamped with ``time.perf_counter_ns()`` as soon as the library
    hands it over (frame parsed, payload inflated by permessage-deflate),
    before any JSON parsing; parsing and counting wait until the phase ends,
    so the load generator's bookkeeping never delays a timestamp. (With the library's asyncio client, a
    message is stamped only when the task awaiting it resumes: after every
    other socket that became readable in the same burst has been parsed, and
    after the earlier tasks' own parsing: at 490 clients per burst that queue
    was most of the measured latency, and no phone has 489 others in its loop.)
    """

    def __init__(self, worker: _Worker, index: int, uri: WebSocketURI, subscribe: tuple[str, ...]) -> None:
        self.worker = worker
        self.index = index
        self.subscribe = subscribe
        self.ws = ClientProtocol(uri, extensions=enable_client_permessage_deflate(None), max_size=2**20)
        self.transport: Any = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closing = False

    def connection_made(self, transport: Any) -> None:  # an asyncio.Transport (uvloop's is not a subclass)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        events = ws.events_received()
        now_ns = time.perf_counter_ns()  # the clock of the tick's sent_ns: one clock for every process of the machine
        for event in events:
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self._text(now_ns, event.data)
            elif ws.handshake_exc is not None and not self.ready.done():
                self.ready.set_exception(ws.handshake_exc)
        self._flush()  # pongs, and the close handshake

    def _text(self, now_ns: int, payload: bytes) -> None:
        if not self.ready.done():  # the "connection" message: subscribe, then count as connected
            for symbol in self.subscribe:
                self.ws.send_text(orjson.dumps({"type": "subscribe", "symbol": symbol}))
            self.ready.set_result(None)
            return
        self.worker.received(self.index, now_ns, payload)

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            self.ws.send_close(1000)
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"client {self.index}: connection lost before it was ready"))
        elif not self.closing:
            self.worker.closed_early += 1


class _Worker:
    """A child process's share of the clients, in one event loop."""

    def __init__(self, url: str, indices: range, dashboards: int) -> None:
        self.url = url
        self.indices = indices
        self.dashboards = dashboards
        self.clients: list[_Client] = []
        self.closed_early = 0
        self.recording = False
        # What arrived during the phase, parsed only when it ends: three flat lists (no tuple per
        # message for the collector to walk), so a burst costs the clients no more than receiving it.
        self.indices_got: list[int] = []
        self.stamps_ns: list[int] = []
        self.payloads: list[bytes] = []

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        uri = parse_uri(self.url)
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)

        async def one(index: int) -> None:
            client = _Client(self, index, uri, () if index < self.dashboards else SYMBOLS[:5])
            async with gate:
                await asyncio.wait_for(loop.create_connection(lambda: client, uri.host, uri.port), 30)
                await asyncio.wait_for(client.ready, 30)
            self.clients.append(client)

        await asyncio.gather(*(one(i) for i in self.indices))

    def received(self, index: int, now_ns: int, payload: bytes) -> None:
        if self.recording:
            self.indices_got.append(index)
            self.stamps_ns.append(now_ns)
            self.payloads.append(payload)

    def start_phase(self) -> None:
        self.recording = True  # the lists are empty: made so, and emptied by end_phase

    def end_phase(self) -> bytes:
        """Each price update received as a (client, symbol index, tick sent_ns, received ns) row, int64 bytes.

        ``sent_ns`` is the paper terminal's stamp, carried by the price update."""
        self.recording = False
        quotes: list[tuple[int, int, int, int]] = []
        loads = orjson.loads
        for index, now_ns, payload in zip(self.indices_got, self.stamps_ns, self.payloads):
            msg = loads(payload)
            if msg.get("type") == "price_update":
                data = msg["data"]
                quotes.append((index, _SYMBOL_INDEX.get(data["symbol"], -1), data["sent_ns"], now_ns))
        self.indices_got, self.stamps_ns, self.payloads = [], [], []
        return np.asarray(quotes, dtype=np.int64).reshape(-1, 4).tobytes()

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _worker_main(conn: Any, url: str, indices: range, dashboards: int) -> None:
    """A child process's share of the clients; driven by the parent over ``conn`` (spawn-safe, so Windows too)."""
    _run_loop(_serve_worker(conn, _Worker(url, indices, dashboards)))


async def _serve_worker(conn: Any, worker: _Worker) -> None:
    loop = asyncio.get_running_loop()
    try:
        await worker.connect()
    except Exception as exc:
        conn.send(("error", repr(exc)))
        return
    tune_gc()  # as the sidecar does: collections must not walk every connection's objects mid-burst
    conn.send(("ready", len(worker.clients)))
    while True:
        command = await loop.run_in_executor(None, conn.recv)  # a thread waits on the pipe: the loop stays free
        if command == "start":
            worker.start_phase()
            conn.send("started")
        elif command == "end":
            conn.send((worker.end_phase(), worker.closed_early))
        else:
            worker.close()
            await asyncio.sleep(0.2)  # let the close frames go out
            conn.send("closed")
            return


class Fleet:
    """N WebSocket clients spread over ``procs`` child processes, recording into the current phase.

    A load generator, not a phone: 500 phones have 500 CPUs, and clients that
    share one loop stamp a burst's messages one after the other. Two
    processes let the clients' receive work use both cores while the sidecar
    writes (``run_ws_bench(client_procs=...)``; on the 2-core machine, one
    process gave a p50 ~1 ms higher, the p99 the same within the noise).
    """

    def __init__(self, url: str, clients: int, dashboards: int, procs: int) -> None:
        import multiprocessing

        self.closed_early = 0
        mp = multiprocessing.get_context("spawn")
        shares = [range(clients * i // procs, clients * (i + 1) // procs) for i in range(procs)]
        self._workers: list[tuple[Any, Any]] = []
        for share in shares:
            parent, child = mp.Pipe()
            proc = mp.Process(target=_worker_main, args=(child, url, share, dashboards), name=f"ws-clients-{share.start}", daemon=True)
            self._workers.append((proc, parent))

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self._workers if proc.pid is not None]

    async def _ask(self, conn: Any, message: Any, timeout: float) -> Any:
        if message is not None:
            conn.send(message)
        if not await asyncio.get_running_loop().run_in_executor(None, conn.poll, timeout):
            raise TimeoutError(f"a client process did not answer {message!r} within {timeout:g} s")
        return conn.recv()

    async def start(self) -> None:
        for proc, _ in self._workers:
            proc.start()
        answers = await asyncio.gather(*(self._ask(conn, None, 180) for _, conn in self._workers))
        errors = [a for a in answers if a[0] != "ready"]
        if errors:
            raise RuntimeError(f"client processes failed to connect: {errors}")

    async def begin(self, phase: Phase) -> None:
        await asyncio.gather(*(self._ask(conn, "start", 30) for _, conn in self._workers))
        phase.started_ns = time.perf_counter_ns()

    async def end(self, phase: Phase) -> None:
        phase.ended_ns = time.perf_counter_ns()
        answers = await asyncio.gather(*(self._ask(conn, "end", 60) for _, conn in self._workers))
        self.closed_early = 0
        for quotes, closed_early in answers:
            phase.quotes.append(np.frombuffer(quotes, dtype=np.int64).reshape(-1, 4))
            self.closed_early += closed_early

    async def stop(self) -> None:
        for proc, conn in self._workers:
            with contextlib.suppress(Exception):
                await self._ask(conn, "close", 10)
            proc.join(10)
            if proc.is_alive():
                proc.kill()


class FeedTicks:
    """Every price update the daemon publishes, as (symbol index, tick sent_ns): what the clients' quotes are
    measured against (:mod:`~quantumtrader.bench.staleness`). A SUB socket on a thread of this process."""

    def __init__(self, endpoint: str) -> None:
        import threading

        import zmq

        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, 0)  # every tick: a missed one would hide a client's staleness
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"price.")
        self._sock.connect(endpoint)
        self._stop = threading.Event()
        self._rows: list[tuple[int, int]] = []
        self.errors = 0  # messages it could not read (counted in the result; their ticks are missing)
        self._ticks: dict[int, np.ndarray] | None = None
        self._thread = threading.Thread(target=self._run, name="feed-ticks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock, rows, loads = self._sock, self._rows, orjson.loads
        while not self._stop.is_set():
            if sock.poll(100):
                frames = sock.recv_multipart()
                try:
                    data = loads(frames[1])["data"]
                    rows.append((_SYMBOL_INDEX.get(data["symbol"], -1), int(data["sent_ns"])))
                except (orjson.JSONDecodeError, IndexError, KeyError, TypeError, ValueError):
                    self.errors += 1

    def received(self) -> int:
        return len(self._rows)

    def stop(self) -> dict[int, np.ndarray]:
        """Each symbol's tick send times, ascending (the same answer when called again)."""
        if self._ticks is None:
            self._stop.set()
            self._thread.join(5)
            if not self._thread.is_alive():  # else the socket is still in use: left to the process's end
                self._sock.close()
                self._ctx.term()
            rows = np.asarray(list(self._rows), dtype=np.int64).reshape(-1, 2)
            self._ticks = {int(sym): np.sort(rows[rows[:, 0] == sym, 1]) for sym in np.unique(rows[:, 0])}
        return self._ticks


async def _stalled_client(url: str) -> Any:
    """Connects, subscribes to nothing (so it is sent every symbol) and never reads again."""
    from websockets.asyncio.client import connect

    ws = await connect(url, open_timeout=30, max_queue=1)
    return ws


def _sample_rss(pid: int, samples: list[float]) -> None:
    with contextlib.suppress(psutil.Error):
        samples.append(interpreter(pid).memory_info().rss / 1e6)


async def _measure(fleet: Fleet, phase: Phase, seconds: float, sidecar_pid: int, rss: list[float], elapsed: Callable[[float], None]) -> None:
    """The phase's ``seconds``, waking once a second to sample the sidecar's RSS and tell ``elapsed`` (the progress
    bar) the phase's seconds so far: the clients stamp in their own processes, this one only waits."""
    await fleet.begin(phase)
    end = phase.started_ns / 1e9 + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(min(1.0, end - time.perf_counter()))
        _sample_rss(sidecar_pid, rss)
        elapsed(seconds - max(end - time.perf_counter(), 0.0))
    await fleet.end(phase)


def _all_quotes(phase: Phase) -> np.ndarray:
    """Every client process's rows of the phase in one [n, 4] array (:meth:`_Worker.end_phase`)."""
    return np.concatenate(phase.quotes) if phase.quotes else np.empty((0, 4), dtype=np.int64)


def tick_to_client_ns(phase: Phase) -> np.ndarray:
    """Each price update's age as a client got it (received - the tick's sent_ns): the phase's latency samples."""
    quotes = _all_quotes(phase)
    return quotes[:, 3] - quotes[:, 2]


def _phase_result(phase: Phase, ticks_sent: dict[int, np.ndarray]) -> dict[str, Any]:
    seconds = max((phase.ended_ns - phase.started_ns) / 1e9, 1e-9)
    quotes = _all_quotes(phase)
    counts = np.bincount(quotes[:, 0], minlength=phase.clients).tolist()
    latency = new_histogram()
    add_values(latency, tick_to_client_ns(phase))
    rates = sorted(c / seconds for c in counts)
    median = statistics.median(rates) if rates else 0.0
    # Starving is judged within each kind of client: a dashboard gets every symbol (~4x an app's five), so
    # against the median of all (the apps') one had to lose ~87 % of its updates to count (a review of the
    # method, 2026-12-04).
    groups = [counts[: phase.dashboards], counts[phase.dashboards :]]
    starved = 0
    for group in groups:
        group_rates = [c / seconds for c in group]
        if group_rates:
            group_median = statistics.median(group_rates)
            starved += sum(1 for r in group_rates if r < _STARVED_FRACTION * group_median)
    return {
        "seconds": round(seconds, 2),
        "tick_to_client_ms": {k.replace("_us", "_ms"): (v / 1000.0 if k.endswith("_us") else v) for k, v in summarize(latency).items()},
        "updates_per_client_per_s": {"min": round(rates[0], 2), "median": round(median, 2), "max": round(rates[-1], 2)} if rates else {},
        "starved_clients": starved,  # under half the median of its own kind (dashboards, app clients)
        "clients_with_no_update": sum(1 for c in counts if c == 0),
        # what a client shows: how long after a newer tick exists (bench/staleness.py)
        "staleness_ms": summarize_staleness(ticks_sent, quotes[:, 0], quotes[:, 1], quotes[:, 2], quotes[:, 3], phase.ended_ns),
    }


def _daemon_latency(eps: Endpoints, *, reset: bool = False) -> dict[str, Any]:
    """The daemon's tick-path histograms; ``reset``: and start them afresh (a measured window begins)."""
    health = control(eps.control, "status", timeout_ms=3000, reset_latency=reset)["health"]
    stages = health.get("latency", {})
    return {
        "ticks": health.get("counters", {}).get("ticks", 0),
        "uptime_s": health.get("uptime"),
        **{stage: {k: stages[stage][k] for k in ("count", "p50_us", "p99_us", "p99.9_us", "max_us") if k in stages.get(stage, {})} for stage in ("ea_to_receive", "receive_to_publish")},
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class _Stack:
    """Daemon + paper + sidecar on free ports, in a temporary data directory."""

    def __init__(
        self, tmp: Path, ticks_per_s: float, symbols: int, max_updates_per_s: float | None, extra_env: dict[str, str], clients: int = 0,
        tick_files: list[Path] | None = None,
    ) -> None:
        self.tmp = tmp
        self.source = paper_source(tick_files)  # files: one per symbol (tick_file_per_symbol), at the rate
        self.eps = Endpoints(spare=1)
        self.port = self.eps.spare_ports[0]
        extra = {
            "QT_SIDECAR__PORT": str(self.port),
            "QT_PAPER__SYMBOLS": ",".join(SYMBOLS[:symbols]),
            # 500 phones come from 500 addresses and as many users; here they share 127.0.0.1 and one
            # user's token, so the per-IP bucket and the per-user connection cap are widened.
            "QT_SIDECAR__RATE_PER_IP_BURST": str(max(5000, 2 * clients)),
            # + 1: the stalled client of the last phase, on the same token
            "QT_SIDECAR__WS_MAX_PER_USER": str(clients + 1),
            "QT_SIDECAR__WS_MAX_CLIENTS": str(max(SidecarConfig().ws_max_clients, clients + 1)),
            "QT_DAEMON__STATUS_INTERVAL_S": "0",
        }
        if max_updates_per_s is not None:
            extra["QT_SIDECAR__MAX_UPDATES_PER_S"] = str(max_updates_per_s)
        extra.update(extra_env)
        self.env = self.eps.env(tmp / "data", **extra)
        self.ticks_per_s = ticks_per_s
        self.procs: dict[str, Any] = {}
        self._stops = contextlib.ExitStack()

    def token(self) -> str:
        from quantumtrader.sidecar.auth import ACCESS, TokenService, load_or_create_secret
        from quantumtrader.sidecar.users import UserStore

        users = UserStore(self.tmp / "data")
        user = users.add("bench", "viewer", "bench-password")
        return TokenService(load_or_create_secret(self.tmp / "data"), users).issue(user, ACCESS, 3600)

    def __enter__(self) -> _Stack:
        """The three processes started and the sidecar healthy; on any failure or interrupt on the way, those
        already started are stopped before it is raised (they were left running with their ports: a review,
        2026-12-06). Each is stopped in the reverse order of its start, on the way out as on exit."""
        with contextlib.ExitStack() as started:
            log = self.tmp / "daemon.log"
            self._start(started, "daemon", ["run", "--no-sidecar"], log)
            wait_ready(self.eps.control, self.procs["daemon"], log, timeout=120)
            self._start(started, "paper", ["paper", *self.source, "--rate", str(self.ticks_per_s)], self.tmp / "paper.log")
            self._start(started, "sidecar", ["sidecar"], self.tmp / "sidecar.log")
            url = f"http://127.0.0.1:{self.port}/api/health"

            def healthy() -> bool:
                try:
                    return httpx.get(url, timeout=2).json().get("status") == "healthy"
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 60, "the sidecar to report healthy", interval=0.2)
            self._stops = started.pop_all()  # up: stopped by __exit__ from here on
        return self

    def _start(self, started: contextlib.ExitStack, name: str, args: list[str], log: Path) -> None:
        proc = start(args, self.env, log)
        self.procs[name] = proc
        started.callback(self._stop, name)

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_quietly(proc)

    def __exit__(self, *exc: object) -> None:
        self._stops.close()


def _cpu_seconds(procs: dict[str, Any], sidecar_pid: int, client_pids: list[int]) -> dict[str, float]:
    """User + system CPU seconds so far of each process of the run, the client processes summed."""
    pids = {"sidecar": [sidecar_pid], "daemon": [procs["daemon"].pid], "paper": [procs["paper"].pid], f"clients ({len(client_pids)} processes)": client_pids}
    out: dict[str, float] = {}
    for name, group in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = sum(sum(interpreter(pid).cpu_times()[:2]) for pid in group)
    return out


def _cpu_share(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / wall_s, 2) for name in after if name in before}


async def _loaded_run(stack: _Stack, clients: int, dashboards: int, duration_s: float, client_procs: int, bar: _Bar) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The clients phase then the stalled one: their figures, and each phase's tick -> client samples (ns) for the plot."""
    token = stack.token()
    url = f"ws://127.0.0.1:{stack.port}/ws?token={token}"
    sidecar_pid = stack.procs["sidecar"].pid
    rss: list[float] = []
    fleet = Fleet(url, clients, dashboards, client_procs)
    feed_ticks = FeedTicks(stack.eps.feed)
    try:
        connect_started = time.monotonic()
        await fleet.start()
        connect_s = time.monotonic() - connect_started
        await asyncio.sleep(_WARMUP_S)
        if feed_ticks.received() == 0:
            raise RuntimeError(f"no price update on the daemon's feed ({stack.eps.feed}) after the clients connected")
        _sample_rss(sidecar_pid, rss)
        before = _daemon_latency(stack.eps, reset=True)  # the loaded figures: both measured phases, not the connecting
        clients_phase = Phase("clients", clients, dashboards)
        cpu_before = _cpu_seconds(stack.procs, sidecar_pid, fleet.pids)
        wall_before = time.monotonic()
        await _measure(fleet, clients_phase, duration_s, sidecar_pid, rss, bar.phase("ws: clients", duration_s / 2))
        cpu_share = _cpu_share(cpu_before, _cpu_seconds(stack.procs, sidecar_pid, fleet.pids), time.monotonic() - wall_before)
        rss_before_stall = max(rss)
        stalled = await _stalled_client(url)
        stalled_phase = Phase("stalled", clients, dashboards)
        stall_rss: list[float] = []
        await _measure(fleet, stalled_phase, duration_s, sidecar_pid, stall_rss, bar.phase("ws: + stalled client", 1.5 * duration_s))
        after = _daemon_latency(stack.eps)
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = (await http.get(f"http://127.0.0.1:{stack.port}/api/metrics", headers={"Authorization": f"Bearer {token}"})).text
            health = (await http.get(f"http://127.0.0.1:{stack.port}/api/health")).json()
        await fleet.stop()
        with contextlib.suppress(Exception):
            stalled.transport.abort()
    finally:
        ticks_sent = feed_ticks.stop()
    ticks = after["ticks"] - before["ticks"]
    samples = {f"{clients} clients": tick_to_client_ns(clients_phase), "+ stalled client": tick_to_client_ns(stalled_phase)}
    return {
        "connect_s": round(connect_s, 2),
        "clients_phase": _phase_result(clients_phase, ticks_sent),
        "stalled_phase": _phase_result(stalled_phase, ticks_sent),
        "closed_early": fleet.closed_early,
        "feed_ticks_recorded": feed_ticks.received(),  # the staleness's reference: every price update of the run
        "feed_ticks_unreadable": feed_ticks.errors,
        "ticks_per_s_measured": round(ticks / max(after["uptime_s"] - before["uptime_s"], 1e-9), 1),
        "daemon_latency_loaded": after,
        "sidecar_feed_to_websocket_us": health["latency"].get("feed_to_websocket", {}),
        "sidecar_rss_mb": {"before_stall_max": round(rss_before_stall, 1), "during_stall_max": round(max(stall_rss), 1), "during_stall_last": round(stall_rss[-1], 1)},
        "sidecar_counters": {
            name: _metric(metrics, f"qt_sidecar_{name}_total")
            for name in ("ws_disconnected_slow", "ws_prices_conflated", "ws_prices_throttled", "ws_price_fanouts", "ws_prices_direct", "ws_reliable_direct", "ws_frames_built", "ws_frames_reused", "feed_gaps", "feed_messages")
        },
        # who used the cores during the clients phase (1.0 = one core)
        "cpu_cores_used_clients_phase": cpu_share,
    }, samples


def run_ws_bench(
    *,
    clients: int = 500,
    ticks_per_s: float = 2000,
    symbols: int = 20,
    duration_s: float = 20.0,
    json_out: Path | None = None,
    dashboards: int | None = None,
    max_updates_per_s: float | None = None,
    extra_env: dict[str, str] | None = None,
    client_procs: int = 2,
    ticks_csv: Path | None = None,
    log: Any = print,
    plot_out: Path | None = None,
) -> dict[str, Any]:
    """Run the three phases and return (and write) the result; the markdown report beside ``json_out``
    (:func:`report_path`). ``dashboards``: of the clients, how many subscribe to nothing (default
    :func:`dashboard_clients`).

    ``ticks_csv``: real ticks the paper terminal replays at ``ticks_per_s`` instead of its generator, as
    ``symbols`` symbols, each a stretch of the file (:func:`~quantumtrader.bench.common.tick_file_per_symbol`).
    ``plot_out``: tick -> client by percentile per phase, and the daemon's ticks/s without and with the clients.
    """
    if not 1 <= symbols <= len(SYMBOLS):
        raise ValueError(f"symbols must be 1-{len(SYMBOLS)}")
    dashboards = dashboard_clients(clients) if dashboards is None else min(dashboards, clients)
    with tempfile.TemporaryDirectory(prefix="qt-bench-ws-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        tick_files = None
        if ticks_csv is not None:
            # each stack replays from the start: enough for its phases (the loaded one is 2 x duration) and start-up
            needed = int(ticks_per_s * (3 * duration_s + 120))
            tick_files, held = tick_file_per_symbol(ticks_csv, SYMBOLS[:symbols], tmp / "ticks", needed)
            if held < needed:
                log(f"ws: {ticks_csv} holds {held:,} good rows, {needed:,} wanted at {ticks_per_s:g} ticks/s: the ticks may end before the last phase")
        with _Bar(duration_s) as bar:
            log(f"ws: baseline (no clients) for {duration_s / 2:g} s")
            with _Stack(tmp / "a", ticks_per_s, symbols, max_updates_per_s, extra_env or {}, tick_files=tick_files) as stack:
                baseline = _baseline(stack, duration_s / 2, bar.phase("ws: baseline (no clients)", 0.0))
            log(f"ws: {clients} clients ({dashboards} unsubscribed) for {duration_s:g} s, then one stalled client for {duration_s:g} s")
            bar.phase(f"ws: {clients} clients connecting", duration_s / 2)  # the stack's start and the connects: not measured seconds
            with _Stack(tmp / "b", ticks_per_s, symbols, max_updates_per_s, extra_env or {}, clients, tick_files=tick_files) as stack:
                loaded, samples = _run_loop(_loaded_run(stack, clients, dashboards, duration_s, client_procs, bar))
    result: dict[str, Any] = {
        "scenario": "ws",
        "clients": clients,
        "dashboard_clients": dashboards,
        "client_processes": client_procs,
        "subscribed_symbols_per_app_client": 5,
        "symbols": symbols,
        "ticks_per_s_target": ticks_per_s,
        "max_updates_per_s": max_updates_per_s or SidecarConfig().max_updates_per_s,
        "duration_s": duration_s,
        "ticks": tick_source(ticks_csv),
        "extra_env": extra_env or {},
        "clock": "the paper terminal's sent_ns (time.perf_counter_ns() as it sends the tick, carried by the price update) vs time.perf_counter_ns() when the client's WebSocket library hands the message over, same host",
        "baseline_daemon_latency": baseline,
        **loaded,
        "machine": machine(),
    }
    p99 = result["clients_phase"]["tick_to_client_ms"].get("p99_ms", float("inf"))
    p99_stalled = result["stalled_phase"]["tick_to_client_ms"].get("p99_ms", float("inf"))
    result["targets"] = {
        "p99_tick_to_client_under_20_ms": p99 < 20.0,
        "no_client_starves": result["clients_phase"]["starved_clients"] == 0 and result["stalled_phase"]["starved_clients"] == 0,
        "stalled_client_does_not_slow_others": p99_stalled < max(20.0, 1.5 * p99),
    }
    text = render_markdown(result)
    log(text)  # first: a file that cannot be written costs the file, not the figures
    write_json(json_out, result)
    if json_out is not None:
        with replacing(report_path(json_out)) as temporary:
            temporary.write_text(text, encoding="utf-8")
    if plot_out is not None:  # after the JSON and the report: a plot that cannot be written costs only the plot
        throughput = {"no clients": baseline["ticks_per_s_measured"], f"{clients} clients": result["ticks_per_s_measured"]}
        title = f"qt-bench ws: tick -> client, {clients} clients, {ticks_per_s:g} ticks/s over {symbols} symbols"
        percentile_plot(plot_out, samples, title, throughput)
    return result


def _baseline(stack: _Stack, seconds: float, elapsed: Callable[[float], None]) -> dict[str, Any]:
    """The daemon's tick path over ``seconds`` without clients, and the ticks/s it counted; ``elapsed`` told the
    seconds so far once a second (the progress bar: this process only waits, the daemon keeps its own figures)."""
    first = _daemon_latency(stack.eps, reset=True)  # the window's figures only, not the stack's start-up
    began = time.monotonic()
    while (left := seconds - (time.monotonic() - began)) > 0:
        time.sleep(min(1.0, left))
        elapsed(min(time.monotonic() - began, seconds))
    baseline = _daemon_latency(stack.eps)
    baseline["ticks_per_s_measured"] = round((baseline["ticks"] - first["ticks"]) / max(baseline["uptime_s"] - first["uptime_s"], 1e-9), 1)
    return baseline


class _Bar:
    """The run's progress bar, in measured seconds: the baseline's half duration, then the clients phase and the
    stalled one (2.5 x ``duration_s`` in all; the stacks' starts and the connects are not counted). One redraw a
    second, the pace at which the phases wake anyway."""

    def __init__(self, duration_s: float) -> None:
        self._total = math.ceil(2.5 * duration_s)
        self._bar: Any = None

    def __enter__(self) -> _Bar:
        self._bar = progress(self._total, "ws: starting", refresh_per_second=1.0)
        return self

    def phase(self, description: str, done_before_s: float) -> Callable[[float], None]:
        """What a phase tells of its seconds so far; the phase begins after ``done_before_s`` measured seconds."""
        self._bar.advance_to(round(done_before_s), description)
        return lambda elapsed_s: self._bar.advance_to(min(round(done_before_s + elapsed_s), self._total))

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def report_path(json_out: Path) -> Path:
    """Where the markdown report goes beside ``--json``: checked with it before the run (the CLI), written after it."""
    return json_out.with_suffix(".md")


#: Clients per dashboard (a client subscribed to nothing, so to every symbol) and the most dashboards of a run.
_CLIENTS_PER_DASHBOARD, _MAX_DASHBOARDS = 50, 10


def dashboard_clients(clients: int) -> int:
    """How many of ``clients`` are dashboards: one per 50, at most 10 (500 clients: 10, as always). A fixed 10 of
    3 clients gave "-7 subscribed" (a review, 2026-12-06)."""
    return min(_MAX_DASHBOARDS, clients // _CLIENTS_PER_DASHBOARD)


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop  # the sidecar runs on it too (uvicorn's default when installed)

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _stale_row(st: dict[str, Any]) -> tuple[str, ...]:
    """Mean, p50, p90, p99, max, then the share of the time over each of OVER_MS (as %)."""
    if not st:
        return ("-",) * (5 + len(OVER_MS))
    shares = st["time_share_over_ms"]
    return (*(f"{st[k]:.1f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")), *(f"{100 * shares[str(x)]:.1f}%" for x in OVER_MS))


def render_markdown(r: dict[str, Any]) -> str:
    def lat(d: dict[str, Any]) -> tuple[str, ...]:
        return tuple(f"{d.get(k, float('nan')):.2f}" for k in ("p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms"))

    rows = [("clients", *lat(r["clients_phase"]["tick_to_client_ms"])), ("+ stalled client", *lat(r["stalled_phase"]["tick_to_client_ms"]))]
    base, loaded = r["baseline_daemon_latency"], r["daemon_latency_loaded"]
    drows = []
    for stage in ("ea_to_receive", "receive_to_publish"):
        for label, d in (("no clients", base), (f"{r['clients']} clients", loaded)):
            s = d.get(stage, {})
            drows.append((stage, label, f"{s.get('p50_us', float('nan')):.1f}", f"{s.get('p99_us', float('nan')):.1f}", f"{s.get('p99.9_us', float('nan')):.1f}"))
    c, s = r["clients_phase"], r["stalled_phase"]
    m = r["machine"]
    lines = [
        "# qt-bench ws: WebSocket fan-out through the sidecar",
        "",
        f"{r['clients']} WebSocket clients on loopback ({r['clients'] - r['dashboard_clients']} subscribed to the app's 5 symbols, "
        f"{r['dashboard_clients']} to nothing, i.e. all {r['symbols']}), permessage-deflate, while a paper terminal streams "
        f"{r['ticks_per_s_target']:g} ticks/s (measured {r['ticks_per_s_measured']:g}) "
        f"over {r['symbols']} symbols{'' if r.get('ticks', GENERATOR) == GENERATOR else ', each a stretch of ' + Path(r['ticks']).name}; "
        f"max_updates_per_s = {r['max_updates_per_s']:g} per symbol. {m['cores']} cores ({m['cpu']}), Python {m['python']}; "
        f"daemon, paper terminal, sidecar and all clients share them. Clients: websockets' Sans-I/O protocol on asyncio sockets "
        f"in {r['client_processes']} processes, each message stamped as the library hands it over (before JSON parsing).",
        "",
        f"Clock: {r['clock']}.",
        "",
        "## Tick -> client receive (ms)",
        "",
        "```",
        table(rows, ("phase", "p50", "p90", "p99", "p99.9", "max")),
        "```",
        "",
        "The age of each quote as it arrives. Held by the throttle (latest wins, at most max_updates_per_s a symbol), a quote is as old as its wait; "
        "what a phone shows is the staleness below.",
        "",
        "## Staleness: how long a client shows a quote after a newer tick exists (ms, time-weighted)",
        "",
        "```",
        table(
            [(label, *_stale_row(ph.get("staleness_ms", {}))) for label, ph in (("clients", c), ("+ stalled client", s))],
            ("phase", "mean", "p50", "p90", "p99", "max", *(f"> {x} ms" for x in OVER_MS)),
        ),
        "```",
        "",
        f"Updates per client per second: {c['updates_per_client_per_s']} (clients phase), {s['updates_per_client_per_s']} (with the stalled client); "
        f"starving clients: {c['starved_clients']} / {s['starved_clients']}; clients that got nothing: {c['clients_with_no_update']} / {s['clients_with_no_update']}.",
        "",
        f"Sidecar feed -> WebSocket send (µs, whole run; a quote the throttle held from its release; fast-lane writes timed per 32 clients, at the end of each: an upper bound): {r['sidecar_feed_to_websocket_us']}.",
        "",
        "## Daemon tick path with and without the fan-out load (µs)",
        "",
        "```",
        table(drows, ("stage", "load", "p50", "p99", "p99.9")),
        "```",
        "",
        "## The stalled client",
        "",
        f"Sidecar RSS: {r['sidecar_rss_mb']} MB. Counters: {r['sidecar_counters']}.",
        "",
        "## Who used the cores (clients phase, 1.0 = one core of the 2)",
        "",
        f"{r.get('cpu_cores_used_clients_phase', {})}",
        "",
        "## Targets",
        "",
        *[f"- {name}: {'met' if ok else 'MISSED'}" for name, ok in r["targets"].items()],
        "",
    ]
    return "\n".join(lines)
