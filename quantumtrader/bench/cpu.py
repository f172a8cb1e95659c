"""The CPU time the machine gave a benchmark phase: busy, idle and stolen, from ``/proc/stat``.

Why: on a VPS the hypervisor runs other guests on the cores a guest thinks
it has, and the time it takes from us is *steal*. On 2026-12-03 this
project's 2-core VM stole about a third of the CPU time while the transport
floor ran, and every latency figure was several times 2026-11-29's for the
same code. A latency figure without the steal beside it cannot be compared
across days or machines, so every pipeline run records it per phase.

Linux only: ``/proc/stat`` sums each state over all cores since boot, in
clock ticks (``USER_HZ``); the difference of two readings is the phase's.
Windows does not show a guest its steal: there (and if the file cannot be
read or parsed) the shares are ``None``, never a guess.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import psutil  # here, not in process_cpu_s: its first call runs on the sender-watch thread as the ticks start

from quantumtrader.bench.procs import interpreter

PROC_STAT = Path("/proc/stat")
#: Above this much steal in a phase the console says the figures reflect the host, not only our code.
NOTABLE_STEAL_PCT = 5.0


class CpuTimes(NamedTuple):
    """Clock ticks since boot over all cores: running anything, idle (iowait included), taken by the hypervisor."""

    busy: int
    idle: int
    steal: int


def read_cpu_times(path: Path = PROC_STAT) -> CpuTimes | None:
    """The aggregate ``cpu`` line of ``/proc/stat``; None where there is none (Windows, macOS) or it is not as expected.

    Fields: user nice system idle iowait irq softirq steal guest guest_nice.
    Guest time is already counted in user (the kernel's accounting), so it
    is not added again.
    """
    try:
        with path.open("rb") as handle:
            line = handle.readline()
    except OSError:
        return None
    parts = line.split()
    if len(parts) < 5 or parts[0] != b"cpu":
        return None
    try:
        values = [int(v) for v in parts[1:9]]
    except ValueError:
        return None
    values += [0] * (8 - len(values))  # kernels before 2.6.11 had no steal column
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return CpuTimes(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)


def cpu_shares(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, float] | None:
    """Per cent of the phase's CPU time (all cores) that was busy, idle and stolen; None without two readings."""
    if before is None or after is None:
        return None
    busy, idle, steal = after.busy - before.busy, after.idle - before.idle, after.steal - before.steal
    total = busy + idle + steal
    if total <= 0 or min(busy, idle, steal) < 0:  # too short a phase to see, or counters not monotonic
        return None
    return {
        "busy_pct": round(100 * busy / total, 1),
        "idle_pct": round(100 * idle / total, 1),
        "steal_pct": round(100 * steal / total, 1),
        "cpu_seconds": round(total / _ticks_per_second(), 2),
    }


def _ticks_per_second() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):  # no sysconf outside Unix; the kernel's USER_HZ is 100 almost everywhere
        return 100


class CpuPhase:
    """``with CpuPhase() as phase: ...`` then ``phase.shares``: the CPU shares of what ran inside."""

    def __init__(self, path: Path = PROC_STAT) -> None:
        self._path = path
        self._before: CpuTimes | None = None
        self.shares: dict[str, float] | None = None

    def __enter__(self) -> CpuPhase:
        self._before = read_cpu_times(self._path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.shares = cpu_shares(self._before, read_cpu_times(self._path))


def describe(phases: dict[str, dict[str, float] | None]) -> str:
    """One console line: each phase's busy and steal, and a warning when the host took a notable share."""
    known = {name: s for name, s in phases.items() if s is not None}
    if not known:
        return "CPU: not measured here (no /proc/stat)"
    text = "CPU over all cores (busy / stolen by the host): " + ", ".join(f"{name} {s['busy_pct']:.0f}% / {s['steal_pct']:.0f}%" for name, s in known.items())
    worst = max(s["steal_pct"] for s in known.values())
    if worst > NOTABLE_STEAL_PCT:
        text += f"\n  the host took up to {worst:.0f}% of the CPU time (steal): these latencies are partly the host's; compare only with runs that had as much"
    return text


def process_cpu_s(pid: int | None = None) -> float | None:
    """CPU seconds (user + system, all threads) a process has used so far; None if it cannot be read.

    psutil, so it works on Windows too: the per-process shares are there
    even where the machine's steal is not."""
    try:
        times = interpreter(pid).cpu_times()
    except (psutil.Error, OSError):
        return None
    return float(times.user + times.system)


def cores(cpu_s: float | None, seconds: float) -> float | None:
    """CPU seconds over wall seconds: how many cores' worth a process kept busy."""
    if cpu_s is None or seconds <= 0:
        return None
    return round(cpu_s / seconds, 2)


class Mark(NamedTuple):
    """One reading, at one moment, of the machine's CPU and of two processes': a benchmark's server and this one."""

    at: float
    machine: CpuTimes | None
    server: float | None
    here: float | None


def mark(server_pid: int) -> Mark:
    return Mark(time.monotonic(), read_cpu_times(), process_cpu_s(server_pid), process_cpu_s())


def usage(opened: Mark | None, closed: Mark) -> tuple[dict[str, float] | None, dict[str, float | None]]:
    """Between two marks: the machine's shares (busy, idle, steal) and the cores' worth the server and this
    process kept busy; None for what was not read (no opening mark: the window never opened)."""
    if opened is None:
        return None, {"server": None, "here": None}
    seconds = closed.at - opened.at

    def spent(before: float | None, after: float | None) -> float | None:
        return None if before is None or after is None else after - before

    return cpu_shares(opened.machine, closed.machine), {"server": cores(spent(opened.server, closed.server), seconds), "here": cores(spent(opened.here, closed.here), seconds)}
