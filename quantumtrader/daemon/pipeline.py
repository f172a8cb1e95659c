"""The signal stage of the daemon: ticks -> features -> ensemble -> signals on the feed and in the store.

Attached to the :class:`~quantumtrader.daemon.server.Daemon` through its hooks
(``on_ticks``, ``every_pass``, ``on_shutdown``, ``status_fields``, control
handlers). Per tick batch, on the loop's thread: arrays are filled from the
validated ticks, the feature kernel and the model kernel are called once
each (:class:`~quantumtrader.models.pipeline.SignalPipeline`, the same code
``qt-daemon evaluate`` replays), due signals are written to the store's journal
and *then* published, and the feature vectors are published last, so nothing
stands between a tick and its signal but the two kernels and one copy into
the journal's memory-mapped file.

Order of work per batch and why:
1. signals first: they are what apps act on (``receive_to_signal``);
2. the signal journal's append before their publication: a subscriber can
   never have seen a signal that a kill -9 takes out of the store; SQLite
   gets them from the writer thread after (store/journal.py);
3. feature vectors last: each symbol's latest at most every
   ``features.publish_interval_ms`` (``latest``, the default: a held vector
   goes out when its interval ends, see :mod:`~quantumtrader.daemon.conflate`),
   the latest per symbol of each batch (``per_batch``), per tick
   (``every_tick``), or not at all (``off``).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from quantumtrader.config import Config
from quantumtrader.daemon.conflate import Conflator
from quantumtrader.daemon.control import ControlError
from quantumtrader.daemon.server import Daemon
from quantumtrader.features.cache import cache_complete, compiled_here, ensure_numba_cache_dir, mark_cache_complete
from quantumtrader.features.names import FEATURE_NAMES
from quantumtrader.log import get_logger
from quantumtrader.metrics import LatencyRecorder, LogLimiter
from quantumtrader.precompile import compile_in_child
from quantumtrader.protocol import now_msc
from quantumtrader.store import Store
from quantumtrader.store.journal import JournalPaused

if TYPE_CHECKING:
    from quantumtrader.models.pipeline import Batch, Restored

log = get_logger("quantumtrader.signals")

#: The name the pipeline's state is saved under in the store's model_state table.
STATE_NAME = "pipeline"
#: A saved state that does not fit the settings at a start is kept under this prefix and its save time
#: ("pipeline.kept.1764930000000"), where no save overwrites it: a start with the settings it fits restores it.
KEPT_PREFIX = f"{STATE_NAME}.kept."
#: Most symbols whose latest prediction the periodic status line lists (the most recently signalled).
STATUS_SIGNALS = 20


class PipelineStage:
    """Owns the SignalPipeline and the Store for one daemon."""

    def __init__(self, daemon: Daemon, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.daemon = daemon
        self.config = config
        self._clock = clock
        self._publish_features = config.features.publish
        self._features_conflator = Conflator(config.features.publish_interval_ms / 1000.0)
        self.counters: Counter[str] = Counter()
        self._error_log = LogLimiter(config.daemon.reject_log_interval_s, clock)
        self.store_journal_hist = LatencyRecorder()  # ns per journal append (one per batch that emits)
        self.signal_batch_hist = LatencyRecorder()  # receive -> published, only batches that emitted
        histograms = daemon.metrics.histograms
        self._record_features = histograms["features"].record
        self._record_receive_to_signal = histograms["receive_to_signal"].record
        self.latest_signals: dict[str, dict[str, Any]] = {}
        self.warmup_s = 0.0
        self.restored: dict[str, Any] = {}
        # Numba fixes a kernel's cache directory when the kernel is decorated, i.e.
        # when its module is imported: so the directory first, then the import.
        cache_dir = ensure_numba_cache_dir(config.data_path)
        cached = cache_complete(cache_dir)  # not any *.nbi: a first start cut short leaves some (a review, 2026-12-05)
        child_s = None
        if not cached:  # the log line: else ~10 s of silence at a first start, which reads as a hang
            log.info("compiling the signal kernels in a child process (first start with this code: ~10 s, then cached)", numba_cache=str(cache_dir))
            child = compile_in_child(config.features, config.signals)  # not here: see precompile.py
            child_s = round(child.seconds, 3)
            if child.error is not None:
                log.warning("compiling in a child process failed; compiling here (the daemon keeps ~90 MiB more)", error=child.error, seconds=child_s)
        from quantumtrader.models.pipeline import SignalPipeline

        self.pipeline = SignalPipeline(config.features, config.signals)
        self.warmup_s = self.pipeline.warm_up()
        if not cache_complete(cache_dir):  # the child wrote it unless it failed (or a damaged cache was cleared)
            mark_cache_complete()
        here = compiled_here()  # overloads this process compiled, not loaded: 0 unless the child failed
        log.info("signal kernels ready", warmup_s=round(self.warmup_s, 3), child_compile_s=child_s, compiled_here=here, numba_cache=str(cache_dir), cache_present_before=cached)
        if here:
            log.warning("the daemon compiled kernels itself: it keeps the compiler's memory (~90 MiB) until it restarts", compiled_here=here)
        self.store = Store.from_config(config)
        self._restore()
        self.store.start()
        self._alloc(config.daemon.batch_max)
        self._next_save = clock() + config.store.save_interval_s
        self._next_insert = 0.0

    def _alloc(self, rows: int) -> None:
        self._sym = np.empty(rows, dtype=np.int32)
        self._bid = np.empty(rows)
        self._ask = np.empty(rows)
        self._volume = np.empty(rows)
        self._time = np.empty(rows, dtype=np.int64)
        self._clock_s = np.empty(rows)

    def _restore(self) -> None:
        loaded = self.store.load_state(STATE_NAME)
        if loaded is None:
            log.info("no saved model state; models start cold", store=str(self.store.path), migrated=self.store.migrated)
            return
        saved_msc, state = loaded
        restored = self.pipeline.restore(state)
        if not restored.whole:
            saved_msc, restored = self._set_aside(saved_msc, state, restored)
        self.restored = {**restored._asdict(), "saved_msc": saved_msc, "symbols": [s for s in self.pipeline.symbols if s]}
        log.info(
            "model state restored",
            features=restored.features,
            models=restored.models,
            symbols=len(self.restored["symbols"]),
            age_s=round((now_msc() - saved_msc) / 1000, 1),
        )

    def _set_aside(self, saved_msc: int, state: dict[str, Any], restored: Restored) -> tuple[int, Restored]:
        """The latest save does not fit these settings (another horizon, other feature windows): keep it where the
        next save cannot overwrite it, and resume from a kept one that fits whole if there is one (the settings it
        was saved with are back); else from what fits of the latest. Said at warning level either way."""
        kept_as = f"{KEPT_PREFIX}{saved_msc}"
        self.store.keep_state(STATE_NAME, kept_as)
        for name in self.store.state_names(KEPT_PREFIX):
            kept = self.store.load_state(name) if name != kept_as else None
            if kept is None:
                continue
            resumed = self.pipeline.restore(kept[1])
            if resumed.whole:
                self.store.move_state(name, STATE_NAME)  # the kept one is the current one again, no longer kept
                log.warning(
                    "saved model state does not fit these settings: kept; resuming from the one saved with them",
                    unfit=restored.unfit,
                    kept_as=kept_as,
                    resumed_from=name,
                )
                return kept[0], resumed
        restored = self.pipeline.restore(state)  # back to what fits of the latest (a kept one tried replaced it)
        log.warning(
            "saved model state does not fit these settings: what does not fit starts cold; the state is kept for a start with its settings",
            unfit=restored.unfit,
            kept_as=kept_as,
        )
        return saved_msc, restored

    def attach(self) -> None:
        d = self.daemon
        resumed = self.restored.get("symbols", [])
        d.symbols.update(resumed)
        if len(d.symbols) >= self.config.daemon.max_symbols:
            log.warning(
                "the saved model state holds as many symbols as daemon.max_symbols: ticks of any other symbol will be refused"
                " (too_many_symbols) unless daemon.max_symbols is raised",
                symbols=len(d.symbols),
                max_symbols=self.config.daemon.max_symbols,
            )
        d.on_ticks(self.on_ticks)
        d.every_pass(self.on_pass)
        if self._publish_features == "latest":
            d.next_deadline(self._features_conflator.next_deadline)
        d.on_shutdown(self.close)
        d.status_fields(self.status_line)
        d.health_problems(self.store_problems)
        d.control.register("features", self.control_features)
        d.control.register("signals", self.control_signals)

    # -- the tick path ---------------------------------------------------------------

    def on_ticks(self, ticks: list[dict[str, Any]], received_ns: int) -> None:
        n = len(ticks)
        if n > self._sym.shape[0]:
            self._alloc(n)
        sym, bid, ask, volume, stamp = self._sym[:n], self._bid[:n], self._ask[:n], self._volume[:n], self._time[:n]
        index_of = self.pipeline.index_of
        for i, tick in enumerate(ticks):
            sym[i] = index_of(tick["symbol"])
            bid[i] = tick["bid"]
            ask[i] = tick["ask"]
            volume[i] = tick["volume"]
            stamp[i] = tick["time_msc"]
        now = self._clock()
        clock_s = self._clock_s[:n]
        clock_s.fill(now)

        started = time.perf_counter_ns()
        features = self.pipeline.compute_features(sym, bid, ask, volume, stamp)
        self._record_features(time.perf_counter_ns() - started)
        batch = self.pipeline.decide(sym, bid, ask, features, clock_s)
        if batch.emitted.size:
            self._emit(batch, stamp, received_ns)
        self._record_receive_to_signal(time.perf_counter_ns() - received_ns)
        if self._publish_features != "off":
            self._publish(batch, stamp, now)

    def _emit(self, batch: Batch, stamp: np.ndarray, received_ns: int) -> None:
        # A signal's time is its tick's, but never past this machine's clock: a terminal whose clock runs ahead (broker
        # time sent as UTC, up to the day the protocol allows) stamped signals hours ahead, and the history, newest
        # first by time, kept them above every later one until the clock caught up (a hunt, 2026-12-06).
        now = now_msc()
        times = stamp[batch.emitted].tolist()  # one call, not a numpy scalar per row
        ahead = sum(t > now for t in times)
        if ahead:
            self.counters["signal_times_clamped"] += ahead
        signals = [self.pipeline.signal(batch, int(row), min(t, now)) for row, t in zip(batch.emitted, times, strict=True)]
        started = time.perf_counter_ns()
        bodies = [orjson.dumps(sig) for sig in signals]  # once: the journal and the feed embed these bytes
        rows = self.store.signals.rows(signals, bodies)
        try:
            self.store.journal.append(rows)
        except OSError as exc:  # a full disk must not silence the signals; counted, logged, still handed to SQLite
            self._journal_failed(exc, len(signals))
        else:
            self.store_journal_hist.record(time.perf_counter_ns() - started)  # appends that happened, not refusals
        publish = self.daemon.feed.publish
        for sig, body in zip(signals, bodies, strict=True):
            publish("signal", orjson.Fragment(body), sig["time_msc"], sig["symbol"], sig["timestamp"])
            self.latest_signals[sig["symbol"]] = sig
        self.signal_batch_hist.record(time.perf_counter_ns() - received_ns)
        # Off the latency path: SQLite (the writer thread, see on_pass) and auto-trading.
        self.store.queue_signals(rows)
        for sig in signals:
            for hook in self.daemon.signal_hooks:  # auto-trading acts only on what was published
                try:
                    hook(sig)
                except Exception as exc:  # an order journal on a full disk must not cost the batch's bookkeeping
                    self.daemon.internal_error("signal hook", exc)
        self.daemon.last_signal_msc = signals[-1]["time_msc"]
        self.counters["signals"] += len(signals)

    def _journal_failed(self, exc: OSError, n_signals: int) -> None:
        """Count a batch the journal did not take, and log it at most once per interval.

        ``store_errors`` counts failed appends (a journal file that could not be
        made: a full disk), ``store_journal_paused`` the
        batches refused during the pause that follows one (their signals are
        published, but only the writer's queue holds them until SQLite does:
        a kill -9 meanwhile loses them). The log line names the failure that
        started the pause, not the pause.
        """
        paused = isinstance(exc, JournalPaused)
        self.counters["store_journal_paused" if paused else "store_errors"] += 1
        self._error_log.log(
            "journal",
            log.error,
            "signal journal write failed; publishing anyway",
            error=repr(exc)[:300],
            signals=n_signals,
            store_errors=self.counters["store_errors"],
            store_journal_paused=self.counters["store_journal_paused"],
        )

    def _publish(self, batch: Batch, stamp: np.ndarray, now: float) -> None:
        """Feature vectors of the batch's rows as ``features.publish`` says (never ``off`` here)."""
        if self._publish_features == "every_tick":
            rows: list[int] = list(range(batch.sym_idx.shape[0]))
        else:  # the last row of each symbol in the batch
            last: dict[int, int] = {}
            for row, s in enumerate(batch.sym_idx.tolist()):
                last[s] = row
            if self._publish_features == "latest":  # and only if its interval has passed; else held for on_pass
                offer = self._features_conflator.offer
                rows = [row for s, row in last.items() if offer(s, now)]
            else:
                rows = sorted(last.values())
        publish = self.daemon.feed.publish
        symbols = self.pipeline.symbols
        for row in rows:
            symbol = symbols[int(batch.sym_idx[row])]
            time_msc = int(stamp[row])
            # NaN stays NaN; orjson writes it as null
            data = {"symbol": symbol, "time_msc": time_msc, "features": dict(zip(FEATURE_NAMES, batch.features[row].tolist()))}
            publish("features", data, time_msc, symbol)

    def _flush_features(self, now: float) -> None:
        """The held vectors whose interval has ended: the symbol's latest, from the feature engine."""
        ready = self._features_conflator.due(now)
        if not ready:
            return
        latest = self.latest_features([self.pipeline.symbols[s] for s in ready])
        for data in latest.values():
            self.daemon.feed.publish("features", data, data["time_msc"], data["symbol"])

    # -- periodic work and shutdown -----------------------------------------------------

    def on_pass(self, now: float) -> None:
        self.store.journal.prepare()  # page faults and file opening here, between batches, not in _emit
        if now >= self._features_conflator.next_deadline():
            self._flush_features(now)
        if now >= self._next_insert:
            self._next_insert = now + self.config.store.insert_interval_ms / 1000.0
            self.store.flush_signals()
        if now < self._next_save:
            return
        self._next_save = now + self.config.store.save_interval_s
        self.save_state()
        self.store.rotate_journal()
        self.store.checkpoint()
        self.store.apply_retention(now_msc())

    def save_state(self, *, final: bool = False) -> bool:
        """Copy the state on this thread (cheap, arrays) and let the writer thread serialize it."""
        started = time.perf_counter()
        snapshot = self.pipeline.snapshot()
        self.counters["state_snapshot_us"] = int((time.perf_counter() - started) * 1e6)
        queued = self.store.save_state(STATE_NAME, now_msc(), snapshot, final=final)
        self.counters["state_saves"] += int(queued)
        return queued

    def close(self) -> None:
        """Final save (waiting for room in the writer's queue), then drain the writer: what a clean stop leaves is the latest state."""
        self.save_state(final=True)
        finished = self.store.close()
        log.info("signal store closed", signals=self.counters["signals"], writer_finished=finished, writer=dict(self.store.writer.counters))

    # -- queries ------------------------------------------------------------------------

    def latest_features(self, symbols: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each symbol's feature vector after its latest tick since start-up.

        The vectors are the feature engine's own (its kernel keeps the latest
        row per symbol); their time is that of the symbol's latest quote, the
        tick that produced them. Symbols restored from a snapshot but not
        ticked yet have no quote and are left out.
        """
        quotes = self.daemon.market.quotes
        engine = self.pipeline.features
        out: dict[str, dict[str, Any]] = {}
        for name in self.pipeline.symbols:
            quote = quotes.get(name)
            if not name or quote is None or (symbols is not None and name not in symbols):
                continue
            out[name] = {"symbol": name, "time_msc": quote["time_msc"], "features": engine.latest(name)}
        return out

    def volatility(self, symbol: str) -> float | None:
        """The symbol's latest volatility_20 (std of tick returns), or None while warming up.

        Execution sizes default stops from it."""
        if self.pipeline.features.symbol_index(symbol) is None:
            return None
        return self.pipeline.features.latest(symbol)["volatility_20"]

    def control_features(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{"type":"features"[, "symbol": S]}`` -> the latest feature vector per symbol."""
        symbol = request.get("symbol")
        if symbol is not None and not isinstance(symbol, str):
            raise ControlError("symbol must be a string")
        latest = self.latest_features([symbol] if symbol else None)
        if symbol and symbol not in latest:
            raise ControlError(f"no features for {symbol!r} yet", status=404)
        return {"features": latest}

    def control_signals(self, request: dict[str, Any]) -> dict[str, Any]:
        """Latest signal per symbol, counters, and the signal-path histograms (for qt-bench and status).

        ``"reset_latency": true`` starts this stage's own histograms afresh after reading (as ``status``
        does the daemon's): qt-bench leaves its warm-up out of the figures this way.
        """
        reply: dict[str, Any] = {
            "latest": dict(self.latest_signals),
            "counters": dict(self.counters),
            "restored": self.restored,
            "warmup_s": round(self.warmup_s, 3),
            "latency": {
                "receive_to_signal_emitted": self.signal_batch_hist.summary(),
                "store_journal": self.store_journal_hist.summary(),
                "receive_to_signal": self.daemon.metrics.histograms["receive_to_signal"].summary(),
                "features": self.daemon.metrics.histograms["features"].summary(),
            },
            "store": {"path": str(self.store.path), "encrypted": self.store.encrypted, "writer": dict(self.store.writer.counters)},
        }
        if request.get("reset_latency") is True:
            self.signal_batch_hist.reset()
            self.store_journal_hist.reset()
        return reply

    def store_problems(self) -> list[str]:
        """The store's writer failing (a full disk, a damaged database): health says degraded, naming it. Before,
        every write logged its failure while health said healthy and journal files piled up."""
        writer = self.store.writer
        problems = [f"signal store: {kind} writes failing: {error}" for kind, error in sorted(writer.failing.items())]
        if self.store.key_problem:
            problems.append(f"signal store: {self.store.key_problem}")
        if writer.unsaved_signals:  # they exist nowhere else when the journal is paused by the same disk
            problems.append(f"signal store: {writer.unsaved_signals} signals held in memory after failed inserts, retried every second")
        return problems

    def status_line(self) -> dict[str, Any]:
        """Compact fields for the periodic status log line (the full picture is the ``signals`` query)."""
        fields: dict[str, Any] = {"signals": self.counters["signals"], "signal_symbols": len(self.latest_signals)}
        if not self.store.encrypted:  # with a store key the predictions are what must not reach the disk in clear, logs included
            # The most recent STATUS_SIGNALS symbols' only: all of them made a line of 74 KB every 5 s once a
            # terminal had streamed 4,096 symbols (1.3 GB of log a day); the count above says how many there are.
            latest = heapq.nlargest(STATUS_SIGNALS, self.latest_signals.values(), key=lambda sig: sig["time_msc"])
            fields["latest_signals"] = {sig["symbol"]: sig["prediction"] for sig in latest}
        return fields


def attach_signals(daemon: Daemon, config: Config) -> PipelineStage:
    """Build the stage (warm-up, store, restore) and hook it into ``daemon`` (already bound)."""
    stage = PipelineStage(daemon, config)
    stage.attach()
    return stage
