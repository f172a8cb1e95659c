"""A daemon stopped by a signal says which in its last lines: a soak (2026-12-05) saw one stop 3 s after it
started and its log did not say why (another process had sent it SIGTERM)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from support import Endpoints, daemon_process, stop


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends a Windows process without running its handler")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_stop_line_names_the_signal(tmp_path: Path, sig: signal.Signals) -> None:
    eps = Endpoints()
    with daemon_process(eps, tmp_path, "--log-format", "json") as daemon:
        assert stop(daemon, sig) == 0
    lines = [line for line in (tmp_path / "daemon.log").read_text(encoding="utf-8").splitlines() if '"daemon stopping"' in line]
    assert len(lines) == 1 and f'"signal": "{sig.name}"' in lines[0], lines
