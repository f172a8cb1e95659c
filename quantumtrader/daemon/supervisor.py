"""Child processes the daemon starts and keeps alive (paper terminal, sidecar).

Children are started as ``python -m quantumtrader ...`` with
``subprocess.Popen``: no fork, so it behaves the same on Windows VPSs. A
child that dies is restarted with exponential backoff (uvicorn's supervisor
idea), except one that exits with code 2: the CLI's exit for bad input (a
config value, a tick file), which the next start would meet again, so it is
logged once and left down. Shutdown asks politely (SIGTERM; CTRL_BREAK on
Windows, where terminate() is TerminateProcess and no handler would run),
waits a bounded time, then kills.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

from quantumtrader.children import popen_kwargs
from quantumtrader.children import stop as stop_child
from quantumtrader.config import BAD_INPUT_EXIT
from quantumtrader.log import get_logger
from quantumtrader.priority import lower_child_priority
from quantumtrader.shutdown import PARENT_PIPE_ENV

log = get_logger("quantumtrader.supervisor")

_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 30.0
_STOP_TIMEOUT_S = 5.0


class Child:
    """One supervised child process."""

    def __init__(self, name: str, args: Sequence[str], *, restart: bool = True, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "quantumtrader", *args]
        self.restart = restart
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._backoff_s = _BACKOFF_START_S
        self._restart_at = 0.0
        self._stopping = False

    def start(self) -> None:
        self._close_pipe()
        # stdin: a pipe this process never writes to; the child stops when it closes (shutdown.stop_with_parent),
        # so a daemon killed outright does not leave its children holding their ports.
        env = {**(os.environ if self.env is None else self.env), PARENT_PIPE_ENV: "1"}
        self.process = subprocess.Popen(self.args, env=env, stdin=subprocess.PIPE, **popen_kwargs())  # its own group on Windows: see ask_to_stop
        lower_child_priority(self.process.pid)  # a restart comes from the raised tick thread
        self._started_at = time.monotonic()
        log.info("child started", child=self.name, pid=self.process.pid)

    def check(self, now: float) -> None:
        """Restart the child if it died (non-blocking; call from the loop)."""
        if self._stopping or self.process is None:
            return
        code = self.process.poll()
        if code is None:
            if now - self._started_at > 60:
                self._backoff_s = _BACKOFF_START_S  # it stayed up: forget earlier crashes
            return
        if not self.restart:
            return
        if code == BAD_INPUT_EXIT:
            self.restart = False
            log.error("child refused its input (exit 2; its log says why); not restarted", child=self.name)
            return
        if self._restart_at == 0.0:
            self._restart_at = now + self._backoff_s
            log.warning("child exited", child=self.name, code=code, restart_in_s=self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
        elif now >= self._restart_at:
            self._restart_at = 0.0
            self.restarts += 1
            self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self._stopping = True
        if self.process is not None and not stop_child(self.process, timeout_s=_STOP_TIMEOUT_S, kill_wait_s=_STOP_TIMEOUT_S):
            log.warning("child did not stop in time; killed", child=self.name)
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:  # the child is gone: nothing to tell it
                pass
