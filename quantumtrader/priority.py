"""Raise the tick thread's scheduling priority above the daemon's helper threads and its neighbours.

Why: on a small VPS the tick thread shares its cores with its own ZeroMQ I/O
thread, the store's writer thread and the terminals. Each feed message it
sends wakes the I/O thread, and the scheduler ran the freshly woken thread on
the tick thread's core straight away, pre-empting it mid-batch: about one
involuntary context switch per batch at 10,000 ticks/s, each costing tens of
microseconds of the tick -> signal time (measured, docs/signals.md). At a
higher priority the tick thread finishes its batch first and the woken
threads run on the other core or right after it; it still sleeps in its
poller whenever there is nothing to do, so it takes no CPU from anyone when
idle.

Only the calling thread is raised: threads started earlier (the I/O thread,
the writer) keep the normal priority, which is the point. Linux: the thread's
nice value (raising it needs root, CAP_SYS_NICE or an RLIMIT_NICE such as
systemd's ``LimitNICE=-10``); Windows: ``SetThreadPriority`` (no rights
needed up to ``THREAD_PRIORITY_HIGHEST``); elsewhere: the process's nice value.
A refusal is not an error: the daemon runs at the normal priority and says so.
Child processes the supervisor (re)starts from the raised thread would inherit
its level on Linux; :func:`lower_child_priority` sets them back.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, dataclass

#: Levels accepted by ``daemon.tick_priority``, with their nice value and their Windows thread priority.
LEVELS: dict[str, tuple[int, int]] = {
    "normal": (0, 0),
    "above_normal": (-5, 1),  # THREAD_PRIORITY_ABOVE_NORMAL
    "high": (-10, 2),  # THREAD_PRIORITY_HIGHEST
}


#: The calling thread's nice value before :func:`raise_thread_priority` raised it (None: never raised).
_nice_before: int | None = None


@dataclass(frozen=True)
class PriorityResult:
    """What :func:`raise_thread_priority` did, for the log and the health report."""

    requested: str
    applied: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def raise_thread_priority(level: str) -> PriorityResult:
    """Set the calling thread's priority to ``level`` (a key of :data:`LEVELS`). Never raises for a refusal."""
    if level not in LEVELS:
        raise ValueError(f"unknown priority level {level!r}; expected one of {sorted(LEVELS)}")
    nice, win_level = LEVELS[level]
    if level == "normal":
        return PriorityResult(level, True, "left at the normal priority")
    if sys.platform == "win32":
        return _windows(level, win_level)
    global _nice_before
    who = threading.get_native_id() if sys.platform.startswith("linux") else 0
    before = os.getpriority(os.PRIO_PROCESS, who)
    try:
        os.setpriority(os.PRIO_PROCESS, who, nice)
    except OSError as exc:
        return PriorityResult(
            level,
            False,
            f"nice {nice} refused ({exc.strerror}); running at the normal priority. Grant CAP_SYS_NICE or"
            " an RLIMIT_NICE (systemd: LimitNICE=-10), or set daemon.tick_priority = normal to silence this",
        )
    _nice_before = before
    return PriorityResult(level, True, f"nice {os.getpriority(os.PRIO_PROCESS, who)}")


def lower_child_priority(pid: int) -> None:
    """Give a child process started from the raised thread the priority the thread had before.

    On Linux and macOS a child inherits its parent thread's nice value, so a
    sidecar or paper terminal the supervisor restarts from the loop would run
    at -10 too. Called right after the child is spawned, while it is still
    starting its interpreter (before it has threads of its own). Raising a
    nice value back is always allowed. Windows children do not inherit a
    thread's priority: nothing to do.
    """
    if _nice_before is None or sys.platform == "win32":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, pid, _nice_before)
    except OSError:  # the child already exited: its restart will be handled by the supervisor
        pass


def _windows(level: str, win_level: int) -> PriorityResult:
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    # HANDLE is pointer-sized: without these, ctypes would pass the pseudo-handle as a 32-bit int on x64
    kernel32.GetCurrentThread.restype = ctypes.c_void_p
    kernel32.SetThreadPriority.argtypes = [ctypes.c_void_p, ctypes.c_int]
    kernel32.GetThreadPriority.argtypes = [ctypes.c_void_p]
    handle = kernel32.GetCurrentThread()
    if not kernel32.SetThreadPriority(handle, win_level):
        return PriorityResult(level, False, f"SetThreadPriority refused (error {ctypes.get_last_error()}); running at the normal priority")  # type: ignore[attr-defined,unused-ignore]
    return PriorityResult(level, True, f"thread priority {kernel32.GetThreadPriority(handle)}")
