"""The wire contract (PROTOCOL.md, version 1): the one module that knows JSON shapes.

Everything that crosses a process boundary is decoded, validated and encoded
here: EA events (PUSH/PULL), commands and their replies (REQ/REP), feed
envelopes (PUB/SUB), the control socket (ROUTER) and the app objects the
sidecar serves. Other modules handle plain dicts whose shape this module
guarantees.

Validation never raises anything but :class:`ProtocolError`, whose ``reason``
is one of :data:`REJECT_REASONS`; callers count it and move on, so a bad
message can never crash or stall the loop. Decoded messages are the parsed
dicts themselves (no copies, no per-tick objects) because the tick path cannot
afford an allocation per field.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final

import orjson

PROTOCOL_VERSION: Final = 1

EVENT_TYPES: Final = ("hello", "tick", "account", "positions", "heartbeat", "bye")
COMMAND_TYPES: Final = ("open", "close", "modify", "snapshot", "ping")
CONTROL_TYPES: Final = ("status", "snapshot")

#: Every reason a message can be rejected for, so counters have a fixed set of keys.
REJECT_REASONS: Final = (
    "too_large",  # frame longer than the configured maximum; not even parsed
    "bad_json",  # not UTF-8 JSON (includes NaN/Infinity literals, which JSON does not have)
    "not_object",  # valid JSON but not an object (array, number, string, null)
    "bad_version",  # "v" missing or not 1
    "unknown_type",  # "type" missing, not a string, or not a message this socket carries
    "missing_field",  # a required field is absent
    "bad_type",  # a field has the wrong JSON type
    "bad_terminal",  # terminal id empty, too long or not a string
    "bad_symbol",  # symbol not 1-32 chars of [A-Za-z0-9._#+-]
    "bad_price",  # bid/ask not a number from MIN_PRICE to MAX_PRICE (a position's open price: from 0 to MAX_PRICE)
    "crossed_quote",  # ask < bid
    "bad_volume",  # volume not a number from 0 to MAX_VOLUME (1e15)
    "bad_time",  # time_msc not an integer, before 2000-01-01 or more than the allowed skew ahead
    "bad_seq",  # seq not an integer >= 0
    "bad_value",  # any other field outside its documented range
    "bad_id",  # command id not 1-20 chars of [A-Za-z0-9]
    "unknown_terminal",  # an event from a terminal that never said hello (counted once per session; its ticks of known symbols, heartbeats and bye are used)
    "not_registered",  # from a terminal not registered (no hello, nor a heartbeat with its fields): an account or positions event, or, after the first two daemon.heartbeat_s of the run, a tick of a symbol the daemon does not know (refused; the EAs send them again after the heartbeat that registers them)
    "too_many_terminals",  # an event of a new terminal id when daemon.max_terminals are known (refused)
    "too_many_symbols",  # a tick of a new symbol when daemon.max_symbols are known (refused)
    "internal_error",  # validation, or a handler or hook of a valid event, raised (a bug, a full disk): counted, logged, never raised into the loop
)

MIN_TIME_MSC: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIME_MSC: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last time an ISO string (and Python) can say
#: Milliseconds in a UTC day (the daily-loss day, retention, the default clock skew).
MS_PER_DAY: Final = 86_400_000
DEFAULT_MAX_SKEW_MS: Final = MS_PER_DAY  # one day ahead of the daemon's clock
MAX_TERMINAL_LEN: Final = 64
MAX_TEXT_LEN: Final = 256
#: An account event's ``currency`` at most (ISO 4217 codes are 3; brokers' own names, "USD.cent", a little more).
MAX_CURRENCY_LEN: Final = 16
MAX_SYMBOLS: Final = 4096
MAX_POSITIONS: Final = 10_000
#: MT5 tickets are ulong; orjson writes integers up to this and refuses larger ones.
MAX_TICKET: Final = 2**64 - 1
#: MQL's ``long``: what the EAs count ``seq`` and ``dropped`` in and send ``login`` and ``leverage`` as.
#: orjson reads integers up to 2^64 - 1; a seq of 2^64 - 1 after a 0 added a gap beyond 64 bits to
#: the terminal's lost_events, which health could then not serialize (found by tests/daemon/test_event_fuzz.py).
MAX_LONG: Final = 2**63 - 1
#: MQL's ``int``: the error codes a terminal answers with (GetLastError, trade server retcodes).
MIN_INT32: Final = -(2**31)
MAX_INT32: Final = 2**31 - 1
#: Most orders one ``orders`` control request may ask for (its ``limit``).
ORDERS_LIMIT_MAX: Final = 10_000
#: The longest a control request's caller may wait for the reply: an hour is past any order's outcome. Beyond
#: 2^31 - 1 ms pyzmq's poll raised OverflowError, after ``qt-daemon trade`` had sent its order.
CONTROL_TIMEOUT_MAX_MS: Final = 3_600_000

#: The characters of a symbol (PROTOCOL.md); config's sidecar.symbol_suffix is made of them too.
SYMBOL_CHARS: Final = r"[A-Za-z0-9._#+\-]"
_SYMBOL_RE: Final = re.compile(SYMBOL_CHARS + "{1,32}")
_ID_RE: Final = re.compile(r"[A-Za-z0-9]{1,20}")
#: tcp://HOST:PORT: a host name or IPv4 address, a bracketed IPv6 address, or '*'; ASCII digits only
#: (\d would take '٥', which int() reads and libzmq refuses).
_ENDPOINT_RE: Final = re.compile(r"tcp://(\*|[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})")
#: Hosts that mean "every interface": for binding; nothing can connect to them (libzmq refuses '*',
#: Windows refuses 0.0.0.0).
WILDCARD_HOSTS: Final = ("*", "0.0.0.0", "[::]")


def parse_endpoint(endpoint: Any) -> tuple[str, int] | None:
    """``tcp://HOST:PORT`` -> (host, port), or None if it is not one (TCP only: Windows has no ipc://).

    The one definition of an endpoint: the config's (which may bind to a
    wildcard), a hello's command endpoint (which the daemon must connect to)
    and :func:`connect_address` all read it here.
    """
    match = _ENDPOINT_RE.fullmatch(endpoint) if type(endpoint) is str else None
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        return None
    return match.group(1), int(match.group(2))


def connect_address(endpoint: str) -> str:
    """Where to connect to a socket bound at ``endpoint`` on this host: a wildcard bind is reached on loopback."""
    parsed = parse_endpoint(endpoint)
    if parsed is not None and parsed[0] in WILDCARD_HOSTS:
        return f"tcp://127.0.0.1:{parsed[1]}"
    return endpoint

#: Prices outside this range are no instrument's: a bid of 1e-300 next to a normal one made a return
#: whose square is inf, and the features' running variance inf for good (and saved with the state).
MIN_PRICE: Final = 1e-9
MAX_PRICE: Final = 1e12
#: Far beyond any tick's volume, and small enough that int(volume) is a JSON integer (orjson: 64 bits).
MAX_VOLUME: Final = 1e15
#: Beyond any account's balance, equity or margin and any position's profit, either sign. A terminal's 1e308 was
#: taken (finite), then its sums overflowed: the app read null where PROTOCOL.md has numbers.
MAX_MONEY: Final = 1e15
#: Lots in a terminal's fill or position: beyond any market's, as the daemon's own requests are bounded
#: (execution/engine.py). A fill of 1e308 lots was recorded and refused every later trade of the symbol.
MAX_LOTS: Final = MAX_PRICE
#: sent_ns is a monotonic clock in ns: a signed 64-bit value that a difference of two still fits.
_MAX_NS: Final = 2**62
_ID_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


class ProtocolError(ValueError):
    """A message broke the contract. ``reason`` is one of REJECT_REASONS.

    ``sender`` is set by :func:`decode_event` when the refused event still named a valid terminal and ``seq``:
    (terminal, seq). The daemon takes that seq as received (``TerminalRegistry.refused``), so a refused event is
    counted once, as a reject, not again as an event lost on the way (a hunt, 2026-12-06: five crossed quotes
    read "5 lost" on the console, and qt-bench took them for transport loss).
    """

    __slots__ = ("reason", "detail", "sender")

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.sender: tuple[str, int] | None = None


# -- field checks (each raises ProtocolError with the right reason) ---------------


def _get(msg: Mapping[str, Any], name: str) -> Any:
    try:
        return msg[name]
    except KeyError:
        raise ProtocolError("missing_field", f"{msg.get('type', 'message')} needs {name!r}") from None


def is_number(value: Any) -> bool:
    """A finite int or float: bool is an int subclass in Python, and JSON true is never a number here."""
    return (type(value) is float or type(value) is int) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return type(value) is int


#: The heartbeat periods a hello may announce, in seconds (the EA's HeartbeatSeconds is a whole number >= 1).
MIN_HEARTBEAT_S: Final = 0.1
MAX_HEARTBEAT_S: Final = 3600.0


def _number(msg: Mapping[str, Any], name: str, *, minimum: float | None = None, maximum: float | None = None, reason: str | None = None) -> float:
    """A finite JSON number; ``reason`` overrides bad_type/bad_value (e.g. bad_price)."""
    value = _get(msg, name)
    if not is_number(value):
        raise ProtocolError(reason or "bad_type", f"{name} must be a finite number, got {shorten(value)}")
    if minimum is not None and value < minimum:
        raise ProtocolError(reason or "bad_value", f"{name} must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ProtocolError(reason or "bad_value", f"{name} must be <= {maximum:g}, got {value!r}")
    return float(value)


def _money(msg: Mapping[str, Any], name: str) -> float:
    """An amount of an account's currency (balance, a position's profit): finite and at most MAX_MONEY either way."""
    return _number(msg, name, minimum=-MAX_MONEY, maximum=MAX_MONEY)


def _integer(msg: Mapping[str, Any], name: str, *, minimum: int | None = None, maximum: int | None = None, reason: str | None = None) -> int:
    value = _get(msg, name)
    if not _is_int(value):
        raise ProtocolError(reason or "bad_type", f"{name} must be an integer, got {shorten(value)}")
    if minimum is not None and value < minimum:
        raise ProtocolError(reason or "bad_value", f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ProtocolError(reason or "bad_value", f"{name} must be <= {maximum}, got {value}")
    return value


def _text(msg: Mapping[str, Any], name: str, *, max_len: int = MAX_TEXT_LEN, required: bool = True) -> str:
    if not required and name not in msg:
        return ""
    value = _get(msg, name)
    if type(value) is not str:
        raise ProtocolError("bad_type", f"{name} must be a string, got {shorten(value)}")
    if len(value) > max_len:
        raise ProtocolError("bad_value", f"{name} longer than {max_len} characters")
    return value


#: ASCII digits only: ``str.isdigit()`` also says yes to "²" and "٣", which ``int()`` then refuses.
_DECIMAL: Final = re.compile(r"-?[0-9]{1,20}")


def decimal(text: str) -> int | None:
    """A string of at most 20 ASCII digits (a leading minus allowed) as an int; None for anything else.

    For numbers that come as text (query strings, headers, ticket strings):
    one rule instead of ``isdigit()`` checks that let a "²" through to ``int()``.
    """
    return int(text) if _DECIMAL.fullmatch(text) else None


def positive_int(value: Any, high: int) -> int | None:
    """An int from 1 to ``high``, given as one (not a bool) or as its ASCII digits; None for anything else.

    Tickets and logins come both ways (the Dart app sends integers, we serve strings)."""
    if type(value) is str:
        value = decimal(value)
    return value if type(value) is int and 0 < value <= high else None


def msc_from_text(text: str, *, naive_is_utc: bool) -> int:
    """Integer ms since 1970, or an ISO-8601 time (``Z`` or an offset), as integer ms; ValueError otherwise.

    ``naive_is_utc``: a time without an offset is UTC (the API's ``since``:
    every time we serve is UTC), or refused (a tick file: a local time there
    is a mistake to name, not to guess).
    """
    text = text.strip()
    value = decimal(text)
    if value is not None:
        if value < 0:
            raise ValueError("time before 1970")
        if value > MAX_TIME_MSC:  # 20 digits parse, and past 64 bits no JSON encoder writes them (evaluate ended on one)
            raise ValueError("time after 9999-12-31")
        return value
    stamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if stamp.tzinfo is None:
        if not naive_is_utc:
            raise ValueError("time has no timezone; use ...Z for UTC")
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(round(stamp.timestamp() * 1000))


def cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, "..." at the end when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(value: Any) -> str:
    """``repr(value)``, cut to 40 characters: a message names a bad value, it does not echo a megabyte of it."""
    return cut(repr(value), 40)


_KNOWN_SYMBOLS: set[str] = set()  # symbols already validated: a set lookup instead of a regex per tick
_KNOWN_SYMBOLS_MAX = 100_000


#: The sides of an order and a position, as the wire carries them.
SIDES: Final = ("buy", "sell")


def order_side(value: Any) -> str | None:
    """A side asked for by a person or an app ("buy"/"sell" in any case) as the wire carries it, None if it is not one:
    the daemon's rule for a trade request, which the CLI applies before sending one."""
    if type(value) is str and value.lower() in SIDES:
        return value.lower()
    return None


def check_symbol(value: Any) -> str:
    """A symbol as PROTOCOL.md allows: 1-32 chars of [A-Za-z0-9._#+-]."""
    if type(value) is not str:  # first: an unhashable value must not reach the set lookup
        raise ProtocolError("bad_symbol", f"symbol must be 1-32 chars of [A-Za-z0-9._#+-], got {shorten(value)}")
    if value in _KNOWN_SYMBOLS:
        return value
    if _SYMBOL_RE.fullmatch(value) is None:
        raise ProtocolError("bad_symbol", f"symbol must be 1-32 chars of [A-Za-z0-9._#+-], got {shorten(value)}")
    if len(_KNOWN_SYMBOLS) < _KNOWN_SYMBOLS_MAX:  # bounded: a flood of distinct names cannot grow it forever
        _KNOWN_SYMBOLS.add(value)
    return value


def check_command_id(value: Any) -> str:
    """A command id: 1-20 chars of [A-Za-z0-9] (it goes into a 31-char MT4 comment as QT-<id>)."""
    if type(value) is not str or _ID_RE.fullmatch(value) is None:
        raise ProtocolError("bad_id", f"id must be 1-20 chars of [A-Za-z0-9], got {shorten(value)}")
    return value


def _time_msc(msg: Mapping[str, Any], name: str, now_msc: int, max_skew_ms: int) -> int:
    value = _get(msg, name)
    if not _is_int(value):
        raise ProtocolError("bad_time", f"{name} must be integer milliseconds, got {shorten(value)}")
    if value < MIN_TIME_MSC:
        raise ProtocolError("bad_time", f"{name} {value} is before 2000-01-01")
    if value > now_msc + max_skew_ms:
        raise ProtocolError("bad_time", f"{name} {value} is more than {max_skew_ms} ms ahead of the daemon's clock")
    return value


def _envelope(msg: Mapping[str, Any], now_msc: int, max_skew_ms: int) -> None:
    """The fields every event carries: terminal, seq, time_msc."""
    terminal = _get(msg, "terminal")
    if type(terminal) is not str or not 0 < len(terminal) <= MAX_TERMINAL_LEN:
        raise ProtocolError("bad_terminal", f"terminal must be a string of 1-{MAX_TERMINAL_LEN} chars, got {shorten(terminal)}")
    seq = _get(msg, "seq")
    if not _is_int(seq) or not 0 <= seq <= MAX_LONG:
        raise ProtocolError("bad_seq", f"seq must be an integer from 0 to 2^63-1, got {shorten(seq)}")
    _time_msc(msg, "time_msc", now_msc, max_skew_ms)


# -- events: EA -> daemon --------------------------------------------------------


def _check_tick(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    check_symbol(_get(msg, "symbol"))
    bid = _get(msg, "bid")
    ask = _get(msg, "ask")
    if not is_number(bid) or not MIN_PRICE <= bid <= MAX_PRICE:
        raise ProtocolError("bad_price", f"bid must be a number from {MIN_PRICE:g} to {MAX_PRICE:g}, got {shorten(bid)}")
    if not is_number(ask) or not MIN_PRICE <= ask <= MAX_PRICE:
        raise ProtocolError("bad_price", f"ask must be a number from {MIN_PRICE:g} to {MAX_PRICE:g}, got {shorten(ask)}")
    if ask < bid:
        raise ProtocolError("crossed_quote", f"ask {ask!r} < bid {bid!r}")
    volume = _get(msg, "volume")
    if not is_number(volume) or not 0 <= volume <= MAX_VOLUME:
        raise ProtocolError("bad_volume", f"volume must be a number from 0 to {MAX_VOLUME:g}, got {shorten(volume)}")
    for name in ("open", "high", "low"):
        if name in msg:
            value = msg[name]
            if not is_number(value) or value <= 0:
                raise ProtocolError("bad_price", f"{name} must be a finite number > 0, got {shorten(value)}")
    if "sent_ns" in msg:
        if not _is_int(msg["sent_ns"]):
            raise ProtocolError("bad_type", "sent_ns must be an integer")
        if not 0 <= msg["sent_ns"] < _MAX_NS:
            raise ProtocolError("bad_value", f"sent_ns must be from 0 to 2^62, got {shorten(msg['sent_ns'])}")


def check_run(msg: Mapping[str, Any]) -> None:
    """The optional ``run`` (added): the number of the EA's run that numbered the message's ``seq``.

    An EA's ``seq`` restarts at 0 with each hello; ``run`` grows from one run
    to the next (our EAs take this machine's UTC milliseconds at the hello,
    above the last run's), so (run, seq) orders a terminal's events across
    re-initialisations, which ``seq`` alone cannot (see with_event_seq)."""
    if "run" in msg:
        _integer(msg, "run", minimum=0, maximum=MAX_LONG, reason="bad_seq")


def _check_hello(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    check_run(msg)
    _text(msg, "platform", max_len=16)
    endpoint = _text(msg, "command_endpoint", max_len=128)
    parsed = parse_endpoint(endpoint)
    if parsed is None or parsed[0] in WILDCARD_HOSTS:
        raise ProtocolError("bad_value", f"command_endpoint must be tcp://HOST:PORT that the daemon can connect to (not a wildcard: {', '.join(WILDCARD_HOSTS)}), got {shorten(endpoint)}")
    symbols = _get(msg, "symbols")
    if type(symbols) is not list or len(symbols) > MAX_SYMBOLS:
        raise ProtocolError("bad_type", f"symbols must be a list of at most {MAX_SYMBOLS} symbols")
    for symbol in symbols:
        check_symbol(symbol)
    if "specs" in msg:
        _check_specs(msg["specs"])
    if "heartbeat_s" in msg:
        # Bounded both ways: 3 x 1e300 overflowed to inf (never stale: the symbols held for good),
        # and a few ms made a terminal flap stale on every pass.
        heartbeat = _number(msg, "heartbeat_s", minimum=MIN_HEARTBEAT_S)
        if heartbeat > MAX_HEARTBEAT_S:
            raise ProtocolError("bad_value", f"heartbeat_s must be <= {MAX_HEARTBEAT_S:g}, got {heartbeat!r}")


#: A symbol's trading specs as the broker has them (an added, optional ``specs`` field of hello and
#: heartbeat: {symbol: {field: number}}). tick_value is the account currency's value of one tick_size
#: move of one lot, which is what sizing a position by its stop needs; 0 means the terminal does not know.
SYMBOL_SPEC_FIELDS: Final = ("contract_size", "tick_size", "tick_value", "volume_min", "volume_step", "volume_max")
#: The smallest spec value other than 0 (the EAs write 8 decimals), and the largest (a contract of 10^12
#: units is none a broker has): outside them sizing's arithmetic overflowed.
MIN_SPEC_VALUE: Final = 1e-8
MAX_SPEC_VALUE: Final = 1e12


def spec_in_range(value: float) -> bool:
    """A known spec value the protocol takes (0, "not known", is the other)."""
    return MIN_SPEC_VALUE <= value <= MAX_SPEC_VALUE


def _check_specs(specs: Any) -> None:
    if type(specs) is not dict or len(specs) > MAX_SYMBOLS:
        raise ProtocolError("bad_type", f"specs must be an object of at most {MAX_SYMBOLS} symbols")
    for symbol, spec in specs.items():
        check_symbol(symbol)
        if type(spec) is not dict:
            raise ProtocolError("bad_type", f"specs[{symbol}] must be an object of {', '.join(SYMBOL_SPEC_FIELDS)}")
        for name in SYMBOL_SPEC_FIELDS:
            if name not in spec:
                raise ProtocolError("missing_field", f"specs[{symbol}] needs {name!r}")
            value = spec[name]
            # 0 (not known) or at least 1e-8, the EA's last decimal: a step of 1e-320 overflowed the lot rounding
            if not is_number(value) or not (value == 0 or spec_in_range(value)):
                raise ProtocolError("bad_value", f"specs[{symbol}].{name} must be 0 or from {MIN_SPEC_VALUE:g} to {MAX_SPEC_VALUE:g}, got {shorten(value)}")


def _check_account(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    _integer(msg, "login", minimum=0, maximum=MAX_LONG)
    _text(msg, "currency", max_len=MAX_CURRENCY_LEN)
    for name in ("balance", "equity", "margin", "free_margin"):
        _money(msg, name)
    _integer(msg, "leverage", minimum=0, maximum=MAX_LONG)
    for name in ("name", "server", "company"):
        _text(msg, name, required=False)


def check_position(pos: Any, now_msc: int, max_skew_ms: int = DEFAULT_MAX_SKEW_MS) -> None:
    """One entry of a ``positions`` event (also of a snapshot reply)."""
    if type(pos) is not dict:
        raise ProtocolError("bad_type", "each position must be an object")
    _integer(pos, "ticket", minimum=1)
    check_symbol(_get(pos, "symbol"))
    if _get(pos, "side") not in SIDES:
        raise ProtocolError("bad_value", f"side must be 'buy' or 'sell', got {shorten(pos['side'])}")
    _number(pos, "lots", minimum=0.0, maximum=MAX_LOTS)
    # 0 taken: one entry refused drops the whole list (the daemon keeps a stale book), and the EAs write a NaN as 0
    _number(pos, "open_price", minimum=0.0, maximum=MAX_PRICE, reason="bad_price")
    _number(pos, "sl", minimum=0.0, maximum=MAX_PRICE)  # 0: none
    _number(pos, "tp", minimum=0.0, maximum=MAX_PRICE)
    for name in ("profit", "swap", "commission"):
        _money(pos, name)
    _integer(pos, "magic")
    _text(pos, "comment", max_len=64)
    _time_msc(pos, "open_time_msc", now_msc, max_skew_ms)


def _check_positions(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    check_run(msg)
    check_positions(_get(msg, "positions"), now_msc, max_skew_ms)


def check_positions(positions: Any, now_msc: int, max_skew_ms: int = DEFAULT_MAX_SKEW_MS) -> None:
    """A ``positions`` list as an event or a snapshot reply carries it (also a paper terminal's saved book's)."""
    if type(positions) is not list or len(positions) > MAX_POSITIONS:
        raise ProtocolError("bad_type", f"positions must be a list of at most {MAX_POSITIONS}")
    for pos in positions:
        check_position(pos, now_msc, max_skew_ms)
    if len({pos["ticket"] for pos in positions}) != len(positions):  # the second silently replaced the first
        raise ProtocolError("bad_value", "positions holds a ticket twice")


def _check_heartbeat(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    _integer(msg, "dropped", minimum=0, maximum=MAX_LONG)
    # Added to the contract: a heartbeat may repeat the hello fields, so a daemon
    # that restarted while the EA kept running (ZeroMQ reconnects silently, so
    # the EA never says hello again) can register the terminal and reach it.
    if "command_endpoint" in msg:
        _check_hello(msg, now_msc, max_skew_ms)
    elif "specs" in msg:  # specs alone refresh a registered terminal's (Daemon.handle_heartbeat): checked the same
        _check_specs(msg["specs"])


def _check_bye(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> None:
    _text(msg, "reason", required=False)


def _plain_tick(msg: dict[str, Any], now_msc: int, max_skew_ms: int) -> bool:
    """True for a tick the full checks (version, ``_envelope`` + ``_check_tick``) would accept, decided in one pass.

    The hot path: the everyday shape only (float prices, a symbol seen
    before, no open/high/low). Anything else, every invalid tick included,
    answers False and goes through the full checks, which name the reason;
    this accepts nothing they refuse (a property test holds it to that).
    """
    get = msg.get
    version = get("v")
    terminal = get("terminal")
    seq = get("seq")
    t = get("time_msc")
    symbol = get("symbol")
    bid = get("bid")
    ask = get("ask")
    volume = get("volume")
    return (
        type(version) is int
        and version == PROTOCOL_VERSION
        and get("type") == "tick"
        and type(terminal) is str
        and 0 < len(terminal) <= MAX_TERMINAL_LEN
        and type(seq) is int
        and 0 <= seq <= MAX_LONG
        and type(t) is int
        and MIN_TIME_MSC <= t <= now_msc + max_skew_ms
        and type(symbol) is str
        and symbol in _KNOWN_SYMBOLS
        and type(bid) is float
        and type(ask) is float
        and MIN_PRICE <= bid <= ask <= MAX_PRICE  # NaN fails every comparison
        and (type(volume) is float or type(volume) is int)
        and 0 <= volume <= MAX_VOLUME  # NaN fails it
        and type(sent_ns := get("sent_ns", 0)) is int
        and 0 <= sent_ns < _MAX_NS
        and "open" not in msg
        and "high" not in msg
        and "low" not in msg
    )


_EVENT_CHECKS: Final = {
    "tick": _check_tick,  # first: the hot path's dict lookup hits it most
    "hello": _check_hello,
    "account": _check_account,
    "positions": _check_positions,
    "heartbeat": _check_heartbeat,
    "bye": _check_bye,
}


def _parse(raw: bytes, max_bytes: int | None) -> dict[str, Any]:
    """One frame -> one JSON object, or ProtocolError (too_large, bad_json, not_object)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise ProtocolError("too_large", f"frame of {len(raw)} bytes exceeds {max_bytes}")
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", str(exc)[:120]) from None
    if type(msg) is not dict:
        raise ProtocolError("not_object", f"expected a JSON object, got {type(msg).__name__}")
    return msg


def _check_version(msg: dict[str, Any]) -> None:
    if msg.get("v") != PROTOCOL_VERSION or type(msg.get("v")) is not int:
        raise ProtocolError("bad_version", f"v must be {PROTOCOL_VERSION}, got {shorten(msg.get('v'))}")


def parse_object(raw: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """One frame -> one JSON object with ``"v": 1``, or ProtocolError."""
    msg = _parse(raw, max_bytes)
    _check_version(msg)
    return msg


def decode_event(
    raw: bytes,
    now_msc: int,
    *,
    max_bytes: int | None = None,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> dict[str, Any]:
    """Decode and validate one EA event frame (PROTOCOL.md, "Events").

    ``now_msc`` is the daemon's clock, passed in so that tests control it and
    the loop reads the clock once per batch, not per message.
    """
    msg = _parse(raw, max_bytes)
    # The everyday tick in one pass of checks (version included): per tick,
    # the calls of the full checks below cost more than the checks themselves.
    # Anything else, every invalid tick included, goes the full way, which
    # names the reason.
    if _plain_tick(msg, now_msc, max_skew_ms):
        return msg
    try:
        _check_version(msg)
        kind = msg.get("type")
        check = _EVENT_CHECKS.get(kind) if type(kind) is str else None
        if check is None:
            raise ProtocolError("unknown_type", f"not an event type: {shorten(msg.get('type'))}")
        _envelope(msg, now_msc, max_skew_ms)
        check(msg, now_msc, max_skew_ms)
    except ProtocolError as exc:
        exc.sender = _sender(msg)
        raise
    return msg


def _sender(msg: dict[str, Any]) -> tuple[str, int] | None:
    """A refused event's terminal and seq when both are valid (see :class:`ProtocolError`), else None."""
    terminal = msg.get("terminal")
    seq = msg.get("seq")
    if type(terminal) is str and 0 < len(terminal) <= MAX_TERMINAL_LEN and _is_int(seq) and 0 <= seq <= MAX_LONG:
        return terminal, seq
    return None


def now_msc() -> int:
    """Wall clock in integer ms since the epoch (UTC), as ``*_msc`` fields are."""
    return time.time_ns() // 1_000_000


# -- commands: daemon -> EA, and replies -----------------------------------------


def new_command_id() -> str:
    """A fresh 10-char id (Crockford base32, ~50 bits): the order's idempotency key."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def _command(kind: str, command_id: str, **fields: Any) -> dict[str, Any]:
    check_command_id(command_id)
    return {"v": PROTOCOL_VERSION, "type": kind, "id": command_id, **fields}


def open_command(
    command_id: str,
    symbol: str,
    side: str,
    lots: float,
    *,
    sl: float = 0.0,
    tp: float = 0.0,
    deviation_points: int = 10,
    magic: int = 0,
) -> dict[str, Any]:
    """A market order. ``sl``/``tp`` 0 means none."""
    check_symbol(symbol)
    if side not in SIDES:
        raise ProtocolError("bad_value", f"side must be 'buy' or 'sell', got {side!r}")
    return _command(
        "open",
        command_id,
        symbol=symbol,
        side=side,
        lots=float(lots),
        sl=float(sl),
        tp=float(tp),
        deviation_points=int(deviation_points),
        magic=int(magic),
    )


#: Our EAs' (and the paper terminal's) error code refusing a close whose position is already smaller than the
#: ``position_lots`` it was asked against (:func:`close_command`). In MQL5's range for user errors (65536 up).
CLOSE_ALREADY_RAN: Final = 65601


def close_command(command_id: str, ticket: int, lots: float = 0.0, position_lots: float = 0.0) -> dict[str, Any]:
    """Close a position; ``lots`` 0 closes the whole of it.

    ``position_lots`` (an added field, sent when known): the position's lots when the close was asked. The
    paper terminal, finding the position already smaller, refuses with :data:`CLOSE_ALREADY_RAN` instead of
    closing again: a retry of a partial close whose first try ran (its reply cache gone) closed what the trader
    meant to keep. The MT5 EA ignores it and looks for the close's own deal in the position's history."""
    if position_lots > 0:
        return _command("close", command_id, ticket=int(ticket), lots=float(lots), position_lots=float(position_lots))
    return _command("close", command_id, ticket=int(ticket), lots=float(lots))


def modify_command(command_id: str, ticket: int, sl: float, tp: float) -> dict[str, Any]:
    return _command("modify", command_id, ticket=int(ticket), sl=float(sl), tp=float(tp))


#: Our EAs' (and the paper terminal's) error code refusing a trade command whose ``login`` is not the
#: account the terminal is logged in to now (:func:`for_account`). Not executed: a plain refusal.
WRONG_ACCOUNT: Final = 65602


def for_account(command: dict[str, Any], login: int) -> dict[str, Any]:
    """``command`` with the account it is meant for (an added field; 0: not known, left out).

    The terminal refuses it logged in to another account (:data:`WRONG_ACCOUNT`): a trader who switched
    the terminal from a demo to a live account while the daemon was still retrying a command got it run
    on the live one. With the default terminal id (login@server) the switch makes a new terminal id, but
    the command port, and the commands in flight to it, are the same EA's."""
    return {**command, "login": int(login)} if login > 0 else command


def snapshot_command(command_id: str) -> dict[str, Any]:
    return _command("snapshot", command_id)


def ping_command(command_id: str) -> dict[str, Any]:
    return _command("ping", command_id)


def _check_open(msg: dict[str, Any]) -> None:
    _check_login(msg)
    check_symbol(_get(msg, "symbol"))
    if _get(msg, "side") not in SIDES:
        raise ProtocolError("bad_value", "side must be 'buy' or 'sell'")
    if _number(msg, "lots", minimum=0.0) <= 0:
        raise ProtocolError("bad_value", "lots of an open must be > 0")  # as the EAs' QtValidateCommand
    _number(msg, "sl", minimum=0.0)
    _number(msg, "tp", minimum=0.0)
    _integer(msg, "deviation_points", minimum=0)
    _integer(msg, "magic", minimum=0)


def _check_login(msg: dict[str, Any]) -> None:
    if "login" in msg:
        _integer(msg, "login", minimum=1, maximum=MAX_LONG)


def _check_close(msg: dict[str, Any]) -> None:
    _check_login(msg)
    _integer(msg, "ticket", minimum=1)
    _number(msg, "lots", minimum=0.0)
    if "position_lots" in msg:
        _number(msg, "position_lots", minimum=0.0)


def _check_modify(msg: dict[str, Any]) -> None:
    _check_login(msg)
    _integer(msg, "ticket", minimum=1)
    _number(msg, "sl", minimum=0.0)
    _number(msg, "tp", minimum=0.0)


def _check_nothing(msg: dict[str, Any]) -> None:
    return None


_COMMAND_CHECKS: Final = {
    "open": _check_open,
    "close": _check_close,
    "modify": _check_modify,
    "snapshot": _check_nothing,
    "ping": _check_nothing,
}


def decode_command(raw: bytes) -> dict[str, Any]:
    """Decode a command as an EA (or the paper terminal) receives it."""
    msg = parse_object(raw)
    kind = msg.get("type")
    check = _COMMAND_CHECKS.get(kind) if type(kind) is str else None
    if check is None:
        raise ProtocolError("unknown_type", f"not a command type: {shorten(msg.get('type'))}")
    check_command_id(_get(msg, "id"))
    check(msg)
    return msg


def reply_ok(command_id: str, **fields: Any) -> dict[str, Any]:
    """A success reply: ``ticket``, ``price``, ``lots``, ``time_msc`` for trades."""
    return {"v": PROTOCOL_VERSION, "type": "reply", "id": command_id, "ok": True, **fields}


def reply_error(command_id: str, code: int, message: str) -> dict[str, Any]:
    """A failure reply with the terminal's own error code and text."""
    return {
        "v": PROTOCOL_VERSION,
        "type": "reply",
        "id": command_id,
        "ok": False,
        "error": {"code": int(code), "message": message},
    }


def with_event_seq(reply: dict[str, Any], last_seq: int, run: int | None = None) -> dict[str, Any]:
    """``reply`` with ``event_seq``: the seq of the last event the terminal built before it ran the command.

    An event of that terminal with a greater seq (and no hello between) was
    built after the command ran, so a positions event's list shows its
    outcome. The daemon counts only those when it decides from positions
    events that a fill closed or an unknown order never ran: events built
    before the command, still queued while the daemon is behind, cannot
    know of it. ``last_seq`` below 0 (no event yet) adds nothing. ``run``
    (the run that numbered it, as in its hello and positions events) says
    which numbering ``event_seq`` is in when the EA re-initialised while the
    daemon was behind: (run, seq) above (run, event_seq) came after.
    """
    if last_seq < 0:
        return reply
    return {**reply, "event_seq": last_seq} if run is None else {**reply, "event_seq": last_seq, "run": run}


def decode_reply(raw: bytes, clock_msc: int | None = None) -> dict[str, Any]:
    """Decode an EA's reply to a command (PROTOCOL.md, "Commands")."""
    msg = parse_object(raw)
    if msg.get("type") != "reply":
        raise ProtocolError("unknown_type", f"expected a reply, got {shorten(msg.get('type'))}")
    check_command_id(_get(msg, "id"))
    ok = _get(msg, "ok")
    if type(ok) is not bool:
        raise ProtocolError("bad_type", "ok must be true or false")
    if "event_seq" in msg:  # added: the last event the terminal built before it ran the command (see with_event_seq)
        _integer(msg, "event_seq", minimum=0, maximum=MAX_LONG, reason="bad_seq")
        check_run(msg)
    if ok:
        if "ticket" in msg:
            _integer(msg, "ticket", minimum=0, maximum=MAX_TICKET)
        if "price" in msg:
            _number(msg, "price", minimum=0.0, maximum=MAX_PRICE)
        if "lots" in msg:
            _number(msg, "lots", minimum=0.0, maximum=MAX_LOTS)
        if "time_msc" in msg:
            _integer(msg, "time_msc", minimum=0, reason="bad_time")
        if "stops_error" in msg:  # opened, but the stops set after the fill were refused (MT4 StopsAfterFill)
            stops = msg["stops_error"]
            if type(stops) is not dict:
                raise ProtocolError("bad_type", "stops_error must be an object")
            _integer(stops, "code", minimum=MIN_INT32, maximum=MAX_INT32)
            _text(stops, "message", max_len=1024)
        if "account" in msg:
            account = msg["account"]
            if type(account) is not dict:
                raise ProtocolError("bad_type", "account must be an object")
            _check_account(account, 0, 0)
        if "positions" in msg:
            _check_positions(msg, clock_msc if clock_msc is not None else now_msc(), DEFAULT_MAX_SKEW_MS)
    else:
        error = _get(msg, "error")
        if type(error) is not dict:
            raise ProtocolError("bad_type", "error must be an object")
        _integer(error, "code", minimum=MIN_INT32, maximum=MAX_INT32)
        _text(error, "message", max_len=1024)
    return msg


def encode(msg: Mapping[str, Any]) -> bytes:
    """One message -> one frame. NaN becomes null (orjson), never invalid JSON."""
    return orjson.dumps(msg)


# -- events, as the sending side builds them (paper terminal, tests, benches) ----


def event(kind: str, terminal: str, seq: int, time_msc: int, **fields: Any) -> dict[str, Any]:
    """An EA event with the common envelope. The shape is checked by decode_event."""
    return {"v": PROTOCOL_VERSION, "type": kind, "terminal": terminal, "seq": seq, "time_msc": time_msc, **fields}


# -- control socket: sidecar/CLI -> daemon ROUTER (project-defined) --------------
#
# Request:  {"v":1, "type": <CONTROL_TYPES or a trade op>, "id": "<any short string>", ...}
# Reply:    {"v":1, "type":"reply", "id": <same>, "ok": true, ...} or ok false with "error": "<text>".


def decode_control(raw: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """Decode a control request. The id is echoed back so a client can match replies."""
    msg = parse_object(raw, max_bytes)
    kind = msg.get("type")
    if type(kind) is not str or not kind:
        raise ProtocolError("unknown_type", "control request needs a string type")
    if control_id(msg) is None:
        raise ProtocolError("bad_id", "control id must be a string of at most 64 chars")
    return msg


def control_id(msg: Mapping[str, Any]) -> str | None:
    """A control request's id ("" when absent), or None if it is not a string of at most 64 chars."""
    req_id = msg.get("id", "")
    return req_id if type(req_id) is str and len(req_id) <= 64 else None


#: Fields of a control request that may differ between tries of one request: its id, and when its requester stops
#: waiting (the sidecar sets it per try). Everything else is what the request asks.
_PER_TRY: Final = frozenset(("v", "id", "expires_msc"))


def request_fingerprint(request: Mapping[str, Any]) -> str:
    """A hash of what a control request asks (its type and fields, not :data:`_PER_TRY`), to tell a retry of a
    request from another request under the same id: the daemon's order keeps it, and the sidecar compares
    requests in flight with it. "" when it cannot be encoded (nothing is compared then)."""
    try:
        asked = orjson.dumps({k: v for k, v in request.items() if k not in _PER_TRY}, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return ""
    return hashlib.sha256(asked).hexdigest()[:24]


def request_id_reused(request_id: str, first: str) -> str:
    """The refusal of another request under a used id (an app's Idempotency-Key), ``first`` naming the first one's."""
    return f"request id {request_id!r} (an Idempotency-Key) was used for another request ({first}); a retry must repeat the same request, a new request needs a new key"


def control_request(kind: str, req_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": kind, "id": req_id or new_command_id(), **fields}


def control_reply(req_id: str, ok: bool = True, error: str | None = None, **fields: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": "reply", "id": req_id, "ok": ok, **fields}
    if error is not None:
        msg["error"] = error
    return msg


# -- feed: daemon PUB -> subscribers ---------------------------------------------

FEED_TYPES: Final = {
    "price": "price_update",
    "signal": "signal",
    "features": "features",
    "position": "position_update",
    "account": "account_update",
    "trade": "trade_update",
    "health": "health",
}


def iso_from_msc(time_msc: int) -> str:
    """``1705314645123`` -> ``"2024-01-15T10:30:45.123Z"`` (what the apps parse)."""
    seconds, millis = divmod(int(time_msc), 1000)
    return _iso_second(seconds) + _ISO_MILLIS[millis]


#: ".000Z" .. ".999Z": a tuple lookup is a third of the cost of formatting, once per tick.
_ISO_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))


_iso_cache: dict[int, str] = {}


def _iso_second(seconds: int) -> str:
    # Ticks arrive many per second: format each second once.
    text = _iso_cache.get(seconds)
    if text is None:
        if len(_iso_cache) > 4096:
            _iso_cache.clear()
        text = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_cache[seconds] = text
    return text


def feed_topic(kind: str, symbol: str | None = None) -> bytes:
    """``price`` + ``EURUSD`` -> ``b"price.EURUSD"``; topics without symbol are bare."""
    topic = _topics.get((kind, symbol))
    if topic is None:
        if len(_topics) > 4 * MAX_SYMBOLS:  # bounded whatever symbols come and go
            _topics.clear()
        topic = _topics[(kind, symbol)] = f"{kind}.{symbol}".encode() if symbol else kind.encode()
    return topic


_topics: dict[tuple[str, str | None], bytes] = {}


def feed_frames(kind: str, data: Mapping[str, Any] | orjson.Fragment, time_msc: int, seq: int, symbol: str | None = None, timestamp: str | None = None) -> list[bytes]:
    """The two PUB frames: topic, then the exact envelope the WebSocket sends apps.

    ``seq`` (added to the contract's envelope) numbers every feed message so a
    subscriber that also took a control ``snapshot`` can drop what the snapshot
    already holds (the guide's clone pattern). ``timestamp`` is the ISO form of
    ``time_msc`` when the caller has it already (ticks do). ``v`` because every
    daemon message carries it (PROTOCOL.md, "Transport"): a subscriber that
    checks the version must not drop the feed.
    """
    envelope = {"v": PROTOCOL_VERSION, "type": FEED_TYPES[kind], "data": data, "timestamp": timestamp or iso_from_msc(time_msc), "seq": seq}
    return [feed_topic(kind, symbol), orjson.dumps(envelope)]


def sidecar_envelope(kind: str, data: Mapping[str, Any], time_msc: int) -> bytes:
    """A feed-shaped message the sidecar itself sends its WebSocket clients (no ``seq``: not the daemon's feed)."""
    return orjson.dumps({"v": PROTOCOL_VERSION, "type": FEED_TYPES[kind], "data": data, "timestamp": iso_from_msc(time_msc)})


def decode_feed(frames: Sequence[bytes]) -> tuple[str, dict[str, Any]]:
    """Subscriber side: (topic, envelope). Raises ProtocolError on a malformed message."""
    if len(frames) != 2:
        raise ProtocolError("bad_type", f"feed messages have 2 frames, got {len(frames)}")
    try:
        envelope = orjson.loads(frames[1])
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", str(exc)[:120]) from None
    if type(envelope) is not dict or "type" not in envelope or "data" not in envelope:
        raise ProtocolError("not_object", "feed envelope needs type and data")
    return frames[0].decode("utf-8", "replace"), envelope


def price_update(tick: Mapping[str, Any], owner: bool = True) -> dict[str, Any]:
    """Feed ``price_update`` data from a validated tick; ``owner``: whether its terminal owns the symbol's series.

    ``owner`` (added) tells a client which terminal's prices are the symbol's quote where several stream it (two
    brokers, 1-2 pips apart): the app, which reads no ``terminal``, showed EURUSD flipping between them.

    The tick's ``sent_ns`` (our addition: the paper terminal and the bench
    sender stamp it with ``time.perf_counter_ns()``) goes along when there is
    one, so that a client on the same machine measures tick -> client with
    the one clock every process shares (qt-bench ws), not the wall clock in
    whole milliseconds.
    """
    bid = tick["bid"]
    ask = tick["ask"]
    data = {
        "symbol": tick["symbol"],
        "bid": bid,
        "ask": ask,
        "spread": ask - bid,
        "volume": int(tick["volume"]),
        "time_msc": tick["time_msc"],
        "timestamp": iso_from_msc(tick["time_msc"]),
        "terminal": tick["terminal"],
        "owner": owner,
    }
    sent_ns = tick.get("sent_ns")
    if sent_ns is not None:
        data["sent_ns"] = sent_ns
    return data


def close_price(buy: bool, *quotes: Mapping[str, Any] | None) -> float | None:
    """The price a position would close at (bid for a buy, ask for a sell) from the first quote there is.

    Callers pass the position's own terminal's quote first, then the symbol's:
    the daemon for its feed and snapshots, the sidecar for ``/api/positions``.
    """
    for quote in quotes:
        if quote is not None:
            return quote["bid"] if buy else quote["ask"]  # type: ignore[no-any-return]
    return None


def app_position(pos: Mapping[str, Any], terminal: str, current_price: float | None, status: str | None = None) -> dict[str, Any]:
    """An EA position as the apps read it: string ticket, BUY/SELL, both field spellings."""
    out: dict[str, Any] = {
        "ticket": str(pos["ticket"]),
        "symbol": pos["symbol"],
        "type": "BUY" if pos["side"] == "buy" else "SELL",
        "lots": pos["lots"],
        "volume": pos["lots"],
        "open_price": pos["open_price"],
        "entry_price": pos["open_price"],
        "current_price": current_price if current_price is not None else pos["open_price"],
        "sl": pos["sl"],
        "tp": pos["tp"],
        "profit": pos["profit"],
        "profit_loss": pos["profit"],
        "swap": pos["swap"],
        "commission": pos["commission"],
        "open_time": iso_from_msc(pos["open_time_msc"]),
        "comment": pos["comment"],
        "magic": pos["magic"],
        "terminal": terminal,
    }
    if status is not None:
        out["status"] = status
    return out


def _margin_level(equity: float, margin: float) -> float:
    """Equity over margin in percent; 0 without margin, as the terminals show it. A margin of 5e-324 made it
    inf, which the app read as null: a level past any number is shown as 0 too (no margin to speak of)."""
    level = equity / margin * 100.0 if margin > 0 else 0.0
    return level if math.isfinite(level) else 0.0


def app_account(acc: Mapping[str, Any]) -> dict[str, Any]:
    """An EA account event as the apps read it (margin_level and profit derived)."""
    margin = acc["margin"]
    return {
        "login": acc["login"],
        "name": acc.get("name", ""),
        "server": acc.get("server", ""),
        "currency": acc["currency"],
        "balance": acc["balance"],
        "equity": acc["equity"],
        "margin": margin,
        "free_margin": acc["free_margin"],
        "margin_level": _margin_level(acc["equity"], margin),
        "profit": acc["equity"] - acc["balance"],
        "leverage": acc["leverage"],
        "terminal": acc["terminal"],
    }


# -- signals (PROTOCOL.md, "signal"; built here so the feed, the store and the API share one shape) --

SIGNAL_PREDICTIONS: Final = ("BUY", "SELL", "HOLD")
SIGNAL_COMPONENTS: Final = ("quantum", "chaos", "ml_ensemble", "technical")


def signal_object(
    *,
    signal_id: str,
    symbol: str,
    prediction: str,
    probability: float,
    trend: str,
    time_msc: int,
    components: Mapping[str, float],
    features: dict[str, float | None] | Iterable[tuple[str, float | None]],
    ml_probability: float,
    ml_components: Mapping[str, float],
) -> dict[str, Any]:
    """The app's signal object: ``confidence`` and ``action`` derived here so they cannot disagree.

    ``confidence`` = max(p, 1 - p); ``action`` is "entry" for BUY/SELL and
    "hold" for HOLD. Feature values that are NaN (warming up) become null.
    ``features`` may be (name, value) pairs: the daemon passes the kernel's
    row zipped with the names, so the dict is built once, here.
    """
    if prediction not in SIGNAL_PREDICTIONS:
        raise ValueError(f"prediction must be one of {SIGNAL_PREDICTIONS}, got {prediction!r}")
    p = float(probability)
    return {
        "id": signal_id,
        "symbol": symbol,
        "prediction": prediction,
        "trend": trend,
        "probability": p,
        "confidence": max(p, 1.0 - p),
        "action": "hold" if prediction == "HOLD" else "entry",
        "timestamp": iso_from_msc(time_msc),
        "time_msc": int(time_msc),
        "components": {name: float(components[name]) for name in SIGNAL_COMPONENTS},
        # v - v is 0.0 for a finite float, NaN for NaN and inf: null in JSON. Inline,
        # not a function call per feature: this runs on the signal's hot path.
        "features": {name: (float(v) if v is not None and v - v == 0.0 else None) for name, v in (features.items() if isinstance(features, dict) else features)},
        "ml_prediction": {
            "probability": float(ml_probability),
            "components": {name: float(value) for name, value in ml_components.items()},
        },
    }
