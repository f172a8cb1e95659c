"""A real stack for the sidecar's tests: daemon + paper terminal + sidecar processes on free ports.

Users are made with the real CLI (``qt-daemon user add ... --password-stdin``);
signals are put in the store the way the daemon commits them (SignalLog), so
the signal endpoints are exercised whether or not the daemon emits any yet.
One stack serves a whole test module (starting processes is the slow part).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

from quantumtrader.protocol import now_msc, signal_object
from support import Endpoints, start, stop, wait_for

PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}
ROLES = {"alice": "trader", "bob": "viewer"}
APP_SYMBOLS = ["EURUSD", "GBPUSD", "XAUUSD", "BTCUSD", "USDJPY"]  # TradingPlatformService._subscribeToAllSymbols


def cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quantumtrader", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def seed_signals(data_dir: Path, count: int = 6) -> list[dict[str, Any]]:
    """Signals committed to the store exactly as the daemon's SignalLog does."""
    from quantumtrader.store import SignalLog, connect, migrate, store_path

    base = now_msc() - 60_000
    made = []
    for i in range(count):
        p = (0.82, 0.15, 0.5, 0.74, 0.28, 0.9)[i % 6]
        prediction = "BUY" if p > 0.7 else "SELL" if p < 0.3 else "HOLD"
        made.append(
            signal_object(
                signal_id=f"s-test{i:04d}",
                symbol=("EURUSD", "GBPUSD")[i % 2],
                prediction=prediction,
                probability=p,
                trend="bullish" if p > 0.5 else "bearish" if p < 0.5 else "neutral",
                time_msc=base + i * 1000,
                components={"quantum": p, "chaos": 0.5, "ml_ensemble": p, "technical": 0.5},
                features={"returns": 0.0001, "rsi": None},
                ml_probability=p,
                ml_components={"sgd": p, "nb": p},
            )
        )
    conn = connect(store_path(data_dir, "quantumtrader.db"))
    try:
        migrate(conn)
        SignalLog(conn).commit(made)
    finally:
        conn.close()
    return made


def recv_until(ws: ClientConnection, predicate: Any, timeout: float, what: str, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The first message matching ``predicate``; everything received on the way is appended to ``seen``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
        if seen is not None:
            seen.append(msg)
        if predicate(msg):
            return msg  # type: ignore[no-any-return]
    raise AssertionError(f"no {what} within {timeout}s")


def jwt_secret(stack: Stack) -> bytes:
    return (stack.data_dir / "jwt_secret").read_bytes().strip()


def token_claims(stack: Stack, **override: object) -> dict[str, object]:
    """Alice's claims (or ``sub``'s) as the sidecar issues them, the user's token epoch from the users file included."""
    now = int(time.time())
    users = json.loads((stack.data_dir / "users.json").read_text())["users"]
    epoch = users.get(str(override.get("sub", "alice")), {}).get("epoch", 0)
    return {"sub": "alice", "role": "trader", "type": "access", "iss": "quantumtrader", "iat": now, "exp": now + 600, "ep": epoch, **override}


@dataclass
class Stack:
    eps: Endpoints
    tmp: Path
    port: int
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def headers(self, user: str | None = "alice") -> dict[str, str]:
        """TradingPlatformService._headers, exactly."""
        out = {"Accept": "application/json", "Content-Type": "application/json"}
        if user is not None:
            out["Authorization"] = f"Bearer {self.tokens[user]}"
        return out

    def counter(self, name: str) -> float:
        """The sidecar's own counter ``name`` from /api/metrics (0 when it has not counted any yet)."""
        text = httpx.get(f"{self.url}/api/metrics", headers=self.headers(), timeout=10).text
        line = next((ln for ln in text.splitlines() if ln.startswith(f"qt_sidecar_{name}_total ")), None)
        return float(line.split()[1]) if line else 0.0

    def trade(self, symbol: str, side: str, lots: float) -> dict[str, Any]:
        """TradingPlatformService.executeTrade's request (null stops), as alice; asserts it filled."""
        body = {"symbol": symbol, "type": side, "lots": lots, "stopLoss": None, "takeProfit": None}
        trade: dict[str, Any] = httpx.post(f"{self.url}/api/trade", headers=self.headers(), content=json.dumps(body), timeout=20).json()
        assert trade["success"] is True, trade
        return trade

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20.0)

    def start_daemon(self) -> None:
        log = self.tmp / "daemon.log"
        proc = start(["run", "--no-sidecar"], self.env, log)
        self.procs["daemon"] = proc
        from support import wait_ready

        wait_ready(self.eps.control, proc, log, timeout=90)

    def start_paper(self, rate: str = "200") -> None:
        self.procs["paper"] = start(["paper", "--rate", rate, "--heartbeat-s", "0.5"], self.env, self.tmp / "paper.log")

    def start_sidecar(self) -> None:
        self.procs["sidecar"] = start(["sidecar"], self.env, self.tmp / "sidecar.log")
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> dict[str, Any]:
        def healthy() -> dict[str, Any] | None:
            proc = self.procs.get("sidecar")
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"sidecar exited {proc.returncode}:\n{(self.tmp / 'sidecar.log').read_text(errors='replace')[-3000:]}")
            try:
                body = httpx.get(f"{self.url}/api/health", timeout=2).json()
            except httpx.HTTPError:
                return None
            return body if body.get("status") == "healthy" else None

        return wait_for(healthy, timeout, "the sidecar to report healthy", interval=0.2)  # type: ignore[no-any-return]

    def stop_all(self) -> None:
        for name in ("sidecar", "paper", "daemon"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop(proc)


def make_stack(tmp: Path, **env: str) -> Stack:
    eps = Endpoints(spare=2)  # the sidecar's port, and one for a terminal a test adds
    port = eps.spare_ports[0]
    stack = Stack(eps, tmp, port, eps.env(tmp / "data", QT_SIDECAR__PORT=str(port), QT_DAEMON__HEALTH_INTERVAL_S="0.5", **env))
    for user, password in PASSWORDS.items():
        done = cli(["user", "add", user, "--role", ROLES[user], "--password-stdin"], stack.env, password + "\n")
        assert done.returncode == 0, done.stderr
    for user in PASSWORDS:
        done = cli(["token", "--user", user, "--ttl", "1h"], stack.env)
        assert done.returncode == 0, done.stderr
        stack.tokens[user] = done.stdout.strip()
    stack.signals = seed_signals(stack.data_dir)
    return stack


def running_stack(tmp: Path, **env: str) -> Iterator[Stack]:
    stack = make_stack(tmp, **env)
    try:
        stack.start_daemon()
        stack.start_paper()
        stack.start_sidecar()
        yield stack
    finally:
        stack.stop_all()
