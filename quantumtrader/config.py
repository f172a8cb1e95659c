"""Every setting and its default, in one place.

Resolution order (later wins): built-in defaults, a TOML file (``--config``),
environment variables ``QT_<SECTION>__<KEY>`` (``QT_DATA_DIR`` for the data
directory), then explicit command-line options. Sections are frozen,
keyword-only dataclasses; unknown keys are rejected and every value is
type-checked and range-checked once, at start-up, so a typo or a bad value
stops the program with a message naming the key instead of surfacing later in
the tick loop (the uvicorn ``Config`` idea: data resolved once, runtime apart).

Each field carries its documentation in ``metadata["doc"]``: ``config init``
writes it out as comments, so the docs cannot drift from the defaults.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from quantumtrader.features.limits import check_params
from quantumtrader.priority import LEVELS as PRIORITY_LEVELS
from quantumtrader.protocol import (
    DEFAULT_MAX_SKEW_MS,
    MAX_CURRENCY_LEN,
    MAX_HEARTBEAT_S,
    MAX_TERMINAL_LEN,
    MIN_HEARTBEAT_S,
    MS_PER_DAY,
    SYMBOL_CHARS,
    WILDCARD_HOSTS,
    ProtocolError,
    check_symbol,
    parse_endpoint,
)

Check = Callable[[Any], str | None]

#: Where the store, users, the JWT secret and the Numba cache live unless
#: --data-dir or QT_DATA_DIR says otherwise.
DEFAULT_DATA_DIR = "~/.quantumtrader"


#: The CLI's exit code on bad input (a config like this one, a bad tick file): a restart would fail
#: the same way, so the supervisor does not restart a child that exits with it.
BAD_INPUT_EXIT = 2


class ConfigError(ValueError):
    """A setting is unknown or out of range. ``key`` is the dotted name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config {key}: {message}")
        self.key = key


# -- field helpers ---------------------------------------------------------------


def setting(default: Any, doc: str, check: Check | None = None) -> Any:
    """A config field with its documentation and an optional range check."""
    return field(default=default, metadata={"doc": doc, "check": check})


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


unit_interval = between(0.0, 1.0)


def step_size(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be above 0 and at most 1"

#: What every numeric setting is held to besides its own check. Beyond them values reached C APIs
#: (ZeroMQ's int options: events_hwm 1e20 raised OverflowError at bind) or turned into inf (a health
#: interval of 1e308 s, times 1000 for the poller) and ended the daemon with a traceback, not a
#: ConfigError naming the key. 2^31 - 1 of anything (ms, ticks, counts) and 1e12 of anything (seconds,
#: an account's currency, like protocol.MAX_PRICE) are beyond every sensible setting.
MAX_INT_SETTING = 2**31 - 1
MAX_FLOAT_SETTING = 1e12
#: Sizes of per-symbol state (the feature windows) and of per-batch buffers: allocated when the
#: daemon starts, so a huge one was a MemoryError traceback (features.wave_window 1e9: 500 GB).
MAX_WINDOW = 4096

#: signals.horizon_ticks at most: the models keep H standardized feature rows per symbol (models/state.py,
#: ``ring_x``), so H is memory; 1,000 ticks is minutes to an hour of EURUSD, 50 times the default.
MAX_HORIZON_TICKS = 1000


_DAY_START = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?: +([A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*))?")


def parse_day_start(text: str) -> tuple[int, Any]:
    """``risk.day_start`` as (minutes after midnight, a ``zoneinfo.ZoneInfo`` or None for UTC); ValueError if not one.

    The IANA zones come from the OS or, where it has none (Windows, a bare container), the ``tzdata`` package."""
    import zoneinfo  # here: only a config naming a zone pays for it

    match = _DAY_START.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must be HH:MM (UTC) or HH:MM Area/City, e.g. 17:00 America/New_York")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if match.group(3) is None or match.group(3) == "UTC":
        return minutes, None
    try:
        return minutes, zoneinfo.ZoneInfo(match.group(3))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones ("America") named
        raise ValueError(f"names no time zone this machine knows: {match.group(3)!r} (an IANA name such as America/New_York)") from None


def day_start(value: Any) -> str | None:
    try:
        parse_day_start(value)
    except ValueError as exc:
        return str(exc)
    return None


def port(value: Any) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port (1-65535)"


def endpoint(value: Any) -> str | None:
    """TCP only: the daemon also runs on Windows VPSs, where ipc:// does not exist."""
    if parse_endpoint(value) is None:
        return "must look like tcp://HOST:PORT (tcp only, so it works on Windows)"
    return None


def symbol_suffix(value: Any) -> str | None:
    """Empty, or 1-8 of the characters a symbol may have (PROTOCOL.md)."""
    if value == "" or re.fullmatch(SYMBOL_CHARS + "{1,8}", value):
        return None
    return "must be empty or 1-8 characters of A-Z a-z 0-9 . _ # + -"


#: The names the daemon and the sidecar keep in the data directory besides the store (each module's own
#: constant; tests/test_config.py holds them equal): the store must not be opened on one of them.
ORDERS_FILE = "orders.sqlite"
OTHER_DATA_NAMES = (ORDERS_FILE, "daemon.lock", "users.json", "jwt_secret", "numba-cache", "paper-books")


#: What Windows refuses in a file name besides the separators, and the device names it reserves whatever follows a
#: dot ("Naming Files, Paths, and Namespaces"). Refused on every platform: a config must load the same everywhere.
_WINDOWS_BAD_CHARS = '<>:"|?*'
_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))})


def _same_file_name(a: str, b: str) -> bool:
    """Whether two names in one directory are one file on Windows, which ignores case and trailing dots and spaces
    (``Orders.sqlite`` is orders.sqlite there): so compared on every platform."""
    return a.rstrip(". ").casefold() == b.rstrip(". ").casefold()


def store_file_name(value: Any) -> str | None:
    """A plain file name in the data directory that every platform takes: a path in it ("../x.db") put the store
    elsewhere or failed with a traceback from SQLite, and another file's name made two subsystems share one file."""
    if not value or value in (".", "..") or any(c in "/\\" + _WINDOWS_BAD_CHARS or c < " " for c in value):
        return 'must be a plain file name (no directory; none of / \\ < > : " | ? * or control characters)'
    if value[-1] in ". ":
        return "must not end with a dot or a space (Windows drops them)"
    if value.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
        return f"{value} is a device on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9, whatever follows a dot); pick another name"
    if any(_same_file_name(value, name) for name in OTHER_DATA_NAMES):
        return f"{value} is another file of the data directory (as Windows compares names: case ignored); pick another name"
    return None


def listen_host(value: Any) -> str | None:
    """An address to listen on: an IP literal or a host name. Anything else loaded, then made the sidecar exit
    at every start, restarted with backoff for ever, with a hint about the port (a fuzz, 2026-12-05)."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    labels = value.rstrip(".").split(".") if value else []
    # Underscores too (docker-compose service names); all digits is a mistyped address (999.1.1.1), not a name.
    if (
        labels
        and len(value) <= 253
        and all(re.fullmatch(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", label) for label in labels)
        and not all(label.isdigit() for label in labels)
    ):
        return None
    return "must be an IP address (127.0.0.1, 0.0.0.0, ::1) or a host name"


def no_nul(value: Any) -> str | None:
    """A path that may be empty (a feature off): a NUL in it raised ValueError from the first file call, a traceback."""
    return None if "\0" not in value else "must not contain a NUL character"


def path_text(value: Any) -> str | None:
    """A path the OS can take: a NUL in it raised ValueError from the first file call, a traceback."""
    return "must not be empty or contain a NUL character" if not value or "\0" in value else None


def terminal_id(value: Any) -> str | None:
    """What the daemon accepts as a terminal id (every event of another would be refused: bad_terminal)."""
    return None if 0 < len(value) <= MAX_TERMINAL_LEN else f"must be 1-{MAX_TERMINAL_LEN} characters"


def currency_name(value: Any) -> str | None:
    """What an account event may carry as its currency: a longer one made the daemon refuse every account event
    of the paper terminal (bad_value), after the config had loaded."""
    return None if len(value) <= MAX_CURRENCY_LEN else f"must be at most {MAX_CURRENCY_LEN} characters (what an account event may carry)"


def symbol_list(value: Any) -> str | None:
    """At least one symbol, each as PROTOCOL.md allows (an empty list crash-looped the paper terminal)."""
    if not value:
        return "must name at least one symbol"
    for symbol in value:
        try:
            check_symbol(symbol)
        except ProtocolError as exc:
            return exc.detail
    return None


def one_of(*allowed: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


# -- sections --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EndpointsConfig:
    """Where the daemon binds. Defaults are PROTOCOL.md's, loopback only."""

    events: str = setting("tcp://127.0.0.1:5555", "EA PUSH -> daemon PULL (bound by the daemon)", endpoint)
    feed: str = setting("tcp://127.0.0.1:5556", "daemon PUB feed for apps and the sidecar", endpoint)
    control: str = setting("tcp://127.0.0.1:5557", "daemon ROUTER for the sidecar and the CLI", endpoint)
    allow_remote: bool = setting(
        False,
        "let an endpoint bind beyond loopback (0.0.0.0, a LAN address): they have no authentication, so whoever reaches"
        " control can trade, close, halt and stop, events can speak as a terminal, the feed shows every position;"
        " only behind a firewall that admits your own machines",
    )


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """The poller loop and terminal bookkeeping."""

    batch_max: int = setting(
        512,
        "most events drained from the events socket per wake-up (512: a batch's tick dicts stay in the core's L2 cache"
        " through its several passes; 4096 was ~9% slower flat out; at most 65,536)",
        between(1, 65_536),
    )
    events_hwm: int = setting(1_000_000, "receive high-water mark of the events PULL socket", positive)
    feed_hwm: int = setting(
        100_000,
        "send high-water mark of the feed PUB socket, per subscriber (beyond it that subscriber loses messages and sees a"
        " seq gap); each queued message is ~0.5 KB of the daemon's memory: a subscriber that stops reading holds up to"
        " ~55 MB at 100,000 (a soak: ~550 MB at 1,000,000, kept by the process after it left)",
        positive,
    )
    heartbeat_s: float = setting(5.0, "heartbeat period assumed for terminals whose hello does not state one", positive)
    stale_heartbeats: int = setting(3, "a terminal silent for this many heartbeat periods is stale", positive)
    owner_silent_s: float = setting(
        60.0,
        "a symbol's series passes to another terminal that streams it when its owner has sent no tick of it for this long"
        " while the other has (an EA whose terminal lost its broker keeps beating, so it never goes stale; 0 = never)",
        non_negative,
    )
    retire_after_s: float = setting(
        3600.0,
        "a terminal silent this long is retired: still listed, no longer keeps health degraded (an EA removed without bye);"
        " its next event brings it back (0 = never)",
        non_negative,
    )
    clock_ahead_warn_s: float = setting(
        300.0,
        "a terminal whose tick times run this far ahead of this machine's UTC clock makes health degraded, named:"
        " its UTC offset is wrong (the EA's UtcOffsetMinutes / UtcOffsetAuto) or a clock is off (0 = never)",
        non_negative,
    )
    max_terminals: int = setting(
        64,
        "most terminal ids the daemon keeps at once (each has a session and a command socket); a new id beyond it takes"
        " the slot of the terminal silent longest that is stale or said bye and holds nothing (no positions or unsettled"
        " orders), else is refused (too_many_terminals); at most 1,000: a process has ~1,023 sockets on Windows",
        between(1, 1000),
    )
    max_symbols: int = setting(
        4096,
        "most symbols the daemon keeps (each has quotes, feature and model state, saved and resumed at the next start,"
        " never dropped), those resumed from the saved state included; ticks of a new symbol beyond it are refused"
        " (too_many_symbols)",
        positive,
    )
    health_interval_s: float = setting(1.0, "how often health is published on the feed", positive)
    status_interval_s: float = setting(5.0, "how often the one-line status is logged (0 = never)", non_negative)
    reject_log_interval_s: float = setting(10.0, "a reject reason, or a failure that repeats (the signal journal on a full disk), is logged at most once per interval", positive)
    linger_ms: int = setting(200, "socket linger on shutdown, so nothing hangs", non_negative)
    max_message_bytes: int = setting(
        4 * 1024 * 1024,
        "frames longer than this are rejected unread (a positions snapshot of ~20,000 positions fits; at most 1 GiB)",
        between(1, 2**30),
    )
    max_clock_skew_ms: int = setting(
        DEFAULT_MAX_SKEW_MS, "a tick's time_msc may be at most this far ahead of the daemon's clock (at most 30 days)", between(1, 30 * MS_PER_DAY)
    )
    busy_poll_us: int = setting(
        200,
        "after each batch of events the loop keeps asking the events socket for the next one, without sleeping, for"
        " up to this many µs before it blocks in the poller (0 = never): a thread that sleeps between ticks wakes"
        " to cold caches, and on a VM its core may have run another guest meanwhile. Costs CPU only while ticks"
        " arrive: up to this long per batch, i.e. one core when they come more often than this, nothing when idle;"
        " off when the daemon may use one CPU only (there the spin holds the CPU the next tick needs)",
        between(0, 100_000),
    )
    tick_priority: str = setting(
        "high",
        "scheduling priority of the tick thread (normal, above_normal, high = nice -10 / THREAD_PRIORITY_HIGHEST):"
        " above its own I/O and writer threads, so waking them does not pre-empt a batch; where the OS refuses"
        " (Linux without CAP_SYS_NICE) the daemon runs at normal and says so in its log and health",
        one_of(*PRIORITY_LEVELS),
    )


@dataclass(frozen=True, kw_only=True)
class FeaturesConfig:
    """Feature kernel parameters (DESIGN.md, "Features")."""

    max_symbols: int = setting(64, f"initial symbol capacity; grows (doubling) when exceeded (at most {MAX_WINDOW:,})", between(1, MAX_WINDOW))
    publish: str = setting(
        "latest",
        "features.<SYMBOL> on the feed: latest (each symbol's latest vector at most every publish_interval_ms,"
        " the last one always), per_batch (each symbol's latest vector of each batch: every tick at low rates),"
        " every_tick, or off",
        one_of("latest", "every_tick", "per_batch", "off"),
    )
    publish_interval_ms: float = setting(
        100.0,
        "with publish = latest: a symbol's features go out at most this often (subscribers keep only the latest;"
        " per_batch at 10,000 ticks/s cost a quarter of the daemon's time per batch)",
        positive,
    )
    wave_window: int = setting(64, f"W: standardized returns in the wave_function density (at most {MAX_WINDOW:,})", between(1, MAX_WINDOW))
    wave_bins: int = setting(33, "histogram bins of the wave_function density (odd: one bin is centred on a zero return; at most 1,001)", between(1, 1001))
    wave_bandwidth: float = setting(0.5, "Gaussian kernel bandwidth of wave_function, in standard deviations", positive)
    chaos_window: int = setting(128, f"W: log returns in one chaos_index (Lyapunov) estimate (at most {MAX_WINDOW:,})", between(1, MAX_WINDOW))
    chaos_every: int = setting(
        2048,
        "K: ticks between chaos_index recomputes, held in between (one recompute ~23 us: ~11 ns/tick amortized, bench/results/features.json)",
        positive,
    )
    perm_order: int = setting(4, "order of the sliding permutation entropy", positive)
    perm_window: int = setting(64, f"window of the sliding permutation entropy (at most {MAX_WINDOW:,})", between(1, MAX_WINDOW))


@dataclass(frozen=True, kw_only=True)
class SignalsConfig:
    """Ensemble weights and the signal policy (DESIGN.md, "Models and signals")."""

    weight_quantum: float = setting(0.3, "weight of the quantum (wave_function) component", unit_interval)
    weight_chaos: float = setting(0.2, "weight of the chaos (trend x regime) component", unit_interval)
    weight_ml_ensemble: float = setting(0.4, "weight of the online-learned ensemble", unit_interval)
    weight_technical: float = setting(0.1, "weight of the technical (RSI, MACD) component", unit_interval)
    buy_threshold: float = setting(0.7, "probability above which the prediction is BUY", unit_interval)
    sell_threshold: float = setting(0.3, "probability below which the prediction is SELL", unit_interval)
    interval_s: float = setting(10.0, "a signal is emitted at least this often per symbol while ticks arrive", positive)
    horizon_ticks: int = setting(
        20,
        f"H: the label is whether mid rose over the next H ticks (1 to {MAX_HORIZON_TICKS:,}: every symbol keeps its last H"
        f" feature rows waiting for their labels, ~0.1 KB each: ~110 KB a symbol at {MAX_HORIZON_TICKS:,}, ~460 MB for 4,096 symbols)",
        between(1, MAX_HORIZON_TICKS),
    )
    trend_span_ticks: int = setting(20, "span of the EMA of returns that the chaos component's trend is measured with", positive)
    chaos_scale: float = setting(0.5, "chaos trust = exp(-max(chaos_index, 0) / chaos_scale): higher = trust trend longer", positive)
    ml_warmup_labels: int = setting(500, "labels a symbol's learners see before ml_ensemble leaves 0.5", non_negative)
    ml_memory_ticks: int = setting(5000, "horizon of the online standardization and naive Bayes moments (exponential forgetting)", positive)
    sgd_learning_rate: float = setting(0.01, "step size of the SGD logistic regression (above 0, at most 1)", step_size)
    sgd_l2: float = setting(1e-4, "L2 penalty of the SGD logistic regression", non_negative)
    nb_temperature: float = setting(4.0, "naive Bayes log-odds are divided by this (correlated features make it overconfident)", positive)


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    """The SQLite store in the data directory (DESIGN.md, "Storage")."""

    file_name: str = setting(
        "quantumtrader.db",
        "database file in the data directory (WAL mode): a plain name Windows takes too (none of < > : \" | ? *, no trailing"
        " dot or space, no device name such as NUL.db) and not another file's there, case ignored (Orders.sqlite is the order journal)",
        store_file_name,
    )
    # At most 100 years: 1e12 days loaded, then every retention pass failed (a cutoff beyond SQLite's integers).
    signal_retention_days: float = setting(0.0, "signals older than this many days are deleted (0 = keep the full history; at most 36,500)", between(0.0, 36_500.0))
    low_disk_mb: int = setting(
        1000,
        "health is degraded, naming it, while the data directory's disk has less free space than this, in MB (0 = never):"
        " the full signal history grows every day",
        non_negative,
    )
    save_interval_s: float = setting(
        30.0, "how often the models' and features' state is saved (also on shutdown) and the signal journal starts a new file", positive
    )
    queue_max: int = setting(
        10_000,
        "writer-thread queue length; beyond it jobs are dropped and counted (signals stay in the journal and reach SQLite when its file retires)",
        positive,
    )
    insert_interval_ms: int = setting(
        100,
        "journaled signals go to the writer thread (SQLite) about this often (up to 200 ms when the loop is idle), so readers"
        " usually see a signal that much later; the writer wakes (and contends for the GIL with the tick loop) at most this often",
        positive,
    )
    encrypt_env: str = setting(
        "QT_STORE_KEY",
        "environment variable holding a Fernet key; when set, prediction fields of stored signals are encrypted",
    )


@dataclass(frozen=True, kw_only=True)
class ExecutionConfig:
    """Commands to terminals (PROTOCOL.md, "Commands")."""

    command_timeout_ms: int = setting(3000, "how long to wait for a terminal's reply before a Lazy Pirate retry", positive)
    command_retries: int = setting(2, "resends of the same command id after a timeout", non_negative)
    stop_wait_ms: int = setting(
        3000,
        "at a stop, how long commands already sent may take to be answered (Lazy Pirate retries included);"
        " orders still unanswered then are journaled unknown and settle from the positions at the next start; commands not yet sent are refused",
        non_negative,
    )
    magic: int = setting(20240115, "magic number put on every order", non_negative)
    deviation_points: int = setting(10, "max slippage in points for market orders", non_negative)
    queue_max: int = setting(1000, "commands waiting per terminal before new ones are refused", positive)
    default_terminal: str = setting("", "terminal used when several stream a symbol and the request names none")
    symbol_map: tuple[str, ...] = setting(
        (),
        'per-terminal broker names, "TERMINAL:SYMBOL=BROKER_SYMBOL" (e.g. "5012345@ICMarkets:EURUSD=EURUSD.r");'
        " a unique SYMBOL+suffix in the terminal's symbols is found without it",
    )
    settle_snapshots: int = setting(3, "positions snapshots without an unknown order's QT-<id> before it is settled as not executed", positive)
    journal_sync: str = setting(
        "normal",
        "SQLite synchronous mode of the order journal: normal survives a crash of the daemon, full also a power loss (~ms per order)",
        one_of("normal", "full"),
    )


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    """Pre-trade risk rules (DESIGN.md, "Execution and risk"). Every refusal names its rule."""

    trading_enabled: bool = setting(True, "the global kill switch: false refuses every new position (closes still allowed)")
    max_quote_age_ms: int = setting(5000, "refuse when the symbol's latest quote arrived longer ago than this", positive)
    max_tick_lag_s: float = setting(
        10.0,
        "refuse when the latest quote's own tick time is older than this by this machine's UTC clock, however lately it"
        " arrived: a backlog the daemon is still reading (after a restart, behind a fast feed) or a terminal clock off (0 = off)",
        non_negative,
    )
    max_spread_pct: float = setting(0.05, "refuse when spread / mid x 100 exceeds this (0.05 = 5.4 pips on EURUSD)", positive)
    lot_min: float = setting(0.01, "smallest order size", positive)
    lot_max: float = setting(10.0, "largest order size", positive)
    lot_step: float = setting(0.01, "sizes are rounded down to a multiple of this", positive)
    min_stop_pct: float = setting(0.01, "stops must be at least this far from the price, in % of price", non_negative)
    max_stop_pct: float = setting(
        20.0, "stops and take-profits further than this from the price, in % of price, are refused: pips or a distance sent as a price", positive
    )
    max_open_positions: int = setting(20, "refuse new positions beyond this many open (0 = no limit)", non_negative)
    max_lots_per_symbol: float = setting(5.0, "refuse when open + pending lots in one symbol would exceed this (0 = no limit)", non_negative)
    max_daily_loss: float = setting(
        0.0,
        "lost since the trading day began (risk.day_start) that switches to reducing-only, judged in each account currency alone"
        " (the same number for each: with accounts in currencies of different scale, JPY beside USD, use max_daily_loss_pct; 0 = off)",
        non_negative,
    )
    max_daily_loss_pct: float = setting(
        0.0,
        "% of one account's equity at the trading day's start lost that switches to reducing-only (0 = off): the same for"
        " accounts in any currency (a JPY account beside a USD one)",
        between(0.0, 100.0),
    )
    day_start: str = setting(
        "00:00",
        "when the trading day of max_daily_loss begins: HH:MM in UTC, or HH:MM Area/City (17:00 America/New_York: the FX"
        " day, daylight saving followed)",
        day_start,
    )
    risk_pct: float = setting(1.0, "size missing lots so a stop-out loses this % of equity", positive)
    max_trade_risk_pct: float = setting(
        10.0,
        "refuse an open whose stop-out would lose more than this % of equity at its lots (0 = off): given lots with a far stop,"
        " or a default stop set from volatility a price gap (a weekend's) inflated",
        non_negative,
    )
    reward_risk: float = setting(2.0, "take-profit distance = this x stop distance when tp is missing", positive)
    stop_sigmas: float = setting(2.0, "missing stop distance = this many standard deviations of price over stop_horizon_ticks", positive)
    stop_horizon_ticks: int = setting(
        3600,
        "horizon of a default stop: tick volatility (volatility_20) is scaled by its square root (3600 ticks ~ 12 pips on EURUSD)",
        positive,
    )
    default_stop_pct: float = setting(0.2, "stop distance in % of price when no volatility is known yet", positive)
    max_default_stop_pct: float = setting(
        1.0,
        "a default stop from volatility is at most this far, in % of price (1 = 110 pips on EURUSD; 0 = no cap): a price gap"
        " (a weekend's, a terminal taking a symbol over) inflates volatility_20 for 20 ticks",
        non_negative,
    )


@dataclass(frozen=True, kw_only=True)
class AutoTradeConfig:
    """Acting on signals: off by default; same path and risk rules as any trade request."""

    enabled: bool = setting(False, "send orders for signals without a human")
    min_confidence: float = setting(0.8, "act only on BUY/SELL signals at least this confident", unit_interval)
    lots: float = setting(0.0, "order size (0 = size by risk.risk_pct)", non_negative)
    one_per_direction: bool = setting(True, "at most one open position per symbol and direction")
    max_signal_age_s: float = setting(
        10.0,
        "act only on signals whose tick is at most this old by this machine's UTC clock (0 = any age): the ticks a"
        " terminal queued while the daemon was down are not the market now",
        non_negative,
    )
    settle_after_break_s: float = setting(
        60.0,
        "after a break in a symbol's series (no tick for break_gap_s, another terminal taking it over, the daemon's"
        " start), act on none of its signals for this long in tick time: the indicators hold the jump (0 = off)",
        non_negative,
    )
    break_gap_s: float = setting(300.0, "a symbol's ticks this far apart are a break in its series (a weekend, an outage)", positive)
    refused_pause_s: float = setting(
        60.0,
        "after the risk rules or the terminal refuse an auto order, send none for that symbol and direction at that terminal"
        " for this long (0 = off): a market closed or a spread too wide refused every signal again, each one journaled",
        non_negative,
    )


@dataclass(frozen=True, kw_only=True)
class SidecarConfig:
    """The REST/WebSocket sidecar."""

    host: str = setting("127.0.0.1", "bind address (0.0.0.0 to serve phones; tokens still required)", listen_host)
    port: int = setting(8080, "HTTP port", port)
    tls_certfile: str = setting(
        "",
        "PEM certificate (its chain after it) to serve HTTPS and WSS with, with tls_keyfile (both or neither; read when the config loads);"
        " empty = plain HTTP, fit for loopback or behind a TLS reverse proxy only: passwords and tokens would cross the network readable",
        no_nul,
    )
    tls_keyfile: str = setting("", "PEM private key of tls_certfile, not encrypted (keep it readable by this user only)", no_nul)
    cors_origins: tuple[str, ...] = setting((), 'origins allowed by CORS, e.g. ["https://app.example"] (empty = CORS off)')
    access_ttl_s: int = setting(3600, "lifetime of an access token from /api/auth/login", positive)
    signals_min_confidence: float = setting(
        0.7,
        "GET /api/signals and get_signals without min_confidence return signals at least this confident:"
        " the app asks without it and, as with the seed app's bridge (0.7), means the actionable ones (BUY/SELL at the default thresholds)",
        unit_interval,
    )
    refresh_ttl_s: int = setting(7 * 86_400, "lifetime of a refresh token", positive)
    cli_token_ttl_s: int = setting(30 * 86_400, "default lifetime of `qt-daemon token` (the app stores it and cannot refresh)", positive)
    rate_per_token_per_s: float = setting(20.0, "requests per second per token (token bucket refill)", positive)
    rate_per_token_burst: int = setting(100, "burst size of the per-token bucket", positive)
    rate_per_ip_per_s: float = setting(50.0, "requests per second per client IP (several phones may share one)", positive)
    rate_per_ip_burst: int = setting(300, "burst size of the per-IP bucket", positive)
    login_per_min: float = setting(6.0, "login attempts per minute per client IP", positive)
    login_burst: int = setting(5, "login attempts allowed at once per client IP before the per-minute rate applies", positive)
    login_failures_per_name_per_min: float = setting(
        30.0,
        "failed logins per minute per user name, from all IPs together (caps distributed guessing; above the per-IP rate so one IP cannot lock a user out)",
        positive,
    )
    login_failures_per_name_burst: int = setting(10, "failed logins allowed at once per user name before its per-minute rate applies", positive)
    max_updates_per_s: float = setting(5.0, "price updates per symbol per second sent to WebSocket clients (latest wins)", positive)
    ws_queue_size: int = setting(1000, "undelivered signals/positions/trades/accounts per client before it is disconnected", positive)
    ws_max_clients: int = setting(2000, "WebSocket connections beyond this are refused", positive)
    ws_max_per_user: int = setting(20, "WebSocket connections one user may hold at once (phones, dashboards); beyond it refused", positive)
    ws_messages_per_s: float = setting(20.0, "messages per second a WebSocket client may send (excess answered with an error)", positive)
    ws_ping_interval_s: float = setting(20.0, "server WebSocket ping period", positive)
    ws_ping_timeout_s: float = setting(20.0, "a client that does not answer a ping within this is dropped", positive)
    body_timeout_s: float = setting(10.0, "a request body must arrive within this once its headers have (a client that stops mid-body gets a 400)", positive)
    ws_max_message_bytes: int = setting(65_536, "largest message a WebSocket client may send", positive)
    ws_auth_recheck_s: float = setting(
        5.0, "an open WebSocket's token is checked again this often (expiry, user removed, role changed); it is closed (1008) when it no longer passes", positive
    )
    recent_signals: int = setting(1000, "latest signals kept in memory from the feed (history comes from the store)", positive)
    control_timeout_ms: int = setting(2000, "wait for the daemon's reply to a query before a Lazy Pirate retry", positive)
    control_retries: int = setting(1, "retries of a query (trades are never resent: they wait one long timeout)", non_negative)
    feed_hwm: int = setting(100_000, "receive high-water mark of the sidecar's feed SUB (a loss shows as a seq gap)", positive)
    daemon_silence_s: float = setting(3.0, "no health on the feed for this long = the daemon is down (503 instead of 504)", positive)
    signal_query_budget_ms: int = setting(
        500,
        "most time one signal query may read the store: one that matches few rows walks the whole history (kept by default),"
        " decrypting it when encrypted; past this it answers with what it found and complete: false",
        positive,
    )
    signal_queries_waiting: int = setting(
        4,
        "signal history queries (GET /api/signals, WebSocket get_signals) that may wait for the store behind the one it runs;"
        " more are answered 503 (signal history busy, retry) with Retry-After at once instead of queueing",
        positive,
    )
    symbol_suffix: str = setting(
        "",
        'the broker\'s suffix on its symbol names ("m" for EURUSDm, ".r" for EURUSD.r): taken off every symbol the sidecar sends'
        " (the broker's name kept in broker_symbol) and put back on names apps send, so the app's fixed list (EURUSD, ...) matches;"
        " empty = names as the terminals send them",
        symbol_suffix,
    )


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    """The paper terminal: an EA as far as the daemon can tell."""

    terminal: str = setting("paper-1@QuantumTrader-Paper", "terminal id it announces", terminal_id)
    command_endpoint: str = setting("tcp://127.0.0.1:5560", "where its REP command socket binds", endpoint)
    symbols: tuple[str, ...] = setting(
        ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF"),
        "symbols of the built-in generator (ignored with --ticks)",
        symbol_list,
    )
    ticks_per_s: float = setting(50.0, "generator rate over all symbols (0 = as fast as possible)", non_negative)
    speed: float = setting(1.0, "replay speed of --ticks (1 = real time, 0 = as fast as possible)", non_negative)
    heartbeat_s: float = setting(5.0, "heartbeat period (the EA's HeartbeatSeconds); 0.1-3600 s, what a hello may announce", between(MIN_HEARTBEAT_S, MAX_HEARTBEAT_S))
    balance: float = setting(10_000.0, "starting balance", positive)
    currency: str = setting(
        "USD",
        "account currency: the paper book computes in USD; another name only labels those figures (for display tests), its specs then"
        " carry no tick value, so orders need lots",
        currency_name,
    )
    leverage: int = setting(100, "account leverage", positive)
    stop_out_pct: float = setting(50.0, "margin level (equity / margin x 100) below which the biggest loser is closed, as a broker's stop-out (0 = never)", non_negative)
    login: int = setting(1000001, "account login it reports", positive)
    seed: int = setting(7, "random seed of the generator", non_negative)


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """structlog output."""

    format: str = setting("auto", "auto (console on a TTY, JSON lines otherwise), console or json", one_of("auto", "console", "json"))
    level: str = setting("info", "debug, info, warning or error", one_of("debug", "info", "warning", "error"))
    dir: str = setting(
        "logs",
        "the daemon, sidecar and paper terminal also write their log here as JSON lines, one file each"
        " (daemon.log, sidecar.log, paper-<terminal>.log), rotated by size; relative to data_dir; empty = stderr only",
        no_nul,
    )
    rotate_mb: float = setting(20.0, "a log file is renamed to <name>.<UTC time of the rotation> when it reaches this size, in MB", positive)
    keep: int = setting(5, "rotated log files kept per process (0 = the current file is cut at rotate_mb and begun afresh)", non_negative)


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole effective configuration. Build it with :func:`load_config`."""

    data_dir: str = setting(DEFAULT_DATA_DIR, "data directory: store, users, secret, Numba cache", path_text)
    endpoints: EndpointsConfig = field(default_factory=EndpointsConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    auto_trade: AutoTradeConfig = field(default_factory=AutoTradeConfig)
    sidecar: SidecarConfig = field(default_factory=SidecarConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    def log_path(self, process: str) -> Path | None:
        """Where ``process`` writes its log file (``log.dir``), None when it writes none."""
        if not self.log.dir:
            return None
        from quantumtrader.log import log_file_name

        return self.data_path / Path(self.log.dir).expanduser() / log_file_name(process)


#: Cross-field rules, each returning (key, message) on failure.
def parse_symbol_map(entries: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """``execution.symbol_map`` as {(terminal, symbol): broker symbol}; checked when the config loads, so a
    malformed entry is a ConfigError naming the key (exit 2), not a traceback when the daemon is built."""
    out: dict[tuple[str, str], str] = {}
    for entry in entries:
        terminal, _, pair = entry.rpartition(":")
        canonical, _, broker = pair.partition("=")
        if not terminal or not canonical or not broker:
            raise ConfigError("execution.symbol_map", f'entry {entry!r} must look like "TERMINAL:SYMBOL=BROKER_SYMBOL"')
        out[(terminal, canonical)] = broker
    return out


def _check_whole(config: Config) -> None:
    # The feature kernel's own limits: checked here too, so a bad value is exit 2 naming the key when the config
    # loads, not a traceback when the daemon builds its kernels.
    check_params(config.features)
    parse_symbol_map(config.execution.symbol_map)
    s = config.signals
    total = s.weight_quantum + s.weight_chaos + s.weight_ml_ensemble + s.weight_technical
    if not math.isclose(total, 1.0, abs_tol=1e-9):  # repr: ":g" printed 1.000000002 as "1"
        raise ConfigError("signals.weight_*", f"weights must sum to 1 (they sum to {total!r})")
    if not s.sell_threshold < s.buy_threshold:
        raise ConfigError("signals.sell_threshold", "must be below signals.buy_threshold")
    # A cold symbol's components all say 0.5: thresholds on one side of it made "no opinion" a trade signal
    # (buy 0.9, sell 0.6: every first tick a SELL of confidence 0.5, which auto-trading may act on).
    if not s.sell_threshold <= 0.5 <= s.buy_threshold:
        raise ConfigError("signals.buy_threshold", f"signals.sell_threshold ({s.sell_threshold:g}) and buy_threshold ({s.buy_threshold:g}) must lie either side of 0.5, where a symbol without an opinion is")
    if s.sgd_learning_rate * s.sgd_l2 >= 1.0:  # each step multiplies the weights by (1 - rate x l2): at 1 or more they flip sign and grow
        raise ConfigError("signals.sgd_l2", f"signals.sgd_learning_rate x sgd_l2 must be below 1 (it is {s.sgd_learning_rate * s.sgd_l2:g}): the learner's weights would diverge")
    _check_risk(config.risk)
    auto = config.auto_trade
    _check_auto_lots(auto.lots, config.risk)
    if auto.settle_after_break_s and auto.break_gap_s <= s.interval_s:
        # signals re-published every interval_s would each look like a break, and auto-trading would never act
        raise ConfigError("auto_trade.break_gap_s", f"must be above signals.interval_s ({s.interval_s:g}): a signal comes at least that often while ticks do")
    top = re.split(r"[\\/]", config.log.dir, maxsplit=1)[0]  # its first name in the data directory, either separator
    if top and any(_same_file_name(top, name) for name in (config.store.file_name, *OTHER_DATA_NAMES)):
        raise ConfigError("log.dir", f"{config.log.dir} is a file of the data directory (the store or another, case ignored); pick another name")
    check_listeners(config)
    _check_remote(config.endpoints)
    _check_tls(config.sidecar)


#: Names of this machine only: the usual host names, and the loopback interface (ZeroMQ binds to an interface name).
_LOOPBACK_NAMES = frozenset(("localhost", "ip6-localhost", "ip6-loopback", "lo"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal, bracketed or not, or a name, as endpoints and sidecar.host take them) reaches
    this machine only: 127.0.0.0/8, ::1, localhost. Any other name may resolve anywhere, so it is not."""
    host = host.strip("[]").rstrip(".").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_remote(endpoints: EndpointsConfig) -> None:
    """The daemon's sockets have no authentication: one bound to every address loaded with an info line, and anyone
    on the network could trade, lift the kill switch and stop the daemon on control (a security review, 2026-12-06).
    Beyond loopback only when ``endpoints.allow_remote`` says so (the daemon then warns at start)."""
    if endpoints.allow_remote:
        return
    for name, bound, risk in remote_endpoints(endpoints):
        raise ConfigError(
            f"endpoints.{name}",
            f"{bound} is beyond this machine (the daemon binds it, the sidecar and the CLI connect to it), and the"
            f" daemon's sockets have no authentication ({risk}): keep it on 127.0.0.1, or set endpoints.allow_remote"
            " = true behind a firewall",
        )


#: What a stranger who reaches each endpoint can do (the config error and the start's warning say it).
_REMOTE_RISK = {
    "events": "anyone reaching it can speak as a terminal",
    "feed": "anyone reaching it reads every price, signal, position and account",
    "control": "anyone reaching it can trade, close, lift the kill switch and stop the daemon",
}


def remote_endpoints(endpoints: EndpointsConfig) -> list[tuple[str, str, str]]:
    """(setting, endpoint, what a stranger reaching it can do) of each endpoint bound beyond loopback."""
    out = []
    for name, risk in _REMOTE_RISK.items():
        bound = getattr(endpoints, name)
        parsed = parse_endpoint(bound)
        if parsed is not None and not is_loopback(parsed[0]):
            out.append((name, bound, risk))
    return out


def sidecar_tls(sc: SidecarConfig) -> tuple[Path, Path] | None:
    """The sidecar's (certificate, key) files, or None when it serves plain HTTP."""
    if not sc.tls_certfile:
        return None
    return Path(sc.tls_certfile).expanduser(), Path(sc.tls_keyfile).expanduser()


def _check_tls(sc: SidecarConfig) -> None:
    """Both TLS files or neither, each readable, and a key that matches its certificate: checked when the config
    loads (exit 2 naming the key), not when uvicorn starts, where a bad file ended the sidecar at every restart."""
    if bool(sc.tls_certfile) != bool(sc.tls_keyfile):
        given, missing = ("tls_certfile", "tls_keyfile") if sc.tls_certfile else ("tls_keyfile", "tls_certfile")
        raise ConfigError(f"sidecar.{missing}", f"is needed with sidecar.{given} (both or neither)")
    files = sidecar_tls(sc)
    if files is None:
        return
    for key, path in zip(("sidecar.tls_certfile", "sidecar.tls_keyfile"), files):
        try:
            with path.open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    import ssl  # here: only a config with TLS pays for it

    try:
        # The password callback: an encrypted key fails here instead of OpenSSL asking for it on the terminal.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(files[0], files[1], password=lambda: b"")
    except ssl.SSLError as exc:
        raise ConfigError(
            "sidecar.tls_keyfile", f"{files[1]} is not an unencrypted PEM key of the PEM certificate {files[0]} ({exc.reason or exc})"
        ) from None


def _check_auto_lots(lots: float, r: RiskConfig) -> None:
    """A fixed auto-trading size the risk rules refuse every time: it loaded, and every signal became a journaled
    refusal (below the minimum) or was skipped (above the symbol limit) while health said healthy (a hunt, 2026-12-06)."""
    if not lots:
        return
    if not r.lot_min <= lots <= r.lot_max:
        raise ConfigError("auto_trade.lots", f"({lots:g}) must be 0 (sized by risk) or lie from risk.lot_min ({r.lot_min:g}) to risk.lot_max ({r.lot_max:g})")
    if r.max_lots_per_symbol and lots > r.max_lots_per_symbol:
        raise ConfigError("auto_trade.lots", f"({lots:g}) is above risk.max_lots_per_symbol ({r.max_lots_per_symbol:g}): no auto order could be sent")


def _check_risk(r: RiskConfig) -> None:
    """Risk settings that clash: each loaded alone, and then every order was refused, for a reason that blamed the
    order ("stops are prices, not pips") when the daemon had set the stop itself (a hunt, 2026-12-06)."""
    if r.lot_min > r.lot_max:
        raise ConfigError("risk.lot_min", f"({r.lot_min:g}) must not be above risk.lot_max ({r.lot_max:g}): no size could pass")
    if r.min_stop_pct >= r.max_stop_pct:
        raise ConfigError("risk.min_stop_pct", f"({r.min_stop_pct:g}) must be below risk.max_stop_pct ({r.max_stop_pct:g}): no stop could pass")
    if not r.min_stop_pct <= r.default_stop_pct <= r.max_stop_pct:
        raise ConfigError(
            "risk.default_stop_pct",
            f"({r.default_stop_pct:g}) must lie from risk.min_stop_pct ({r.min_stop_pct:g}) to risk.max_stop_pct ({r.max_stop_pct:g}):"
            " the daemon's own default stops would be refused",
        )
    if r.max_default_stop_pct and not r.min_stop_pct <= r.max_default_stop_pct <= r.max_stop_pct:
        raise ConfigError(
            "risk.max_default_stop_pct",
            f"({r.max_default_stop_pct:g}) must be 0 (no cap) or lie from risk.min_stop_pct ({r.min_stop_pct:g}) to risk.max_stop_pct"
            f" ({r.max_stop_pct:g}): capped default stops would be refused",
        )

#: The hosts of the listeners that take a port on every address of the machine (brackets off, as uvicorn takes them).
_EVERY_ADDRESS = {host.strip("[]") for host in WILDCARD_HOSTS}  # "[::]" gives "::"


def _same_port(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two listeners (host, port) want one port of one machine: the same port on the same host, or either
    on every address. Hosts are compared as written (no lookup when a config loads), localhost as 127.0.0.1."""
    (host_a, port_a), (host_b, port_b) = ((("127.0.0.1" if h.lower() == "localhost" else h.strip("[]").lower()), p) for h, p in (a, b))
    return port_a == port_b and (host_a == host_b or host_a in _EVERY_ADDRESS or host_b in _EVERY_ADDRESS)


def check_listeners(config: Config, children: tuple[str, ...] = ()) -> None:
    """Every socket the daemon and the ``children`` ("paper", "sidecar") listen on has a port of its own. Two on one
    port loaded fine, then the second could not bind, at every restart: the paper terminal or the sidecar restarted
    for ever (the sidecar's hint blaming another program), the daemon's own endpoints a failed start. The
    daemon's are checked at every load, a child's only by the command that starts it or is it (``run --paper``,
    ``run``'s sidecar, ``paper``, ``sidecar``): checked at every load, a live setup's events port equal to the
    paper terminal's default refused every command, ``status`` and ``stop`` included (a review, 2026-12-05)."""
    eps = config.endpoints
    daemon = [(f"endpoints.{name}", parse_endpoint(getattr(eps, name))) for name in ("events", "feed", "control")]
    child_binds = {"paper": ("paper.command_endpoint", parse_endpoint(config.paper.command_endpoint)), "sidecar": ("sidecar.port", (config.sidecar.host, config.sidecar.port))}
    listeners = [(key, bind) for key, bind in (*daemon, *(child_binds[c] for c in children)) if bind is not None]  # None: refused by its own check
    for i, (key, bind) in enumerate(listeners):
        for earlier, other in listeners[:i]:
            if not _same_port(bind, other):
                continue
            if key.startswith("endpoints."):
                raise ConfigError("endpoints", f"events, feed and control must be different endpoints ({earlier} and {key} both listen on port {bind[1]})")
            raise ConfigError(key, f"port {bind[1]} on {bind[0]} is taken by {earlier} ({other[0]}:{other[1]}); pick another port")


# -- loading ---------------------------------------------------------------------


def _sections() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config) if dataclasses.is_dataclass(hints[f.name])}


def _coerce(key: str, kind: Any, value: Any, from_env: bool) -> Any:
    """Turn a TOML or environment value into ``kind``, or raise ConfigError."""
    if from_env and isinstance(value, str):
        text = value.strip()
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(key, f"expected true or false, got {value!r}")
        if get_origin(kind) is tuple:
            value = [part.strip() for part in text.split(",") if part.strip()]  # checked below as a file's list is
        if kind in (int, float):
            # Python's int() and float() also take "1_000" and other scripts' digits ("١٢"), which a TOML
            # file refuses: the environment takes what the file takes, ASCII without underscores.
            try:
                if not text.isascii() or "_" in text:
                    raise ValueError(text)
                value = kind(text)
            except ValueError:
                raise ConfigError(key, f"expected {kind.__name__}, got {value!r}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(key, f"expected a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return _utf8(key, value)
    if get_origin(kind) is tuple:
        (item,) = get_args(kind)[:1]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, item) for v in value):
            raise ConfigError(key, f"expected a list of {item.__name__}, got {value!r}")
        return tuple(_utf8(key, v) if isinstance(v, str) else v for v in value)
    raise ConfigError(key, f"unsupported setting type {kind!r}")  # pragma: no cover - a programming error


def _utf8(key: str, text: str) -> str:
    """``text`` unless it holds what UTF-8 cannot write: an environment variable of bytes in another encoding
    reaches Python as lone surrogates (PEP 383), and a paper terminal's id of such bytes was a TypeError
    traceback from the first event it encoded (a review, 2026-12-05). Every protocol frame is UTF-8 JSON."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(key, f"is not valid UTF-8 text: {text.encode('utf-8', 'backslashreplace').decode('ascii', 'backslashreplace')}") from None
    return text


def _build(cls: type, prefix: str, values: Mapping[str, Any], env: Mapping[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for name in (*values, *env):  # a misspelt QT_SECTION__KEY must not be ignored silently either
        if name not in known:
            raise ConfigError(f"{prefix}{name}", f"unknown setting (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        if f.name in env:
            kwargs[f.name] = _coerce(key, hints[f.name], env[f.name], from_env=True)
        elif f.name in values:
            kwargs[f.name] = _coerce(key, hints[f.name], values[f.name], from_env=False)
        else:
            continue
        value = kwargs[f.name]
        limit = MAX_INT_SETTING if hints[f.name] is int else MAX_FLOAT_SETTING if hints[f.name] is float else None
        if limit is not None and abs(value) > limit:
            shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
            raise ConfigError(key, f"must be from -{shown} to {shown} (got {value!r})")
        check = f.metadata.get("check")
        problem = check(kwargs[f.name]) if check else None
        if problem:
            raise ConfigError(key, f"{problem} (got {kwargs[f.name]!r})")
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``QT_SECTION__KEY=value`` -> {section: {key: value}}; unknown names are errors."""
    sections = _sections()
    out: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith("QT_"):
            continue
        if "__" not in name:
            # QT_SIDECAR_PORT was ignored without a word (and the daemon served on 8080). Refused only where the
            # name is one of our sections and one of its keys, so Qt's own variables (QT_QPA_PLATFORM...) and
            # ours that are no setting (QT_STORE_KEY, the store's key: store.encrypt_env) pass by.
            for section, kind in sections.items():
                key = name[3:].lower().removeprefix(section + "_")
                if key != name[3:].lower() and key in {f.name for f in fields(kind)}:
                    raise ConfigError(name, f"not read: two underscores between section and key (QT_{section.upper()}__{key.upper()})")
            continue
        section, _, key = name[3:].partition("__")
        section, key = section.lower(), key.lower()
        if section not in sections:
            raise ConfigError(name, f"unknown section {section!r} (known: {', '.join(sections)})")
        out.setdefault(section, {})[key] = value
    return out


#: A config file is a page or two: more than this is another file given by mistake (``--config /dev/zero`` read
#: until memory ran out: a MemoryError traceback, a review, 2026-12-05).
MAX_CONFIG_BYTES = 1_000_000


def _read_config_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        raw = handle.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError("--config", f"{path} is larger than {MAX_CONFIG_BYTES:,} bytes: not a config file")
    return raw


def _toml_text(raw: bytes) -> str:
    """A config file's text. TOML is UTF-8, but Windows tools write what they like: Notepad's "UTF-8" begins
    with a byte-order mark (which tomllib refuses at line 1, column 1) and PowerShell 5's ``>`` writes UTF-16
    (``qt-daemon config show > qt.toml``). Both are read as the file their author meant."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def load_config(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < TOML file < environment < ``overrides`` (dotted keys, e.g. ``"sidecar.port"``).

    Raises ConfigError naming the key on any unknown name or bad value.
    """
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            file_values = tomllib.loads(_toml_text(_read_config_file(p)))
        except FileNotFoundError:
            raise ConfigError("--config", f"file not found: {p}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("--config", f"{p} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses per nesting level: x = [[[[... 2,000 deep
            raise ConfigError("--config", f"{p} is not valid TOML: nested too deeply") from None
        except OSError as exc:  # a directory, no permission
            raise ConfigError("--config", f"cannot read {p}: {exc.strerror or exc}") from None
    env = _env_overrides(environ)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.rpartition(".")
        target = env.setdefault(section, {}) if section else env.setdefault("", {})
        target[key] = value
    sections = _sections()
    for name, value in file_values.items():
        if name not in sections and name != "data_dir":
            raise ConfigError(name, f"unknown section (known: data_dir, {', '.join(sections)})")
        if name in sections and not isinstance(value, dict):
            raise ConfigError(name, "must be a table")

    kwargs: dict[str, Any] = {}
    for name, cls in sections.items():
        section_env = {k: v for k, v in env.get(name, {}).items()}
        kwargs[name] = _build(cls, f"{name}.", file_values.get(name, {}), section_env)
    top_env: dict[str, Any] = dict(env.get("", {}))
    if "QT_DATA_DIR" in environ and "data_dir" not in top_env:
        top_env["data_dir"] = environ["QT_DATA_DIR"]
    top_file = {"data_dir": file_values["data_dir"]} if "data_dir" in file_values else {}
    top = _build(_TopLevel, "", top_file, top_env)
    config = Config(data_dir=top.data_dir, **kwargs)
    _check_whole(config)
    return config


@dataclass(frozen=True, kw_only=True)
class _TopLevel:
    data_dir: str = setting(DEFAULT_DATA_DIR, "data directory: store, users, secret, Numba cache", path_text)


# -- rendering -------------------------------------------------------------------


#: TOML's short escapes in a basic string; the other control characters are written \\uXXXX (TOML 1.0, "String").
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string. Escaping only backslash and quote wrote a tab or a newline in a value
    (QT_ settings can hold them) as itself, which TOML refuses: `config show` wrote a file that did not load."""
    escaped = (_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if c < " " or c == "\x7f" else c) for c in text)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def render_toml(config: Config, *, commented: bool) -> str:
    """The config as TOML; with ``commented``, each key preceded by its doc line."""
    lines: list[str] = []
    if commented:
        lines += [
            "# QuantumTrader configuration. Every key is optional: the built-in default is shown.",
            "# Environment overrides: QT_<SECTION>__<KEY>=value (e.g. QT_SIDECAR__PORT=9090), QT_DATA_DIR.",
            "",
            f"# {fields(_TopLevel)[0].metadata['doc']}",
        ]
    lines.append(f"data_dir = {_toml_value(config.data_dir)}")
    for name in _sections():
        section = getattr(config, name)
        lines += ["", f"[{name}]"]
        if commented and section.__doc__:
            lines.append(f"# {section.__doc__.strip().splitlines()[0]}")
        for f in fields(section):
            if commented:
                lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"


__all__ = [
    "Config",
    "ConfigError",
    "DaemonConfig",
    "EndpointsConfig",
    "ExecutionConfig",
    "RiskConfig",
    "AutoTradeConfig",
    "FeaturesConfig",
    "LogConfig",
    "PaperConfig",
    "SidecarConfig",
    "SignalsConfig",
    "StoreConfig",
    "load_config",
    "render_toml",
]

if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_toml(load_config(), commented=True))
