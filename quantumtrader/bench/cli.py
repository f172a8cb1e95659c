"""``qt-bench``: each scenario drives real processes over real sockets and reports against a baseline.

Scenario functions live one per module (pipeline, trade, startup, features,
ws, host, journal); this module only parses options and calls them.
"""

from __future__ import annotations

import importlib.util
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from quantumtrader.bench.sender import MAX_RUN_TICKS
from quantumtrader.config import DaemonConfig
from quantumtrader.outputs import PLOT_SUFFIXES, clash_problem, output_dir_problem, output_file_problem

if TYPE_CHECKING:
    from quantumtrader.paper.ticks import SourceTick

app = typer.Typer(name="qt-bench", help="QuantumTrader benchmarks: latency and throughput against baselines, one run.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

def _checked(problem_of: Callable[[Path], str | None]) -> Callable[[Path | None], Path | None]:
    """A typer callback: the output path checked before the scenario runs (minutes), not when its result is written."""

    def check(path: Path | None) -> Path | None:
        problem = None if path is None else problem_of(path)
        if problem is not None:
            raise typer.BadParameter(problem)
        return path

    return check


def _missing_modules(*names: str) -> list[str]:
    """Which of the importable ``names`` this Python lacks: asked before a run that needs them, not after it."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def _plot_problem(path: Path) -> str | None:
    """``--plot``: a name matplotlib can write, and matplotlib itself (without it the plot failed after the whole run)."""
    problem = output_file_problem(path, PLOT_SUFFIXES)
    if problem is None and _missing_modules("matplotlib"):
        problem = "--plot needs matplotlib: pip install 'quantumtrader[bench]'"
    return problem


JsonOpt = Annotated[Optional[Path], typer.Option("--json", callback=_checked(output_file_problem), help="Write every figure and the machine to this JSON file.")]


def _plot_option(what: str) -> Any:
    """``--plot``, checked as every scenario's is (:func:`_plot_problem`); ``what``: the figure it draws."""
    return Annotated[Optional[Path], typer.Option("--plot", callback=_checked(_plot_problem), help=f"Write {what} (PNG, or .svg/.pdf; needs matplotlib).")]


PlotOpt = _plot_option("a latency percentile plot")
TradePlotOpt = _plot_option("the round trips by percentile: the client's from its samples, the daemon's REQ -> REP from its histogram's percentiles")
FeaturesPlotOpt = _plot_option("ns/tick per kernel and baseline as bars, log scale")
WsPlotOpt = _plot_option("tick -> client latency by percentile per phase, and the daemon's ticks/s without and with the clients")
TicksOpt = Annotated[Optional[Path], typer.Option("--ticks", help="Real ticks to replay (CSV as in ../shared/data/ticks), each symbol from its own point in the file; default ../shared/data/ticks/EURUSD.csv.gz when present, else a seeded random walk per symbol.")]
SymbolsOpt = Annotated[int, typer.Option("--symbols", min=1, max=DaemonConfig().max_symbols, help="How many symbols the ticks are spread over (at most daemon.max_symbols' default).")]
DurationOpt = Annotated[float, typer.Option("--duration", min=1.0, max=86_400.0, help="Measured seconds (after warm-up).")]


#: What the scenarios that replay a file without --ticks say when ../shared is not beside the repository.
_NO_DEFAULT_TICKS = "../shared/data/ticks/EURUSD.csv.gz was not found"


def _default_ticks() -> Path | None:
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ticks" / "EURUSD.csv.gz"
    return candidate if candidate.is_file() else None


def _first_tick(given: Path) -> SourceTick:
    """``--ticks`` checked before anything starts (a bad file failed in the sender, after a minute's wait): its first tick."""
    from quantumtrader.paper.ticks import check_tick_file

    try:
        return check_tick_file(given)  # a header alone, or no row the reader accepts, is no tick file either
    except (ValueError, OSError) as exc:  # TickFileError is a ValueError
        raise typer.BadParameter(str(exc), param_hint="--ticks") from None


def _no_clash(ticks: Path | None, **outputs: Path | None) -> None:
    """``--json``/``--plot`` neither the ``--ticks`` file nor one another (checked before the run, exit 2)."""
    problem = clash_problem({f"--{name}": path for name, path in outputs.items()}, [] if ticks is None else [ticks])
    if problem is not None:
        raise typer.BadParameter(problem)


def _tick_file(given: Path | None) -> Path | None:
    """``--ticks`` checked (:func:`_first_tick`), else the default tick file."""
    if given is None:
        return _default_ticks()
    _first_tick(given)
    return given


@app.command()
def pipeline(
    rate: Annotated[float, typer.Option("--rate", min=1.0, max=1_000_000.0, help=f"Ticks per second for the latency runs (times --duration and the warm-up: at most {MAX_RUN_TICKS:,} ticks).")] = 10_000,
    symbols: SymbolsOpt = 50,
    duration_s: DurationOpt = 10.0,
    throughput_ticks: Annotated[int, typer.Option("--throughput-ticks", min=1000, max=MAX_RUN_TICKS, help="Ticks for the as-fast-as-possible runs of the daemon and of the floor (how fast a backlog drains).")] = 300_000,
    sustain_s: Annotated[float, typer.Option("--sustain", min=0.5, max=600.0, help="Seconds of each paced run that looks for the highest rate the daemon keeps up with, and then the floor (from 0.9x the flat-out rate, down by 0.8x or up by 1.1x, at most 5 tries each).")] = 3.0,
    ticks: TicksOpt = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Independent runs; above 1 the JSON and the console add, per target, min/median/max over the runs and in how many it was met.")] = 1,
    settings: Annotated[Optional[list[str]], typer.Option("--set", help="A daemon setting for these runs, SECTION.KEY=VALUE as in the config file (e.g. daemon.busy_poll_us=0); repeatable. Recorded in the JSON.")] = None,
    json: JsonOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Sender process -> daemon -> SUB receiver, against a PUSH->PUB relay (the transport floor)."""
    from quantumtrader.bench.pipeline import WARMUP_S, daemon_settings, paced_ticks, run_pipeline_bench, symbols_problem
    from quantumtrader.paper.ticks import TickFileError

    n_ticks = paced_ticks(rate, duration_s)
    if n_ticks > MAX_RUN_TICKS:
        raise typer.BadParameter(
            f"{rate:g} ticks/s over {duration_s:g} s and {WARMUP_S:g} s of warm-up is {n_ticks:,} ticks in one run; at most {MAX_RUN_TICKS:,} (each is held in memory)",
            param_hint="--rate x --duration",
        )
    try:
        daemon_env = daemon_settings(settings or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None
    if problem := symbols_problem(daemon_env, symbols):
        raise typer.BadParameter(problem, param_hint="--set / --symbols")
    csv = _tick_file(ticks)
    _no_clash(csv, json=json, plot=plot)
    try:  # the file is read whole before anything starts (tick_series): a bad one is this usage error
        run_pipeline_bench(rate=rate, symbols=symbols, duration_s=duration_s, throughput_ticks=throughput_ticks, sustain_s=sustain_s, ticks_csv=csv, repeat=repeat, daemon_env=daemon_env, json_out=json, plot_out=plot)
    except TickFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ticks") from None


def _check_trade_ticks(ticks: Path | None) -> None:
    """``trade --ticks``: a tick file of the symbol the orders trade (another symbol had no quote, after 30 s)."""
    if ticks is not None:
        symbol = _first_tick(ticks).symbol
        if symbol != "EURUSD":
            raise typer.BadParameter(f"{ticks}: the orders trade EURUSD, this file is {symbol}", param_hint="--ticks")


@app.command()
def trade(
    orders: Annotated[int, typer.Option("--orders", min=1, max=1_000_000, help="Market orders to send one after another (and two before them, an open and its close, not counted: the first connects the daemon to the terminal).")] = 500,
    tick_rate: Annotated[float, typer.Option("--tick-rate", min=1.0, max=1_000_000.0, help="Ticks/s the paper terminal streams meanwhile.")] = 2000,
    ticks: Annotated[Optional[Path], typer.Option("--ticks", help="Real EURUSD ticks (CSV as in ../shared/data/ticks) for the paper terminal to replay at --tick-rate, once: they must last the run; default its generator.")] = None,
    json: JsonOpt = None,
    plot: TradePlotOpt = None,
) -> None:
    """Control -> daemon -> terminal -> reply round trip, and the tick path while orders are in flight."""
    from quantumtrader.bench.trade import run_trade_bench

    _no_clash(ticks, json=json, plot=plot)
    _check_trade_ticks(ticks)
    run_trade_bench(orders=orders, tick_rate=tick_rate, ticks_csv=ticks, json_out=json, plot_out=plot)


@app.command()
def startup(symbols: SymbolsOpt = 100, json: JsonOpt = None) -> None:
    """Cold and warm-cache start to a daemon that answers; RSS after N symbols."""
    from quantumtrader.bench.startup import run_startup_bench

    run_startup_bench(symbols=symbols, json_out=json)


@app.command()
def features(
    ticks: TicksOpt = None,
    n_ticks: Annotated[int, typer.Option("--n-ticks", min=20_000, max=100_000_000, help="How many real ticks to run through each implementation (the baselines need 20,000 at least).")] = 200_000,
    json: JsonOpt = None,
    plot: FeaturesPlotOpt = None,
) -> None:
    """Feature kernel ns/tick against TA-Lib stream, talipp and the pandas recompute of the system we replace."""
    from quantumtrader.config import ConfigError, load_config
    from quantumtrader.features.cache import ensure_numba_cache_dir

    path = _tick_file(ticks)
    _no_clash(path, json=json, plot=plot)
    if path is None:
        raise typer.BadParameter(f"no tick file: pass --ticks ({_NO_DEFAULT_TICKS})")
    from quantumtrader.bench.features import BASELINE_MODULES

    if missing := _missing_modules(*BASELINE_MODULES):  # before the timings, not a traceback at the first missing one
        raise typer.BadParameter(f"the baselines need {', '.join(missing)}: pip install 'quantumtrader[bench]'")
    try:  # the kernels run in this process: the daemon's keyed cache, before they import
        ensure_numba_cache_dir(load_config().data_path)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="QT_* environment") from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot create the Numba cache in the data directory: {exc}", param_hint="QT_DATA_DIR") from None
    from quantumtrader.bench.features import TooFewTicks, run_features_bench
    from quantumtrader.paper.ticks import TickFileError

    try:
        run_features_bench(path, n_ticks, json, plot_out=plot)
    except (TooFewTicks, TickFileError) as exc:  # found reading it (a truncated gzip: TickFileError), before any timing
        raise typer.BadParameter(str(exc), param_hint="--ticks") from None


@app.command()
def ws(
    clients: Annotated[int, typer.Option("--clients", min=1, max=100_000, help="WebSocket clients.")] = 500,
    tick_rate: Annotated[float, typer.Option("--tick-rate", min=1.0, max=1_000_000.0, help="Ticks/s the paper terminal streams.")] = 2000,
    symbols: Annotated[int, typer.Option("--symbols", min=1, max=20, help="Symbols the paper terminal streams (its 20 well-known ones at most).")] = 20,
    duration_s: Annotated[float, typer.Option("--duration", min=2.0, max=86_400.0, help="Measured seconds.")] = 20.0,
    ticks: Annotated[Optional[Path], typer.Option("--ticks", help="Real ticks (CSV as in ../shared/data/ticks) for the paper terminal to replay at --tick-rate as --symbols symbols, each a stretch of the file (the file must hold enough for the run); default its generator.")] = None,
    max_updates_per_s: Annotated[
        Optional[float],
        typer.Option("--max-updates-per-s", min=0.1, max=1_000_000.0, help="The sidecar's price throttle per symbol (sidecar.max_updates_per_s); default the sidecar's default. High: no quote is held, so what is left is delivery."),
    ] = None,
    json: JsonOpt = None,
    plot: WsPlotOpt = None,
) -> None:
    """Through the sidecar to N WebSocket clients: tick -> client latency, starvation, a stuck client."""
    from quantumtrader.bench.ws import report_path, run_ws_bench
    from quantumtrader.paper.ticks import TickFileError

    report = None if json is None else report_path(json)
    if report is not None:  # checked as --json is: it was written after the run, unchecked
        if report == json:
            raise typer.BadParameter(f"{json}: the markdown report is written beside the JSON as {report.name}; give the JSON another name (.json)", param_hint="--json")
        if problem := output_file_problem(report):
            raise typer.BadParameter(f"the markdown report beside it: {problem}", param_hint="--json")
    _no_clash(ticks, json=json, report=report, plot=plot)
    if ticks is not None:
        _first_tick(ticks)
    try:
        run_ws_bench(clients=clients, ticks_per_s=tick_rate, symbols=symbols, duration_s=duration_s, ticks_csv=ticks, max_updates_per_s=max_updates_per_s, json_out=json, plot_out=plot)
    except TickFileError as exc:  # too few ticks to spread over --symbols: found before anything starts
        raise typer.BadParameter(str(exc), param_hint="--ticks") from None


@app.command()
def host(
    samples: Annotated[int, typer.Option("--samples", min=10, max=10_000, help="Samples per step, pause and mode.")] = 400,
    json: JsonOpt = None,
) -> None:
    """What a 100 µs or 5 ms pause costs the next small step, sleeping vs spinning (a hint whether daemon.busy_poll_us pays here), and a feed publication, against one right after another."""
    from quantumtrader.bench.host import run_host_bench

    run_host_bench(samples=samples, json_out=json)


@app.command()
def journal(
    batches: Annotated[int, typer.Option("--batches", min=100, max=1_000_000, help="Emitting batches appended each way.")] = 10_000,
    signals_per_batch: Annotated[int, typer.Option("--signals-per-batch", min=1, max=1000, help="Signals in each batch.")] = 1,
    pause_us: Annotated[float, typer.Option("--pause-us", min=0, max=100_000, help="µs spent spinning between batches (100: ticks at 10,000/s).")] = 100.0,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Where the files go (a temporary directory inside it): the daemon's data directory measures its disk; default the system's temporary directory.")] = None,
    json: JsonOpt = None,
) -> None:
    """The signal journal's append (a copy into a memory-mapped file) against one os.write a batch, alternating."""
    from quantumtrader.bench.journal import run_journal_bench

    if directory is not None and not directory.is_dir():
        raise typer.BadParameter(f"not a directory: {directory}", param_hint="--dir")
    run_journal_bench(batches=batches, signals_per_batch=signals_per_batch, pause_us=pause_us, directory=directory, json_out=json)


@app.command("all")
def all_scenarios(
    out_dir: Annotated[Optional[Path], typer.Option("--out", callback=_checked(output_dir_problem), help="Directory for one JSON per scenario (default: qt-bench-results/<UTC time>, never the committed bench/results).")] = None,
    ticks: Annotated[
        Optional[Path],
        typer.Option("--ticks", help="Real ticks for every scenario that replays them (features, pipeline, trade, ws; trade needs EURUSD); default ../shared/data/ticks/EURUSD.csv.gz for features and pipeline, else features is skipped and the others use generated ticks."),
    ] = None,
) -> None:
    """Every scenario with its defaults, results under --out."""
    if out_dir is None:
        from datetime import datetime, timezone

        out_dir = Path("qt-bench-results") / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if ticks is not None:  # every check of the file before the first scenario, not when the fourth one reads it
        _check_trade_ticks(ticks)  # reads its first tick, which checks it
    typer.echo(f"results under {out_dir}")
    replayed = ticks or _default_ticks()
    if replayed is None:
        typer.echo(f"no tick file ({_NO_DEFAULT_TICKS}; --ticks names one): features is skipped, the other scenarios use generated ticks")
    runs: list[tuple[str, Any]] = [
        # keywords: a new option in the middle of a command's signature must not shift these
        ("features", None if replayed is None else lambda: features(ticks=ticks, n_ticks=200_000, json=out_dir / "features.json", plot=out_dir / "features.png")),
        ("pipeline", lambda: pipeline(rate=10_000, symbols=50, duration_s=10.0, throughput_ticks=300_000, sustain_s=3.0, ticks=ticks, repeat=1, settings=None, json=out_dir / "pipeline.json", plot=out_dir / "pipeline.png")),
        ("trade", lambda: trade(orders=500, tick_rate=2000, ticks=ticks, json=out_dir / "trade.json", plot=out_dir / "trade.png")),
        ("startup", lambda: startup(symbols=100, json=out_dir / "startup.json")),
        ("ws", lambda: ws(clients=500, tick_rate=2000, symbols=20, duration_s=20.0, ticks=ticks, json=out_dir / "ws.json", plot=out_dir / "ws.png")),
        ("host", lambda: host(samples=400, json=out_dir / "cold-caches.json")),
        ("journal", lambda: journal(batches=10_000, signals_per_batch=1, pause_us=100.0, directory=None, json=out_dir / "journal.json")),
    ]
    for name, run in runs:
        typer.echo(f"== {name}" if run is not None else f"== {name}: skipped (no tick file)")
        if run is not None:
            run()


#: The signals that end a run from outside besides Ctrl-C: a supervisor's or ``kill``'s SIGTERM, a closed terminal's
#: SIGHUP (POSIX), a console's Ctrl-Break (Windows). Those a platform lacks are left out.
_STOP_SIGNALS = tuple(sig for sig in (getattr(signal, name, None) for name in ("SIGTERM", "SIGHUP", "SIGBREAK")) if sig is not None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def interrupt_on_stop_signals() -> None:
    """Each of :data:`_STOP_SIGNALS` raises KeyboardInterrupt in the main thread, as Ctrl-C does.

    Why: their default ends the process at once, so no scenario's ``finally``
    ran; the daemon, paper terminal and sidecar it had started kept running with
    their ports, and its temporary directories stayed (a review, 2026-12-06:
    SIGTERM during ``qt-bench pipeline`` left its daemon listening)."""
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:  # one ignored on purpose (nohup's SIGHUP) stays ignored
            signal.signal(sig, _interrupt)


def main() -> None:
    """The app; a result file that cannot be written after a run (its figures are on the console by then) is named
    with the reason, exit 1, not a traceback."""
    from quantumtrader.outputs import UnwrittenOutput

    interrupt_on_stop_signals()
    try:
        app()
    except UnwrittenOutput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
