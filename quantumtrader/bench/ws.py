"""``qt-bench ws``: the sidecar's WebSocket fan-out under load (issue 6, "What must be shown").

Real processes on loopback: a daemon, a paper terminal streaming
``ticks_per_s`` over ``symbols`` symbols, the sidecar; in this process, N
WebSocket clients (asyncio, permessage-deflate like the app's Dart client).
Most clients behave like the app (subscribe to its five symbols); a few
subscribe to nothing and so get every symbol, like a dashboard.

Phases, each measured separately:
1. ``baseline``: daemon + paper + sidecar, no clients: the daemon's tick-path
   latency (ea_to_receive, receive_to_publish) without fan-out load.
2. ``clients``: the N clients connected: tick -> client receive latency and
   updates per client.
3. ``stalled``: one more client connects and then never reads: do the others
   slow down, does the sidecar's memory stay bounded?

Clock: the paper terminal stamps each tick's ``time_msc`` with the wall clock
(``CLOCK_REALTIME``) when it sends it; a client stamps receipt with
``time.time_ns()``, the same clock of the same host, so the difference is the
end-to-end latency (tick sent -> daemon -> feed -> sidecar -> client) with
no cross-host skew. ``time_msc`` is truncated to the millisecond, so each
sample overstates the latency by 0-1 ms: the figures are conservative. A
price update that is conflated away is never received and so never measured:
what is measured is the age of each quote when a client gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from hdrh.histogram import HdrHistogram

from quantumtrader.bench.common import machine, table, write_json
from quantumtrader.bench.procs import Endpoints, control, free_port, start, stop, wait_for, wait_ready
from quantumtrader.metrics import new_histogram, summarize

#: The app's five (TradingPlatformService._subscribeToAllSymbols) first, then other liquid names.
SYMBOLS = (
    "EURUSD", "GBPUSD", "XAUUSD", "BTCUSD", "USDJPY", "AUDUSD", "USDCHF", "USDCAD", "NZDUSD", "EURGBP",
    "EURJPY", "GBPJPY", "EURCHF", "AUDJPY", "CADJPY", "CHFJPY", "EURAUD", "GBPAUD", "XAGUSD", "ETHUSD",
)
_WARMUP_S = 3.0
_CONNECT_CONCURRENCY = 50
_STARVED_FRACTION = 0.5  # a client with fewer than half the median updates is starving


class Phase:
    """What all clients saw during one phase."""

    def __init__(self, name: str, clients: int) -> None:
        self.name = name
        self.latency = new_histogram()
        self.counts = [0] * clients
        self.started = 0.0
        self.ended = 0.0


class Fleet:
    """N WebSocket clients in one event loop, recording into the current phase."""

    def __init__(self, url: str, clients: int, dashboards: int) -> None:
        self.url = url
        self.n = clients
        self.dashboards = dashboards
        self.phase: Phase | None = None
        self.connected = 0
        self.closed_early = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    async def start(self) -> None:
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        self.tasks = [asyncio.create_task(self._client(i, gate)) for i in range(self.n)]
        await asyncio.wait_for(self.ready.wait(), 120)

    async def _client(self, index: int, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        subscribe = () if index < self.dashboards else SYMBOLS[:5]
        async with gate:
            ws = await connect(self.url, open_timeout=30, max_size=2**20)
            await ws.recv()  # connection
            for symbol in subscribe:
                await ws.send(orjson.dumps({"type": "subscribe", "symbol": symbol}).decode())
        self.connected += 1
        if self.connected == self.n:
            self.ready.set()
        loads = orjson.loads
        try:
            async for text in ws:
                now_ns = time.time_ns()
                phase = self.phase
                if phase is None:
                    continue
                msg = loads(text)
                if msg.get("type") != "price_update":
                    continue
                phase.counts[index] += 1
                phase.latency.record_value(min(max(now_ns - msg["data"]["time_msc"] * 1_000_000, 1), 60_000_000_000))
        except Exception:
            self.closed_early += 1
        finally:
            await ws.close()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task


async def _stalled_client(url: str) -> Any:
    """Connects, subscribes to nothing (so it is sent every symbol) and never reads again."""
    from websockets.asyncio.client import connect

    ws = await connect(url, open_timeout=30, max_queue=1)
    return ws


def _sample_rss(pid: int, samples: list[float]) -> None:
    with contextlib.suppress(psutil.Error):
        samples.append(psutil.Process(pid).memory_info().rss / 1e6)


async def _measure(fleet: Fleet, phase: Phase, seconds: float, sidecar_pid: int, rss: list[float]) -> None:
    fleet.phase = phase
    phase.started = time.monotonic()
    end = phase.started + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, end - time.monotonic()))
        _sample_rss(sidecar_pid, rss)
    phase.ended = time.monotonic()
    fleet.phase = None


def _phase_result(phase: Phase) -> dict[str, Any]:
    seconds = max(phase.ended - phase.started, 1e-9)
    rates = sorted(c / seconds for c in phase.counts)
    median = statistics.median(rates) if rates else 0.0
    return {
        "seconds": round(seconds, 2),
        "tick_to_client_ms": {k.replace("_us", "_ms"): (v / 1000.0 if k.endswith("_us") else v) for k, v in summarize(phase.latency).items()},
        "updates_per_client_per_s": {"min": round(rates[0], 2), "median": round(median, 2), "max": round(rates[-1], 2)} if rates else {},
        "starved_clients": sum(1 for r in rates if r < _STARVED_FRACTION * median),
        "clients_with_no_update": sum(1 for c in phase.counts if c == 0),
    }


def _daemon_latency(eps: Endpoints) -> dict[str, Any]:
    health = control(eps.control, "status", timeout_ms=3000)["health"]
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

    def __init__(self, tmp: Path, ticks_per_s: float, symbols: int, max_updates_per_s: float | None, extra_env: dict[str, str]) -> None:
        self.tmp = tmp
        self.eps = Endpoints()
        self.port = free_port()
        extra = {
            "QT_SIDECAR__PORT": str(self.port),
            "QT_PAPER__SYMBOLS": ",".join(SYMBOLS[:symbols]),
            # 500 phones come from 500 addresses; here they share 127.0.0.1, so its per-IP bucket is widened.
            "QT_SIDECAR__RATE_PER_IP_BURST": "5000",
            "QT_DAEMON__STATUS_INTERVAL_S": "0",
        }
        if max_updates_per_s is not None:
            extra["QT_SIDECAR__MAX_UPDATES_PER_S"] = str(max_updates_per_s)
        extra.update(extra_env)
        self.env = self.eps.env(tmp / "data", **extra)
        self.ticks_per_s = ticks_per_s
        self.procs: dict[str, Any] = {}

    def token(self) -> str:
        from quantumtrader.sidecar.auth import ACCESS, TokenService, load_or_create_secret
        from quantumtrader.sidecar.users import UserStore

        users = UserStore(self.tmp / "data")
        user = users.add("bench", "viewer", "bench-password")
        return TokenService(load_or_create_secret(self.tmp / "data"), users).issue(user, ACCESS, 3600)

    def __enter__(self) -> _Stack:
        log = self.tmp / "daemon.log"
        self.procs["daemon"] = start(["run", "--no-sidecar"], self.env, log)
        wait_ready(self.eps.control, self.procs["daemon"], log, timeout=120)
        self.procs["paper"] = start(["paper", "--rate", str(self.ticks_per_s)], self.env, self.tmp / "paper.log")
        self.procs["sidecar"] = start(["sidecar"], self.env, self.tmp / "sidecar.log")
        url = f"http://127.0.0.1:{self.port}/api/health"

        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=2).json().get("status") == "healthy"
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the sidecar to report healthy", interval=0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("sidecar", "paper", "daemon"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                with contextlib.suppress(AssertionError):
                    stop(proc, timeout=20)


def _cpu_seconds(procs: dict[str, Any], sidecar_pid: int) -> dict[str, float]:
    """User + system CPU seconds so far of each process of the run, this one (the clients) included."""
    pids = {"sidecar": sidecar_pid, "daemon": procs["daemon"].pid, "paper": procs["paper"].pid, "clients (this process)": None}
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            out[name] = times.user + times.system
    return out


def _cpu_share(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / wall_s, 2) for name in after if name in before}


async def _loaded_run(stack: _Stack, clients: int, dashboards: int, duration_s: float) -> dict[str, Any]:
    token = stack.token()
    url = f"ws://127.0.0.1:{stack.port}/ws?token={token}"
    sidecar_pid = stack.procs["sidecar"].pid
    rss: list[float] = []
    fleet = Fleet(url, clients, dashboards)
    connect_started = time.monotonic()
    await fleet.start()
    connect_s = time.monotonic() - connect_started
    await asyncio.sleep(_WARMUP_S)
    _sample_rss(sidecar_pid, rss)
    before = _daemon_latency(stack.eps)
    clients_phase = Phase("clients", clients)
    cpu_before = _cpu_seconds(stack.procs, sidecar_pid)
    wall_before = time.monotonic()
    await _measure(fleet, clients_phase, duration_s, sidecar_pid, rss)
    cpu_share = _cpu_share(cpu_before, _cpu_seconds(stack.procs, sidecar_pid), time.monotonic() - wall_before)
    rss_before_stall = max(rss)
    stalled = await _stalled_client(url)
    stalled_phase = Phase("stalled", clients)
    stall_rss: list[float] = []
    await _measure(fleet, stalled_phase, duration_s, sidecar_pid, stall_rss)
    after = _daemon_latency(stack.eps)
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(f"http://127.0.0.1:{stack.port}/api/metrics", headers={"Authorization": f"Bearer {token}"})).text
        health = (await http.get(f"http://127.0.0.1:{stack.port}/api/health")).json()
    await fleet.stop()
    with contextlib.suppress(Exception):
        stalled.transport.abort()
    ticks = after["ticks"] - before["ticks"]
    return {
        "connect_s": round(connect_s, 2),
        "clients_phase": _phase_result(clients_phase),
        "stalled_phase": _phase_result(stalled_phase),
        "closed_early": fleet.closed_early,
        "ticks_per_s_measured": round(ticks / max(after["uptime_s"] - before["uptime_s"], 1e-9), 1),
        "daemon_latency_loaded": after,
        "sidecar_feed_to_websocket_us": health["latency"].get("feed_to_websocket", {}),
        "sidecar_rss_mb": {"before_stall_max": round(rss_before_stall, 1), "during_stall_max": round(max(stall_rss), 1), "during_stall_last": round(stall_rss[-1], 1)},
        "sidecar_counters": {
            name: _metric(metrics, f"qt_sidecar_{name}_total")
            for name in ("ws_disconnected_slow", "ws_prices_conflated", "ws_prices_throttled", "ws_price_fanouts", "ws_frames_built", "ws_frames_reused", "feed_gaps", "feed_messages")
        },
        # who used the 2 cores during the clients phase (1.0 = one core): the clients run in this process
        "cpu_cores_used_clients_phase": cpu_share,
    }


def run_ws_bench(
    *,
    clients: int = 500,
    ticks_per_s: float = 2000,
    symbols: int = 20,
    duration_s: float = 20.0,
    json_out: Path | None = None,
    dashboards: int = 10,
    max_updates_per_s: float | None = None,
    extra_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Run the three phases and return (and write) the result; ``ws.md`` is written beside ``json_out``."""
    if not 1 <= symbols <= len(SYMBOLS):
        raise ValueError(f"symbols must be 1-{len(SYMBOLS)}")
    with tempfile.TemporaryDirectory(prefix="qt-bench-ws-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        log(f"ws: baseline (no clients) for {duration_s / 2:g} s")
        with _Stack(tmp / "a", ticks_per_s, symbols, max_updates_per_s, extra_env or {}) as stack:
            first = _daemon_latency(stack.eps)
            time.sleep(duration_s / 2)
            baseline = _daemon_latency(stack.eps)
            baseline["ticks_per_s_measured"] = round((baseline["ticks"] - first["ticks"]) / max(baseline["uptime_s"] - first["uptime_s"], 1e-9), 1)
        log(f"ws: {clients} clients ({dashboards} unsubscribed) for {duration_s:g} s, then one stalled client for {duration_s:g} s")
        with _Stack(tmp / "b", ticks_per_s, symbols, max_updates_per_s, extra_env or {}) as stack:
            loaded = _run_loop(_loaded_run(stack, clients, dashboards, duration_s))
    from quantumtrader.config import SidecarConfig

    result: dict[str, Any] = {
        "scenario": "ws",
        "clients": clients,
        "dashboard_clients": dashboards,
        "subscribed_symbols_per_app_client": 5,
        "symbols": symbols,
        "ticks_per_s_target": ticks_per_s,
        "max_updates_per_s": max_updates_per_s or SidecarConfig().max_updates_per_s,
        "duration_s": duration_s,
        "extra_env": extra_env or {},
        "clock": "tick time_msc (paper terminal, CLOCK_REALTIME at send, truncated to ms) vs time.time_ns() at client receive, same host",
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
    write_json(json_out, result)
    if json_out is not None:
        json_out.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    log(render_markdown(result))
    return result


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop  # the sidecar runs on it too (uvicorn's default when installed)

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


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
        f"{r['ticks_per_s_target']:g} ticks/s (measured {r['ticks_per_s_measured']:g}) over {r['symbols']} symbols; "
        f"max_updates_per_s = {r['max_updates_per_s']:g} per symbol. {m['cores']} cores ({m['cpu']}), Python {m['python']}; "
        "daemon, paper terminal, sidecar and all clients share them.",
        "",
        f"Clock: {r['clock']}.",
        "",
        "## Tick -> client receive (ms)",
        "",
        "```",
        table(rows, ("phase", "p50", "p90", "p99", "p99.9", "max")),
        "```",
        "",
        f"Updates per client per second: {c['updates_per_client_per_s']} (clients phase), {s['updates_per_client_per_s']} (with the stalled client); "
        f"starving clients: {c['starved_clients']} / {s['starved_clients']}; clients that got nothing: {c['clients_with_no_update']} / {s['clients_with_no_update']}.",
        "",
        f"Sidecar feed -> WebSocket send (µs, whole run): {r['sidecar_feed_to_websocket_us']}.",
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
