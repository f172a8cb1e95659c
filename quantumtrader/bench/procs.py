"""Real processes on loopback for benchmarks and tests: endpoints, start, stop, readiness.

Benchmarks drive the daemon, paper terminals and senders as separate
processes over real sockets, exactly as they run in production; the test
suite uses the same helpers.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil

from quantumtrader.children import popen_kwargs
from quantumtrader.children import stop as stop_child
from quantumtrader.control_client import ControlClient, ControlTimeout


def interpreter(pid: int | None = None) -> psutil.Process:
    """The process that runs Python for ``pid``, a child started as ``sys.executable -m ...``: itself, except in a
    Windows virtual environment, where ``sys.executable`` is a launcher that starts the base interpreter as its
    only child and waits for it. Measured there, the launcher gave a few MB of RSS and no CPU for the daemon
    (a Windows audit, 2026-12-05). The caller handles ``psutil.Error`` (a process gone)."""
    proc = psutil.Process(pid)
    if not _venv_launcher_starts_children() or pid is None:
        return proc
    children = proc.children()
    return children[0] if len(children) == 1 else proc


def _venv_launcher_starts_children() -> bool:
    """Whether ``sys.executable`` is the Windows venv launcher (``python.exe`` that re-runs the base interpreter)."""
    return sys.platform == "win32" and sys.prefix != sys.base_prefix


def free_port() -> int:
    return free_ports(1)[0]


#: Under pytest-xdist each worker takes its ports from a range of its own, below Linux's ephemeral range
#: (32768-60999): a port found free and released is then bound by the process it is for seconds later, and
#: meanwhile neither the other worker's picks nor any process's outgoing connections (ephemeral ports) can
#: take it. Outside a test run the OS picks, as before.
_WORKER_PORTS_FROM, _WORKER_PORTS_EACH = 12000, 4000


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports: all held until all are known (one at a time, the OS may hand one out twice)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < n:
            s = held.enter_context(socket.socket())
            if worker.startswith("gw") and worker[2:].isdigit():
                low = _WORKER_PORTS_FROM + (int(worker[2:]) % 5) * _WORKER_PORTS_EACH
                try:
                    s.bind(("127.0.0.1", random.randrange(low, low + _WORKER_PORTS_EACH)))
                except OSError:  # taken (or one of ours already): another try
                    continue
            else:
                s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


class Endpoints:
    """A fresh set of daemon endpoints on free loopback ports, as QT_* environment.

    ``spare`` more ports (``spare_ports``: a sidecar's, a second terminal's) come from the same
    reservation: a port taken later with :func:`free_port` may be one of these four, which the daemon
    binds only when it starts (a second terminal was once handed the daemon's feed port).
    """

    def __init__(self, spare: int = 0) -> None:
        ports = free_ports(4 + spare)
        self.events, self.feed, self.control, self.command = (f"tcp://127.0.0.1:{port}" for port in ports[:4])
        self.spare_ports = ports[4:]

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
        env.update(
            QT_ENDPOINTS__EVENTS=self.events,
            QT_ENDPOINTS__FEED=self.feed,
            QT_ENDPOINTS__CONTROL=self.control,
            QT_PAPER__COMMAND_ENDPOINT=self.command,
            QT_DATA_DIR=str(data_dir),
            QT_LOG__FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


def start(args: list[str], env: dict[str, str], log_path: Path, module: str = "quantumtrader") -> subprocess.Popen[bytes]:
    """``python -m <module> <args>`` with output to ``log_path``."""
    handle = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=handle, stderr=subprocess.STDOUT, **popen_kwargs())


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
    """Signal (Ctrl-Break on Windows), wait, kill if needed; raises if it had to kill (a stop that hangs is a bug)."""
    if not stop_child(proc, sig, timeout):
        raise AssertionError(f"process {proc.args} did not stop within {timeout}s after signal {sig}")
    return proc.returncode


def stop_quietly(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """:func:`stop` on the way out of a failure or an interrupt: one that had to be killed is not a second error
    (it would hide the first)."""
    if not stop_child(proc, signal.SIGINT, timeout):
        print(f"warning: {proc.args} did not stop within {timeout:g}s after SIGINT; killed", file=sys.stderr)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def control(endpoint: str, kind: str = "status", timeout_ms: int = 5000, **fields: Any) -> dict[str, Any]:
    """One control request, no retry. 5 s: a reply takes ms, but a loaded 2-core host can stall a process for a second."""
    with ControlClient(endpoint, timeout_ms=timeout_ms, retries=0) as client:
        return client.request(kind, **fields)


def wait_ready(endpoint: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            return bool(control(endpoint, timeout_ms=300)["ok"])
        except ControlTimeout:
            return False

    wait_for(ready, timeout, "the daemon's control socket to answer")


@contextmanager
def daemon_process(eps: Endpoints, tmp: Path, *args: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A daemon (no sidecar) on ``eps``, ready when entered, stopped with SIGINT on exit."""
    log_path = tmp / "daemon.log"
    proc = start(["run", "--no-sidecar", *args], eps.env(tmp / "data", **env), log_path)
    try:
        wait_ready(eps.control, proc, log_path)
        yield proc
    finally:
        stop(proc)
