"""The first compile of the kernels happens in a child process: the daemon loads what the child compiled and never
holds the compiler's memory (a daemon that compiled in its own process kept ~100 MB more for its life:
bench/results/startup-*.json). Each test starts from an empty Numba cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from support import Endpoints, start, stop, wait_ready


@pytest.mark.timeout(400)
def test_a_first_start_compiles_in_a_child_and_the_daemon_loads_every_kernel(tmp_path: Path) -> None:
    eps = Endpoints()
    log_path = tmp_path / "daemon.log"
    cache = tmp_path / "numba"
    proc = start(["run", "--no-sidecar"], eps.env(tmp_path / "data", NUMBA_CACHE_DIR=str(cache)), log_path)
    try:
        wait_ready(eps.control, proc, log_path, timeout=300)
    finally:
        assert stop(proc) == 0
    lines = [orjson.loads(line) for line in log_path.read_bytes().splitlines() if line.startswith(b"{")]
    ready = [line for line in lines if line.get("event") == "signal kernels ready"]
    assert len(ready) == 1, lines
    assert ready[0]["cache_present_before"] is False
    assert ready[0]["child_compile_s"] > 0 and ready[0]["compiled_here"] == 0, ready[0]  # every kernel loaded, none compiled here
    assert not [line for line in lines if line.get("level") in ("warning", "error")], lines
    assert any(cache.rglob("*.nbi"))


@pytest.mark.timeout(400)
def test_a_child_that_overruns_is_killed_and_what_the_process_compiles_itself_is_counted(tmp_path: Path) -> None:
    """The fallback: a child compile that fails (here: overruns its time) is killed, leaving the calling process to
    compile, which :func:`compiled_here` (what the daemon logs) counts: one small kernel here, not all of them."""
    script = (
        "import psutil\n"
        "from quantumtrader.config import load_config\n"
        "from quantumtrader.features.cache import compiled_here, ensure_numba_cache_dir\n"
        "from quantumtrader.precompile import compile_in_child\n"
        f"cfg = load_config(environ={{'QT_DATA_DIR': {str(tmp_path / 'data')!r}}})\n"
        "ensure_numba_cache_dir(cfg.data_path)\n"
        "outcome = compile_in_child(cfg.features, cfg.signals, timeout_s=0.3)\n"
        "print('error:', outcome.error)\n"
        "print('children:', len(psutil.Process().children()))\n"
        "print('before:', compiled_here())\n"
        "from quantumtrader.models.learners import sigmoid\n"
        "sigmoid(0.5)\n"
        "print('compiled here:', compiled_here())\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QT_")}, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=360)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert out["error"] == "it took over 0.3 s" and out["children"] == "0"
    assert (out["before"], out["compiled here"]) == ("0", "1")
