"""``qt-daemon``: each command builds one Config and calls one ``run``.

Options shared by several commands are declared once, as ``Annotated``
aliases below, so a flag cannot drift between commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from quantumtrader.config import BAD_INPUT_EXIT, Config, ConfigError, check_listeners, load_config, render_toml
from quantumtrader.outputs import PLOT_SUFFIXES, clash_problem, keep_files_private, output_file_problem, shared_data_dir
from quantumtrader.protocol import CONTROL_TIMEOUT_MAX_MS, ORDERS_LIMIT_MAX, ProtocolError, check_symbol, order_side

if TYPE_CHECKING:
    from quantumtrader.sidecar.users import UserError, UserStore

app = typer.Typer(
    name="qt-daemon",
    help="QuantumTrader: MetaTrader terminals over ZeroMQ, features and signals in microseconds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show or write the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="TOML config file (every key optional; see `qt-daemon config init`).", envvar="QT_CONFIG"),
]
DataDirOpt = Annotated[
    Optional[str], typer.Option("--data-dir", help="Data directory (store, users, secret, Numba cache). Env: QT_DATA_DIR.")
]
LogFormatOpt = Annotated[Optional[str], typer.Option("--log-format", help="auto, console or json.")]
LogLevelOpt = Annotated[Optional[str], typer.Option("--log-level", help="debug, info, warning or error.")]
TicksOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--ticks", help="CSV of ticks to replay (time,bid,ask[,volume], gzip or plain); repeat for several symbols."),
]
SpeedOpt = Annotated[Optional[float], typer.Option("--speed", help="Replay speed: 1 = real time, 0 = as fast as possible.")]


#: Tries of a control request from the CLI (Lazy Pirate: the same id each time), each of --timeout-ms.
CLI_CONTROL_TRIES = 3


def _timeout_option(help: str) -> Any:
    """``--timeout-ms`` of the commands that ask a running daemon: bounded by the option parser, so a value
    the wait cannot take (2^31 ms raised OverflowError in pyzmq's poll) is refused before anything is sent."""
    # per try, and said so: the help said "how long to wait" and a command waited three times that (a hunt, 2026-12-05)
    return typer.Option("--timeout-ms", min=1, max=CONTROL_TIMEOUT_MAX_MS, help=f"{help}, per try: {CLI_CONTROL_TRIES} tries, the same request each (at most {CONTROL_TIMEOUT_MAX_MS} ms a try, an hour).")


def _fail(message: str, code: int = BAD_INPUT_EXIT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def build_config(
    config_path: Path | None,
    *,
    data_dir: str | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
    overrides: dict[str, Any] | None = None,
    configure_log: bool = True,
    make_data_dir: bool = False,
    log_file: str | None = None,
) -> Config:
    """Resolve the config once; a bad value exits 2 with the key named.

    ``make_data_dir``: the command writes there (store, users, Numba cache), so
    a directory that cannot be created is the same clear exit 2, not a traceback
    from whichever part touches it first. ``log_file``: the long-running
    process's name, whose lines also go to its file in ``log.dir``.
    """
    merged = {"data_dir": data_dir, "log.format": log_format, "log.level": log_level, **(overrides or {})}
    try:
        config = load_config(config_path, overrides=merged)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if make_data_dir:
        try:
            config.data_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(f"data_dir: cannot create {config.data_path}: {exc.strerror or exc}") from None
    if configure_log:
        _configure_log(config, log_file)
    return config


def _say_if_shared(config: Config) -> None:
    """A data directory other accounts may enter (one made before umask 077, or shared on purpose): said, not changed."""
    mode = shared_data_dir(config.data_path)
    if mode is not None:
        from quantumtrader.log import get_logger

        get_logger("quantumtrader").warning(
            "the data directory is open to other accounts of this machine: the order journal, the signals and the logs in it too",
            data_dir=str(config.data_path),
            mode=mode,
            hint=f"chmod 700 {config.data_path}",
        )


def _check_children(config: Config, *children: str) -> None:
    """The ports of the children this command starts or is ("paper", "sidecar") against the daemon's: exit 2 naming the key."""
    try:
        check_listeners(config, children)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _configure_log(config: Config, log_file: str | None) -> None:
    """Logging as ``config.log`` says; ``log_file``: also to that process's file in ``log.dir``.

    A file that cannot be opened is said on stderr and the process logs there only: a review saw the paper
    terminal, which needs nothing of the data directory, refuse to start over it (2026-12-05), and the
    daemon's own files are judged by the parts that write them (the store, the lock)."""
    from quantumtrader.log import LogFileError, configure_logging, open_log_file

    path = None if log_file is None else config.log_path(log_file)
    handler = None
    if path is not None:
        try:
            handler = open_log_file(path, config.log.rotate_mb, config.log.keep)
        except LogFileError as exc:
            typer.echo(f"warning: log.dir: {exc}; logging to stderr only", err=True)
    configure_logging(config.log.format, config.log.level, file=handler)


@app.command()
def run(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
    paper: Annotated[bool, typer.Option("--paper", help="Also start a paper terminal, so it runs without MetaTrader.")] = False,
    no_sidecar: Annotated[bool, typer.Option("--no-sidecar", help="Do not start the REST/WebSocket sidecar.")] = False,
    ticks: TicksOpt = None,
) -> None:
    """Run the daemon (and with --paper a paper terminal streaming to it)."""
    if ticks and not paper:  # the files were ignored without a word: a daemon waiting for a terminal that never comes
        raise _fail("--ticks needs --paper: the files are replayed by the paper terminal")
    keep_files_private()  # before the data directory is made: the children started later inherit it
    cfg = build_config(config, data_dir=data_dir, log_format=log_format, log_level=log_level, make_data_dir=True, log_file="daemon")
    _say_if_shared(cfg)
    _check_children(cfg, *(("paper",) if paper else ()), *(() if no_sidecar else ("sidecar",)))
    _check_numba_cache(cfg)
    _check_files(ticks)
    _check_store_key(cfg)
    if not no_sidecar:
        _signing_secret(cfg)  # else the sidecar child fails at start-up and is restarted forever
    from quantumtrader.daemon.app import RunOptions, run_daemon  # after the checks: a refusal comes at once

    options = RunOptions(paper=paper, sidecar=not no_sidecar, config_path=config, tick_files=tuple(ticks or ()))
    raise typer.Exit(run_daemon(cfg, options))


@app.command("paper")
def paper_command(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
    ticks: TicksOpt = None,
    speed: SpeedOpt = None,
    rate: Annotated[
        Optional[float],
        typer.Option("--rate", min=0.0, help="Generator ticks/s over all symbols (0 = as fast as possible); with --ticks (and > 0), the files' ticks at this fixed rate instead of their own times and --speed."),
    ] = None,
    events: Annotated[Optional[str], typer.Option("--events", help="Daemon events endpoint to PUSH to (default: endpoints.events).")] = None,
    command_endpoint: Annotated[Optional[str], typer.Option("--command-endpoint", help="Where this terminal's command socket binds.")] = None,
    terminal: Annotated[Optional[str], typer.Option("--terminal", help="Terminal id to announce.")] = None,
    heartbeat_s: Annotated[Optional[float], typer.Option("--heartbeat-s", help="Heartbeat period in seconds.")] = None,
    max_ticks: Annotated[int, typer.Option("--max-ticks", min=0, help="Stop the source after this many ticks (0 = no limit).")] = 0,
    exit_at_end: Annotated[bool, typer.Option("--exit-at-end", help="Say bye and exit when the tick source is finished.")] = False,
    keep_times: Annotated[bool, typer.Option("--keep-times", help="Send the file's own tick times instead of now.")] = False,
    drop_reply_every: Annotated[int, typer.Option("--drop-reply-every", min=0, help="Fault injection: swallow the first reply of every Nth trading command.")] = 0,
    delay_reply_every: Annotated[int, typer.Option("--delay-reply-every", min=0, help="Fault injection: delay the reply of every Nth trading command...")] = 0,
    delay_reply_ms: Annotated[int, typer.Option("--delay-reply-ms", min=0, help="... by this many ms.")] = 0,
    timeout_reply_every: Annotated[int, typer.Option("--timeout-reply-every", min=0, help="Fault injection: execute every Nth trading command but answer error 128 (trade timeout).")] = 0,
) -> None:
    """Run a paper terminal: an EA as far as the daemon can tell (ticks, fills, SL/TP)."""
    overrides = {
        "paper.speed": speed,
        "paper.ticks_per_s": rate,
        "paper.command_endpoint": command_endpoint,
        "paper.terminal": terminal,
        "paper.heartbeat_s": heartbeat_s,
    }
    keep_files_private()
    cfg = build_config(config, data_dir=data_dir, log_format=log_format, log_level=log_level, overrides=overrides, configure_log=False)
    _configure_log(cfg, f"paper-{cfg.paper.terminal}")  # one file per terminal id: several paper terminals may share a data directory
    _say_if_shared(cfg)
    _check_children(cfg, "paper")
    _check_files(ticks)
    from quantumtrader.protocol import connect_address
    from quantumtrader.config import endpoint as check_endpoint
    from quantumtrader.paper.terminal import CommandBindError, PaperBookError, PaperOptions, PaperTerminal
    from quantumtrader.paper.ticks import TickFileError
    from quantumtrader.shutdown import install_stop_handlers, stop_with_parent

    if events is not None and check_endpoint(events):
        raise _fail(f"--events: {check_endpoint(events)}")
    options = PaperOptions(
        events_endpoint=connect_address(events or cfg.endpoints.events),
        tick_files=tuple(ticks or ()),
        exit_at_end=exit_at_end,
        keep_times=keep_times,
        max_ticks=max_ticks,
        replay_rate=(rate or 0.0) if ticks else 0.0,
        drop_reply_every=drop_reply_every,
        delay_reply_every=delay_reply_every,
        delay_reply_ms=delay_reply_ms,
        timeout_reply_every=timeout_reply_every,
    )
    try:
        term = PaperTerminal(cfg, options)
    except PaperBookError as exc:  # a file held for a moment: the supervisor's next try may read it (exit 1)
        raise _fail(str(exc), 1) from None
    install_stop_handlers(term.stop)
    stop_with_parent(term.stop)
    try:
        term.run()
    except TickFileError as exc:  # bad input (exit 2): a restart would meet the same file
        raise _fail(str(exc)) from None
    except (ValueError, CommandBindError) as exc:  # the port may be free at the supervisor's next try: exit 1
        raise _fail(str(exc), 1) from None


def _control(config: Path | None, kind: str, timeout_ms: int, *, silent_hint: str = "", **fields: Any) -> dict[str, Any]:
    """One control request; prints the JSON reply; exits 1 when the daemon refuses or is silent (``silent_hint`` then
    follows the message)."""
    import orjson

    from quantumtrader.protocol import connect_address
    from quantumtrader.control_client import ControlClient, ControlTimeout

    cfg = build_config(config, configure_log=False)
    try:
        with ControlClient(connect_address(cfg.endpoints.control), timeout_ms=timeout_ms, retries=CLI_CONTROL_TRIES - 1) as client:
            reply = client.request(kind, **fields)
    except ControlTimeout:
        tries = f"{CLI_CONTROL_TRIES} tries of {timeout_ms} ms"
        raise _fail(f"no answer from the daemon at {cfg.endpoints.control} after {tries}{_who_runs(cfg)}{silent_hint}", 1) from None
    # As UTF-8 bytes: on Windows a piped stdout encodes with the ANSI code page, strictly, and a broker's
    # message in Russian or Chinese (a trade's reply) raised UnicodeEncodeError after the order had gone out,
    # which reads as a failure worth retrying.
    sys.stdout.flush()
    sys.stdout.buffer.write(orjson.dumps(reply, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.buffer.flush()
    if not reply.get("ok"):
        raise _fail(str(reply.get("error")), 1)
    return reply


def _who_runs(cfg: Config) -> str:
    """After no answer: whether a daemon holds the configured data directory. "No answer" alone read the same for a
    daemon that is not running as for one that is stuck or listens elsewhere (a trader's walk-through, 2026-12-06)."""
    from quantumtrader.store.lock import live_holder

    pid = live_holder(cfg.data_path)
    if pid is None:
        return f"; no daemon is running on data directory {cfg.data_path} (started with another --data-dir or config?)"
    return f"; process {pid} holds data directory {cfg.data_path}: a daemon stuck, or listening on another control endpoint"


@app.command()
def stop(
    config: ConfigOpt = None,
    timeout_ms: Annotated[int, _timeout_option("How long to wait for the daemon's answer")] = 2000,
) -> None:
    """Ask a running daemon to stop in order (as Ctrl-C does): for one without a console, e.g. a Windows scheduled task."""
    _control(config, "stop", timeout_ms)


@app.command()
def status(
    config: ConfigOpt = None,
    timeout_ms: Annotated[int, _timeout_option("How long to wait for the daemon")] = 2000,
) -> None:
    """Ask a running daemon for its status (JSON on stdout)."""
    _control(config, "status", timeout_ms)


# A negative size ("-1") read as an unknown option, "No such option: -1" (a walk-through, 2026-12-06): taken as the
# argument it is, and refused by the size's own check.
@app.command(context_settings={"ignore_unknown_options": True})
def trade(
    side: Annotated[str, typer.Argument(help="buy or sell")],
    symbol: Annotated[str, typer.Argument(help="e.g. EURUSD")],
    lots: Annotated[Optional[float], typer.Argument(help="size; omitted = sized by risk.risk_pct")] = None,
    sl: Annotated[Optional[float], typer.Option("--sl", help="stop loss price (default: from volatility)")] = None,
    tp: Annotated[Optional[float], typer.Option("--tp", help="take profit price (default: reward/risk x stop)")] = None,
    terminal: Annotated[Optional[str], typer.Option("--terminal", help="terminal id when several stream the symbol")] = None,
    config: ConfigOpt = None,
    timeout_ms: Annotated[int, _timeout_option("How long to wait for the outcome")] = 15000,
) -> None:
    """Send a market order through the daemon (same risk rules as the app)."""
    import getpass
    import math

    # checked here, as lots are: a wrong side or symbol waited out every try with no daemon, then said "a daemon
    # that read it may still fill it" of an order none could take (a hunt, 2026-12-05)
    if order_side(side) is None:  # the daemon's own rule (any case)
        raise _fail(f"side must be buy or sell, got {side!r}")
    try:
        check_symbol(symbol)
    except ProtocolError as exc:
        raise _fail(f"symbol: {exc.detail}") from None
    for name, number in (("lots", lots), ("--sl", sl), ("--tp", tp)):
        # JSON has no NaN or infinity: they would go out as null, which reads as "not given" (a risk-sized order)
        if number is not None and not (math.isfinite(number) and number > 0):
            raise _fail(f"{name} must be a finite number above 0, got {number}")
    from quantumtrader.protocol import iso_from_msc, new_command_id, now_msc

    # Expires when this command stops waiting: a daemon that reads it later does nothing. Without it, a trade the
    # command gave up on ("no answer") filled when a slow daemon got to it, and a retry by hand opened a second
    # position (a hunt, 2026-12-05). The request's id finds its order afterwards (`orders --request-id`).
    request_id = new_command_id()
    expires_msc = now_msc() + CLI_CONTROL_TRIES * timeout_ms
    fields: dict[str, Any] = {"symbol": symbol, "side": side, "source": f"cli:{getpass.getuser()}", "req_id": request_id, "expires_msc": expires_msc}
    for name, value in (("lots", lots), ("sl", sl), ("tp", tp), ("terminal", terminal)):
        if value is not None:
            fields[name] = value
    hint = (
        f". Request {request_id}: a daemon that read it before {iso_from_msc(expires_msc)} may still fill it, one that"
        f" reads it later does nothing; before trying again, look: qt-daemon orders --request-id {request_id}"
    )
    _control(config, "trade", timeout_ms, silent_hint=hint, **fields)


@app.command()
def orders(
    limit: Annotated[int, typer.Option("--limit", min=1, max=ORDERS_LIMIT_MAX, help="How many, newest first.")] = 20,
    request_id: Annotated[Optional[str], typer.Option("--request-id", help="Only the order of this trade request (the id `trade` names when it got no answer).")] = None,
    config: ConfigOpt = None,
) -> None:
    """List recent orders with their outcome."""
    if request_id is not None:
        _control(config, "orders", 3000, request_id=request_id)
    else:
        _control(config, "orders", 3000, limit=limit)


@app.command()
def evaluate(
    files: Annotated[list[Path], typer.Argument(help="Tick CSVs (time,bid,ask[,volume], gzip or plain), one symbol each, named by the file (EURUSD.csv.gz); all merged by time, files of one symbol into one series.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full report as JSON here.")] = None,
    plot_out: Annotated[Optional[Path], typer.Option("--plot", help="Write a PNG (calibration curve, cumulative P&L); needs the 'plot' extra.")] = None,
    signals_out: Annotated[
        Optional[Path], typer.Option("--signals", help="Write every ensemble signal as CSV with the quotes it was scored on and its outcome, to check the scores.")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar (e.g. in CI logs).")] = False,
) -> None:
    """Replay recorded ticks through the daemon's own pipeline and score its signals against baselines."""
    cfg = build_config(config, data_dir=data_dir, log_format=log_format, log_level=log_level, make_data_dir=True)
    _check_numba_cache(cfg)
    _check_files(files, "FILE")
    if plot_out is not None:  # before the replay, not after minutes of it
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise _fail("--plot needs matplotlib: pip install 'quantumtrader[plot]'")
    for option, out, suffixes in (("--json", json_out, ()), ("--plot", plot_out, PLOT_SUFFIXES), ("--signals", signals_out, ())):
        problem = None if out is None else output_file_problem(out, suffixes)
        if problem is not None:
            raise _fail(f"{option}: {problem}")
    problem = clash_problem({"--json": json_out, "--plot": plot_out, "--signals": signals_out}, files)
    if problem is not None:
        raise _fail(problem)
    from quantumtrader.evaluate.run import run as run_evaluate

    try:
        unwritten = run_evaluate(cfg, files, json_out=json_out, plot_out=plot_out, signals_out=signals_out, show_progress=not no_progress, echo=typer.echo)
    except ValueError as exc:  # a tick file that cannot be read, or gives no tick at all
        raise _fail(str(exc), 1) from None
    for problem in unwritten:  # after the table, which is printed whatever happens to the files
        typer.echo(f"error: {problem}", err=True)
    if unwritten:
        raise typer.Exit(1)


def _check_numba_cache(cfg: Config) -> None:
    """For the commands that compile kernels: the cache directory can be made and written, else exit 2 naming it."""
    from quantumtrader.features.cache import check_numba_cache_dir, numba_cache_path

    try:
        check_numba_cache_dir(cfg.data_path)
    except OSError as exc:
        where = "NUMBA_CACHE_DIR" if os.environ.get("NUMBA_CACHE_DIR") else "data_dir"
        raise _fail(f"{where}: cannot write the Numba cache at {numba_cache_path(cfg.data_path)}: {exc.strerror or exc}") from None


@config_app.command("show")
def config_show(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the effective configuration (defaults < file < QT_* env < options) as TOML."""
    cfg = build_config(config, data_dir=data_dir, configure_log=False)
    sys.stdout.write(render_toml(cfg, commented=False))


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the commented config file.")] = Path("quantumtrader.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented config file with every key at its default."""
    if path.is_dir():  # "exists; use --force", then --force failed with "Is a directory" (a walk-through, 2026-12-06)
        raise _fail(f"{path} is a directory: give the file's path, e.g. {path / 'quantumtrader.toml'}")
    if path.exists() and not force:
        raise _fail(f"{path} exists; use --force to overwrite", 1)
    try:
        path.write_text(render_toml(load_config(environ={}), commented=True), encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}", 1) from None
    typer.echo(f"wrote {path}")


@app.command("sidecar")
def sidecar_command(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_format: LogFormatOpt = None,
    log_level: LogLevelOpt = None,
    host: Annotated[Optional[str], typer.Option("--host", help="Bind address (0.0.0.0 to serve phones; tokens still required).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="HTTP port (default 8080).")] = None,
) -> None:
    """Run the REST/WebSocket sidecar alone (`qt-daemon run` starts it for you)."""
    cfg = build_config(
        config,
        data_dir=data_dir,
        log_format=log_format,
        log_level=log_level,
        overrides={"sidecar.host": host, "sidecar.port": port},
        make_data_dir=True,
        log_file="sidecar",
    )
    _check_children(cfg, "sidecar")
    _signing_secret(cfg)  # a bad one is exit 2 naming the file, not a traceback from the server's start-up
    _check_store_key(cfg)
    from quantumtrader.sidecar import run_sidecar

    raise typer.Exit(run_sidecar(cfg))


def _check_store_key(cfg: Config) -> None:
    """The store's encryption key, when its variable is set, is one Fernet takes: else exit 2 naming the variable
    (it was a StoreKeyError traceback from deep in the daemon's start-up, after the kernels had warmed up)."""
    from quantumtrader.store.crypto import StoreKeyError, cipher_from_env

    try:
        cipher_from_env(cfg.store.encrypt_env)
    except StoreKeyError as exc:
        raise _fail(f"{cfg.store.encrypt_env}: {exc}") from None


def _signing_secret(cfg: Config) -> bytes:
    """The sidecar's token signing secret, made if absent; exit 2 naming its file when it cannot be used."""
    from quantumtrader.sidecar.auth import SecretError, load_or_create_secret

    try:
        return load_or_create_secret(cfg.data_path)
    except SecretError as exc:
        raise _fail(str(exc)) from None


user_app = typer.Typer(help="Users of the sidecar (scrypt-hashed passwords in the data directory).", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (1-64 chars of A-Z a-z 0-9 . _ @ -).")],
    role: Annotated[str, typer.Option("--role", help="viewer (read) or trader (read and trade).")] = "viewer",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (first line).")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Change the role/password of an existing user.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a user. The password is read from stdin or prompted for; it is never an argument (shell history)."""
    cfg = build_config(config, data_dir=data_dir, make_data_dir=True)  # logs go to stderr
    from quantumtrader.sidecar.users import UserError, UserStore

    users = UserStore(cfg.data_path)
    try:  # before the password is typed, twice: a bad name or role was refused only after it
        users.check_addable(name, role, replace=replace)
    except UserError as exc:
        raise _user_failure(exc) from None
    _signing_secret(cfg)  # before the save: a user saved and then an error would read as a failure that changed something
    if password_stdin:
        if sys.stdin is None:  # pythonw, a service: no standard input at all (an AttributeError traceback before)
            raise _fail("--password-stdin: this process has no standard input to read the password from")
        # Bytes, as UTF-8 (a byte-order mark dropped): Windows decodes a piped stdin with the ANSI code page,
        # so a non-ASCII password was hashed as other characters than the app sends, and login failed.
        try:
            password = sys.stdin.buffer.readline().decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            raise _fail("--password-stdin: the password is not UTF-8 text") from None
    else:
        # The prompt asks on the terminal (/dev/tty, the Windows console) even when stdin is redirected; with no
        # terminal it reads stdin, and a pipe or /dev/null ran out in a bare "Aborted." (a review, 2026-12-05).
        try:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        except (typer.Abort, EOFError):
            raise _fail("no password read (no terminal to ask on, or it was cancelled): pipe the password in with --password-stdin") from None
    try:
        user = users.add(name, role, password, replace=replace)
    except UserError as exc:
        raise _user_failure(exc) from None
    typer.echo(f"user {user.name} ({user.role}) saved in {cfg.data_path}")


def _user_failure(exc: UserError) -> typer.Exit:
    """Exit 2 for a bad name, role or password, as for any bad option (it was 1, like a damaged users file or a
    user that exists: a trader's walk-through, 2026-12-06); exit 1 for those."""
    from quantumtrader.sidecar.users import BadUserInput

    return _fail(str(exc), BAD_INPUT_EXIT if isinstance(exc, BadUserInput) else 1)


@user_app.command("list")
def user_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List users and their roles (never their hashes)."""
    cfg = build_config(config, data_dir=data_dir, configure_log=False, make_data_dir=True)
    for user in _users(cfg).list():  # checked: an empty list from a damaged file would read as "no users"
        typer.echo(f"{user.name}\t{user.role}")


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="User to remove; their tokens stop working at once.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a user (revokes every token issued to them)."""
    _change_user(name, "remove", f"user {name} removed", config, data_dir)


@user_app.command("revoke")
def user_revoke(
    name: Annotated[str, typer.Argument(help="User whose tokens stop working at once (the user stays).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke every token issued to a user so far (a lost phone); they log in again for new ones."""
    _change_user(name, "revoke", f"every token of {name} revoked", config, data_dir)


def _users(cfg: Config) -> UserStore:
    """The users file's store, checked whole: a damaged file is exit 1 naming the problem (sidecar/users.py)."""
    from quantumtrader.sidecar.users import UserError, UserStore

    users = UserStore(cfg.data_path)
    try:
        users.check()
    except UserError as exc:
        raise _fail(str(exc), 1) from None
    return users


def _change_user(name: str, change: str, done: str, config: Optional[Path], data_dir: Optional[str]) -> None:
    """``UserStore.<change>(name)`` (remove, revoke); exit 1 naming the user when there is none."""
    cfg = build_config(config, data_dir=data_dir, configure_log=False, make_data_dir=True)
    from quantumtrader.sidecar.users import UserError, UserStore

    try:
        changed = getattr(UserStore(cfg.data_path), change)(name)
    except UserError as exc:
        raise _fail(str(exc), 1) from None
    if not changed:
        raise _fail(f"no user {name!r}", 1)
    typer.echo(done)


@app.command("token")
def token_command(
    user: Annotated[str, typer.Option("--user", help="Existing user to issue an access token for.")],
    ttl: Annotated[Optional[str], typer.Option("--ttl", help="Lifetime: seconds, or with a unit (90m, 12h, 30d). Default sidecar.cli_token_ttl_s.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print an access token (and nothing else) for the app's settings or for scripts."""
    cfg = build_config(config, data_dir=data_dir, make_data_dir=True)  # logs go to stderr: stdout is only the token
    from quantumtrader.sidecar.auth import ACCESS, TokenService, parse_ttl

    try:
        ttl_s = parse_ttl(ttl) if ttl is not None else cfg.sidecar.cli_token_ttl_s
    except ValueError as exc:
        raise _fail(f"--ttl: {exc}") from None
    users = _users(cfg)  # checked: "no user" would send the operator to re-add a user the damaged file still holds
    found = users.get(user)
    if found is None:
        raise _fail(f"no user {user!r} (add one with: qt-daemon user add {user} --role viewer --password-stdin)", 1)
    secret = _signing_secret(cfg)  # after the user: a refused request leaves no secret behind in a fresh data directory
    tokens = TokenService(secret, users)
    sys.stdout.write(tokens.issue(found, ACCESS, ttl_s) + "\n")


def _check_files(paths: list[Path] | None, what: str = "--ticks") -> None:
    """Each tick file opens, has its header and a tick the reader accepts, and none is given twice: checked
    before anything starts. Files naming one symbol are merged by time: said."""
    from quantumtrader.paper.ticks import TickFileError, check_distinct_files, check_tick_file, shared_symbols

    given = list(paths or ())
    try:
        for path in given:
            check_tick_file(path)
        check_distinct_files(given)
    except TickFileError as exc:
        raise _fail(f"{what}: {exc}") from None
    for symbol, files in shared_symbols(given).items():
        typer.echo(f"note: {', '.join(map(str, files))} are all {symbol}: merged by time into one series (right for consecutive periods of one feed, not for two brokers' feeds)", err=True)


def _utf8_when_redirected() -> None:
    """stdout and stderr write UTF-8 when they are not a console. Windows encodes a redirected stream with the ANSI
    code page (cp1252), strictly: `config show > qt.toml` with a non-ASCII path wrote cp1252, which loading then
    refused as not UTF-8, and `user add` raised UnicodeEncodeError after the user was saved. A console is left
    as it is (Windows' takes Unicode itself); each stream keeps its own errors policy."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not stream.isatty() and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors=stream.errors)


def main() -> None:
    _utf8_when_redirected()
    app()


if __name__ == "__main__":
    main()
