"""The first compile of the kernels happens in a child process: the daemon loads what the child compiled and never
holds the compiler's memory (a daemon that compiled in its own process kept ~100 MB more for its life:
bench/results/startup-*.json). Each test starts from an empty Numba cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import psutil
import pytest

from support import Endpoints, start, stop, wait_for, wait_ready


def _partial_cache(tmp_path: Path) -> Path:
    """A cache as a first start cut short leaves it (a review, 2026-12-05: the next start then compiled the rest in
    the daemon, 252 MB): this session's feature kernels, not the models', no completion marker. Empty when this
    worker has compiled nothing yet, which is a cold cache: the child compiles whatever is missing either way."""
    from quantumtrader.features.cache import COMPLETE_MARKER, numba_cache_path

    cache = tmp_path / "numba"
    keyed = numba_cache_path(tmp_path)
    shutil.copytree(Path(os.environ["NUMBA_CACHE_DIR"]), cache / keyed.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("models_*", COMPLETE_MARKER))
    return cache


@pytest.mark.timeout(400)
def test_a_first_start_compiles_in_a_child_and_the_daemon_loads_every_kernel(tmp_path: Path) -> None:
    from quantumtrader.features.cache import COMPLETE_MARKER

    eps = Endpoints()
    log_path = tmp_path / "daemon.log"
    cache = _partial_cache(tmp_path)
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
    # none about the kernels (a host that refuses the raised tick priority warns of that, which is not ours here)
    kernels = [line for line in lines if line.get("level") in ("warning", "error") and ("compil" in line["event"] or "Numba" in line["event"])]
    assert kernels == [], kernels
    assert any(cache.rglob("*.nbi")) and any(cache.rglob(COMPLETE_MARKER))


@pytest.mark.timeout(120)
def test_a_compiling_child_does_not_outlive_a_daemon_that_is_killed(tmp_path: Path) -> None:
    """A review (2026-12-05): SIGTERM to the daemon during the child compile (a service manager stopping it; on
    Windows TerminateProcess) left the child compiling on its own for ~10 s, racing the next start."""
    eps = Endpoints()
    log_path = tmp_path / "daemon.log"
    proc = start(["run", "--no-sidecar"], eps.env(tmp_path / "data", NUMBA_CACHE_DIR=str(tmp_path / "numba")), log_path)
    try:
        wait_for(lambda: b"compiling the signal kernels in a child process" in log_path.read_bytes(), 60, "the child compile to start")
        child = wait_for(lambda: next(iter(psutil.Process(proc.pid).children()), None), 10, "the compiling child")
        proc.kill()  # no clean-up at all: SIGKILL here, TerminateProcess on Windows
        proc.wait(10)
        gone, _ = psutil.wait_procs([child], timeout=10)
        assert gone, f"the compiling child {child.pid} outlived its daemon"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


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


@pytest.mark.skipif(not Path("/bin/true").exists(), reason="needs a program that exits at once")
def test_a_child_that_dies_before_it_reads_its_settings_is_an_error_not_a_failed_start(monkeypatch) -> None:
    """A review (2026-12-05): closing the pipe to a child that had died flushed the unread settings again, and the
    second broken pipe escaped: a daemon whose interpreter could not start the child failed its own start."""
    import pickle
    import time

    from quantumtrader import precompile
    from quantumtrader.config import Config

    real_dumps = pickle.dumps
    monkeypatch.setattr(precompile.sys, "executable", "/bin/true")  # exits before it reads anything
    # small enough to stay in the pipe's buffer until the flush, which is after the child is gone
    monkeypatch.setattr(precompile.pickle, "dumps", lambda value: (time.sleep(0.5), real_dumps(value))[1])
    cfg = Config()
    outcome = precompile.compile_in_child(cfg.features, cfg.signals, timeout_s=10)
    assert outcome.error is not None, outcome


def test_the_completion_marker_holds_for_these_source_files_only(tmp_path: Path, monkeypatch) -> None:
    """A review (2026-12-05): the marker said "complete" after a reinstall that rewrote the kernel sources with new
    time stamps, which Numba checks: the child was skipped and the daemon compiled itself."""
    from quantumtrader.features import cache

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not cache.cache_complete(tmp_path)
    cache.mark_cache_complete()
    assert cache.cache_complete(tmp_path)
    monkeypatch.setattr(cache, "sources_stamp", lambda: "features/kernel.py 1 2")  # as after a reinstall
    assert not cache.cache_complete(tmp_path)  # a source file's stamp changed
    (tmp_path / cache.COMPLETE_MARKER).write_bytes(b"\xff\xfe")
    assert not cache.cache_complete(tmp_path)  # unreadable: not complete, no traceback
