"""``qt-daemon run``: build the daemon from a config, start its children, serve, stop in order."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq

from quantumtrader.config import BAD_INPUT_EXIT, Config, remote_endpoints
from quantumtrader.daemon.disk import DiskSpaceWatch
from quantumtrader.daemon.server import Daemon
from quantumtrader.daemon.supervisor import Child
from quantumtrader.execution.auto import AutoTrader
from quantumtrader.execution.engine import ExecutionEngine
from quantumtrader.log import get_logger
from quantumtrader.gc_tuning import tune_gc
from quantumtrader.priority import raise_thread_priority
from quantumtrader.shutdown import install_stop_handlers
from quantumtrader.store.db import StateFileError
from quantumtrader.store.lock import DataDirBusy, DataDirLock

log = get_logger("quantumtrader.daemon")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    paper: bool = False
    sidecar: bool = True
    config_path: Path | None = None
    tick_files: tuple[Path, ...] = ()


def _child_args(config: Config, options: RunOptions) -> list[str]:
    """Options every child needs to see the same configuration as the daemon."""
    args = ["--data-dir", config.data_dir, "--log-format", config.log.format, "--log-level", config.log.level]
    if options.config_path is not None:
        args += ["--config", str(options.config_path)]
    return args


def build_daemon(config: Config) -> Daemon:
    """The daemon, bound, with every subsystem attached. Raises zmq.ZMQError when a port is taken."""
    daemon = Daemon(config)
    daemon.bind()
    try:
        execution = ExecutionEngine(config, daemon)
    except Exception:
        daemon.close()
        raise
    execution.attach()
    try:
        from quantumtrader.daemon.pipeline import attach_signals

        stage = attach_signals(daemon, config)  # warms the kernels up and restores the models before serving
    except Exception:
        daemon.close()
        raise
    execution.set_volatility_source(stage.volatility)
    DiskSpaceWatch(config.data_path, config.store.low_disk_mb).attach(daemon)
    # Shutdown hooks run last-registered first: orders in flight get their stop wait before the store's final
    # save and drain, not after them (the review of the change saw a requester wait for both).
    daemon.on_shutdown(execution.close)
    if config.auto_trade.enabled:
        AutoTrader(config.auto_trade, execution, daemon).attach()
    return daemon


def run_daemon(config: Config, options: RunOptions) -> int:
    """Serve until Ctrl-C/SIGTERM. Returns the process exit code."""
    config.data_path.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(config.data_path)  # before the store is touched; the OS drops it when the process ends, however it ends
    try:
        lock.acquire()
        try:
            return _serve(config, options)
        finally:
            lock.release()
    except DataDirBusy as exc:
        log.error("cannot start", error=str(exc))
        return 1
    except StateFileError as exc:  # the daemon's own files, damaged: said, and nothing in them touched
        log.error("cannot start", error=str(exc))
        return BAD_INPUT_EXIT


def _serve(config: Config, options: RunOptions) -> int:
    """Build, start the children, serve until stopped; the data directory's lock is held by the caller."""
    try:
        daemon = build_daemon(config)
    except zmq.ZMQError as exc:
        log.error(
            "cannot bind",
            error=str(exc),
            endpoints=[config.endpoints.events, config.endpoints.feed, config.endpoints.control],
            hint="another qt-daemon on these ports (its data directory is another)? give this one others: endpoints.events/feed/control (QT_ENDPOINTS__EVENTS, __FEED, __CONTROL)",
        )
        return 1
    children: list[Child] = []
    if options.paper:
        paper_args = ["paper", *_child_args(config, options)]
        for path in options.tick_files:
            paper_args += ["--ticks", str(path)]
        children.append(Child("paper", paper_args, env=dict(os.environ)))
    if options.sidecar:
        # Its own process, so WebSocket fan-out and HTTP never jitter the tick path; restarted with backoff if it dies.
        children.append(Child("sidecar", ["sidecar", *_child_args(config, options)], env=dict(os.environ)))
    for child in children:
        child.start()
        daemon.every_pass(child.check)
    install_stop_handlers(daemon.stop)
    tune_gc()
    # Last, on the loop's own thread: the I/O and writer threads started above keep the normal priority.
    daemon.tick_priority = raise_thread_priority(config.daemon.tick_priority)
    (log.info if daemon.tick_priority.applied else log.warning)("tick thread priority", **daemon.tick_priority.to_json())
    log.info(
        "QuantumTrader running",
        events=config.endpoints.events,
        feed=config.endpoints.feed,
        control=config.endpoints.control,
        data_dir=str(config.data_path),
        paper=options.paper,
        hint="Ctrl-C to stop",
    )
    for name, bound, risk in remote_endpoints(config.endpoints):  # only with endpoints.allow_remote (config.py)
        log.warning("an endpoint binds beyond this machine, without authentication", setting=f"endpoints.{name}", endpoint=bound, risk=risk)
    try:
        daemon.run()
    finally:
        for child in reversed(children):
            child.stop()
    log.info("QuantumTrader stopped")
    return 0
